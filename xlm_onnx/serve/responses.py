"""JSON answers written with orjson, numpy arrays included.

Measured on the benchmark machine (AMD EPYC, 2 cores): one 1280-dimension embedding took 1.47 ms
with ``json.dumps(vector.tolist())`` and 0.05 ms with orjson on the float32 array itself, on the
event loop, where every other client's request waits meanwhile (a batch of 32 full-size
embeddings: 47 ms). orjson writes a float32 as the shortest text that reads back as the same
float32 (``0.3917645``, as TEI does), so a client parsing it as float32 gets the model's value
bit for bit; ``json`` wrote the float32 widened to float64 (``0.39176449179649353``), the same
float32 once read back, three times longer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import orjson
from starlette.responses import JSONResponse

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class FastJSONResponse(JSONResponse):
    """``JSONResponse`` rendered by orjson (numpy arrays and scalars serialised directly)."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=_OPTIONS)
        except orjson.JSONEncodeError:  # e.g. a non-contiguous array: the slow, general path
            return super().render(_plain(content))


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


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
