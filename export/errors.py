"""Exporter error types (both also caught by the CLI's one-line error handling)."""

from xlm_onnx.errors import XLMOnnxError


class CheckpointError(XLMOnnxError, ValueError):
    """The checkpoint directory cannot be exported (not XLM, files missing, unsafe weights)."""


class ExportError(XLMOnnxError, RuntimeError):
    """The export ran but its result failed a check (validation gate, fusion count)."""
