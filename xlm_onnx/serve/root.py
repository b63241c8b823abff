"""``POST /``: the server's main task, as Text Embeddings Inference and the HF Inference API serve it.

TEI and HF Inference Endpoints answer a model's task on the root URL, so clients that take a
model URL — ``huggingface_hub.InferenceClient(model="http://host:port")`` — post there. The task
is a server setting (``xlm-onnx serve --task``; default fill-mask, what an XLM masked language
model is for, and the task HF lists for ``xlm-mlm-100-1280``), and the body is the HF Inference
API's payload for it: ``{"inputs": ..., "parameters": {...}}``, or TEI's flat fields::

    fill-mask  InferenceClient.fill_mask          {"inputs", "parameters": {top_k, targets}}
    embed      InferenceClient.feature_extraction {"inputs", normalize, truncate, ...} (flat, as TEI)
               InferenceClient.sentence_similarity {"inputs": {"source_sentence", "sentences"}}
    score      (no HF task)                       {"inputs", "parameters": {metric, per_token, ...}}

Answers are the task route's own (``/fill-mask``, ``/embed``, ``/score``); sentence similarity
(also ``POST /similarity``, TEI's route) answers the cosine of each sentence with the source,
from the same unit-length embeddings ``/embed`` answers.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import schemas
from .schemas import HTTPError, Limits
from .jobs import EMBED, FILL_MASK, SCORE

ROOT_TASKS = (FILL_MASK, EMBED, SCORE)
SIMILARITY = "similarity"


def default_task(available: list[str]) -> str:
    """The root's task when ``--task`` is not given: fill-mask, else the model's first task."""
    return FILL_MASK if FILL_MASK in available else available[0]


def _flat(body: Any, task: str) -> dict:
    """HF's ``parameters`` object merged into the flat fields (both shapes are accepted)."""
    if not isinstance(body, dict):
        raise HTTPError(422, f"POST / ({task}): the body must be a JSON object, not {type(body).__name__}")
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise HTTPError(422, f"POST / ({task}): parameters must be an object, not {type(params).__name__}")
    clash = sorted(set(params) & (set(body) - {"parameters"}))
    if clash:
        raise HTTPError(422, f"POST / ({task}): {clash[0]!r} is given both flat and in parameters")
    return {**{k: v for k, v in body.items() if k != "parameters"}, **params}


def _as_root(parse: Callable[[Any, Limits], Any], route: str, task: str) -> Callable[[Any, Limits], Any]:
    """``parse`` with its messages naming ``POST /`` instead of the route it was written for."""
    def wrapped(body: Any, limits: Limits) -> Any:
        try:
            return parse(body, limits)
        except HTTPError as exc:
            message = str(exc).replace(f"{route}:", f"POST / ({task}):", 1)
            raise HTTPError(exc.status, message, exc.headers) from None
    return wrapped


def similarity_args(body: Any, limits: Limits) -> tuple[dict, str]:
    """``{"inputs": {"source_sentence": str, "sentences": [str, ...]}}`` → one embedding request."""
    body = _flat(body, SIMILARITY)
    unknown = sorted(set(body) - {"inputs", "normalize", "truncate"})
    if unknown:
        raise HTTPError(422, f"similarity: unknown field {unknown[0]!r}")
    pair = body.get("inputs")
    if not isinstance(pair, dict) or set(pair) != {"source_sentence", "sentences"}:
        raise HTTPError(422, 'similarity: inputs must be {"source_sentence": str, "sentences": [str, ...]}')
    source, sentences = pair["source_sentence"], pair["sentences"]
    if not isinstance(source, str) or not isinstance(sentences, list) or not sentences:
        raise HTTPError(422, "similarity: source_sentence must be a str and sentences a non-empty list of str")
    texts = [source, *sentences]
    schemas.check_inputs(texts, limits)
    truncate = body.get("truncate", False)
    if not isinstance(truncate, bool):
        raise HTTPError(422, f"truncate must be a bool (true or false), not {type(truncate).__name__}")
    return {"inputs": texts, "normalize": True, "truncation": truncate}, SIMILARITY


def _embed_args(body: Any, limits: Limits) -> Any:
    body = _flat(body, EMBED)
    if isinstance(body.get("inputs"), dict):  # InferenceClient.sentence_similarity on the root URL
        return similarity_args(body, limits)
    encoding = body.pop("encoding_format", None)  # HF feature-extraction's field; TEI's root answers floats
    if encoding not in (None, "float"):
        raise HTTPError(422, f"encoding_format must be 'float' here (base64: POST /v1/embeddings), not {encoding!r}")
    return schemas.embed_args(body, limits)


def parser(task: str) -> Callable[[Any, Limits], Any]:
    """The body parser of ``POST /`` for ``task`` (arguments for the task's ``prepare``)."""
    if task == FILL_MASK:
        return _as_root(schemas.fill_mask_args, "/fill-mask", task)
    if task == EMBED:
        return _as_root(_embed_args, "/embed", task)
    return _as_root(lambda body, limits: schemas.score_args(_flat(body, task), limits), "/score", task)


def respond(task: str, answer: Any, extra: Any) -> Any:
    """The task route's answer body (sentence similarity: the cosines)."""
    if extra == SIMILARITY:
        return similarity_response(answer)
    if task == EMBED:
        return schemas.embed_response(answer)
    if task == SCORE:
        return schemas.score_response(answer)
    return answer


def similarity_response(vectors: np.ndarray) -> list[float]:
    """Cosine of each sentence with the source (row 0); the rows are unit length already."""
    vectors = np.atleast_2d(vectors).astype(np.float64)
    return (vectors[1:] @ vectors[0]).tolist()
