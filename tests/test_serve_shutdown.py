"""``xlm-onnx serve`` stopping and starting as an orchestrator drives it (real server processes,
loopback ports): SIGTERM turns /ready to 503 at once, refuses new work with 503 + Retry-After,
answers queued requests until ``--graceful-timeout``, fails the rest with 503 and exits 0 within
the bound; ``--workers`` serves from several processes on one port and stops cleanly; a busy
port is named.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from serve_util import metric, require_serve_extra

require_serve_extra()

import httpx  # noqa: E402

from xlm_onnx.serve.process import ServerProcess  # noqa: E402

TEXT = ("Toute personne a droit à la liberté de pensée , de conscience et de religion ; ce droit implique "
        "la liberté de changer de religion ou de conviction")  # ~40 tokens: ~40 PLL rows


def _wait(check, what: str, timeout: float = 60.0) -> None:
    """Polls ``check()`` until true (an event seen over HTTP); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def test_sigterm_drain_is_bounded_and_exits_0():
    """24 queued /score requests of 16 texts, one PLL row per run: far more work than the 2 s
    bound (each request is ~640 model runs). Those not answered by then get 503 + Retry-After."""
    grace = 2.0
    body = {"inputs": [TEXT] * 16}
    # 24 x 16 texts x ~40 masked copies x ~40 tokens: above the default queue budget in tokens.
    server = ServerProcess(None, ["--max-batch-size", "1", "--graceful-timeout", str(grace),
                                  "--max-queue-tokens", "2000000"])
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=120, limits=httpx.Limits(max_connections=32)) as client, \
                ThreadPoolExecutor(24) as pool:
            queued = [pool.submit(client.post, "/score", json=body) for _ in range(24)]
            _wait(lambda: metric(client.get("/metrics").text, "xlm_onnx_queue_size") == 24, "24 requests queued")
            signalled = time.monotonic()
            server.terminate()
            _wait(lambda: httpx.get(server.url + "/ready", timeout=5).status_code == 503, "/ready 503")
            late = httpx.post(server.url + "/fill-mask", json={"inputs": "a <mask>"}, timeout=5)
            answers = [f.result() for f in queued]
        status = server.proc.wait(timeout=60)
        elapsed = time.monotonic() - signalled
        stderr = server.stderr()
    finally:
        server.stop()
    assert status == 0, stderr
    assert late.status_code == 503 and late.headers["retry-after"] == "1" and "shutting down" in late.json()["error"]
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 503} and codes.count(503) >= 1, codes  # the bound cut the queue
    assert all(a.headers["retry-after"] == "1" for a in answers if a.status_code == 503)
    # The bound: 2 s, plus room for a loaded machine to schedule the exit (the queued work alone is
    # several times longer, so an unbounded drain would also have answered every request 200).
    assert elapsed < grace + 5, elapsed
    assert "answered 503" in stderr and "Traceback" not in stderr


def test_workers_share_one_port_and_stop_cleanly():
    """Both workers answer on the port, new connections spread over them (each worker has its
    own socket and the kernel hashes connections: 40 connections leave a worker fewer than 6
    with probability ~1e-6), and both drain on SIGTERM."""
    with ServerProcess(None, ["--workers", "2", "--graceful-timeout", "10"]) as server:
        # A worker listens once its model is loaded; until then the other gets every connection.
        _wait(lambda: len({httpx.get(server.url + "/info", timeout=30).json()["pid"] for _ in range(8)}) == 2,
              "both workers listening")
        pids = [httpx.get(server.url + "/info", timeout=30).json()["pid"] for _ in range(40)]  # a connection each
        answer = httpx.post(server.url + "/fill-mask", json={"inputs": "Bonjour <mask>."}, timeout=30)
        status, stderr = server.stop()
    counts = sorted(pids.count(pid) for pid in set(pids))
    assert len(counts) == 2 and server.proc.pid not in pids and counts[0] >= 6, counts
    assert answer.status_code == 200
    assert status == 0 and stderr.count("every accepted request answered") == 2, stderr


def test_busy_port_is_named():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"xlm-onnx: error: cannot listen on 127.0.0.1:{port}: Address already in use "
                                   "(another process listens there: stop it or pick --port)")


