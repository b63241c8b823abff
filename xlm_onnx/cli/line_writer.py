"""Output of the CLI's line tasks: one record per input line, and a progress display.

JSON Lines record (``--json``), one per input line, in input order::

    {"line": 3, "id": "a7", "text": "...", <the task's fields>}   # Task.fields: the one serializer
    {"line": 4, "text": "", "error": "line 4 is blank (...)"}     # --on-error skip only

``id`` appears when the input record had one; ``text`` is ``null`` when the line could not be
read (bad JSON, not UTF-8).
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from .line_reader import Line


def record(line: Line, fields: dict | None = None, error: str | None = None) -> dict:
    """The JSON Lines record answering ``line``: the task's ``fields``, or ``error``."""
    out: dict[str, Any] = {"line": line.number}
    if line.has_id:
        out["id"] = line.id
    out["text"] = line.text
    if error is not None:
        out["error"] = error
    else:
        out.update(fields or {})
    return out


def write_json(stream: IO[str], line: Line, fields: dict | None = None, error: str | None = None) -> None:
    stream.write(json.dumps(record(line, fields, error), ensure_ascii=False) + "\n")


class Progress:
    """``done/total lines, rate`` on stderr, redrawn in place; silent unless stderr is a terminal.

    Args:
        total: Number of lines when known (``None``: stdin).
        enabled: Draw or not (``None``: only when stderr is a terminal, so pipes and logs stay clean).
        interval: Seconds between redraws.
    """

    def __init__(self, total: int | None, enabled: bool | None = None, interval: float = 0.25) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.interval = interval
        self.start = self.last = time.monotonic()
        self.drawn = False

    def clear(self) -> None:
        """Erases the progress line (before results are printed to the same terminal)."""
        if self.drawn:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.drawn = False

    def update(self, done: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        count = f"{done:,}/{self.total:,}" if self.total is not None else f"{done:,}"
        sys.stderr.write(f"\r\x1b[K{count} lines, {rate:,.1f} lines/s")
        sys.stderr.flush()
        self.drawn = True

    def close(self, done: int) -> None:
        """Leaves the final count on its own line."""
        if self.enabled and done:
            self.update(done, force=True)
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False
