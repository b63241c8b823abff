"""``xlm-onnx serve`` (a real server process on a loopback port, a real HTTP client): every route's
answer equals the Python API's on the same inputs; bad input gets the API's message (422); size
limits (413) and the API key (401).

One request at a time here, so each batch holds exactly the rows the API would put together and
the answers are bit-equal (int8 activations are quantised per batch: see test_serve_batching.py).
"""

from __future__ import annotations

import base64
import dataclasses
import json

import numpy as np
import pytest

from serve_util import metric, require_serve_extra

require_serve_extra()

import httpx  # noqa: E402

from xlm_onnx import Embedder, FillMask, Model, Scorer  # noqa: E402
from xlm_onnx.errors import Fix, InputError  # noqa: E402
from xlm_onnx.tasks import registry  # noqa: E402
from xlm_onnx.serve.adapters import openai as openai_adapter, tei  # noqa: E402
from xlm_onnx.serve.failures import JSON_WORDS  # noqa: E402
from xlm_onnx.serve.process import ServerProcess  # noqa: E402

KEY = "s3cret-key"
LIMITS = ["--payload-limit", "20000", "--max-inputs", "8", "--max-chars", "2000"]
LONG = " ".join(["Toute personne a droit à la liberté de pensée."] * 40)  # > 256 tokens: the demo's maximum


@pytest.fixture(scope="module")
def api():
    model = Model.load(None)
    return {"model": model, "fill": FillMask.from_model(model), "embed": Embedder(model), "score": Scorer(model)}


