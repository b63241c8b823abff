"""xlm-onnx exporter (installed as ``xlm_onnx_export``; needs the ``[export]`` extra).

Pipeline, CTranslate2-style: check -> load -> trace -> optimise -> convert -> head -> validate
-> publish. Attributes load lazily (PEP 562): ``xlm_onnx_export.vocab`` or ``.corpus`` need not
pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CheckpointError": "xlm_onnx_export.errors",
    "ExportError": "xlm_onnx_export.errors",
    "DEFAULT_OPSET": "xlm_onnx_export.exporter",
    "Exporter": "xlm_onnx_export.exporter",
    "ExportResult": "xlm_onnx_export.exporter",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xlm_onnx_export' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
