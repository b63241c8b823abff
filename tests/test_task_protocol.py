"""The task protocol: one loop for every front end, and a fourth task that runs through the
Python API and a real server process by registering it (``tests/toy_tasks.py``; Ray: test_ray.py)."""

from __future__ import annotations

import numpy as np
import pytest

from serve_util import launch, require_serve_extra, status, stop
from toy_tasks import HiddenMean, pythonpath, write_distribution
from waiting import wait_until
from xlm_onnx import Embedder, FillMask, Model, Scorer
from xlm_onnx.tasks import registry, run_all

TEXTS = ["Bonjour le monde.", "Toute personne a droit à la vie.", "x", "Das ist ein Haus."]
#: |HiddenMean - mean of Embedder's mean-pooled vector|: both average float32 states in float64
#: (in another order); measured 0 to 3e-8 on the demo model.
MEAN_TOL = 1e-6


@pytest.fixture(scope="module")
def model():
    return Model.load(None)


def test_a_registered_task_runs_through_the_api(model):
    registry.register(HiddenMean)
    assert "hidden-mean" in registry.names() and registry.task_class("hidden-mean") is HiddenMean
    got = HiddenMean(model)(TEXTS)
    want = Embedder(model).embed(TEXTS).astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(got, want, rtol=0, atol=MEAN_TOL)
    one = HiddenMean(model)(TEXTS[0])  # one text: one float, equal to a list of that text's answer
    assert isinstance(one, float) and one == HiddenMean(model)([TEXTS[0]])[0]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(type("Other", (HiddenMean,), {}))


def test_one_loop_answers_requests_of_several_tasks_as_each_alone(model):
    """run_all groups units by task and key: a mixed list answers each request as the API does alone."""
    fm, embedder, scorer = FillMask(model), Embedder(model), Scorer(model)
    requests = [fm.prepare("La <mask> est belle.", top_k=3), embedder.prepare(TEXTS[:2]),
                scorer.prepare(TEXTS[1], per_token=True), fm.prepare(["a <mask>", "b <mask> c"], top_k=2),
                fm.prepare("<mask> et <mask>", targets=["vie", "maison"], whole_word_targets=True)]
    got = run_all(requests, None, None)
    assert got[0] == fm("La <mask> est belle.", top_k=3)
    np.testing.assert_array_equal(got[1], embedder.embed(TEXTS[:2], batch_size=64, max_tokens=None))
    assert got[2] == scorer.score(TEXTS[1], per_token=True, max_tokens=None)
    assert got[3] == fm(["a <mask>", "b <mask> c"], top_k=2)
    assert got[4] == fm("<mask> et <mask>", targets=["vie", "maison"], whole_word_targets=True)


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory):
    """``PYTHONPATH`` of a distribution that registers the fourth task by entry point."""
    return pythonpath(write_distribution(tmp_path_factory.mktemp("site"), HiddenMean))


def test_a_registered_task_runs_through_a_server_process(model, toy_site):
    require_serve_extra()
    import httpx

    proc, url, _ = launch([], env={"PYTHONPATH": toy_site})
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            wait_until(lambda: status(url + "/ready") == 200, "the server is ready")
            assert client.get("/info").json()["tasks"] == ["fill-mask", "embed", "score", "hidden-mean"]
            answer = client.post("/tasks/hidden-mean", json={"inputs": TEXTS})
            assert answer.status_code == 200 and answer.json() == HiddenMean(model)(TEXTS)
            same = client.post("/tasks/embed", json={"inputs": TEXTS, "parameters": {"normalize": True}})
            np.testing.assert_array_equal(np.array(same.json(), np.float32), Embedder(model).embed(TEXTS, normalize=True))
            bad = client.post("/tasks/hidden-mean", json={"inputs": ["ok", 3]})
            assert bad.status_code == 422 and bad.json()["error"] == "inputs[1] must be a str, not int"
            assert client.post("/tasks/nope", json={"inputs": "x"}).status_code == 404
    finally:
        stop(proc)
