"""xlm-onnx exporter (installed as ``xlm_onnx_export``; needs the ``[export]`` extra).

Pipeline, CTranslate2-style: check -> load -> trace -> optimise -> convert -> head -> validate
-> publish. Attributes load lazily (PEP 562): ``xlm_onnx_export.fixtures`` (test checkpoints and vocabularies) need not
pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xlm_onnx._lazy import lazy_getattr

_LAZY = {
    "CheckpointError": "xlm_onnx_export.errors",
    "ExportError": "xlm_onnx_export.errors",
    "DEFAULT_OPSET": "xlm_onnx_export.exporter",
    "Exporter": "xlm_onnx_export.exporter",
    "ExportResult": "xlm_onnx_export.exporter",
    "Int8Options": "xlm_onnx_export.precision",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and the API reference (griffe)
    from .errors import CheckpointError, ExportError
    from .exporter import DEFAULT_OPSET, Exporter, ExportResult
    from .precision import Int8Options
__getattr__ = lazy_getattr(__name__, _LAZY, globals())
