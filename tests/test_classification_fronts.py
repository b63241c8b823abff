"""The classifier tasks through every front end, with nothing but their task files: the command line
(``classify``, ``zero-shot``), the server (its routes, and ``POST /`` driven by the real
``huggingface_hub.InferenceClient(base_url=...)``) and the Ray callables. Every answer equals the
Python API's on the same inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xlm_onnx import Model
from xlm_onnx.tasks.text_classification import TextClassifier
from xlm_onnx.tasks.zero_shot import ZeroShotClassifier

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CLI = [sys.executable, "-m", "xlm_onnx"]
TEXTS = ["Bonjour tout le monde", "All human beings are born free and equal in dignity and rights."]
LABELS = ["politics", "sport", "cuisine"]


@pytest.fixture(scope="module")
def nli(classifier_dir):
    return classifier_dir("nli")


@pytest.fixture(scope="module")
def api(nli):
    model = Model.load(nli)
    return TextClassifier(model), ZeroShotClassifier(model)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_cli_classify_and_zero_shot_answer_as_the_api(nli, api):
    classify, zero = api
    proc = _run("classify", "--model", str(nli), "--json", "--top-k", "2", *TEXTS)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    expected = classify(TEXTS, top_k=2)
    assert [r["labels"] for r in records] == [[a["label"] for a in e] for e in expected]
    for record, answer in zip(records, expected):
        assert record["scores"] == pytest.approx([a["score"] for a in answer], abs=1e-6)
    proc = _run("zero-shot", "--model", str(nli), "--json", "--multi-label", *sum((["--label", x] for x in LABELS), []),
                TEXTS[0])
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    expected = zero(TEXTS[0], candidate_labels=LABELS, multi_label=True)
    assert record["labels"] == expected["labels"] and record["scores"] == pytest.approx(expected["scores"], abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["zero-shot", "Bonjour"], "candidate_labels is required"),
    (["classify", "--function", "relu", "Bonjour"], "argument --function: invalid choice: 'relu'"),
    (["fill-mask", "Bonjour <mask>"], "fill-mask needs a model with the 'fill_mask' head"),
])
def test_cli_refuses_in_one_line(nli, args, message):
    proc = _run(args[0], "--model", str(nli), *args[1:])
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def servers(nli):
    from serve_util import require_serve_extra

    require_serve_extra()
    from xlm_onnx.serve.process import ServerProcess

    with ServerProcess(nli, ["--task", "text-classification"]) as classify, \
            ServerProcess(nli, ["--task", "zero-shot-classification"]) as zero:
        yield classify, zero


def test_inference_client_text_classification_on_the_base_url(servers, api):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    client = huggingface_hub.InferenceClient(base_url=servers[0].url, timeout=60)
    for kwargs in ({}, {"top_k": 3}, {"top_k": 2, "function_to_apply": "sigmoid"}):
        got = client.text_classification(TEXTS[1], **kwargs)
        expected = api[0](TEXTS[1], **{"top_k": 1, **kwargs})
        assert [(e.label, e.score) for e in got] == [(e["label"], pytest.approx(e["score"], abs=1e-6)) for e in expected]


def test_inference_client_zero_shot_classification_on_the_base_url(servers, api):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    client = huggingface_hub.InferenceClient(base_url=servers[1].url, timeout=60)
    for kwargs in ({}, {"multi_label": True, "hypothesis_template": "Ce texte parle de {}."}):
        got = client.zero_shot_classification(TEXTS[0], candidate_labels=LABELS, **kwargs)
        expected = api[1](TEXTS[0], candidate_labels=LABELS, **kwargs)
        assert [e.label for e in got] == expected["labels"]
        assert [e.score for e in got] == pytest.approx(expected["scores"], abs=1e-6)


def test_task_routes_take_pairs_and_name_bad_fields(servers, api):
    import httpx

    pair = {"text": TEXTS[0], "text_pair": TEXTS[1]}
    response = httpx.post(servers[0].url + "/text-classification", json={"inputs": [pair, TEXTS[1]], "top_k": 2},
                          timeout=60)
    assert response.status_code == 200
    expected = api[0]([pair, TEXTS[1]], top_k=2)
    assert [[a["label"] for a in answer] for answer in response.json()] == [[a["label"] for a in e] for e in expected]
    bad = httpx.post(servers[1].url + "/zero-shot-classification", json={"inputs": "x", "multi_label": "yes"},
                     timeout=60)
    assert bad.status_code == 422 and "multi_label" in bad.text


def test_ray_callable_rows_equal_the_api(nli, api):
    pa = pytest.importorskip("pyarrow")
    pytest.importorskip("ray")
    from xlm_onnx.ray import BulkTask

    table = pa.table({"text": TEXTS, "id": [1, 2]})
    out = BulkTask(str(nli), task="zero-shot-classification", candidate_labels=LABELS)(table)
    expected = api[1](TEXTS, candidate_labels=LABELS)
    assert out.column("labels").to_pylist() == [e["labels"] for e in expected]
    assert out.column("id").to_pylist() == [1, 2]
