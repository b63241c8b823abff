"""``xlm-onnx serve --ray-address``: the same app as a Ray Serve deployment, 2 replicas on a real
local Ray cluster (``ray.init(num_cpus=2)`` on 127.0.0.1, as test_ray.py starts it), driven over
HTTP through Ray Serve's proxy with the real clients: the routes and answers are the single
server's (equal to the Python API's), both replicas answer, a bad request gets the same 422,
and SIGTERM removes the application and exits 0 with no error-level line on the way.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from serve_util import require_serve_extra

require_serve_extra()
try:
    import ray
    from ray import serve  # noqa: F401
except ImportError as exc:  # pragma: no cover - the [ray] extra is in [test]
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"the [ray] extra is missing in CI ({exc.name}); .ci/run installs .[test]") from None
    pytest.skip(f"needs the [ray] extra with Ray Serve ({exc.name})", allow_module_level=True)

import httpx  # noqa: E402

from xlm_onnx import Embedder, FillMask, Model  # noqa: E402
from xlm_onnx.serve.adapters.tei import WORDS  # noqa: E402

ERROR_LINE = re.compile(r"\[[\d\-: ,]+ E \d+ \d+\]|\bERROR\b|Traceback")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, _node_ip_address="127.0.0.1")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_server(cluster):
    """``xlm-onnx serve --ray-address GCS --replicas 2`` on a free loopback port."""
    stderr = tempfile.TemporaryFile("w+", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "xlm_onnx", "serve", "--ray-address", cluster, "--replicas", "2",
                             "--host", "127.0.0.1", "--port", "0", "--graceful-timeout", "10"],
                            stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        line = proc.stdout.readline()
        assert " on http://" in line, (line, stderr.seek(0) or stderr.read())
        url = line.strip().rsplit(" on ", 1)[1]
        deadline = time.monotonic() + 300
        while True:  # both replicas warmed up: /ready through the proxy answers 200
            try:
                if httpx.get(url + "/ready", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "Ray Serve never got ready"
            time.sleep(0.2)
        yield proc, url, stderr
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def api():
    model = Model.load(None)
    return {"fill": FillMask.from_model(model), "embed": Embedder(model)}


def test_same_routes_and_answers_as_the_single_server(ray_server, api):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    openai = pytest.importorskip("openai")
    _, url, _ = ray_server
    text = "Toute personne a droit à la <mask>."
    assert httpx.post(url + "/fill-mask", json={"inputs": text, "top_k": 3}, timeout=60).json() == \
        api["fill"](text, top_k=3)
    got = huggingface_hub.InferenceClient(model=url, timeout=60).fill_mask(text)  # POST / through the proxy
    assert [(p.token, p.score) for p in got] == [(e["token"], e["score"]) for e in api["fill"](text)]
    texts = ["Bonjour le monde.", "Das ist ein Haus."]
    vectors = httpx.post(url + "/embed", json={"inputs": texts}, timeout=60).json()
    np.testing.assert_array_equal(np.array(vectors, np.float32), api["embed"].embed(texts, normalize=True))
    answer = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0).embeddings.create(
        input=texts, model="xlm")
    np.testing.assert_array_equal(np.array([d.embedding for d in answer.data], np.float32),
                                  api["embed"].embed(texts, normalize=True))
    bad = httpx.post(url + "/embed", json={"inputs": None}, timeout=60)
    assert bad.status_code == 422
    try:
        api["embed"].embed(None)
    except TypeError as exc:
        assert bad.json() == {"error": WORDS.say(exc), "error_type": "Validation"}


def test_two_replicas_answer(ray_server):
    _, url, _ = ray_server
    pids = set()
    for _ in range(100):  # Ray's router spreads requests over the replicas
        pids.add(httpx.get(url + "/info", timeout=60).json()["pid"])
        if len(pids) == 2:
            break
    assert len(pids) == 2


def test_sigterm_removes_the_app_and_exits_0(ray_server):
    proc, url, stderr = ray_server
    proc.send_signal(signal.SIGTERM)
    status = proc.wait(timeout=120)
    stderr.seek(0)
    log = stderr.read()
    assert status == 0, log
    assert "stopped (Ray Serve application removed)" in log
    assert not ERROR_LINE.search(log), log  # a normal run prints no error-level line
    with pytest.raises(httpx.TransportError):  # Ray Serve's proxy is gone with the application
        httpx.get(url + "/health", timeout=5)


def test_serve_run_builder_and_autoscaling_options():
    """``serve run xlm_onnx.serve.ray_serve:app_builder key=value``: the CLI's options, autoscaling
    on requests per replica (queue length) at half a batch."""
    from xlm_onnx.cli.main import parser
    from xlm_onnx.serve.ray_serve import _options, app_builder

    assert type(app_builder({"replicas": "2", "max_replicas": "4", "max_batch_size": "16"})).__name__ == "Application"
    args = parser().parse_args(["serve", "--replicas", "2", "--max-replicas", "4", "--max-batch-size", "16",
                                 "--max-queue", "100", "--graceful-timeout", "20"])
    options = _options(args)
    assert options["autoscaling_config"] == {"min_replicas": 2, "initial_replicas": 2, "max_replicas": 4,
                                             "target_ongoing_requests": 8}
    assert options["max_ongoing_requests"] == options["max_queued_requests"] == 100
    assert options["graceful_shutdown_timeout_s"] == 20 and "num_replicas" not in options
    assert _options(parser().parse_args(["serve", "--replicas", "3"]))["num_replicas"] == 3
