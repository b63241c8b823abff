"""Request bodies → the API's keyword arguments, and the API's answers → response bodies.

Field values are passed to the task's ``prepare`` as they are, so a malformed value gets the
message the Python API raises (422). Only what JSON adds is checked here: the body is an object,
the field names are known, booleans are booleans, and the server's size limits.

Compatibility: ``/fill-mask`` takes the HF pipeline's arguments (flat, or in HF Inference
API's ``parameters`` object) and answers the pipeline's JSON; ``/embed`` is TEI's (``inputs``,
``normalize`` (default true), ``truncate``; always a list of vectors); ``/v1/embeddings`` is
OpenAI's (``input``, ``model``, ``encoding_format`` float|base64, ``usage``).
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import HTTPError  # noqa: F401  (the routes raise it from here)


@dataclass(frozen=True)
class Limits:
    """Per-request size limits (413 beyond them).

    Attributes:
        payload_bytes: Request body size.
        max_inputs: Texts per request.
        max_chars: Characters per text.
    """

    payload_bytes: int = 1 << 20
    max_inputs: int = 64
    max_chars: int = 10_000


def _object(body: Any, route: str) -> dict:
    if not isinstance(body, dict):
        raise HTTPError(422, f"{route}: the body must be a JSON object, not {type(body).__name__}")
    return body


def _fields(body: dict, route: str, required: str, allowed: tuple[str, ...]) -> dict:
    unknown = sorted(set(body) - {required, *allowed})
    if unknown:
        raise HTTPError(422, f"{route}: unknown field {unknown[0]!r}; known: {', '.join((required, *allowed))}")
    if required not in body:
        raise HTTPError(422, f"{route}: {required!r} is required")
    return body


def _bool(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise HTTPError(422, f"{name} must be a bool (true or false), not {type(value).__name__}")
    return value


def check_inputs(texts: Any, limits: Limits, name: str = "inputs") -> None:
    """413 for too many texts or too long a text (types are left to the API's ``prepare``)."""
    items = texts if isinstance(texts, list) else [texts]
    if len(items) > limits.max_inputs:
        raise HTTPError(413, f"{name} has {len(items)} texts; this server takes at most {limits.max_inputs} per request")
    for i, text in enumerate(items):
        if isinstance(text, str) and len(text) > limits.max_chars:
            raise HTTPError(413, f"{name}[{i}] is {len(text)} characters long; this server takes at most "
                                 f"{limits.max_chars} per text")


def fill_mask_args(body: Any, limits: Limits) -> dict:
    """``{"inputs", "top_k", "targets", "lang", "truncation", "whole_word_targets"}`` (or HF's
    ``"parameters": {...}``)."""
    options = ("top_k", "targets", "lang", "truncation", "whole_word_targets")
    body = _fields(_object(body, "/fill-mask"), "/fill-mask", "inputs", (*options, "parameters"))
    params = body.get("parameters") or {}
    if not isinstance(params, dict) or set(params) - set(options):
        raise HTTPError(422, f"/fill-mask: parameters must be an object with {', '.join(options)}")
    merged = {**{k: v for k, v in body.items() if k != "parameters"}, **params}
    check_inputs(merged["inputs"], limits)
    merged["truncation"] = _bool(merged, "truncation", False)
    merged["whole_word_targets"] = _bool(merged, "whole_word_targets", False)
    return merged


def embed_args(body: Any, limits: Limits) -> dict:
    """TEI's ``/embed``: ``inputs``, ``normalize`` (default true), ``truncate``."""
    body = _fields(_object(body, "/embed"), "/embed", "inputs",
                   ("normalize", "truncate", "truncation_direction", "prompt_name", "dimensions"))
    direction = body.get("truncation_direction", "right")
    if not isinstance(direction, str) or direction.lower() != "right":
        raise HTTPError(422, "truncation_direction must be 'right' (the model keeps the start of a text)")
    for unsupported in ("prompt_name", "dimensions"):
        if body.get(unsupported) is not None:
            raise HTTPError(422, f"{unsupported} is not supported by this server (leave it out or null)")
    check_inputs(body["inputs"], limits)
    return {"inputs": body["inputs"], "normalize": _bool(body, "normalize", True),
            "truncation": _bool(body, "truncate", False)}


def openai_args(body: Any, limits: Limits) -> tuple[dict, str]:
    """OpenAI's ``/v1/embeddings``: (Embedder arguments, encoding_format)."""
    body = _fields(_object(body, "/v1/embeddings"), "/v1/embeddings", "input",
                   ("model", "encoding_format", "dimensions", "user"))
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise HTTPError(422, f"encoding_format must be 'float' or 'base64', not {encoding!r}")
    if body.get("dimensions") is not None:
        raise HTTPError(422, "dimensions is not supported by this model (leave it out or null)")
    texts = body["input"]
    if isinstance(texts, list) and texts and all(isinstance(t, int) for t in texts) or (
            isinstance(texts, list) and texts and all(isinstance(t, list) for t in texts)):
        raise HTTPError(422, "input as token ids is not supported; send text (a str or a list of str)")
    check_inputs(texts, limits, "input")
    # OpenAI's embeddings are unit length, and so are TEI's answers on this route.
    return {"inputs": texts, "normalize": True}, encoding


def score_args(body: Any, limits: Limits) -> dict:
    """``{"inputs", "metric", "per_token", "lang", "truncation"}``: the API's ``Scorer.score``."""
    body = _fields(_object(body, "/score"), "/score", "inputs", ("metric", "per_token", "lang", "truncation"))
    check_inputs(body["inputs"], limits)
    args = {"inputs": body["inputs"], "metric": body.get("metric", "original"), "lang": body.get("lang"),
            "per_token": _bool(body, "per_token", False), "truncation": _bool(body, "truncation", False)}
    return args


def tokenize_args(body: Any, limits: Limits) -> dict:
    """``{"inputs", "truncation"}``: the API's ``Model.encode``."""
    body = _fields(_object(body, "/tokenize"), "/tokenize", "inputs", ("truncation",))
    check_inputs(body["inputs"], limits)
    return {"inputs": body["inputs"], "truncation": _bool(body, "truncation", False)}


# -- answers -------------------------------------------------------------------------------------
def embed_response(answer: np.ndarray) -> list:
    """TEI answers a list of vectors, also for one text (the array: the response writes it)."""
    return np.atleast_2d(answer)


def openai_response(answer: np.ndarray, encoding: str, model_name: str, tokens: int) -> dict:
    rows = np.atleast_2d(answer).astype("<f4", copy=False)
    data = [{"object": "embedding", "index": i,
             "embedding": base64.b64encode(row.tobytes()).decode("ascii") if encoding == "base64" else row}
            for i, row in enumerate(rows)]
    return {"object": "list", "data": data, "model": model_name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def score_response(answer: Any) -> Any:
    """Sums (a float or a list), or per-token records (:class:`~xlm_onnx.tasks.score.PLLScore` fields)."""
    if isinstance(answer, float):
        return answer
    if isinstance(answer, np.ndarray):
        return answer.tolist()
    if isinstance(answer, list):
        return [dataclasses.asdict(a) for a in answer]
    return dataclasses.asdict(answer)


def task_args(body: Any, limits: Limits) -> dict:
    """``POST /tasks/{task}``: ``{"inputs", "parameters": {...}}``, the task's ``prepare`` arguments."""
    body = _fields(_object(body, "/tasks"), "/tasks", "inputs", ("parameters",))
    params = body.get("parameters") or {}
    if not isinstance(params, dict) or "inputs" in params:
        raise HTTPError(422, "/tasks: parameters must be an object of the task's options (inputs apart)")
    check_inputs(body["inputs"], limits)
    return {"inputs": body["inputs"], **params}


def jsonable(answer: Any) -> Any:
    """Any task's answer as JSON values: arrays as lists, dataclasses as objects, numpy scalars as numbers."""
    if isinstance(answer, np.ndarray):
        return answer.tolist()
    if isinstance(answer, np.generic):
        return answer.item()
    if dataclasses.is_dataclass(answer) and not isinstance(answer, type):
        return jsonable(dataclasses.asdict(answer))
    if isinstance(answer, dict):
        return {str(k): jsonable(v) for k, v in answer.items()}
    if isinstance(answer, (list, tuple)):
        return [jsonable(a) for a in answer]
    return answer
