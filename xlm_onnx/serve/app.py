"""The HTTP routes (Starlette): parse → the API's ``prepare`` off the event loop → the batcher → answer.

Starlette rather than FastAPI: request validation must be the Python API's own (422 with the
API's message), so FastAPI's main gift, pydantic models, would duplicate it with other messages;
Starlette (which FastAPI is built on) gives the routing, lifespan and responses with fewer
dependencies. uvicorn serves it and stops gracefully on SIGTERM (stop accepting, finish what was
accepted, then the lifespan shutdown).

Every error is one JSON line, ``{"error": message, "error_type": kind}`` as TEI answers
(OpenAI's ``{"error": {"message", "type"}}`` on ``/v1/``), never a traceback.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from .._log import flush_all
from ..limits import LimitError, RequestLimits
from . import root as root_route
from ..inputs import text_list
from . import schemas
from .batcher import Batcher, BatchSettings, QueueFull
from .guards import Guards, GuardSettings, guard_metrics
from .messages import http_message
from .metrics import CONTENT_TYPE, Metrics
from .responses import FastJSONResponse
from .schemas import HTTPError, Limits
from .jobs import EMBED, FILL_MASK, SCORE, Tasks
from .shutdown import DrainState, drain
from .timing import RefusalTimer, refusal_histogram

logger = logging.getLogger("xlm_onnx.serve")
_KINDS = {401: "Unauthorized", 408: "Timeout", 413: "Validation", 422: "Validation", 429: "Overloaded",
          500: "Backend", 503: "Unhealthy"}


@dataclass(frozen=True)
class ServeSettings:
    """Everything the app is configured with besides the model."""

    batch: BatchSettings = BatchSettings()
    limits: Limits = Limits()
    api_key: str | None = None
    model_name: str = "xlm-onnx"
    request_limits: RequestLimits = RequestLimits()  # the work one request may ask for (413)
    guards: GuardSettings = GuardSettings()  # Host, Origin, Content-Type, body deadline
    root_task: str | None = None  # the task of POST / (None: root.default_task)


class _State:
    """What the routes share: the tasks, the batcher, the tokenizer pool, readiness."""

    def __init__(self, tasks: Tasks, settings: ServeSettings) -> None:
        self.tasks, self.settings = tasks, settings
        self.metrics = Metrics.create()
        self.disconnects, self.refused, self.receiving = guard_metrics(self.metrics.registry)
        self.batcher: Batcher | None = None
        # Tokenising is pure Python: a thread keeps it off the event loop (it shares the GIL, but
        # the loop stays responsive between its bytecodes), apart from the inference thread.
        # Four threads: two requests of 640 kB of long words must not leave a normal one waiting.
        self.prepare_pool = ThreadPoolExecutor(4, thread_name_prefix="xlm-onnx-prepare")
        self.ready = False
        self.drain = DrainState()
        self.warm_error: str | None = None  # why the warm-up failed (the server then stays not ready)


def _error(status: int, message: str, route: str, headers: dict | None = None) -> JSONResponse:
    message = " ".join(str(message).split()) or "error"
    kind = _KINDS.get(status, "Error")
    body = {"error": {"message": message, "type": kind}} if route.startswith("/v1/") else \
        {"error": message, "error_type": kind}
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_json(request: Request, limit: int) -> Any:
    """The body as JSON; 413 past ``limit`` bytes (checked on the header, then while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError(413, f"the body is {declared} bytes; this server takes at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"the body is over {limit} bytes, the most this server takes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(422, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise HTTPError(422, "the body is not valid JSON: nested too deeply") from None


async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects (the body has been read: only http.disconnect is left)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def build_app(tasks: Tasks, settings: ServeSettings) -> Starlette:
    """The Starlette app serving ``tasks`` (a loaded model's)."""
    state = _State(tasks, settings)

    def _authorized(request: Request) -> bool:
        if settings.api_key is None:
            return True
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        # Constant-time: the comparison must not tell how much of a guessed key was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), settings.api_key.encode())

    def endpoint(route: str, handler: Callable[[Request], Awaitable[Any]], method: str = "POST",
                 public: bool = False) -> Route:
        async def wrapped(request: Request) -> Response:
            try:
                if not public and not _authorized(request):
                    response = _error(401, "missing or wrong API key (send Authorization: Bearer KEY)", route,
                                      {"WWW-Authenticate": "Bearer"})
                else:
                    result = await handler(request)
                    response = result if isinstance(result, Response) else FastJSONResponse(result)
            except HTTPError as exc:
                response = _error(exc.status, str(exc), route, exc.headers)
            except ClientDisconnect:  # gone while sending its body: nobody to answer, not a failure
                state.disconnects.labels(route).inc()
                response = Response(status_code=499)
            except QueueFull as exc:
                response = _error(429, str(exc), route, {"Retry-After": "1"})
            except LimitError as exc:  # more work than --max-request-tokens & co. allow
                response = _error(413, str(exc), route)
            except (TypeError, ValueError) as exc:  # the API's own validation errors (InputError is one)
                response = _error(422, http_message(str(exc), route_of(route)), route)
            except Exception as exc:  # a model error: one line; the server goes on
                logger.error("%s: %s: %s", route, type(exc).__name__, exc, exc_info=exc)
                response = _error(500, f"internal error ({type(exc).__name__}): {exc}", route)
            state.metrics.requests.labels(route, str(response.status_code)).inc()
            return response
        return Route(route, wrapped, methods=[method])

    async def run_task(request: Request, task: str, parse: Callable[[Any, Limits], Any]) -> tuple[Any, Any, Any]:
        """Read and parse → admit → prepare (pool) → batch → (the API's answer, the job, what ``parse``
        gave besides the API's arguments: it returns the arguments, or ``(arguments, extra)``)."""
        if task not in tasks.available:
            raise HTTPError(422, f"this model has no {task} head (format 1): re-export it with xlm-onnx >= 0.2")
        state.drain.refuse()  # 503 once SIGTERM has come
        # A slot is taken once the body is read and its fields are valid: a stalled body holds none.
        parsed = parse(await _read_json(request, settings.limits.payload_bytes), settings.limits)
        kwargs, extra = parsed if isinstance(parsed, tuple) else (parsed, None)
        state.batcher.admit()  # 429 at once when full, before tokenising
        tokens = 0
        try:
            state.batcher.charge(0)  # the token budget already spent: 429 before tokenising too
            started = time.perf_counter()
            job = await asyncio.get_running_loop().run_in_executor(state.prepare_pool, tasks.prepare, task, kwargs)
            state.metrics.tokenize_seconds.observe(time.perf_counter() - started)
            state.batcher.charge(job.prepared.cost.tokens)  # the work it queues (prepare gave 413 past the limits)
            tokens = job.prepared.cost.tokens
            pending = state.batcher.submit(job)
            gone = asyncio.ensure_future(_client_gone(request))
            try:
                await asyncio.wait({pending.future, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
            if not pending.future.done():
                state.batcher.forget(pending)
                state.disconnects.labels(request.url.path).inc()
                return Response(status_code=499), job, extra  # nobody reads it
            return pending.future.result(), job, extra
        finally:
            state.batcher.release(tokens)

    async def fill_mask(request: Request) -> Any:
        return (await run_task(request, FILL_MASK, schemas.fill_mask_args))[0]

    async def embed(request: Request) -> Any:
        answer, _, _ = await run_task(request, EMBED, schemas.embed_args)
        return answer if isinstance(answer, Response) else schemas.embed_response(answer)

    async def openai_embeddings(request: Request) -> Any:
        answer, job, encoding = await run_task(request, EMBED, schemas.openai_args)
        if isinstance(answer, Response):
            return answer
        tokens = sum(len(row) for row in job.units)
        return schemas.openai_response(answer, encoding, settings.model_name, tokens)

    async def score(request: Request) -> Any:
        answer, _, _ = await run_task(request, SCORE, schemas.score_args)
        return answer if isinstance(answer, Response) else schemas.score_response(answer)

    async def any_task(request: Request) -> Any:
        """``POST /tasks/{task}``: any registered task, ``{"inputs", "parameters"}`` (the API's arguments)."""
        task = request.path_params["task"]
        if task not in tasks.available:
            raise HTTPError(404, f"no task {task!r} on this server; it runs {', '.join(tasks.available)}")
        answer, _, _ = await run_task(request, task, schemas.task_args)
        return answer if isinstance(answer, Response) else schemas.jsonable(answer)

    async def tokenize(request: Request) -> Any:
        state.drain.refuse()
        args = schemas.tokenize_args(await _read_json(request, settings.limits.payload_bytes), settings.limits)

        def encode() -> Any:  # the API's Model.encode (its errors and truncation)
            texts, single = text_list(args["inputs"], "inputs")
            out = [{"ids": ids, "tokens": tasks.model.tokenizer.convert_ids_to_tokens(ids)}
                   for ids in tasks.model.encode(texts, args["truncation"])]
            return out[0] if single else out
        state.batcher.admit()  # tokenising is work too: counted like the other routes
        try:
            return await asyncio.get_running_loop().run_in_executor(state.prepare_pool, encode)
        finally:
            state.batcher.release()

    root_task = settings.root_task or root_route.default_task(tasks.available)

    def route_of(route: str) -> str:  # POST / speaks its task's route's field names
        return {root_route.FILL_MASK: "/fill-mask", root_route.EMBED: "/embed"}.get(root_task, "/score") \
            if route == "/" else route

    async def root(request: Request) -> Any:
        answer, _, extra = await run_task(request, root_task, root_route.parser(root_task))
        return answer if isinstance(answer, Response) else root_route.respond(root_task, answer, extra)

    async def similarity(request: Request) -> Any:
        answer, _, extra = await run_task(request, EMBED, root_route.similarity_args)
        return answer if isinstance(answer, Response) else root_route.respond(EMBED, answer, extra)

    async def health(request: Request) -> Any:
        return {"status": "ok"}

    async def ready(request: Request) -> Any:
        if state.drain.active:
            raise HTTPError(503, "shutting down")
        if not state.ready:
            raise HTTPError(503, "warming up" if state.warm_error is None else f"warm-up failed: {state.warm_error}")
        return {"status": "ready"}

    async def info(request: Request) -> Any:
        import numpy
        import onnxruntime

        from ..cpu import cpu_info

        return {"model": settings.model_name, "tasks": tasks.available, "root_task": root_task, "ready": state.ready,
                "pid": os.getpid(),  # which process answered (one of --workers, a Ray Serve replica)
                "manifest": json.loads(tasks.model.manifest.to_json()),
                "versions": {"xlm_onnx": __version__, "onnxruntime": onnxruntime.__version__,
                             "numpy": numpy.__version__, "python": sys.version.split()[0]},
                "batching": {**asdict(settings.batch), "pooling": tasks.pooling},
                "limits": {**asdict(settings.limits), **asdict(settings.request_limits)},
                "auth": settings.api_key is not None,
                "cpu": cpu_info().as_dict()}

    async def metrics(request: Request) -> Any:
        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        state.batcher = Batcher(tasks, settings.batch, state.metrics)
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

    routes = [endpoint("/", root), endpoint("/similarity", similarity),
              endpoint("/fill-mask", fill_mask), endpoint("/embed", embed),
              endpoint("/v1/embeddings", openai_embeddings), endpoint("/score", score),
              endpoint("/tasks/{task}", any_task), endpoint("/tokenize", tokenize), endpoint("/info", info, "GET"), endpoint("/metrics", metrics, "GET"),
              endpoint("/health", health, "GET", public=True), endpoint("/ready", ready, "GET", public=True)]

    async def not_routed(request: Request, exc: Exception) -> Response:  # 404, 405: JSON like the rest
        return _error(getattr(exc, "status_code", 500), getattr(exc, "detail", "error"), request.url.path)
    timer = Middleware(RefusalTimer, histogram=refusal_histogram(state.metrics.registry))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_routed, 405: not_routed},
                    middleware=[timer])
    app.add_middleware(Guards, settings=settings.guards, on_refuse=lambda reason: state.refused.labels(reason).inc(),
                       on_body=state.receiving.inc)
    app.state.refused = state.refused  # for the protocol's refusals (header timeout and size)
    app.state.drain = lambda timeout: drain(state.batcher, state.drain, timeout)  # serve.shutdown calls it
    app.state.abandoned = lambda: state.drain.abandoned
    return app


async def _warm_up(state: _State) -> None:
    """One inference per task on the inference thread, then ready (the first run of an ORT session
    allocates its arenas and is several times slower)."""
    tasks = state.tasks
    try:
        for task in tasks.available:
            job = tasks.probe(task)
            await state.batcher.call(lambda: tasks.run([job], 1, 8192))
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
