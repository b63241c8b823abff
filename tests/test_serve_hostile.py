"""``xlm-onnx serve`` under hostile input (real server processes on 127.0.0.1, raw sockets and a
real HTTP client): small bodies that ask for huge work are refused naming the limit while normal
requests are answered; stalled bodies hold no queue slot, are closed by their deadline, and do not
keep SIGTERM from finishing; memory stays flat under distinct targets and long words; malformed
bodies never get a 500; foreign Hosts and Origins are refused by default.

Every wait here is on an event (a metric, a socket closing) with a generous bound; how fast
refusals and normal answers are under this load is measured in benchmarks/serve_hostile.py.
"""

from __future__ import annotations

import json
import random
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from serve_util import metric, require_serve_extra, rss_mb, wait_metric

require_serve_extra()

import httpx  # noqa: E402

from xlm_onnx.serve.process import ServerProcess  # noqa: E402

M = "<mask>"
LONG = " ".join(["Toute personne a droit à la liberté de pensée."] * 40)  # > 256 tokens
NORMAL = {"inputs": "Toute personne a droit à la <mask>."}
#: (route, body, the limit its 413 names): the amplification bodies, and variants.
AMPLIFICATION = [
    ("/fill-mask", {"inputs": " ".join([M] * 20), "top_k": 21474}, "max_predictions"),  # 170 B -> 120 MB answer
    ("/fill-mask", {"inputs": " ".join([M] * 254), "top_k": 21474}, "max_predictions"),
    ("/fill-mask", {"inputs": [" ".join([M] * 30)] * 64}, "max_predictions"),
    ("/fill-mask", {"inputs": " ".join([M] * 200), "targets": [f"mot{i}" for i in range(500)],
                    "whole_word_targets": True}, "max_copies"),
    ("/score", {"inputs": [LONG] * 64, "truncation": True}, "max_copies"),  # 64 x 254 copies of 256 tokens
    ("/score", {"inputs": [LONG] * 2, "truncation": True}, "max_request_tokens"),
]


def _raw(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head)
    return sock


def _stalled_body(port: int) -> socket.socket:
    """A POST whose body (100 bytes promised) stops after one byte."""
    return _raw(port, b"POST /fill-mask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{")


def _until_closed(sock: socket.socket, timeout: float = 60.0) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``timeout`` s)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return data


def _no_5xx(text: str) -> None:
    """No 5xx answered (``/ready``'s 503 while warming up is the probe's answer, not a failure)."""
    assert metric(text, "xlm_onnx_requests_total") > 0
    failed = [line for line in text.splitlines() if line.startswith("xlm_onnx_requests_total")
              and 'status="5' in line and 'route="/ready"' not in line]
    assert not failed, failed


@pytest.fixture(scope="module")
def plain():
    """A server with every default (limits, timeouts, guards)."""
    with ServerProcess(None) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        yield server, client


@pytest.mark.parametrize("route,body,limit", AMPLIFICATION, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(AMPLIFICATION)])
def test_amplification_is_refused_naming_the_limit(plain, route, body, limit):
    server, client = plain
    response = client.post(route, json=body)
    assert response.status_code == 413, response.text
    assert f"({limit})" in response.json()["error"] and response.json()["error_type"] == "Validation"
    assert client.post("/fill-mask", json=NORMAL).status_code == 200


def test_long_words_are_served_while_normal_requests_are_answered(plain):
    """Two 640 kB /tokenize bodies of 64 words of 10,000 letters each (a minute each before the
    tokenizer's long-word path) are served; a normal request is answered while they are held."""
    server, client = plain
    rng = random.Random(0)
    bodies = [{"inputs": ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10_000))
                          for _ in range(64)], "truncation": True} for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(client.post, "/tokenize", json=body) for body in bodies]
        wait_metric(client, "xlm_onnx_queue_size", 2, timeout=120)  # both read, admitted, tokenizing
        normal = client.post("/fill-mask", json=NORMAL)
        answers = [f.result() for f in held]
    assert normal.status_code == 200
    assert [a.status_code for a in answers] == [200, 200] and len(answers[0].json()) == 64
    embed = client.post("/embed", json={"inputs": [LONG * 5] * 64, "truncate": True})  # 64 x 256 tokens: served
    assert embed.status_code == 200 and len(embed.json()) == 64
    assert rss_mb(server.proc.pid, "VmHWM") < 1024
    _no_5xx(client.get("/metrics").text)


