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
grouped, never starved. A request that needs many model runs (a request of 254 masked copies
is 4 runs of 64) does not hold the model for all of them: between two of its runs, the batch
waiting at that moment runs on the inference thread (:meth:`Batcher._between_runs`), so a normal
request waits for one run, not for the whole big request. Admission (the bounded queue) is counted separately, before tokenising,
so an overloaded server answers 429 at once instead of growing a queue (TEI uses a semaphore too).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import QueueFull  # noqa: F401  (the app catches it from here)
from .jobs import Job, RunStats, Tasks


@dataclass(frozen=True)
class BatchSettings:
    """When a batch closes (whichever comes first), and how many requests may wait.

    Attributes:
        max_batch_tokens: Padded cost per batch: rows x longest row.
        max_batch_size: Rows per batch.
        max_wait_ms: How long the oldest request may wait for others to join it.
        max_queue: Requests admitted and not yet answered; more get 429 at once. A request is
            admitted once its body is read and its fields are valid, before tokenising.
        max_queue_tokens: Padded tokens (:attr:`~xlm_onnx.limits.Cost.tokens`) of the requests
            tokenised and not yet answered: the model work queued, whatever the request count.
    """

    max_batch_tokens: int = 8192
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    max_queue: int = 256
    max_queue_tokens: int = 262_144


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
        self.queued_tokens = 0
        self._queue: deque[Pending] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        # One thread: one batch at a time, ORT's intra-op threads use every core for it.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="xlm-onnx-infer")
        self._loop_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nested = False  # on the inference thread: a batch run between two runs of another
        self.idle = asyncio.Event()  # nothing admitted and unanswered (the drain waits on it)
        self.idle.set()
        self._running: list[Pending] = []  # the batch on the inference thread
        self._failed: Callable[[], Exception] | None = None  # set by fail_all: later submits fail at once

    # -- admission ---------------------------------------------------------------------------------
    def admit(self) -> None:
        """Counts a request in, or raises :class:`QueueFull` (call :meth:`release` when answered)."""
        if self._closing or self.admitted >= self.settings.max_queue:
            raise QueueFull(f"the server's queue is full ({self.settings.max_queue} requests); retry shortly")
        self.admitted += 1
        self.idle.clear()
        self._gauge()

    def charge(self, tokens: int) -> None:
        """Counts an admitted request's padded tokens in, or raises :class:`QueueFull` (release
        them with :meth:`release`)."""
        if self.queued_tokens + max(tokens, 1) > self.settings.max_queue_tokens:  # 0: is there room at all
            raise QueueFull(f"the server's queue is full ({self.queued_tokens:,} padded tokens queued, at most "
                            f"{self.settings.max_queue_tokens:,}); retry shortly")
        self.queued_tokens += tokens

    def release(self, tokens: int = 0) -> None:
        self.admitted -= 1
        self.queued_tokens -= tokens
        if self.admitted == 0:
            self.idle.set()
        self._gauge()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_size.set(self.admitted)

    # -- queue -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_task = self._loop.create_task(self._run_forever())

    def submit(self, job: Job) -> Pending:
        """Queues an admitted job; await ``pending.future`` for its answer."""
        if self._failed is not None:
            raise self._failed()
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

    @property
    def busy(self) -> bool:
        """A batch is running on the inference thread."""
        return bool(self._running)

    def fail_all(self, error: Callable[[], Exception]) -> int:
        """Fails every queued and running request with ``error()`` (the drain's deadline has
        passed), and every later submit; returns how many callers were failed."""
        self._failed = error
        failed = 0
        for pending in [*self._queue, *self._running]:
            if not pending.future.done():
                pending.future.set_exception(error())
                failed += 1
        self._queue.clear()
        self._wake.set()
        return failed

    async def close(self) -> None:
        """Stops after the queue is empty (uvicorn has already waited for in-flight requests);
        after :meth:`fail_all`, at once, leaving a running batch to finish unread."""
        self._closing = True
        self._wake.set()
        if self._failed is not None and self._loop_task is not None:
            self._loop_task.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)
            return
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
        started = self._started(batch)
        s = self.settings
        self._running = batch
        try:
            answers = await asyncio.get_running_loop().run_in_executor(
                self._executor, self.tasks.run, [p.job for p in batch], s.max_batch_size, s.max_batch_tokens,
                self._between_runs, lambda j: not batch[j].gone)  # a caller gone: its rows stop at the next run
        except Exception as exc:  # a model error fails this batch's callers only; the server goes on
            answers = exc
        finally:
            self._running = []
        self._settle(batch, answers, started)

    def _started(self, batch: list[Pending]) -> float:
        started = time.perf_counter()
        if self.metrics is not None:
            for p in batch:
                self.metrics.queue_seconds.observe(started - p.enqueued)
            self.metrics.batch_requests.observe(len(batch))
        return started

    def _settle(self, batch: list[Pending], answers: list | Exception, started: float) -> None:
        """Gives each caller its answer (or the batch's error); on the event loop."""
        if isinstance(answers, Exception):
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(answers)
            return
        if self.metrics is not None:
            self.metrics.inference_seconds.observe(time.perf_counter() - started)
        for p, answer in zip(batch, answers):
            if not p.future.done():
                p.future.set_result(answer)

    def _between_runs(self, stats: RunStats) -> None:
        """After each model run, on the inference thread: the metrics, then the batch waiting now (one
        run's worth at most, taken on the event loop), so a request of many runs shares the model."""
        self._observe_run(stats)
        if self._nested or self._loop is None:
            return
        batch = asyncio.run_coroutine_threadsafe(self._take_waiting(), self._loop).result()
        if not batch:
            return
        s, started = self.settings, time.perf_counter()
        self._nested = True
        try:
            answers = self.tasks.run([p.job for p in batch], s.max_batch_size, s.max_batch_tokens,
                                     self._observe_run, lambda j: not batch[j].gone)
        except Exception as exc:  # noqa: BLE001 - as in _run: this batch's callers get the error
            answers = exc
        finally:
            self._nested = False
        self._loop.call_soon_threadsafe(self._settle, batch, answers, started)

    async def _take_waiting(self) -> list[Pending]:
        """The oldest waiting request that one run can hold, with the compatible ones after it
        within the budget, out of the queue (on the event loop)."""
        s = self.settings

        def one_run(job: Job) -> bool:  # its cost counts masked copies (whole-word targets) too
            cost = getattr(job.prepared, "cost", None)
            tokens = cost.tokens if cost is not None else job.rows * job.longest
            return job.rows <= s.max_batch_size and tokens <= s.max_batch_tokens

        lead = next((p for p in self._queue if not p.gone and one_run(p.job)), None)
        if lead is None:
            return []
        chosen, rows, longest = [lead], lead.job.rows, lead.job.longest
        for pending in self._queue:
            if pending is lead or pending.gone or pending.job.key != lead.job.key or not one_run(pending.job):
                continue
            new_rows, new_longest = rows + pending.job.rows, max(longest, pending.job.longest)
            if new_rows > s.max_batch_size or new_rows * new_longest > s.max_batch_tokens:
                break
            chosen.append(pending)
            rows, longest = new_rows, new_longest
        for pending in chosen:
            self._queue.remove(pending)
        self._started(chosen)
        return chosen

    def _observe_run(self, stats: RunStats) -> None:  # on the inference thread; prometheus is thread-safe
        if self.metrics is not None:
            self.metrics.batch_rows.observe(stats.rows)
            self.metrics.batch_padded_tokens.observe(stats.padded_tokens)
