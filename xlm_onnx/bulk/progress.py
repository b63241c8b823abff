"""What ``xlm-onnx bulk`` says while it runs: the steps before the first row, then its progress.

Ray takes seconds to start and each actor loads a model before the first row comes back (on 2
cores, ~10 s of a 20 s job over 2,000 lines), so :func:`step` names each step as it begins.
Then :class:`Progress` reports rows done, rows/s, the time left at that rate and the error rows
(the rate counts from the first answered batch: with the start-up in it, the first estimates of
the time left were several times too long):
on a terminal, one line redrawn at most twice a second; otherwise (a log file, a CI job, a
container's log), one line every ``log_every`` seconds and a last one at the end, so a log shows
the job advancing without a line per batch.
"""

from __future__ import annotations

import sys
import time
from typing import Callable


def step(message: str, stream=None) -> None:
    """One line saying what the job starts doing (``xlm-onnx: bulk: starting Ray ...``)."""
    print(f"xlm-onnx: bulk: {message}", file=stream or sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Progress of ``total`` rows (see the module docstring).

    Args:
        total: Rows the job answers.
        terminal: Redraw one line (the stream is a terminal) or write log lines.
        log_every: Seconds between log lines when not on a terminal.
        stream: Where lines go (default: ``sys.stderr`` at the time of each line).
        clock: ``time.monotonic`` (a test gives its own).
    """

    def __init__(self, total: int, terminal: bool, log_every: float = 10.0, stream=None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.terminal, self.log_every, self.stream, self.clock = total, terminal, log_every, stream, clock
        self.start = clock()
        self._last = self.start
        self._first: tuple[float, int] | None = None  # (time, rows) of the first answered batch
        self._drawn = False

    def line(self, rows: int, errors: int) -> str:
        """``1,024/20,000 rows (5%), 120.3 rows/s, 2:38 left, 0 error row(s)``; the first:
        ``256/20,000 rows (1%), first answers after 35.2 s, 0 error row(s)``."""
        now = self.clock()
        share = f" ({100 * rows // self.total}%)" if self.total else ""
        if self._first is None:
            self._first = (now, rows)
        elapsed, counted = now - self._first[0], rows - self._first[1]
        if elapsed <= 0:
            pace = f"first answers after {now - self.start:.1f} s"
        else:
            rate = counted / elapsed
            left = "done" if rows >= self.total else \
                (f"{_duration((self.total - rows) / rate)} left" if rate > 0 else "time left unknown")
            pace = f"{rate:,.1f} rows/s, {left}"
        return f"{rows:,}/{self.total:,} rows{share}, {pace}, {errors:,} error row(s)"

    def update(self, rows: int, errors: int) -> None:
        """Reports ``rows`` done (``errors`` of them with an error) if it is time to."""
        now, done = self.clock(), rows >= self.total
        if self._first is None:  # the first answers: say so at once, and count the rate from here
            self._last = now - max(self.log_every, 0.5)
        if self.terminal and (now - self._last >= 0.5 or done or not self._drawn):
            self._write(f"\r\x1b[K{self.line(rows, errors)}", end="")
            self._drawn, self._last = True, now
        elif not self.terminal and (now - self._last >= self.log_every or done):
            self._write(f"xlm-onnx: bulk: {self.line(rows, errors)}")
            self._last = now

    def close(self) -> None:
        """Ends the terminal line, so what follows starts on a line of its own."""
        if self.terminal and self._drawn:
            self._write("")
            self._drawn = False

    def _write(self, text: str, end: str = "\n") -> None:
        print(text, end=end, file=self.stream or sys.stderr, flush=True)
