"""OpenAI's API: ``POST /v1/embeddings`` and ``GET /v1/models``.

``/v1/embeddings`` takes ``input`` (a str or a list of str), ``model`` (any: the server has one),
``encoding_format`` (``float``, or ``base64`` of little-endian float32, the ``openai`` client's
default) and ``user``, and answers unit-length vectors, as OpenAI's are, with the tokens counted
in ``usage``. ``/v1/models`` lists the one model (OpenAI-compatible tools call it first).
Errors have OpenAI's shape, ``{"error": {"message", "type"}}``.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from ...errors import HTTPError
from ..body import check_inputs, json_object, read_json
from ..endpoints import Endpoint
from ..failures import Words
from ..pipeline import run_task
from ..schema import NUMBER, TEXT, TEXTS, array, obj
from ..state import ServerState
from ..task_routes import answer

EMBED = "embed"
#: OpenAI's field is ``input``, and it has no truncation field.
WORDS = Words({"inputs": "input", "truncation": None}, unfixable="shorten it")
_FIELDS = ("input", "model", "encoding_format", "dimensions", "user")


def arguments(body: Any, state: ServerState) -> tuple[dict, str]:
    """OpenAI's body → (the embed task's arguments, encoding_format)."""
    body = json_object(body, "/v1/embeddings")
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:
        raise HTTPError(422, f"/v1/embeddings: unknown field {unknown[0]!r}; known: {', '.join(_FIELDS)}")
    if "input" not in body:
        raise HTTPError(422, "/v1/embeddings: 'input' is required")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise HTTPError(422, f"encoding_format must be 'float' or 'base64', not {encoding!r}")
    if body.get("dimensions") is not None:
        raise HTTPError(422, "dimensions is not supported by this model (leave it out or null)")
    texts = body["input"]
    if isinstance(texts, list) and texts and (all(isinstance(t, int) for t in texts)
                                              or all(isinstance(t, list) for t in texts)):
        raise HTTPError(422, "input as token ids is not supported; send text (a str or a list of str)")
    check_inputs(texts, state.settings.limits, "input")
    # OpenAI's embeddings are unit length, and so are TEI's answers on this route.
    return {"inputs": texts, "normalize": True}, encoding


def body_of(vectors: np.ndarray, encoding: str, model_name: str, tokens: int) -> dict:
    rows = np.atleast_2d(vectors).astype("<f4", copy=False)
    data = [{"object": "embedding", "index": i,
             "embedding": base64.b64encode(row.tobytes()).decode("ascii") if encoding == "base64" else row}
            for i, row in enumerate(rows)]
    return {"object": "list", "data": data, "model": model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


async def embeddings(request: Request, state: ServerState) -> Response:
    kwargs, encoding = arguments(await read_json(request, state.settings.limits.payload_bytes), state)
    outcome = await run_task(request, state, EMBED, kwargs)
    if outcome.gone:
        return answer(outcome, None)
    tokens = sum(len(row) for row in outcome.job.units)
    return answer(outcome, body_of(outcome.answer, encoding, state.settings.model_name, tokens))


async def models(request: Request, state: ServerState) -> Any:
    """The one model, as OpenAI lists models (``created``: when this server loaded it; a model
    directory records no date of its own)."""
    return {"object": "list", "data": [{"id": state.settings.model_name, "object": "model",
                                        "created": state.loaded_at, "owned_by": "xlm-onnx"}]}


def endpoints(available: list[str], root_task: str) -> list[Endpoint]:
    embedding = obj({"object": {"const": "embedding"}, "index": {"type": "integer"},
                     "embedding": {"oneOf": [array(NUMBER), TEXT]}})
    usage = obj({"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}})
    model = obj({"id": TEXT, "object": {"const": "model"}, "created": {"type": "integer"}, "owned_by": TEXT})
    return [
        Endpoint("/v1/embeddings", embeddings, summary="OpenAI's embeddings: unit-length vectors, tokens counted",
                 request=obj({"input": TEXTS, "model": TEXT, "encoding_format": {"enum": ["float", "base64"]},
                              "dimensions": {"type": "null"}, "user": TEXT}, required=("input",)),
                 answer=obj({"object": {"const": "list"}, "data": array(embedding), "model": TEXT, "usage": usage}),
                 runs_model=True, group="protocol", words=WORDS),
        Endpoint("/v1/models", models, "GET", "OpenAI's model list: the one model this server runs",
                 answer=obj({"object": {"const": "list"}, "data": array(model)}), group="protocol"),
    ]