MALFORMED = [b"[" * 100_000, b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", b"{" * 100_000,
             b'{"inputs": "a <mask>", "top_k": 1e999}', b'{"inputs": "a <mask>", "top_k": ' + b"9" * 5000 + b"}",
             b"\xff\xfe", b"", b"null", b'"text"', b'{"inputs": "\\ud800 <mask>"}']
WRONG = [None, 1, 1.5, True, "x", [], {}, [1], {"a": 1}, ["a", None], [[1, 2]]]
FIELDS = {"/fill-mask": ("inputs", "top_k", "targets", "lang", "truncation", "whole_word_targets", "parameters"),
          "/embed": ("inputs", "normalize", "truncate", "truncation_direction", "prompt_name", "dimensions"),
          "/v1/embeddings": ("input", "model", "encoding_format", "dimensions", "user"),
          "/score": ("inputs", "metric", "per_token", "lang", "truncation"), "/tokenize": ("inputs", "truncation")}
VALID = {"/fill-mask": {"inputs": "a <mask>"}, "/embed": {"inputs": "a"}, "/v1/embeddings": {"input": "a"},
         "/score": {"inputs": "a b"}, "/tokenize": {"inputs": "a"}}


def test_malformed_bodies_and_wrong_types_never_answer_500(plain):
    server, client = plain
    statuses = []
    for route in FIELDS:
        for content in MALFORMED:
            statuses.append(client.post(route, content=content, headers={"Content-Type": "application/json"}))
        for field in FIELDS[route]:
            for value in WRONG:
                statuses.append(client.post(route, json={**VALID[route], field: value}))
    bad = [(r.request.url.path, r.request.content[:80], r.status_code, r.text[:200]) for r in statuses
           if r.status_code >= 500 or (r.status_code != 200 and "error" not in r.json())]
    assert not bad
    for _ in range(5):  # a client that leaves mid-body: counted as a disconnect, not a failure
        _stalled_body(server.port).close()
    wait_metric(client, "xlm_onnx_client_disconnects_total", 5, at_least=True)
    _no_5xx(client.get("/metrics").text)


def test_foreign_host_origin_and_content_type_are_refused_by_default(plain):
    server, client = plain
    assert client.post("/fill-mask", json=NORMAL, headers={"Host": "evil.example"}).status_code == 421
    assert client.get("/health", headers={"Host": "evil.example:8080"}).status_code == 421  # DNS rebinding
    page = client.post("/fill-mask", json=NORMAL, headers={"Origin": "http://evil.example"})
    assert page.status_code == 403 and "--cors-origins" in page.json()["error"]
    assert "access-control-allow-origin" not in page.headers
    simple = client.post("/fill-mask", content=json.dumps(NORMAL), headers={"Content-Type": "text/plain"})
    assert simple.status_code == 415 and "application/json" in simple.json()["error"]
    own = client.post("/fill-mask", json=NORMAL, headers={"Origin": server.url})  # the server's own origin
    assert own.status_code == 200
    for host in ("localhost", f"localhost:{server.port}", "[::1]:1", "127.0.0.2", "app.localhost"):
        assert client.get("/health", headers={"Host": host}).status_code == 200, host
    text = client.get("/metrics").text
    assert metric(text, "xlm_onnx_refused_requests_total") >= 4


def test_allowed_hosts_cors_origins_and_key_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    options = ["--allowed-hosts", "*.example.org", "--cors-origins", "http://app.example", "--api-key-file",
               str(key_file)]
    with ServerProcess(None, options) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        key = {"Authorization": "Bearer from-a-file"}
        assert "from-a-file" not in " ".join(server.argv)  # not on the command line (ps)
        assert client.post("/fill-mask", json=NORMAL, headers={**key, "Host": "api.example.org"}).status_code == 200
        assert client.post("/fill-mask", json=NORMAL, headers={**key, "Host": "example.com"}).status_code == 421
        preflight = client.options("/fill-mask", headers={"Origin": "http://app.example",
                                                          "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://app.example"
        cors = client.post("/fill-mask", json=NORMAL, headers={**key, "Origin": "http://app.example"})
        assert cors.status_code == 200 and cors.headers["access-control-allow-origin"] == "http://app.example"
        assert cors.headers["access-control-expose-headers"] == "X-Warnings"  # a page may read the warnings
        # With a key required, a foreign page without the key is stopped by the key check.
        assert client.post("/fill-mask", json=NORMAL, headers={"Origin": "http://evil.example"}).status_code == 401
    empty = tmp_path / "empty"
    empty.write_text("\n")
    proc = ServerProcess(None, ["--api-key-file", str(empty)])
    with pytest.raises(RuntimeError, match="--api-key-file .*empty: the first line is empty"):
        proc.start()


def test_stalled_bodies_hold_no_slot_and_do_not_stop_sigterm():
    """256 bodies that never end: normal requests are answered (a queue of 4 slots), and SIGTERM
    closes them and exits, long before their 600 s body deadline."""
    server = ServerProcess(None, ["--max-queue", "4", "--body-timeout", "600"])
    server.start()
    stalled = []
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            stalled = [_stalled_body(server.port) for _ in range(256)]
            wait_metric(client, "xlm_onnx_receiving_bodies", 256, timeout=120)
            assert [client.post("/fill-mask", json=NORMAL).status_code for _ in range(6)] == [200] * 6
            assert metric(client.get("/metrics").text, "xlm_onnx_queue_size") == 0
        server.terminate()
        status = server.proc.wait(timeout=120)  # far less than the body deadline
        assert status in (0, -15), server.stderr()
        assert all(_until_closed(sock) == b"" for sock in stalled)  # closed, not answered
        assert "Traceback" not in server.stderr()
    finally:
        server.stop()
        for sock in stalled:
            sock.close()


def test_slow_headers_and_bodies_are_closed_by_their_deadline():
    with ServerProcess(None, ["--header-timeout", "1", "--body-timeout", "1"]) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        bodies = [_stalled_body(server.port) for _ in range(32)]
        headers = [_raw(server.port, b"POST /fill-mask HTTP/1.1\r\nHost: 127.0.0.1\r\n") for _ in range(32)]
        silent = [_raw(server.port, b"") for _ in range(8)]
        huge = _raw(server.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000)
        for sock in bodies:
            assert _until_closed(sock).startswith(b"HTTP/1.1 408 ")
        for sock in headers:
            assert _until_closed(sock).startswith(b"HTTP/1.1 408 ")
        assert all(_until_closed(sock) == b"" for sock in silent)  # nothing sent: closed without answer
        assert _until_closed(huge).startswith(b"HTTP/1.1 431 ")
        assert client.post("/fill-mask", json=NORMAL).status_code == 200
        text = client.get("/metrics").text
    assert 'reason="body_timeout"} 32.0' in text and 'reason="header_timeout"} 32.0' in text
    _no_5xx(text)


def test_hostile_mix_keeps_rss_flat():
    """20 requests with 50,000 distinct targets each, then 1,000 with distinct long words: the
    log filter and the tokenizer caches are bounded in bytes, so resident memory stays flat."""
    with ServerProcess(None) as server, httpx.Client(base_url=server.url, timeout=300) as client:
        for body in (NORMAL, {**NORMAL, "targets": ["vie", "zzqx"]}):
            assert client.post("/fill-mask", json=body).status_code == 200
        assert client.post("/tokenize", json={"inputs": "Bonjour"}).status_code == 200
        before = rss_mb(server.proc.pid)
        for r in range(20):
            targets = [f"q{r:02d}{i:05d}zx" for i in range(50_000)]
            assert client.post("/fill-mask", json={**NORMAL, "targets": targets}).status_code == 200
        rng = random.Random(0)
        words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(300)) for _ in range(1000)]
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda w: client.post("/tokenize", json={"inputs": f"le {w} ."}).status_code, words))
        assert codes == [200] * 1000
        growth = rss_mb(server.proc.pid) - before
        _, stderr = server.stop()
    assert growth < 50, f"RSS grew {growth:.0f} MB"
    assert len(stderr) < 10_000 and "more like this" in stderr  # 1M warnings: a few lines and a count


