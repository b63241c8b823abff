"""The OpenAPI 3.1 document of a server, made from its route table (:class:`~.endpoints.Endpoint`)
and the tasks' parameter schemas: every route, its request fields, its answer and every status it
can answer. ``GET /openapi.json`` serves it; the HTTP reference page is rendered from it
(:mod:`.reference`), so neither can omit a route or a status.
"""

from __future__ import annotations

from typing import Iterable

from .. import __version__
from .caveats import HEADER as WARNINGS
from .endpoints import STATUSES, Endpoint
from .schema import TEXT, obj

ERROR = obj({"error": TEXT, "error_type": TEXT}, required=("error", "error_type"),
            description="TEI's error shape, on every route but /v1/")
OPENAI_ERROR = obj({"error": obj({"message": TEXT, "type": TEXT}, required=("message", "type"))},
                   required=("error",), description="OpenAI's error shape, on /v1/ routes")
_HEADERS = {
    405: {"Allow": {"description": "the methods the route takes", "schema": TEXT}},
    429: {"Retry-After": {"description": "seconds to wait before retrying", "schema": TEXT}},
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": TEXT}},
}
_WARNINGS = {WARNINGS: {"description": "what the task did differently from what was asked (a JSON array of "
                                       "strings; absent when nothing)", "schema": TEXT}}


def _responses(endpoint: Endpoint) -> dict:
    error = {"$ref": "#/components/schemas/" + ("OpenAIError" if endpoint.path.startswith("/v1/") else "Error")}
    out = {}
    for status in endpoint.statuses():
        if status == 200:
            answer = {"description": STATUSES[200],
                      "content": {endpoint.media_type: {"schema": endpoint.answer}}}
            if endpoint.runs_model:
                answer["headers"] = _WARNINGS
        else:
            answer = {"description": STATUSES[status], "content": {"application/json": {"schema": error}}}
            if status in _HEADERS:
                answer["headers"] = _HEADERS[status]
        out[str(status)] = answer
    return out


def operation(endpoint: Endpoint, tasks: list[str]) -> dict:
    """The OpenAPI operation of one route."""
    op: dict = {"summary": endpoint.summary, "tags": [endpoint.group],
                "operationId": endpoint.method.lower() + (endpoint.path.replace("/", "_").replace("{", "")
                                                          .replace("}", "").replace("-", "_") or "_root"),
                "responses": _responses(endpoint)}
    if endpoint.path == "/":
        op["operationId"] = endpoint.method.lower() + "_root"
    if not endpoint.public:
        op["security"] = [{"bearer": []}]
    if "{task}" in endpoint.path:
        op["parameters"] = [{"name": "task", "in": "path", "required": True,
                             "schema": {"type": "string", "enum": list(tasks)}}]
    if endpoint.request is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": endpoint.request}}}
    return op


def document(endpoints: Iterable[Endpoint], tasks: list[str], title: str = "xlm-onnx serve") -> dict:
    """The OpenAPI 3.1 document of ``endpoints`` (a server whose model runs ``tasks``)."""
    paths: dict = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation(endpoint, tasks)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__,
                 "description": "The tasks of an XLM model exported to ONNX, over HTTP. The API key "
                                "(Authorization: Bearer KEY) is needed only when the server was started "
                                "with --api-key."},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR, "OpenAIError": OPENAI_ERROR},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
