"""The Starlette app: the route table, the lifespan (batcher, warm-up, stop) and the refusals of
requests no route takes.

Starlette rather than FastAPI: request validation is the tasks' own parameter schema
(:mod:`xlm_onnx.tasks.params`, 422 with the API's message naming the field), so FastAPI's main
gift, pydantic models, would duplicate it with other messages; Starlette (which FastAPI is built
on) gives the routing, lifespan and responses with fewer dependencies. uvicorn serves it and
stops gracefully on SIGTERM (stop accepting, finish what was accepted, then the lifespan shutdown).

The routes are data (:class:`~xlm_onnx.serve.endpoints.Endpoint`), made from the task registry
(:mod:`.task_routes`), the foreign protocols (:mod:`.adapters`) and the server's own
(:mod:`.handlers`, :mod:`.described`); ``/openapi.json``, ``/docs`` and the HTTP reference page
are made from the same table.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from .._log import flush_all
from . import adapters, described, handlers, task_routes
from .batcher import Batcher
from .endpoints import Endpoint
from .failures import error_response
from .guards import Guards
from .jobs import Tasks
from .shutdown import drain
from .state import ServerState, ServeSettings
from .timing import RefusalTimer, refusal_histogram

__all__ = ["ServeSettings", "build_app", "endpoints"]

logger = logging.getLogger("xlm_onnx.serve")


def endpoints(tasks: list[str], root_task: str) -> list[Endpoint]:
    """Every route of a server whose model runs ``tasks`` and whose ``POST /`` answers ``root_task``:
    the foreign protocols', the server's own, and one per task whose path neither holds."""
    held = adapters.endpoints(tasks, root_task) + handlers.endpoints()
    taken = {e.path for e in held}
    table = held + task_routes.endpoints(tasks, taken)
    return table + described.endpoints()


def build_app(tasks: Tasks, settings: ServeSettings) -> Starlette:
    """The Starlette app serving ``tasks`` (a loaded model's)."""
    root_task = settings.root_task or adapters.default_root_task(tasks.available)
    state = ServerState(tasks, settings, root_task)
    table = endpoints(tasks.available, root_task)  # what this model can answer, nothing else
    routes = [e.route() for e in table]
    timer = Middleware(RefusalTimer, histogram=refusal_histogram(state.metrics.registry))
    app = Starlette(routes=routes, lifespan=_lifespan, exception_handlers={404: _not_routed, 405: _not_routed},
                    middleware=[timer])
    app.state.server, app.state.endpoints = state, table

    def routed(scope: dict) -> bool:  # a request some route takes (else 404/405, never 415)
        return any(route.matches(scope)[0] is Match.FULL for route in routes)
    app.add_middleware(Guards, settings=settings.guards, on_refuse=lambda reason: state.refused.labels(reason).inc(),
                       on_body=state.receiving.inc, routed=routed)
    app.state.refused = state.refused  # for the protocol's refusals (header timeout and size)
    app.state.drain = lambda timeout: drain(state.batcher, state.drain, timeout)  # serve.shutdown calls it
    app.state.abandoned = lambda: state.drain.abandoned
    return app


async def _not_routed(request: Request, exc: Exception) -> Response:
    """404 and 405 as JSON like every other error (405 with ``Allow``: the methods the route takes,
    sorted: Starlette joins a set)."""
    headers = dict(getattr(exc, "headers", None) or {})
    if "Allow" in headers:
        headers["Allow"] = ", ".join(sorted(headers["Allow"].split(", ")))
    return error_response(getattr(exc, "status_code", 500), getattr(exc, "detail", "error"), request.url.path,
                          headers)


@asynccontextmanager
async def _lifespan(app: Starlette):
    state: ServerState = app.state.server
    state.batcher = Batcher(state.tasks, state.settings.batch, state.metrics)
    state.batcher.start()
    warm = asyncio.ensure_future(_warm_up(state))
    try:
        yield
    finally:
        warm.cancel()
        await state.batcher.close()  # uvicorn has drained the accepted requests by now
        state.prepare_pool.shutdown(wait=not state.drain.abandoned)
        print("xlm-onnx: stopped" + (" (graceful timeout: unfinished requests answered 503)"
                                     if state.drain.failed else
                                     " (every accepted request answered)"), file=sys.stderr, flush=True)
        flush_all("xlm_onnx", "uvicorn")  # the counts of repeated lines, before the process ends


async def _warm_up(state: ServerState) -> None:
    """One inference per task on the inference thread, then ready (the first run of an ORT session
    allocates its arenas and is several times slower)."""
    tasks = state.tasks
    try:
        for task in tasks.available:
            job = tasks.probe(task)
            await state.batcher.call(lambda job=job: tasks.run([job], 1, state.settings.batch.max_batch_tokens))
    except Exception as exc:  # noqa: BLE001 - a model that cannot run stays not ready, and says why
        state.warm_error = f"{type(exc).__name__}: {exc}"
        logger.error("warm-up failed, the server stays not ready: %s", state.warm_error)
        return
    # Everything alive now (modules, the model's vocabulary and tables, the app) lives as long as
    # the process: out of the collector's view, a full collection later scans only what requests
    # left behind. Its pauses hold the GIL and the event loop with it: up to 22 ms were seen on the
    # full-size model; on the demo model at twice its capacity the 429s answered within 5 ms in the
    # server went from 99.2-99.3 % to 99.7-99.8 % with the freeze.
    gc.collect()
    gc.freeze()
    state.ready = True
    logger.info("ready")
