"""The warnings a request caused, for its answer's ``X-Warnings`` header.

The Python API logs what it did differently from what was asked, and still answers (a target word
outside the vocabulary is replaced by its first piece): a log line on the server that the
client never sees. While a request is validated and encoded (on a tokenizer thread), the
``xlm_onnx`` logger's warnings of that thread are collected here and sent back as a JSON array of
strings in ``X-Warnings``, on any route and for any task, since the answer's body is the API's
(an answer may be a list: it has no room for a field).

The warnings are those the server's log would show: with ``--log-level error`` neither has them.
A header is bounded: at most :data:`MOST` messages of at most :data:`LONGEST` characters, then
one saying how many more there were (a request with 50,000 unknown targets gets 9 lines, not
50,000), ASCII-escaped as JSON (headers are Latin-1).
"""

from __future__ import annotations

import json
import logging
import threading
from contextlib import contextmanager
from typing import Iterator

HEADER = "X-Warnings"
MOST = 8
LONGEST = 300

_local = threading.local()


class _Collector(logging.Handler):
    """Adds the message of each WARNING record to the list of the thread that logged it, if any."""

    def emit(self, record: logging.LogRecord) -> None:
        found = getattr(_local, "found", None)
        if found is None:
            return
        if len(found) <= MOST:  # one more than shown: the header then says there were more
            found.append(" ".join(record.getMessage().split()))
        _local.more = getattr(_local, "more", 0) + 1


_handler = _Collector(logging.WARNING)
_installed = threading.Lock()


def _install() -> None:
    with _installed:
        logger = logging.getLogger("xlm_onnx")
        if _handler not in logger.handlers:
            logger.addHandler(_handler)


@contextmanager
def collecting() -> Iterator[list[str]]:
    """Collects the warnings logged by this thread inside the block (into the list it yields)."""
    _install()
    found: list[str] = []
    _local.found, _local.more = found, 0
    try:
        yield found
    finally:
        total = _local.more
        _local.found = None
        if total > MOST:
            del found[MOST:]
            found.append(f"... {total - MOST} more warnings")


def header(found: list[str]) -> dict[str, str]:
    """``{"X-Warnings": JSON array}`` for a response, or nothing when there were none."""
    if not found:
        return {}
    return {HEADER: json.dumps([w if len(w) <= LONGEST else w[:LONGEST - 3] + "..." for w in found])}
