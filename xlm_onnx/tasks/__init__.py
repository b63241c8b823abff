"""The tasks over a loaded :class:`~xlm_onnx.model.Model`, and what every task shares.

``base`` (the protocol: :class:`Task`, :class:`Unit`, :class:`Prepared`, and :func:`run_all`, the
one plan/run/scatter loop), ``registry`` (task names for the front ends: :func:`register`),
fill-mask (``fill_mask``, its inputs in ``fill_mask_inputs``, whole-word targets in
``whole_word``), sentence embeddings (``embed``) and pseudo-log-likelihood scoring (``score``).
Names load lazily, so the command line can list the registry without loading a model's stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

_LAZY = {name: "xlm_onnx.tasks.base" for name in ("Prepared", "RunStats", "Task", "Unit", "run_all")}
_LAZY.update({name: "xlm_onnx.tasks.registry" for name in ("names", "register", "task_class")})

__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # pragma: no cover
    from .base import Prepared, RunStats, Task, Unit, run_all
    from .registry import names, register, task_class

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
