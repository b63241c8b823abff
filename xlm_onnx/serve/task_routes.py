"""The routes of the registered tasks, made from each task's parameter schema (``Task.params``).

Every task of the registry (:mod:`xlm_onnx.tasks.registry`: the built-in ones, those of installed
packages' entry points, :func:`~xlm_onnx.tasks.registry.register`) that the model can run gets::

    POST /<task name>     {"inputs": str | [str], <its JSON options>}   (or HF's "parameters": {...})
    POST /tasks/<name>    the same body, for a task whose own path a foreign protocol's route holds

A body is checked against the schema before any work: an unknown field, a value of the wrong type
or out of bounds is a 422 naming the field; the options then go to the task's ``prepare`` as the
Python API takes them, and the answer is the Python API's, as JSON. A server setting that names a
task option (``--pooling``) is that option's default on this server.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import HTTPError, InputError
from ..tasks import registry
from ..tasks.params import JSON, Param, unknown
from . import caveats
from .body import check_inputs, flat_parameters, json_object, read_json
from .endpoints import Endpoint
from .pipeline import Outcome, run_task
from .responses import FastJSONResponse, jsonable
from .schema import ANY, TEXTS, obj
from .state import ServerState

_JSON_TYPES = {int: {"type": "integer"}, float: {"type": "number"}, str: {"type": "string"},
               bool: {"type": "boolean"},
               list: {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}}


def json_params(task: str) -> list[Param]:
    """The options of ``task`` that a JSON body takes."""
    return registry.task_class(task).params.on(JSON)


def param_schema(param: Param) -> dict:
    """A :class:`~xlm_onnx.tasks.params.Param` as JSON Schema."""
    schema = dict(_JSON_TYPES[param.type])
    if param.default is not None:
        schema["default"] = param.default
    if param.choices is not None:
        schema["enum"] = list(param.choices)
    if param.minimum is not None:
        schema["minimum"] = param.minimum
    if param.maximum is not None:
        schema["maximum"] = param.maximum
    if param.help:
        schema["description"] = param.help
    return schema


def request_schema(task: str) -> dict:
    """The JSON Schema of ``POST /<task>``'s body."""
    options = {p.name: param_schema(p) for p in json_params(task)}
    parameters = obj(options, description="the same options, as the HF Inference API nests them")
    return obj({"inputs": TEXTS, **options, "parameters": parameters}, required=("inputs",))


def arguments(task: str, body: Any, where: str, state: ServerState) -> dict:
    """``body`` checked against ``task``'s schema: the keyword arguments of its ``prepare``.

    Raises:
        HTTPError: 422 naming the field (unknown, missing, wrong type or value), 413 past the
            server's size limits.
    """
    fields = flat_parameters(json_object(body, where), where)
    params = registry.task_class(task).params
    known = ["inputs", *(p.name for p in params.on(JSON))]
    try:
        unknown(fields, known, "field")
    except InputError as exc:
        raise HTTPError(422, f"{where}: {exc}") from None
    if "inputs" not in fields:
        raise HTTPError(422, f"{where}: 'inputs' is required")
    inputs = fields.pop("inputs")
    check_inputs(inputs, state.settings.limits)
    server = {k: v for k, v in state.tasks.defaults.items() if k in known}  # --pooling & co.
    return {"inputs": inputs, **params.resolve({**server, **fields}, JSON)}


def answer(outcome: Outcome, body: Any) -> Response:
    """``body`` as the JSON answer, with the request's warnings in ``X-Warnings``."""
    if outcome.gone:
        return Response(status_code=499)  # nobody reads it
    return FastJSONResponse(body, headers=caveats.header(list(outcome.warnings)))


_UNREAD = object()


async def run(request: Request, state: ServerState, task: str, where: str, body: Any = _UNREAD,
              inference_api: bool = False) -> Response:
    """A task's own request on any route: read (unless ``body`` is given), check, run; the Python
    API's answer as JSON (``inference_api``: as the HF Inference API shapes it, ``Task.inference_api``)."""
    if body is _UNREAD:
        body = await read_json(request, state.settings.limits.payload_bytes)
    kwargs = arguments(task, body, where, state)
    outcome = await run_task(request, state, task, kwargs)
    if outcome.gone:
        return answer(outcome, None)
    result = state.tasks.tasks[task].inference_api(outcome.answer, kwargs["inputs"]) if inference_api else outcome.answer
    return answer(outcome, jsonable(result))


def _own_route(task: str):
    async def handler(request: Request, state: ServerState) -> Response:
        return await run(request, state, task, f"/{task}")
    handler.__name__ = handler.__qualname__ = f"task_{task.replace('-', '_')}"
    return handler


async def any_task(request: Request, state: ServerState) -> Response:
    """``POST /tasks/{task}``: any task of the model, by name."""
    task = request.path_params["task"]
    if task not in state.tasks.available:
        raise HTTPError(404, f"no task {task!r} on this server; it runs {', '.join(state.tasks.available)}")
    return await run(request, state, task, f"/tasks/{task}")


def _summary(cls) -> str:
    text = cls.summary or cls.purpose
    return text[:1].upper() + text[1:]


def endpoints(tasks: list[str], taken: set[str]) -> list[Endpoint]:
    """``POST /<task>`` for each of ``tasks`` whose path is not ``taken`` (by a foreign protocol's
    route), and ``POST /tasks/{task}``."""
    routes = [Endpoint(f"/{task}", _own_route(task), summary=_summary(registry.task_class(task)),
                       request=request_schema(task), answer=ANY, runs_model=True, group="task")
              for task in tasks if f"/{task}" not in taken]
    routes.append(Endpoint("/tasks/{task}", any_task, summary="Any task of the model by name: its own request "
                           "and answer (as on POST /<task>)",
                           request={"anyOf": [request_schema(task) for task in tasks]},
                           answer=ANY, runs_model=True, group="task"))
    return routes

