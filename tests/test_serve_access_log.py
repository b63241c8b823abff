"""The access log and request ids of ``xlm-onnx serve``: one line per request (text or JSON)
with method, route, status, duration and id; a client's well-formed ``X-Request-Id`` kept, any
other replaced; the id answered in the header and in JSON error bodies."""

from __future__ import annotations

import io
import json
import re

import pytest

from serve_util import require_serve_extra

require_serve_extra()

import httpx  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import JSONResponse, PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from xlm_onnx.serve.access_log import AccessLog  # noqa: E402
from xlm_onnx.serve.process import ServerProcess  # noqa: E402


async def _ok(request):
    return PlainTextResponse(request.state.request_id)  # what a route sees


async def _bad(request):
    return JSONResponse({"error": "inputs must be a str", "error_type": "Validation"}, status_code=422)


def _client(log_format="text"):
    stream = io.StringIO()
    app = AccessLog(Starlette(routes=[Route("/ok", _ok), Route("/bad", _bad, methods=["POST"])]), log_format,
                    stream=stream)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test"), stream


@pytest.mark.anyio
async def test_an_id_is_generated_answered_seen_by_the_route_and_logged():
    client, stream = _client()
    async with client:
        response = await client.get("/ok")
    rid = response.headers["x-request-id"]
    assert re.fullmatch("[0-9a-f]{32}", rid) and response.text == rid
    assert re.fullmatch(rf"xlm-onnx: access: GET /ok 200 \d+\.\d ms id={rid} client=\S+\n", stream.getvalue())


@pytest.mark.anyio
@pytest.mark.parametrize("given,kept", [
    ("4bf92f3577b34da6a3ce929d0e0e4736", True), ("req-1/a:b.c_d~e+f=g@h", True), ("x" * 128, True),
    ("x" * 129, False), ("", False), ("a b", False), ("é", False), ("a\tb", False), ('"};drop', False),
])
async def test_a_client_id_is_kept_only_when_well_formed(given, kept):
    client, stream = _client()
    async with client:
        response = await client.get("/ok", headers={"X-Request-Id": given.encode("utf-8")})
    rid = response.headers["x-request-id"]
    assert (rid == given) is kept and len(rid) <= 128
    assert not kept or f"id={given} " in stream.getvalue()
    assert stream.getvalue().count("\n") == 1


@pytest.mark.anyio
async def test_an_error_body_carries_the_id():
    client, _ = _client()
    async with client:
        response = await client.post("/bad", headers={"X-Request-Id": "abc-1"})
    assert response.status_code == 422
    assert response.json() == {"error": "inputs must be a str", "error_type": "Validation", "request_id": "abc-1"}
    assert int(response.headers["content-length"]) == len(response.content)


@pytest.mark.anyio
async def test_json_lines_and_unrouted_paths_shown_bounded():
    client, stream = _client("json")
    async with client:
        await client.post("/bad")
        await client.get("/" + "z" * 500)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {k: first[k] for k in ("method", "route", "status")} == {"method": "POST", "route": "/bad", "status": 422}
    assert first["ms"] >= 0 and re.fullmatch("[0-9a-f]{32}", first["request_id"]) and first["time"].endswith("+00:00")
    assert second["status"] == 404 and second["route"] == "/" + "z" * 63 + "..."


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_the_server_logs_each_request_with_its_id():
    with ServerProcess(None, ["--log-level", "info"]) as server:
        ok = httpx.post(server.url + "/score", json={"inputs": "Bonjour ."}, headers={"X-Request-Id": "trace-42"})
        bad = httpx.post(server.url + "/fill-mask", json={"inputs": "no mask"})
        status, stderr = server.stop()
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "trace-42"
    assert bad.status_code == 422 and bad.json()["request_id"] == bad.headers["x-request-id"]
    line = r"^xlm-onnx: access: POST /score 200 \d+\.\d ms id=trace-42 client=127\.0\.0\.1:\d+$"
    assert re.search(line, stderr, re.M)
    assert "POST /fill-mask 422 " in stderr and f"id={bad.headers['x-request-id']} " in stderr
    assert status == 0
