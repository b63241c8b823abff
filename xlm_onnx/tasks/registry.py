"""Task names → task classes: what the server, the Ray callables and ``xlm-onnx bulk`` look up.

The built-in tasks are listed here by module (imported on first use); another task is added with
:func:`register` in the process that runs it, or, to be found by every process (a server, Ray
workers, the command line), by an entry point in the ``xlm_onnx.tasks`` group of its package::

    [project.entry-points."xlm_onnx.tasks"]
    mean-logit = "my_package.mean_logit:MeanLogit"
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .base import Task

ENTRY_POINT_GROUP = "xlm_onnx.tasks"

#: name -> task class, or "module:Class" until first used.
_TASKS: dict[str, "type[Task] | str"] = {
    "fill-mask": "xlm_onnx.tasks.fill_mask:FillMask",
    "embed": "xlm_onnx.tasks.embed:Embedder",
    "score": "xlm_onnx.tasks.score:Scorer",
    "text-classification": "xlm_onnx.tasks.text_classification:TextClassifier",
    "zero-shot-classification": "xlm_onnx.tasks.zero_shot:ZeroShotClassifier",
    "multiple-choice": "xlm_onnx.tasks.multiple_choice:MultipleChoice",
    "token-classification": "xlm_onnx.tasks.token_classification:TokenClassifier",
    "question-answering": "xlm_onnx.tasks.question_answering:QuestionAnswerer",
}
_plugins_loaded = False


def register(cls: "type[Task]") -> "type[Task]":
    """Adds a :class:`~xlm_onnx.tasks.base.Task` subclass under its ``name`` (usable as a decorator).

    Raises:
        ValueError: Another class has this name.
    """
    current = _TASKS.get(cls.name)
    if current is not None and current is not cls and not (isinstance(current, str) and current == _spec(cls)):
        raise ValueError(f"a task named {cls.name!r} is already registered ({_spec(current)})")
    _TASKS[cls.name] = cls
    return cls


def names() -> list[str]:
    """Every registered task name: the built-in ones first, then in registration order."""
    _load_plugins()
    return list(_TASKS)


def task_class(name: str) -> "type[Task]":
    """The class registered as ``name``.

    Raises:
        ValueError: No task has this name (naming the known ones).
    """
    if name not in _TASKS:
        _load_plugins()
    entry = _TASKS.get(name)
    if entry is None:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(names())}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = _TASKS[name] = getattr(importlib.import_module(module), attr)
    return entry


def pipeline_task(name: str) -> "type[Task] | None":
    """The registered task that answers transformers' pipeline task ``name`` (one that lists it in
    :attr:`~xlm_onnx.tasks.base.Task.pipeline_tasks`), or ``None``."""
    return next((cls for cls in map(task_class, names()) if name in cls.pipeline_tasks), None)


def pipeline_names() -> list[str]:
    """transformers' pipeline task names the registered tasks answer."""
    return [hf for cls in map(task_class, names()) for hf in cls.pipeline_tasks]


def _spec(entry) -> str:
    return entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__qualname__}"


def _load_plugins() -> None:
    """Registers the entry points of installed packages (once per process)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        _TASKS.setdefault(point.name, point.value)
