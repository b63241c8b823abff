"""Waiting on events, never on the clock: each wait ends when its event happens, and fails only
after a deadline far beyond any run (a deadlock guard, not a timing assertion)."""

from __future__ import annotations

import queue
import threading
import time
from typing import IO, Callable

#: Seconds before a wait gives up: minutes, whatever the machine's load.
DEADLINE = 120.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Returns once ``condition()`` is true; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
        time.sleep(0.02)


def read_line(stream: IO, what: str, timeout: float = DEADLINE):
    """The next line of ``stream`` (a child's pipe), read on a thread so a silent child fails the
    test after ``timeout`` instead of hanging it."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"{what}: no line after {timeout:.0f} s") from None