def test_second_signal_stops_at_once():
    server = ServerProcess(None, ["--max-batch-size", "1", "--graceful-timeout", "600"])
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client, ThreadPoolExecutor(4) as pool:
            queued = [pool.submit(client.post, "/score", json={"inputs": [TEXT] * 16}) for _ in range(4)]
            _wait(lambda: metric(client.get("/metrics").text, "xlm_onnx_queue_size") == 4, "4 requests queued")
            server.terminate()
            _wait(lambda: httpx.get(server.url + "/ready", timeout=5).status_code == 503, "/ready 503")
            server.proc.send_signal(signal.SIGINT)
            status = server.proc.wait(timeout=60)  # not the 600 s bound
            for f in queued:
                try:
                    f.result()
                except httpx.TransportError:
                    pass
    finally:
        server.stop()
    assert status == 130  # stopped without the drain: "interrupted", as a shell reports a second Ctrl-C


@pytest.mark.parametrize("options,message", [
    (["--graceful-timeout", "0"], "--graceful-timeout must be > 0 seconds, not 0.0"),
    (["--workers", "0"], "--workers must be at least 1, not 0"),
    (["--replicas", "2"], "--replicas and --max-replicas apply to Ray Serve: add --ray-address (or use --workers)"),
    (["--ray-address", "local", "--workers", "2"], "--workers and --ray-address do not combine"),
    (["--ray-address", "local", "--replicas", "3", "--max-replicas", "2"], "--max-replicas (2) must be at least"),
])
def test_option_errors_are_one_line_exit_2(options, message):
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "serve", *options], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith(f"xlm-onnx: error: {message}")
    assert len(proc.stderr.strip().splitlines()) == 1


def _refused(exc: BaseException) -> bool:
    """Whether ``exc`` is a connection the kernel refused (nothing sent: not an accepted request)."""
    while exc is not None:
        if isinstance(exc, ConnectionRefusedError) or "Connection refused" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _client_loop(url: str, signalled: threading.Event, ready: threading.Barrier, log: list) -> None:
    """Sends /score back to back, through the drain's 503s, until the server refuses to connect
    (it stopped listening); records ``(status or error, sent after the signal)`` for every request.
    Bounded: 10,000 requests."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(10_000):
            after = signalled.is_set()
            try:
                status = client.post("/score", json={"inputs": "Bonjour le monde ."}).status_code
            except httpx.TransportError as exc:
                log.append(("refused" if _refused(exc) else repr(exc), after))
                return
            log.append((status, after))
            if i == 2:
                ready.wait(timeout=120)  # every client has had answers: the test may signal


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_workers_answer_every_accepted_request_through_sigterm(sig):
    """8 clients send /score back to back to ``--workers 2`` while SIGTERM (or Ctrl-C's SIGINT,
    which the parent turns into SIGTERM for each worker) arrives: no connection is reset, every
    request sent on an accepted connection is answered (200 before the signal or while draining,
    503 once the drain refuses new work), and both workers drain and exit."""
    clients = 8
    signalled, ready = threading.Event(), threading.Barrier(clients + 1)
    logs: list[list] = [[] for _ in range(clients)]
    with ServerProcess(None, ["--workers", "2", "--graceful-timeout", "20"]) as server:
        threads = [threading.Thread(target=_client_loop, args=(server.url, signalled, ready, log))
                   for log in logs]
        for thread in threads:
            thread.start()
        ready.wait(timeout=120)
        signalled.set()
        server.proc.send_signal(sig)
        for thread in threads:
            thread.join(timeout=120)
        status = server.proc.wait(timeout=60)
        stderr = server.stderr()
    assert not any(t.is_alive() for t in threads)
    outcomes = [outcome for log in logs for outcome, _ in log]
    lost = [o for o in outcomes if o not in (200, 503, "refused")]
    assert not lost, f"requests without an answer: {lost}"
    assert all(log[0][0] == 200 and log[-1][0] == "refused" for log in logs), logs
    assert all(o != "refused" for log in logs for o, after in log if not after), logs
    assert 503 in outcomes  # requests came during the drain (the clients never pause for it)
    assert status == 0 and stderr.count("every accepted request answered") == 2, stderr
