"""The server describes itself: ``/openapi.json`` (a valid OpenAPI 3.1 document listing every route,
its request fields and statuses), ``/docs``, OpenAI's ``/v1/models`` (through the real ``openai``
client), 405 with ``Allow`` on every route, the ``X-Warnings`` header, and the HTTP reference
page written from the same table. A real server process on a loopback port.
"""

from __future__ import annotations

import argparse
import json

import pytest
from serve_util import metric, require_serve_extra

require_serve_extra()

import httpx  # noqa: E402

from xlm_onnx import FillMask  # noqa: E402
from xlm_onnx.serve import caveats, cli, options, reference  # noqa: E402
from xlm_onnx.serve.process import ServerProcess  # noqa: E402

KEY = "described-key"
#: Every route of a server on the demo model (fill-mask, embed, score), written out by hand: a
#: route added to the server and not to its description, or the reverse, fails here.
ROUTES = {
    ("POST", "/"), ("POST", "/embed"), ("POST", "/similarity"), ("POST", "/v1/embeddings"), ("GET", "/v1/models"),
    ("POST", "/fill-mask"), ("POST", "/score"), ("POST", "/tasks/{task}"), ("POST", "/tokenize"),
    ("GET", "/info"), ("GET", "/metrics"), ("GET", "/health"), ("GET", "/ready"), ("GET", "/openapi.json"),
    ("GET", "/docs"),
}
#: The request fields of the task routes: each task's own options, from its parameter schema.
FIELDS = {
    "/fill-mask": {"inputs", "top_k", "targets", "whole_word_targets", "lang", "truncation", "parameters"},
    "/score": {"inputs", "metric", "per_token", "lang", "truncation", "parameters"},
    "/embed": {"inputs", "normalize", "truncate", "truncation_direction", "prompt_name", "dimensions"},
    "/v1/embeddings": {"input", "model", "encoding_format", "dimensions", "user"},
    "/tokenize": {"inputs", "truncation"},
}


@pytest.fixture(scope="module")
def server():
    with ServerProcess(None, env={"XLM_ONNX_API_KEY": KEY}) as proc:
        with httpx.Client(base_url=proc.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
            yield client


@pytest.fixture(scope="module")
def doc(server):
    return server.get("/openapi.json").json()


def test_openapi_document_is_valid_and_lists_every_route(doc):
    from openapi_spec_validator import validate

    validate(doc)  # raises on an invalid document
    assert doc["openapi"].startswith("3.1")
    listed = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert listed == ROUTES
    for path, fields in FIELDS.items():
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == fields, path
    top_k = doc["paths"]["/fill-mask"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert top_k["top_k"]["default"] == 5 and top_k["top_k"]["type"] == "integer"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            statuses = set(op["responses"])
            assert {"200", "405"} <= statuses, (method, path)
            if method == "post":
                assert {"413", "415", "422"} <= statuses, path
            if path not in ("/health", "/ready", "/openapi.json", "/docs"):
                assert "401" in statuses and op["security"] == [{"bearer": []}], path


def test_every_route_answers_405_with_allow_for_another_method(server, doc):
    for path, ops in doc["paths"].items():
        (method,) = ops
        other = "GET" if method == "post" else "POST"
        concrete = path.replace("{task}", "fill-mask")
        response = server.request(other, concrete, json={} if other == "POST" else None)
        assert response.status_code == 405, (other, path, response.text)
        assert method.upper() in response.headers["allow"].split(", ")
        body = response.json()
        assert body.pop("request_id") == response.headers["x-request-id"]  # every error body carries it
        assert body in ({"error": "Method Not Allowed", "error_type": "Error"},
                        {"error": {"message": "Method Not Allowed", "type": "Error"}})
    bare = httpx.post(str(server.base_url) + "/health")  # no body, no Content-Type, no key: still 405, not 415
    assert bare.status_code == 405 and bare.headers["allow"] == "GET, HEAD"


def test_openai_client_lists_the_model(server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=str(server.base_url) + "/v1", api_key=KEY, max_retries=0, timeout=60)
    models = list(client.models.list())
    assert [m.id for m in models] == ["default_model"] and models[0].owned_by == "xlm-onnx"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=str(server.base_url) + "/v1", api_key="wrong", max_retries=0).models.list()


def test_docs_page_is_self_contained(server):
    page = httpx.get(str(server.base_url) + "/docs")  # public, as /openapi.json is
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'fetch("openapi.json")' in page.text and "http://" not in page.text and "https://" not in page.text
    assert httpx.get(str(server.base_url) + "/openapi.json").status_code == 200


def test_warnings_reach_the_client(server):
    """A target outside the vocabulary is answered with its first piece, and the client is told."""
    body = {"inputs": "La <mask> est belle.", "targets": ["vie", "maison"]}
    response = server.post("/fill-mask", json=body)
    assert response.status_code == 200
    assert json.loads(response.headers["x-warnings"]) == [
        "target 'maison' is not in the vocabulary; using its first piece 'ma'"]
    assert "x-warnings" not in server.post("/fill-mask", json={"inputs": "La <mask> est belle."}).headers
    many = [f"zq{chr(97 + i)}{chr(97 + j)}x" for i in range(5) for j in range(10)]  # 50 words outside the vocabulary
    api = FillMask.from_pretrained()
    assert all(api.tokenizer.vocab_id(w) is None for w in many)
    warned = json.loads(server.post("/fill-mask", json={"inputs": "a <mask>", "targets": many}).headers["x-warnings"])
    assert len(warned) == caveats.MOST + 1 and warned[-1] == f"... {50 - caveats.MOST} more warnings"


def test_reference_page_has_every_route_status_and_metric(server, doc):
    page = reference.markdown()
    for method, path in ROUTES:
        assert f"`{method} {path}`" in page
    for ops in doc["paths"].values():
        for op in ops.values():
            for status in op["responses"]:
                assert f"\n| {status} |" in page
    text = server.get("/metrics").text
    names = {line.split()[2].removesuffix("_created").removesuffix("_total")
             for line in text.splitlines() if line.startswith("# TYPE")}
    assert names and all(f"`{name}`" in page for name in names)
    assert metric(text, "xlm_onnx_requests_total") > 0


def test_listening_beyond_loopback_without_a_key_warns(capsys, monkeypatch):
    monkeypatch.delenv(options.API_KEY_ENV, raising=False)

    def args(host, key=None):
        return argparse.Namespace(host=host, port=8080, api_key=key, api_key_file=None)
    cli._warn_if_open(args("0.0.0.0"))
    assert capsys.readouterr().err == (
        "xlm-onnx: warning: listening on 0.0.0.0 (beyond this machine) without an API key: anyone who can reach "
        f"port 8080 can use this server; set --api-key, --api-key-file or {options.API_KEY_ENV}\n")
    for quiet in (args("127.0.0.1"), args("localhost"), args("::1"), args("0.0.0.0", "k")):
        cli._warn_if_open(quiet)
    assert capsys.readouterr().err == ""