@pytest.fixture(scope="module")
def server():
    with ServerProcess(None, LIMITS, env={"XLM_ONNX_API_KEY": KEY}) as proc:
        with httpx.Client(base_url=proc.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
            yield client


FILL_CASES = [
    {"inputs": "Bonjour <mask>."},
    {"inputs": ["Toute personne a droit à la <special1>.", "Hello [MASK] world <mask> !", "x <mask>"], "top_k": 3},
    {"inputs": "La <mask> est belle.", "targets": ["vie", "maison", "zzqxw"], "top_k": 2},
    {"inputs": [LONG.replace("liberté", "<mask>", 1)], "truncation": True, "top_k": 1},
    {"inputs": ["La <mask> est belle.", "<mask> et <mask>"], "targets": ["vie", "liberté", "maison"],
     "whole_word_targets": True},
]


@pytest.mark.parametrize("case", FILL_CASES)
def test_fill_mask_equals_api(server, api, case):
    response = server.post("/fill-mask", json=case)
    assert response.status_code == 200, response.text
    assert response.json() == api["fill"](**case)


def test_fill_mask_hf_parameters_object(server, api):
    got = server.post("/fill-mask", json={"inputs": "La <mask> est belle.", "parameters": {"top_k": 7}}).json()
    assert got == api["fill"]("La <mask> est belle.", top_k=7) and len(got) == 7


TEXTS = ["Bonjour le monde.", "Toute personne a droit à la vie.", "x", "", "Das ist ein Haus."]


def test_embed_tei_equals_api(server, api):
    got = server.post("/embed", json={"inputs": TEXTS}).json()  # TEI: normalize defaults to true
    np.testing.assert_array_equal(np.array(got, dtype=np.float32), api["embed"].embed(TEXTS, normalize=True))
    one = server.post("/embed", json={"inputs": "Bonjour", "normalize": False}).json()  # TEI: a list, also for one
    np.testing.assert_array_equal(np.array(one, dtype=np.float32), api["embed"].embed(["Bonjour"]))
    cut = server.post("/embed", json={"inputs": [LONG], "truncate": True}).json()
    np.testing.assert_array_equal(np.array(cut, dtype=np.float32),
                                  api["embed"].embed([LONG], normalize=True, truncation=True))


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_openai_embeddings_equal_api(server, api, encoding):
    body = server.post("/v1/embeddings", json={"input": TEXTS, "model": "x", "encoding_format": encoding}).json()
    rows = [np.frombuffer(base64.b64decode(d["embedding"]), "<f4") if encoding == "base64"
            else np.array(d["embedding"], np.float32) for d in body["data"]]
    np.testing.assert_array_equal(np.stack(rows), api["embed"].embed(TEXTS, normalize=True))
    assert [d["index"] for d in body["data"]] == list(range(len(TEXTS)))
    tokens = sum(len(ids) for ids in api["model"].encode(TEXTS))
    assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    assert body["object"] == "list" and body["model"] == "default_model"


@pytest.mark.parametrize("metric_name", ["original", "word_l2r"])
def test_score_equals_api(server, api, metric_name):
    got = server.post("/score", json={"inputs": TEXTS, "metric": metric_name}).json()
    np.testing.assert_array_equal(np.array(got), api["score"].score(TEXTS, metric=metric_name))
    one = server.post("/score", json={"inputs": TEXTS[1], "metric": metric_name, "per_token": True}).json()
    expected = dataclasses.asdict(api["score"].score(TEXTS[1], metric=metric_name, per_token=True))
    assert one == json.loads(json.dumps(expected))  # tuples become lists in JSON


def test_tokenize_equals_api(server, api):
    got = server.post("/tokenize", json={"inputs": TEXTS}).json()
    assert [g["ids"] for g in got] == api["model"].encode(TEXTS)
    assert got[0]["tokens"] == api["model"].tokenizer.convert_ids_to_tokens(api["model"].encode(TEXTS[:1])[0])


def _api_error(call, accepted: object = AssertionError) -> Exception | None:
    try:
        call()
    except (TypeError, ValueError) as exc:
        return exc
    if accepted is AssertionError:
        raise AssertionError("the API accepted it")
    return None


BAD = [  # (route, body, the same request to the Python API)
    ("/fill-mask", {"inputs": "no mask here"}, lambda a: a["fill"]("no mask here")),
    ("/fill-mask", {"inputs": "a <mask>", "top_k": "5"}, lambda a: a["fill"]("a <mask>", top_k="5")),
    ("/fill-mask", {"inputs": "a <mask>", "top_k": 0}, lambda a: a["fill"]("a <mask>", top_k=0)),
    ("/fill-mask", {"inputs": []}, lambda a: a["fill"]([])),
    ("/fill-mask", {"inputs": "a <mask>", "lang": "fr"}, lambda a: a["fill"]("a <mask>", lang="fr")),
    ("/fill-mask", {"inputs": "a <mask>", "targets": []}, lambda a: a["fill"]("a <mask>", targets=[])),
    ("/fill-mask", {"inputs": [LONG + " <mask>"]}, lambda a: a["fill"]([LONG + " <mask>"])),
    ("/embed", {"inputs": ["ok", 3]}, lambda a: a["embed"].embed(["ok", 3])),
    ("/score", {"inputs": "x", "metric": "bogus"}, lambda a: a["score"].score("x", metric="bogus")),
    ("/score", {"inputs": {"a": 1}}, lambda a: a["score"].score({"a": 1})),
]


@pytest.mark.parametrize("route,body,call", BAD, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(BAD)])
def test_422_has_the_api_message(server, api, route, body, call):
    response = server.post(route, json=body)
    assert response.status_code == 422
    # The message of the task's parameter schema (what the command line and bulk jobs say too), or
    # the API's for what the schema lets through, in the request's field names ("truncation": true).
    options = {k: v for k, v in body.items() if k != "inputs"}
    refused = route != "/embed" and _api_error(lambda: registry.task_class(route[1:]).params.resolve(options, "json"),
                                               accepted=None)
    expected = (tei.WORDS if route == "/embed" else JSON_WORDS).say(refused or _api_error(lambda: call(api)))
    assert response.json() == {"error": expected, "error_type": "Validation"}


