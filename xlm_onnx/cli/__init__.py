"""The ``xlm-onnx`` command line: ``main`` (parser, dispatch, one-line errors), a command per
registered task generated from its parameters (``tasks``, on the line loop of ``lines``, reading
``line_reader``, writing ``line_writer``, ``npy``), ``info`` and ``check`` (``model``), ``export``
and ``bench`` (``export``). ``serve`` and ``bulk`` live with their extras (``xlm_onnx.serve.cli``,
``xlm_onnx.bulk.command``); the options every command shares are :mod:`xlm_onnx.front.arguments`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

__all__ = ["main"]

if TYPE_CHECKING:  # pragma: no cover
    from .main import main

__getattr__ = lazy_getattr(__name__, {"main": "xlm_onnx.cli.main"}, globals())
