"""Exceptions → HTTP answers, through the package's one error table (:data:`xlm_onnx.errors.ERRORS`).

Every error is one JSON line, ``{"error": message, "error_type": kind}`` as TEI answers
(OpenAI's ``{"error": {"message", "type"}}`` on ``/v1/``), never a traceback. A message about a
request's argument names it in the words of the route that received it: an
:class:`~xlm_onnx.errors.InputError` keeps its parts (the field, the text's index, the option
that would fix it), and a route says them with its own field names (:class:`Words`), so
``inputs[0] ... (pass truncation=True to cut it)`` of the Python API reads
``input[0] ... (shorten it)`` on OpenAI's route and ``... (send "truncate": true to cut it)`` on
TEI's. Nothing is rewritten from the text.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from starlette.responses import JSONResponse

from ..errors import STATUS_KINDS, HTTPError, InputError, one_line, outcome

logger = logging.getLogger("xlm_onnx.serve")

#: ``error_type`` of the statuses no exception of the table gives (refusals before any route).
_KINDS = {**STATUS_KINDS, 403: "Forbidden", 404: "Error", 405: "Error", 415: "Validation", 421: "Forbidden"}


def kind_of(status: int) -> str:
    return _KINDS.get(status, "Error")


@dataclass(frozen=True)
class Words:
    """How a route names the Python API's arguments.

    Attributes:
        names: API argument → the route's JSON field (``inputs`` → ``input``); an argument
            missing here keeps its name; ``None``: the route has no such field.
        unfixable: The hint when the option that would fix a request is not a field of the route.
    """

    names: dict = field(default_factory=dict)
    unfixable: str = "shorten it"

    def say(self, exc: BaseException) -> str:
        """``exc``'s message on one line, in these words."""
        if not isinstance(exc, InputError):
            return one_line(exc)
        where = None
        if exc.field is not None and self.names.get(exc.field, exc.field) != exc.field:
            name = self.names[exc.field]
            where = name if exc.index is None else f"{name}[{exc.index}]"
        return exc.say(where, self._fix)

    def _fix(self, fix) -> str:
        name = self.names.get(fix.option, fix.option)
        if name is None:
            return self.unfixable
        return f"send {json.dumps(name)}: {json.dumps(fix.value)} {fix.effect}"


JSON_WORDS = Words()
#: A full queue is worth retrying at once: the next batch frees its slots within milliseconds.
RETRY = {"Retry-After": "1"}


def error_response(status: int, message: str, path: str, headers: dict | None = None) -> JSONResponse:
    """The JSON error answer of ``status`` for a request to ``path``."""
    message = " ".join(str(message).split()) or "error"
    kind = kind_of(status)
    body = {"error": {"message": message, "type": kind}} if path.startswith("/v1/") else \
        {"error": message, "error_type": kind}
    return JSONResponse(body, status_code=status, headers=headers)


def failure_response(exc: BaseException, path: str, words: Words = JSON_WORDS) -> JSONResponse:
    """The answer to a request that raised ``exc``; a server error is logged, in one line."""
    result = outcome(exc)
    message = words.say(exc)
    if result.status >= 500 and not isinstance(exc, HTTPError):  # a model error: one line; the server goes on
        logger.error("%s: %s: %s", path, type(exc).__name__, message, exc_info=exc)
        message = f"internal error ({type(exc).__name__}): {message}"
    headers = getattr(exc, "headers", None) or (RETRY if result.status == 429 else None)
    return error_response(result.status, message, path, headers)
