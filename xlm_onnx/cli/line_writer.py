"""Output of the CLI's line tasks: one record per input line, and a progress display.

JSON Lines record (``--json``), one per input line, in input order::

    {"line": 3, "id": "a7", "text": "...", "result": [...]}     # fill-mask: what FillMask returns
    {"line": 3, "text": "...", "embedding": [...]}              # embed
    {"line": 3, "text": "...", "score": -42.1}                  # score (+ tokens, token_log_probs)
    {"line": 4, "text": "", "error": "line 4 is blank (...)"}  # --on-error skip only

``id`` appears when the input record had one; ``text`` is ``null`` when the line could not be
read (bad JSON, not UTF-8). ``result`` is the HF pipeline's shape, untouched.
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


def format_scores(scores: list[float]) -> list[str]:
    """Scores with the fewest significant digits (at least 4) that keep distinct scores distinct.

    ``0.0001`` for every small score hid the ranking; ``{:.4g}`` switches to scientific notation
    below 1e-4, and more digits are used only when four would print two different scores alike.
    """
    distinct = len(set(scores))
    for digits in range(4, 10):
        texts = [f"{s:.{digits}g}" for s in scores]
        if len(set(texts)) == distinct:
            return texts
    return [repr(s) for s in scores]


def write_fill_mask(stream: IO[str], line: Line, result: Any) -> None:
    """The text, then one row per candidate (score, token, filled sentence)."""
    stream.write(f"{line.text}\n")
    per_mask = result if result and isinstance(result[0], list) else [result]
    for index, props in enumerate(per_mask):
        if len(per_mask) > 1:
            stream.write(f"  mask {index + 1}:\n")
        scores = format_scores([p["score"] for p in props])
        width = max(len(s) for s in scores)
        for score, p in zip(scores, props):
            stream.write(f"  {score:<{width}}  {p['token_str']!s:<16} {p['sequence']}\n")


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
