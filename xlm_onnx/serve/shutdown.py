"""Bounded, clean shutdown on SIGTERM (or Ctrl-C), as an orchestrator expects it::

    SIGTERM ─► /ready answers 503 at once (a load balancer stops routing here)
            ─► new inference requests: 503 + Retry-After (the listener stays open meanwhile)
            ─► queued and running requests are answered until --graceful-timeout minus a
               close reserve; whatever is left then gets 503
            ─► uvicorn closes the connections (within the reserve), the lifespan stops the
               batcher, and the process exits 0

uvicorn's own SIGTERM handling stops listening at once (clients that still route here get
"connection refused", not a 503), waits for in-flight requests without a bound (a deep queue
on a slow model outlived an orchestrator's 30 s kill), then re-raises the signal, so the process
ends with status 143 and the orchestrator records a failure. :class:`DrainingServer` keeps
uvicorn's machinery and replaces those three decisions. A second Ctrl-C (SIGINT) stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
from typing import Awaitable, Callable

import uvicorn

from ..errors import HTTPError

logger = logging.getLogger("xlm_onnx.serve")
RETRY_AFTER = "1"
#: Part of --graceful-timeout kept for closing connections after the last answer (at most 1 s).
CLOSE_RESERVE = 0.1


class DrainState:
    """Whether the server is shutting down, and whether it left work unfinished."""

    def __init__(self) -> None:
        self.started: float | None = None  # time.monotonic() of the signal
        self.abandoned = False  # a running batch or a prepare was left behind at the deadline
        self.failed = 0  # requests answered 503 at the deadline

    @property
    def active(self) -> bool:
        return self.started is not None

    def refuse(self) -> None:
        """Raises the 503 a request gets once the drain has begun."""
        if self.started is not None:
            raise draining_error()


def draining_error() -> HTTPError:
    return HTTPError(503, "the server is shutting down; retry (another replica)", {"Retry-After": RETRY_AFTER})


def reserve(timeout: float) -> float:
    """Seconds of ``timeout`` kept for closing connections after the answers."""
    return min(1.0, timeout * CLOSE_RESERVE)


async def drain(batcher, state: DrainState, timeout: float) -> None:
    """Stops admission, waits for the queue to empty until the answer deadline, fails the rest."""
    state.started = time.monotonic()
    deadline = state.started + timeout - reserve(timeout)
    try:
        await asyncio.wait_for(batcher.idle.wait(), max(0.0, deadline - time.monotonic()))
        logger.info("drained: every accepted request answered")
    except asyncio.TimeoutError:
        failed = state.failed = batcher.fail_all(draining_error)
        state.abandoned = True  # a running batch or a prepare is left to finish unread
        print(f"xlm-onnx: graceful timeout ({timeout:g} s): {failed} queued or running request(s) answered 503",
              file=sys.stderr, flush=True)


class DrainingServer(uvicorn.Server):
    """``uvicorn.Server`` whose SIGTERM/SIGINT runs ``app_drain`` first and exits 0.

    Args:
        config: The uvicorn config.
        app_drain: ``async (timeout) -> None``: the app's drain (see :func:`drain`).
        timeout: ``--graceful-timeout`` in seconds.
        signals: The signals that start the drain (a worker of ``--workers`` leaves SIGINT to its parent).
    """

    def __init__(self, config: uvicorn.Config, app_drain: Callable[[float], Awaitable[None]], timeout: float,
                 signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        super().__init__(config)
        self.app_drain, self.timeout, self.signals = app_drain, timeout, signals
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task | None = None
        self.signalled = False

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    @contextlib.contextmanager
    def capture_signals(self):
        # uvicorn's version re-raises the signal after stopping (exit status 143); a drained stop
        # is a clean exit. signal.signal, not loop.add_signal_handler: the handlers are restored.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in self.signals}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame) -> None:
        if self._loop is None or not self.started:  # still starting: nothing to drain
            self.should_exit = True
            return
        if self.signalled:  # a second Ctrl-C stops now (as uvicorn does); a repeated SIGTERM changes nothing
            if sig == signal.SIGINT:
                self.force_exit = self.should_exit = True
            return
        self.signalled = True
        self._loop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        self._draining = self._loop.create_task(self._drain())

    async def _drain(self) -> None:
        started = time.monotonic()
        try:
            await self.app_drain(self.timeout)
        finally:
            left = self.timeout - (time.monotonic() - started)
            # uvicorn sleeps 0.1 s after asking the connections to close, then waits this long.
            self.config.timeout_graceful_shutdown = max(0.05, min(left, reserve(self.timeout)) - 0.1)
            self.should_exit = True
