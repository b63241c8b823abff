"""Named export steps with elapsed time, shown on a terminal (CTranslate2-style progress)."""

from __future__ import annotations

import contextlib
import logging
import resource
import sys
import time


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def muted_library_warnings():
    """Silences library log records up to WARNING (ORT's optimizer and quantizer log advice that
    is not actionable for users); errors still show and exceptions still raise."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


class Steps:
    """Prints ``[i/n] name ... 1.2 s (peak RSS ...)`` to stderr for each step when enabled.

    Args:
        total: Number of steps announced.
        enabled: Print or stay silent; ``None`` prints only when stderr is a terminal.
    """

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.total = total
        self.index = 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.timings: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}  # process peak at the end of each step

    @contextlib.contextmanager
    def step(self, name: str):
        self.index += 1
        if self.enabled:
            print(f"[{self.index}/{self.total}] {name} ...", end="", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            yield
        except BaseException:
            if self.enabled:
                print(" failed", file=sys.stderr, flush=True)
            raise
        self.timings[name] = round(time.perf_counter() - start, 3)
        self.peak_rss_mb[name] = round(peak_rss_mb())
        if self.enabled:
            print(f" {self.timings[name]:.1f} s (peak RSS {self.peak_rss_mb[name]:.0f} MB)", file=sys.stderr, flush=True)
