"""Shared by the ``xlm-onnx serve`` tests: the extra's presence, a client, metric reading."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile

import pytest

from waiting import read_line

SERVE_MODULES = ("starlette", "uvicorn", "prometheus_client", "orjson", "httpx")


def require_serve_extra() -> None:
    """Skips the module without the [serve] extra; under ``CI=true`` (``.ci/run`` installs it) fails."""
    missing = [m for m in SERVE_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return
    message = f"the [serve] extra is not installed ({', '.join(missing)}): pip install '.[test]'"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def metric(text: str, name: str) -> float:
    """Sum of the samples named ``name`` (any labels) in Prometheus text."""
    total = 0.0
    for match in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE):
        total += float(match.group(1))
    return total


def wait_metric(client, name: str, value: float, timeout: float = 60.0, at_least: bool = False) -> float:
    """Polls ``/metrics`` until ``name`` equals ``value`` (or reaches it, ``at_least``); fails after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        got = metric(client.get("/metrics").text, name)
        if got == value or (at_least and got >= value):
            return got
        assert time.monotonic() < deadline, f"{name} is {got}, never reached {value}"
        time.sleep(0.02)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process (``VmHWM``: its peak), from /proc."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


def launch(options: list[str], env: dict | None = None) -> tuple[subprocess.Popen, str, object]:
    """``xlm-onnx serve --port 0 OPTIONS`` as a child, returned as soon as it listens (before its
    warm-up, which ``ServerProcess`` waits for): ``(process, url, stderr file)``."""
    stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # a pipe nobody reads could fill up
    proc = subprocess.Popen([sys.executable, "-m", "xlm_onnx", "serve", "--port", "0", *options],
                            stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ, **(env or {})})
    line = read_line(proc.stdout, "the server's 'serving ... on URL' line")
    if " on http://" not in line:
        proc.kill()
        stderr.seek(0)
        raise AssertionError(f"xlm-onnx serve did not start: {line.strip()} {stderr.read().strip()}")
    return proc, line.strip().rsplit(" on ", 1)[1], stderr


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the graceful path: it waits for a warm-up still running); kills after two minutes."""
    proc.terminate()
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def status(url: str) -> int | None:
    """The status of ``GET url``; ``None`` while the server does not accept connections yet."""
    import httpx

    try:
        return httpx.get(url, timeout=60).status_code
    except httpx.TransportError:
        return None
