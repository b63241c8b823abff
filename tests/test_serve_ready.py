"""``/ready`` around the warm-up of a real server process: 503 while the warm-up runs (held open
by a registered task that waits for the test's gate, tests/toy_tasks.py), 200 once it is done,
and 503 for good, saying why, after a warm-up that failed; ``/health`` answers throughout."""

from __future__ import annotations

import pytest

from serve_util import launch, require_serve_extra, status, stop
from toy_tasks import FailingHiddenMean, GatedHiddenMean, pythonpath, write_distribution
from waiting import wait_until

require_serve_extra()

import httpx  # noqa: E402


@pytest.fixture()
def site(tmp_path):
    return lambda task: pythonpath(write_distribution(tmp_path / "site", task))


def test_ready_is_503_until_the_warm_up_is_done(site, tmp_path):
    gate = tmp_path / "gate"
    proc, url, _ = launch([], env={"PYTHONPATH": site(GatedHiddenMean), "XLM_TOY_GATE": str(gate)})
    try:
        wait_until(lambda: status(url + "/health") == 200, "the server answers")
        before = httpx.get(url + "/ready", timeout=60)  # the warm-up waits for the gate: it cannot be done
        assert before.status_code == 503 and before.json() == {"error": "warming up", "error_type": "Unhealthy",
                                                               "request_id": before.headers["x-request-id"]}
        gate.touch()
        wait_until(lambda: status(url + "/ready") == 200, "ready once warmed up")
    finally:
        gate.touch()  # a failed assertion must not leave the warm-up (and the stop) waiting
        stop(proc)


def test_ready_stays_503_after_a_failed_warm_up(site):
    proc, url, stderr = launch([], env={"PYTHONPATH": site(FailingHiddenMean)})
    try:
        def failed() -> bool:
            stderr.seek(0)
            return "warm-up failed" in stderr.read()
        wait_until(failed, "the warm-up's failure is logged")
        assert status(url + "/health") == 200  # up, but not ready
        response = httpx.get(url + "/ready", timeout=60)
        assert response.status_code == 503
        assert response.json()["error"] == "warm-up failed: RuntimeError: this task cannot run"
    finally:
        stop(proc)
