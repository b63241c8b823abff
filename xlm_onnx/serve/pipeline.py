"""One request's way through the server, whatever its route:

    validated arguments ─ admit (429 when full) ─ prepare on a tokenizer thread (the task's own
    validation and encoding; its warnings collected) ─ charge its tokens ─ the batcher ─ the answer

A slot is taken once the body is read and its fields are valid: a stalled body holds none. A
client that leaves while its request waits is noticed, and its rows are dropped unrun.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ..errors import HTTPError
from . import caveats
from .jobs import Job
from .state import ServerState


@dataclass(frozen=True)
class Outcome:
    """What a task request gave: the API's ``answer`` (``None`` when the client left), its
    :class:`~xlm_onnx.serve.jobs.Job`, and the warnings it caused (for ``X-Warnings``)."""

    answer: Any
    job: Job
    warnings: tuple[str, ...] = ()

    @property
    def gone(self) -> bool:
        return self.answer is None


async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects (the body has been read: only http.disconnect is left)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _prepare(state: ServerState, task: str, arguments: dict) -> tuple[Job, list[str]]:
    with caveats.collecting() as found:
        job = state.tasks.prepare(task, arguments)
    return job, found


async def run_task(request: Request, state: ServerState, task: str, arguments: dict) -> Outcome:
    """Runs ``arguments`` (the task's ``prepare`` keyword arguments, ``inputs`` included) as one
    request of ``task``; raises the task's own errors, :class:`~xlm_onnx.serve.batcher.QueueFull`
    or an :class:`~xlm_onnx.serve.body.HTTPError`."""
    if task not in state.tasks.available:
        raise HTTPError(422, f"this model has no {task} head (format 1): re-export it with xlm-onnx >= 0.2")
    state.drain.refuse()  # 503 once SIGTERM has come
    batcher = state.batcher
    batcher.admit()  # 429 at once when full, before tokenising
    tokens = 0
    try:
        batcher.charge(0)  # the token budget already spent: 429 before tokenising too
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        job, found = await loop.run_in_executor(state.prepare_pool, _prepare, state, task, arguments)
        state.metrics.tokenize_seconds.observe(time.perf_counter() - started)
        batcher.charge(job.prepared.cost.tokens)  # the work it queues (prepare gave 413 past the limits)
        tokens = job.prepared.cost.tokens
        pending = batcher.submit(job)
        gone = asyncio.ensure_future(_client_gone(request))
        try:
            await asyncio.wait({pending.future, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not pending.future.done():
            batcher.forget(pending)
            state.disconnects.labels(request.url.path).inc()
            return Outcome(None, job, tuple(found))
        return Outcome(pending.future.result(), job, tuple(found))
    finally:
        batcher.release(tokens)
