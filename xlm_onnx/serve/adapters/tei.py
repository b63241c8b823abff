"""Text Embeddings Inference and the HF Inference API: ``POST /embed``, ``POST /similarity``, ``POST /``.

TEI's ``/embed`` takes ``inputs``, ``normalize`` (default true), ``truncate``,
``truncation_direction`` (only ``right``: the model keeps the start of a text), and answers a list
of vectors, also for one text. ``/similarity`` (TEI's, and ``InferenceClient.sentence_similarity``
on the root URL) takes ``{"inputs": {"source_sentence", "sentences"}}`` and answers the cosine of
each sentence with the source, from the same unit-length embeddings.

TEI and HF Inference Endpoints answer a model's task on the root URL, so clients that take a model
URL — ``huggingface_hub.InferenceClient(model="http://host:port")`` — post there. The task is a
server setting (``xlm-onnx serve --task``; default fill-mask, what an XLM masked language model
is for, and the task HF lists for ``xlm-mlm-100-1280``) and the body is the HF Inference API's
payload for it: the task's own request (``{"inputs", "parameters": {...}}`` or flat), or for
embeddings TEI's ``/embed`` body (or sentence similarity's). A body meant for another task is
refused with the server's root task and the route to post it to.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from ...errors import HTTPError, InputError
from ..body import check_inputs, flat_parameters, json_object, read_json
from ..endpoints import Endpoint
from ..failures import Words
from ..pipeline import run_task
from ..schema import BOOL, NUMBER, TEXT, TEXTS, VECTOR, array, obj
from ..state import ServerState
from ..task_routes import answer, run
from . import misdirected

EMBED, FILL_MASK = "embed", "fill-mask"
#: What TEI's /embed calls the API's arguments (its truncate is the API's truncation).
WORDS = Words({"truncation": "truncate"})
_EMBED_FIELDS = ("inputs", "normalize", "truncate", "truncation_direction", "prompt_name", "dimensions")
_MASKS = ("<mask>", "[MASK]", "<special1>")


def _bool(fields: dict, name: str, default: bool) -> bool:
    value = fields.get(name, default)
    if not isinstance(value, bool):
        raise InputError(f"{name} must be a bool (true or false), not {type(value).__name__}", field=name)
    return value


def embed_arguments(body: Any, where: str, state: ServerState) -> dict:
    """TEI's ``/embed`` body → the embed task's arguments (unit length unless ``normalize`` is false)."""
    fields = flat_parameters(json_object(body, where), where)
    unknown = sorted(set(fields) - set(_EMBED_FIELDS))
    if unknown:
        raise HTTPError(422, f"{where}: unknown field {unknown[0]!r}; known: {', '.join(_EMBED_FIELDS)}")
    if "inputs" not in fields:
        raise HTTPError(422, f"{where}: 'inputs' is required")
    direction = fields.get("truncation_direction") or "right"
    if not isinstance(direction, str) or direction.lower() != "right":
        raise HTTPError(422, "truncation_direction must be 'right' (the model keeps the start of a text)")
    for unsupported in ("prompt_name", "dimensions"):
        if fields.get(unsupported) is not None:
            raise HTTPError(422, f"{unsupported} is not supported by this server (leave it out or null)")
    check_inputs(fields["inputs"], state.settings.limits)
    return {"inputs": fields["inputs"], "normalize": _bool(fields, "normalize", True),
            "truncation": _bool(fields, "truncate", False)}


def similarity_arguments(body: Any, where: str, state: ServerState) -> dict:
    """``{"inputs": {"source_sentence": str, "sentences": [str, ...]}}`` → one embedding request."""
    fields = flat_parameters(json_object(body, where), where)
    unknown = sorted(set(fields) - {"inputs", "normalize", "truncate"})
    if unknown:
        raise HTTPError(422, f"similarity: unknown field {unknown[0]!r}")
    pair = fields.get("inputs")
    if not isinstance(pair, dict) or set(pair) != {"source_sentence", "sentences"}:
        raise HTTPError(422, 'similarity: inputs must be {"source_sentence": str, "sentences": [str, ...]}')
    source, sentences = pair["source_sentence"], pair["sentences"]
    if not isinstance(source, str) or not isinstance(sentences, list) or not sentences:
        raise HTTPError(422, "similarity: source_sentence must be a str and sentences a non-empty list of str")
    texts = [source, *sentences]
    check_inputs(texts, state.settings.limits)
    return {"inputs": texts, "normalize": True, "truncation": _bool(fields, "truncate", False)}


def cosines(vectors: np.ndarray) -> list[float]:
    """Cosine of each sentence with the source (row 0); the rows are unit length already."""
    vectors = np.atleast_2d(vectors).astype(np.float64)
    return (vectors[1:] @ vectors[0]).tolist()


async def embed(request: Request, state: ServerState) -> Response:
    body = await read_json(request, state.settings.limits.payload_bytes)
    outcome = await run_task(request, state, EMBED, embed_arguments(body, "/embed", state))
    return answer(outcome, None if outcome.gone else np.atleast_2d(outcome.answer))


async def similarity(request: Request, state: ServerState) -> Response:
    body = await read_json(request, state.settings.limits.payload_bytes)
    outcome = await run_task(request, state, EMBED, similarity_arguments(body, "/similarity", state))
    return answer(outcome, None if outcome.gone else cosines(outcome.answer))


async def _embed_root(request: Request, state: ServerState, body: Any, where: str) -> Response:
    if isinstance(body, dict) and isinstance(body.get("inputs"), dict):  # InferenceClient.sentence_similarity
        outcome = await run_task(request, state, EMBED, similarity_arguments(body, where, state))
        return answer(outcome, None if outcome.gone else cosines(outcome.answer))
    if isinstance(body, dict):
        body = dict(body)
        encoding = body.pop("encoding_format", None)  # HF feature-extraction's field; TEI's root answers floats
        if encoding not in (None, "float"):
            raise HTTPError(422, f"encoding_format must be 'float' here (base64: POST /v1/embeddings), "
                                 f"not {encoding!r}")
        if "parameters" in body and FILL_MASK in state.tasks.available and _has_mask(body.get("inputs")):
            # InferenceClient.fill_mask sends "parameters" (feature_extraction never does) and a mask.
            raise HTTPError(422, misdirected.message(state, "a fill-mask request", f"/{FILL_MASK}"))
    outcome = await run_task(request, state, EMBED, embed_arguments(body, where, state))
    return answer(outcome, None if outcome.gone else np.atleast_2d(outcome.answer))


def _has_mask(inputs: Any) -> bool:
    texts = inputs if isinstance(inputs, list) else [inputs]
    return any(isinstance(t, str) and any(m in t for m in _MASKS) for t in texts)


async def root(request: Request, state: ServerState) -> Response:
    """``POST /``: the server's root task, in the HF Inference API's payload."""
    task = state.root_task
    where = f"POST / ({task})"
    body = await read_json(request, state.settings.limits.payload_bytes)
    try:
        if task == EMBED:
            return await _embed_root(request, state, body, where)
        if isinstance(body, dict) and isinstance(body.get("inputs"), dict) and "source_sentence" in body["inputs"] \
                and EMBED in state.tasks.available:  # (question answering takes dict inputs too)
            raise HTTPError(422, misdirected.message(state, "a sentence-similarity request", "/similarity"))
        return await run(request, state, task, where, body, inference_api=True)
    except (HTTPError, InputError) as exc:
        also = {"/embed": set(_EMBED_FIELDS)} if EMBED in state.tasks.available and task != EMBED else {}
        raise misdirected.explain(exc, body, state, WORDS if task == EMBED else Words(), also) from None


def endpoints(available: list[str], root_task: str) -> list[Endpoint]:
    """TEI's routes, and the root."""
    embed_body = obj({"inputs": TEXTS, "normalize": {**BOOL, "default": True}, "truncate": {**BOOL, "default": False},
                      "truncation_direction": {"enum": ["right", "Right"]}, "prompt_name": {"type": "null"},
                      "dimensions": {"type": "null"}}, required=("inputs",))
    pair = obj({"source_sentence": TEXT, "sentences": array(TEXT)}, required=("source_sentence", "sentences"))
    return [
        Endpoint("/", root, summary=f"The server's root task ({root_task} here; --task), in the HF Inference "
                 "API's payload: its own request, or for embed TEI's /embed body or a sentence-similarity body",
                 request={"type": "object", "required": ["inputs"]}, answer={}, runs_model=True, group="protocol",
                 words=WORDS if root_task == EMBED else Words()),
        Endpoint("/embed", embed, summary="TEI's /embed: a list of vectors, unit length unless normalize is false",
                 request=embed_body, answer=array(VECTOR), runs_model=True, group="protocol", words=WORDS),
        Endpoint("/similarity", similarity, summary="TEI's /similarity: the cosine of each sentence with the source",
                 request=obj({"inputs": pair, "truncate": BOOL, "normalize": BOOL, "parameters": {"type": "object"}},
                             required=("inputs",)),
                 answer=array(NUMBER), runs_model=True, group="protocol", words=WORDS),
    ]