def test_a_big_request_shares_the_model_and_stops_when_its_client_leaves():
    """A /score request of 1,016 masked copies, 4 rows per run (254 runs): a normal request sent
    meanwhile is answered between two of its runs, not after all of them; when its client leaves,
    the runs after the next boundary are not made."""
    options = ["--max-batch-size", "4", "--max-request-tokens", "1000000", "--max-queue-tokens", "1000000"]
    with ServerProcess(None, options) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        body = json.dumps({"inputs": [LONG] * 4, "truncation": True}).encode()
        sock = _raw(server.port, b"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        wait_metric(client, "xlm_onnx_batch_rows_count", 2, at_least=True)  # its runs have started
        assert client.post("/fill-mask", json=NORMAL).status_code == 200
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):  # the big request is still running: no answer yet
            sock.recv(1)
        sock.close()
        wait_metric(client, "xlm_onnx_client_disconnects_total", 1)
        wait_metric(client, "xlm_onnx_queue_size", 0)  # the request is over
        rows = metric(client.get("/metrics").text, "xlm_onnx_batch_rows_sum")
        assert client.post("/score", json={"inputs": "Bonjour le monde."}).status_code == 200
    assert rows < 4 * 254 - 4 * 50, f"{rows} of {4 * 254} copies ran after the client left"
