"""The ``xlm-onnx`` command line: ``main`` (parser, dispatch, one-line errors), one module per
command (``fill_mask``, ``embed``, ``score``, ``check`` with ``info``, ``export`` with ``bench``;
``serve`` and ``bulk`` live with their extras, ``xlm_onnx.serve.cli`` and ``xlm_onnx.bulk.command``),
the options they share (``arguments``) and the line loop of the text tasks (``lines``, reading
``line_reader``, writing ``line_writer``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

__all__ = ["main"]

if TYPE_CHECKING:  # pragma: no cover
    from .main import main

__getattr__ = lazy_getattr(__name__, {"main": "xlm_onnx.cli.main"}, globals())
