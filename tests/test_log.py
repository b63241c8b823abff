"""The one-line log handler of the CLI and the server: once per message, a bounded number of
lines per call site with a count of the rest, errors counted (never hidden), memory bounded in
bytes, tracebacks only at debug level."""

from __future__ import annotations

import io
import json
import logging

import pytest

from xlm_onnx._log import SEEN_BYTES, OneLineLog


@pytest.fixture()
def log():
    stream = io.StringIO()
    handler = OneLineLog(burst=3, interval=3600, stream=stream)
    logger = logging.getLogger("xlm_onnx.test_log")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, handler, stream
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


def test_a_warning_is_printed_once(log):
    logger, _, stream = log
    for _ in range(4):
        logger.warning("target %r is not in the vocabulary", "zzq")
    assert stream.getvalue() == "xlm-onnx: warning: target 'zzq' is not in the vocabulary\n"


def test_a_call_site_prints_a_burst_then_counts_the_rest(log):
    logger, handler, stream = log
    for i in range(50):
        logger.warning("target %r is not in the vocabulary", f"w{i}")
    assert stream.getvalue().count("\n") == 3
    handler.interval = 0  # the window ends: the next record (or close) prints the count
    logger.warning("something else")
    lines = stream.getvalue().splitlines()
    assert lines[3] == ("xlm-onnx: warning: 47 more like this in the last 1 s, the last: "
                        "target 'w49' is not in the vocabulary")  # formatted, not the format string
    assert lines[4] == "xlm-onnx: warning: something else" and len(lines) == 5


def test_repeated_errors_are_counted_not_hidden(log):
    logger, handler, stream = log
    for _ in range(20):
        logger.error("client gone: %s", "ClientDisconnect")
    handler.close()
    lines = stream.getvalue().splitlines()
    assert lines == ["xlm-onnx: error: client gone: ClientDisconnect"] * 3 + [
        "xlm-onnx: error: 17 more like this in the last 1 s, the last: client gone: ClientDisconnect"]


def test_memory_is_bounded_in_bytes(log):
    logger, handler, _ = log
    for i in range(30_000):
        logger.warning(f"distinct message number {i} " + "x" * 100)  # each its own call site
    assert handler.seen.bytes <= SEEN_BYTES and handler.sites.bytes <= handler.sites.max_bytes
    assert len(handler.seen) < 30_000


def test_tracebacks_only_at_debug(log):
    logger, _, stream = log
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        logger.error("failed: %s", exc, exc_info=exc)
        logger.setLevel(logging.DEBUG)
        logger.error("again failed: %s", exc, exc_info=exc)
    text = stream.getvalue()
    first, rest = text.split("\n", 1)
    assert first == "xlm-onnx: error: failed: boom"
    assert rest.startswith("xlm-onnx: error: again failed: boom\nTraceback (most recent call last):")


def test_a_server_counts_repeated_warnings(log):
    logger, handler, stream = log
    handler.count_repeats = True
    for _ in range(20):
        logger.warning("Invalid HTTP request received.")
    handler.close()
    assert stream.getvalue().splitlines() == [
        "xlm-onnx: warning: Invalid HTTP request received.",
        "xlm-onnx: warning: 19 more like this in the last 1 s: Invalid HTTP request received."]


def test_json_lines_for_log_collectors(log):
    logger, handler, stream = log
    handler.json = True
    logger.warning("target %r is not in the vocabulary", "zzq")
    line = json.loads(stream.getvalue())
    assert line.keys() == {"time", "level", "message"} and line["time"].endswith("+00:00")
    assert (line["level"], line["message"]) == ("warning", "target 'zzq' is not in the vocabulary")
