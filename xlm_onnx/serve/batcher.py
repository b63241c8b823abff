"""The dynamic batcher: requests of many clients run together, one batch at a time.

Modelled on TEI's queue (``core/src/queue.rs``): the next batch is built when the model is free,
led by the oldest waiting request, and filled in arrival order with the requests that can share
its run (equal :attr:`Job.key`) while the padded cost stays within budget::

    submit ─► deque (arrival order) ─► wait until: rows >= max_batch_size,
                                                  or rows x longest >= max_batch_tokens,
                                                  or the oldest waited max_wait_ms
              ─► take the oldest + compatible followers (clients gone: dropped, never run)
              ─► inference thread: Tasks.run (tokenised already; ORT releases the GIL)
              ─► each caller's future gets its own answer

A request of other options waits at most until it is the oldest, so different options are
grouped, never starved. Admission (the bounded queue) is counted separately, before tokenising,
so an overloaded server answers 429 at once instead of growing a queue (TEI uses a semaphore too).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from .jobs import Job, RunStats, Tasks


@dataclass(frozen=True)
class BatchSettings:
    """When a batch closes (whichever comes first), and how many requests may wait.

    Attributes:
        max_batch_tokens: Padded cost per batch: rows x longest row.
        max_batch_size: Rows per batch.
        max_wait_ms: How long the oldest request may wait for others to join it.
        max_queue: Requests admitted and not yet answered; more get 429 at once.
    """

    max_batch_tokens: int = 8192
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    max_queue: int = 256


class QueueFull(Exception):
    """The bounded queue is full: answer 429."""


@dataclass(eq=False)
class Pending:
    """A queued job and its caller's future."""

    job: Job
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)
    gone: bool = False  # the client disconnected: drop before running


class Batcher:
    """Queues jobs and runs them in dynamic batches on one inference thread.

    Args:
        tasks: The model's :class:`~xlm_onnx.serve.jobs.Tasks`.
        settings: Batch limits.
        metrics: A :class:`~xlm_onnx.serve.metrics.Metrics` (or ``None``).
    """

    def __init__(self, tasks: Tasks, settings: BatchSettings, metrics=None) -> None:
        self.tasks = tasks
        self.settings = settings
        self.metrics = metrics
        self.admitted = 0
        self._queue: deque[Pending] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        # One thread: one batch at a time, ORT's intra-op threads use every core for it.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="xlm-onnx-infer")
        self._loop_task: asyncio.Task | None = None

    # -- admission ---------------------------------------------------------------------------------
    def admit(self) -> None:
        """Counts a request in, or raises :class:`QueueFull` (call :meth:`release` when answered)."""
        if self._closing or self.admitted >= self.settings.max_queue:
            raise QueueFull(f"the server's queue is full ({self.settings.max_queue} requests); retry shortly")
        self.admitted += 1
        self._gauge()

    def release(self) -> None:
        self.admitted -= 1
        self._gauge()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_size.set(self.admitted)

    # -- queue -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._run_forever())

    def submit(self, job: Job) -> Pending:
        """Queues an admitted job; await ``pending.future`` for its answer."""
        pending = Pending(job, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._wake.set()
        return pending

    def forget(self, pending: Pending) -> None:
        """The caller left: drop its job if it has not run yet."""
        pending.gone = True
        self._wake.set()

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Runs ``fn`` on the inference thread (warm-up)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def close(self) -> None:
        """Stops after the queue is empty (uvicorn has already waited for in-flight requests)."""
        self._closing = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        self._executor.shutdown(wait=True)

    def _select(self) -> tuple[list[Pending], bool]:
        """The oldest live job and the compatible ones after it within budget; ``full``: a limit
        was reached (the batch should close now)."""
        while self._queue and self._queue[0].gone:
            self._drop(self._queue.popleft())
        if not self._queue:
            return [], False
        s = self.settings
        lead = self._queue[0]
        chosen, rows, longest = [lead], lead.job.rows, lead.job.longest
        for pending in list(self._queue)[1:]:
            if pending.gone or pending.job.key != lead.job.key:
                continue
            new_rows, new_longest = rows + pending.job.rows, max(longest, pending.job.longest)
            if new_rows > s.max_batch_size or new_rows * new_longest > s.max_batch_tokens:
                return chosen, True
            chosen.append(pending)
            rows, longest = new_rows, new_longest
        return chosen, rows >= s.max_batch_size or rows * longest >= s.max_batch_tokens

    def _drop(self, pending: Pending) -> None:
        if not pending.future.done():
            pending.future.cancel()
        if self.metrics is not None:
            self.metrics.dropped.inc()

    async def _run_forever(self) -> None:
        while True:
            chosen, full = self._select()
            if not chosen:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = chosen[0].enqueued + self.settings.max_wait_ms / 1000 - time.perf_counter()
            if not full and wait > 0 and not self._closing:
                self._wake.clear()
                try:  # a new arrival (or a departure) re-plans; the deadline stays the oldest's
                    await asyncio.wait_for(self._wake.wait(), wait)
                    continue
                except asyncio.TimeoutError:
                    chosen, _ = self._select()
                    if not chosen:
                        continue
            for pending in chosen:
                self._queue.remove(pending)
            live = [p for p in chosen if not p.gone]
            for p in chosen:
                if p.gone:
                    self._drop(p)
            if live:
                await self._run(live)

    async def _run(self, batch: list[Pending]) -> None:
        started = time.perf_counter()
        if self.metrics is not None:
            for p in batch:
                self.metrics.queue_seconds.observe(started - p.enqueued)
            self.metrics.batch_requests.observe(len(batch))
        s = self.settings
        try:
            answers = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.tasks.run, [p.job for p in batch], s.max_batch_size, s.max_batch_tokens,
                self._observe_run)
        except Exception as exc:  # a model error fails this batch's callers only; the server goes on
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        if self.metrics is not None:
            self.metrics.inference_seconds.observe(time.perf_counter() - started)
        for p, answer in zip(batch, answers):
            if not p.future.done():
                p.future.set_result(answer)

    def _observe_run(self, stats: RunStats) -> None:  # on the inference thread; prometheus is thread-safe
        if self.metrics is not None:
            self.metrics.batch_rows.observe(stats.rows)
            self.metrics.batch_padded_tokens.observe(stats.padded_tokens)
