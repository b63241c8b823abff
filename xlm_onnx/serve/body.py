"""A request's body: read within the server's size limit, parsed as JSON, its texts counted.

What only HTTP adds is checked here (the body's size and JSON, how many texts and how long);
what the fields mean is the task's parameter schema's and the Python API's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from ..errors import HTTPError


@dataclass(frozen=True)
class BodyLimits:
    """Per-request size limits (413 beyond them).

    Attributes:
        payload_bytes: Request body size.
        max_inputs: Texts per request.
        max_chars: Characters per text.
    """

    payload_bytes: int = 1 << 20
    max_inputs: int = 64
    max_chars: int = 10_000


async def read_json(request: Request, limit: int) -> Any:
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


def json_object(body: Any, where: str) -> dict:
    """``body`` if it is a JSON object, else 422 naming ``where`` (a route)."""
    if not isinstance(body, dict):
        raise HTTPError(422, f"{where}: the body must be a JSON object, not {type(body).__name__}")
    return body


def check_inputs(texts: Any, limits: BodyLimits, name: str = "inputs") -> None:
    """413 for too many texts or too long a text (types are left to the task's own checks)."""
    items = texts if isinstance(texts, list) else [texts]
    if len(items) > limits.max_inputs:
        raise HTTPError(413, f"{name} has {len(items)} texts; this server takes at most {limits.max_inputs} "
                             "per request")
    for i, item in enumerate(items):
        # An input may be an object of texts ({"question", "context"}): each of them is a text here.
        for key, text in item.items() if isinstance(item, dict) else ((None, item),):
            if isinstance(text, str) and len(text) > limits.max_chars:
                where = f"{name}[{i}]" if isinstance(texts, list) else name
                raise HTTPError(413, f"{where}{'' if key is None else '.' + str(key)} is {len(text)} characters "
                                     f"long; this server takes at most {limits.max_chars} per text")


def flat_parameters(body: dict, where: str) -> dict:
    """The HF Inference API's ``"parameters": {...}`` merged into the flat fields (both shapes
    are accepted; a field given in both is refused)."""
    params = body.get("parameters")
    if params is None:
        return {k: v for k, v in body.items() if k != "parameters"}
    if not isinstance(params, dict):
        raise HTTPError(422, f"{where}: parameters must be an object, not {type(params).__name__}")
    clash = sorted(set(params) & (set(body) - {"parameters"}))
    if clash:
        raise HTTPError(422, f"{where}: {clash[0]!r} is given both flat and in parameters")
    return {**{k: v for k, v in body.items() if k != "parameters"}, **params}
