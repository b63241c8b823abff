"""xlm-onnx exporter (installed as ``xlm_onnx_export``; needs the ``[export]`` extra).

Pipeline, CTranslate2-style: check -> load -> trace -> optimise -> head -> validate -> publish.
"""

from .errors import CheckpointError, ExportError
from .exporter import DEFAULT_OPSET, Exporter, ExportResult

__all__ = ["CheckpointError", "DEFAULT_OPSET", "ExportError", "ExportResult", "Exporter"]
