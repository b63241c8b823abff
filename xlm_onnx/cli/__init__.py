"""The ``xlm-onnx`` command line: ``main`` (parser, dispatch, one-line errors), one module per
command, and the line loop the text tasks share (``lines``, reading ``line_reader``, writing
``line_writer``). ``serve`` and ``bulk`` live with their extras (``xlm_onnx.serve.cli``,
``xlm_onnx.bulk.command``)."""

from .main import main

__all__ = ["main"]
