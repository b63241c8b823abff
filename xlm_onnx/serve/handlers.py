"""The server's own routes (not a task's): probes, facts, metrics, tokenizing."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from ..inputs import text_list
from ..errors import HTTPError
from .body import check_inputs, json_object, read_json
from .endpoints import Endpoint
from .metrics import CONTENT_TYPE
from .schema import BOOL, TEXTS, obj
from .state import ServerState


async def health(request: Request, state: ServerState) -> Any:
    return {"status": "ok"}


async def ready(request: Request, state: ServerState) -> Any:
    if state.drain.active:
        raise HTTPError(503, "shutting down")
    if not state.ready:
        raise HTTPError(503, "warming up" if state.warm_error is None else f"warm-up failed: {state.warm_error}")
    return {"status": "ready"}


async def info(request: Request, state: ServerState) -> Any:
    import numpy
    import onnxruntime

    from ..cpu import cpu_info

    settings, tasks = state.settings, state.tasks
    return {"model": settings.model_name, "tasks": tasks.available, "root_task": state.root_task,
            "ready": state.ready,
            "pid": os.getpid(),  # which process answered (one of --workers, a Ray Serve replica)
            "manifest": json.loads(tasks.model.manifest.to_json()),
            "versions": {"xlm_onnx": __version__, "onnxruntime": onnxruntime.__version__,
                         "numpy": numpy.__version__, "python": sys.version.split()[0]},
            "batching": {**asdict(settings.batch), **tasks.defaults},
            "limits": {**asdict(settings.limits), **asdict(settings.request_limits)},
            "auth": settings.api_key is not None,
            "cpu": cpu_info().as_dict()}


async def metrics(request: Request, state: ServerState) -> Any:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


async def tokenize(request: Request, state: ServerState) -> Any:
    """``{"inputs", "truncation"}``: the API's ``Model.encode``, ids and tokens with specials."""
    state.drain.refuse()
    body = json_object(await read_json(request, state.settings.limits.payload_bytes), "/tokenize")
    unknown = sorted(set(body) - {"inputs", "truncation"})
    if unknown:
        raise HTTPError(422, f"/tokenize: unknown field {unknown[0]!r}; known: inputs, truncation")
    if "inputs" not in body:
        raise HTTPError(422, "/tokenize: 'inputs' is required")
    check_inputs(body["inputs"], state.settings.limits)
    truncation = body.get("truncation", False)
    if not isinstance(truncation, bool):
        raise HTTPError(422, f"truncation must be a bool (true or false), not {type(truncation).__name__}")
    model = state.tasks.model

    def encode() -> Any:  # the API's Model.encode (its errors and truncation)
        texts, single = text_list(body["inputs"], "inputs")
        out = [{"ids": ids, "tokens": model.tokenizer.convert_ids_to_tokens(ids)}
               for ids in model.encode(texts, truncation)]
        return out[0] if single else out
    state.batcher.admit()  # tokenising is work too: counted like the other routes
    try:
        return await asyncio.get_running_loop().run_in_executor(state.prepare_pool, encode)
    finally:
        state.batcher.release()


_TOKENS = obj({"ids": {"type": "array", "items": {"type": "integer"}},
               "tokens": {"type": "array", "items": {"type": "string"}}})


def endpoints() -> list[Endpoint]:
    """The server's own routes."""
    status = obj({"status": {"type": "string"}})
    return [
        Endpoint("/tokenize", tokenize, summary="Token ids and tokens of each text (specials included)",
                 runs_model=True,  # not the model, but counted in its queue (429) and refused while stopping (503)
                 request=obj({"inputs": TEXTS, "truncation": BOOL}, required=("inputs",)),
                 answer={"oneOf": [_TOKENS, {"type": "array", "items": _TOKENS}]}),
        Endpoint("/info", info, "GET", "The model's manifest, tasks, versions, batching settings, limits, CPU class",
                 answer={"type": "object"}),
        Endpoint("/metrics", metrics, "GET", "Prometheus text exposition (see the metrics table)",
                 answer={"type": "string"}, media_type="text/plain"),
        Endpoint("/health", health, "GET", "200 while the process is up", public=True, answer=status),
        Endpoint("/ready", ready, "GET", "200 once a warm-up inference of every task has run, else 503",
                 public=True, answer=status),
    ]
