"""A route as data: its path, method, handler, request and answer schemas, and the statuses it
can answer, from which the app's routing, ``/openapi.json`` and the HTTP reference page are all
made (so none of them can list a route or a status the others lack).

A handler is a module-level ``async def handler(request, state)`` returning a Starlette
``Response`` or a JSON value; :func:`dispatch` adds the API-key check, the error table
(:mod:`.failures`) and the request counter around it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .failures import JSON_WORDS, Words, error_response, failure_response
from .responses import FastJSONResponse
from .state import ServerState, state_of

Handler = Callable[[Request, ServerState], Awaitable[Any]]

#: What each status means, on any route that can answer it.
STATUSES = {
    200: "answered",
    401: "--api-key is set and the request has no `Authorization: Bearer KEY`, or a wrong key",
    403: "a browser's cross-origin request to a server with no API key, from an origin not in --cors-origins",
    404: "no such route",
    405: "a method the route does not take (the `Allow` header lists those it does)",
    408: "the request's headers (--header-timeout) or body (--body-timeout) did not arrive in time",
    413: "body over --payload-limit, more than --max-inputs texts, a text over --max-chars, or a request "
         "that asks for more work than --max-request-tokens, --max-copies, --max-predictions or "
         "--max-response-bytes allow",
    415: "a POST body not sent as `Content-Type: application/json`",
    421: "a Host header that is not this server's address (see --allowed-hosts)",
    422: "malformed JSON, an unknown or wrong field (the message names it), or input the task refuses",
    429: "--max-queue requests (or --max-queue-tokens padded tokens) admitted and not yet answered; "
         "sent at once, with `Retry-After: 1`",
    431: "request headers over --max-header-bytes",
    500: "a model error, in one line; the server goes on",
    503: "not ready yet (warm-up), or shutting down (`Retry-After: 1`)",
}


@dataclass(frozen=True)
class Endpoint:
    """One route.

    Attributes:
        path: Starlette path (``/tasks/{task}``).
        handler: ``async (request, state) -> Response | JSON value``.
        method: ``GET`` or ``POST``.
        summary: One line for the docs and the OpenAPI document.
        public: Answered without the API key (probes).
        request: JSON Schema of the body (POST).
        answer: JSON Schema of a 200 answer.
        runs_model: Counted in the model's queue (429 when full, 503 while shutting down, 500 on a model error).
        media_type: Of a 200 answer.
        group: Where the docs list it (``task``, ``protocol``, ``server``).
        words: How its error messages name the API's arguments (a foreign protocol's field names).
    """

    path: str
    handler: Handler
    method: str = "POST"
    summary: str = ""
    public: bool = False
    request: dict | None = None
    answer: dict = field(default_factory=dict)
    runs_model: bool = False
    media_type: str = "application/json"
    group: str = "server"
    words: Words = JSON_WORDS

    def statuses(self) -> list[int]:
        """Every status this route can answer (the guards' and the protocol's included)."""
        codes = {200, 403, 405, 408, 421, 431}
        if not self.public:
            codes.add(401)
        if self.method == "POST":
            codes |= {413, 415, 422}
        if self.runs_model:
            codes |= {422, 429, 500, 503}
        if self.path == "/ready":
            codes.add(503)
        if "{" in self.path:
            codes.add(404)
        return sorted(codes)

    def route(self) -> Route:
        return Route(self.path, functools.partial(dispatch, self), methods=[self.method])


async def dispatch(endpoint: Endpoint, request: Request) -> Response:
    """Runs ``endpoint``'s handler: the key check, the error table, the request counter."""
    state = state_of(request)
    path = endpoint.path
    try:
        if not endpoint.public and not state.authorized(request):
            response = error_response(401, "missing or wrong API key (send Authorization: Bearer KEY)", path,
                                      {"WWW-Authenticate": "Bearer"})
        else:
            result = await endpoint.handler(request, state)
            response = result if isinstance(result, Response) else FastJSONResponse(result)
    except ClientDisconnect:  # gone while sending its body: nobody to answer, not a failure
        state.disconnects.labels(path).inc()
        response = Response(status_code=499)
    except Exception as exc:  # noqa: BLE001 - every error is answered in one line (failures.TABLE)
        response = failure_response(exc, path, endpoint.words)
    state.metrics.requests.labels(path, str(response.status_code)).inc()
    return response