def test_messages_name_the_http_fields():
    """An API error keeps its parts; each route says them in its own field names."""
    long = InputError.about("inputs", "is 300 tokens long with specials; the model takes at most 256", 0,
                            Fix("truncation", True, "to cut it"))
    assert str(long) == "inputs[0] is 300 tokens long with specials; the model takes at most 256 " \
                        "(pass truncation=True to cut it)"
    assert JSON_WORDS.say(long).endswith('256 (send "truncation": true to cut it)')
    assert tei.WORDS.say(long).endswith('256 (send "truncate": true to cut it)')
    assert openai_adapter.WORDS.say(long) == "input[0] is 300 tokens long with specials; the model takes at most " \
                                             "256 (shorten it)"
    empty = InputError.about("inputs", "is an empty list")
    assert openai_adapter.WORDS.say(empty) == "input is an empty list" and JSON_WORDS.say(empty) == str(empty)


def test_embed_null_inputs_names_inputs(server):
    response = server.post("/embed", json={"inputs": None})
    assert response.status_code == 422 and response.json()["error"].startswith("inputs must be a str")


@pytest.mark.parametrize("content,needle", [
    (b"{not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object"),
    (b'{"input": "a <mask>"}', "unknown field 'input'"), (b'{"top_k": 3}', "'inputs' is required"),
    (b'{"inputs": "a <mask>", "truncation": "yes"}', "truncation must be a bool"),
])
def test_422_malformed_body(server, content, needle):
    response = server.post("/fill-mask", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and needle in response.json()["error"]
    assert "Traceback" not in response.text and "\n" not in response.json()["error"]


def test_unknown_route_and_method_are_json(server):
    wrong = server.get("/fill-mask")
    assert wrong.json() == {"error": "Method Not Allowed", "error_type": "Error"} and wrong.headers["allow"] == "POST"
    assert server.post("/nope", json={}).status_code == 404
    assert server.post("/nope", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 404


def test_openai_errors_have_openai_shape(server):
    response = server.post("/v1/embeddings", json={"input": "a", "encoding_format": "int8"})
    assert response.status_code == 422 and "encoding_format" in response.json()["error"]["message"]


def test_413_limits(server):
    big = server.post("/embed", json={"inputs": "a" * 25000})
    assert big.status_code == 413 and "20000" in big.json()["error"]
    chunked = server.post("/embed", content=iter([b'{"inputs": "', b"a" * 25000, b'"}']),  # no Content-Length
                          headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    many = server.post("/embed", json={"inputs": ["a"] * 9})
    assert many.status_code == 413 and "at most 8" in many.json()["error"]
    long = server.post("/score", json={"inputs": ["a", "b" * 2001]})
    assert long.status_code == 413 and "inputs[1]" in long.json()["error"]


def test_401_without_the_key(server):
    url = str(server.base_url)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        response = httpx.post(url + "/fill-mask", json={"inputs": "a <mask>"}, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url + "/metrics").status_code == 401
    assert httpx.get(url + "/health").json() == {"status": "ok"}  # probes need no key
    assert httpx.get(url + "/ready").status_code == 200


def test_info_and_metrics(server):
    info = server.get("/info").json()
    assert info["tasks"] == ["fill-mask", "embed", "score"] and info["ready"] is True
    assert info["manifest"]["format_version"] == 2 and info["limits"]["max_inputs"] == 8
    assert info["batching"]["max_batch_size"] == 64 and info["auth"] is True
    from xlm_onnx.model import default_model_dir

    assert str(default_model_dir().parent.parent) not in json.dumps(info)  # no server path in answers
    assert server.post("/fill-mask", json={"inputs": "no mask"}).status_code == 422
    text = server.get("/metrics").text
    assert metric(text, "xlm_onnx_requests_total") > 0 and "xlm_onnx_inference_seconds_bucket" in text
    assert 'route="/fill-mask",status="422"' in text


def test_missing_extra_is_one_line_exit_2():
    import subprocess
    import sys

    code = ("import sys; sys.modules['uvicorn'] = None; from xlm_onnx.cli import main; "
            "assert 'starlette' not in sys.modules, 'the base CLI imported the extra'; "
            "sys.exit(main(['serve', '--port', '0']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("xlm-onnx: error: this command needs the [serve] extra (uvicorn is not installed): "
                           "pip install 'xlm-onnx[serve]'\n")
