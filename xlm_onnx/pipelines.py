"""``xlm_onnx.pipeline``: transformers' ``pipeline(task, model=...)`` entry point over the tasks here.

Code written for ``transformers.pipeline("fill-mask")`` runs with only the import changed::

    from xlm_onnx import pipeline            # was: from transformers import pipeline
    unmasker = pipeline("fill-mask", model="path/to/export", top_k=2)
    for answer in unmasker(texts_generator(), batch_size=16):   # lazily, in order
        ...

transformers' task names are looked up in the registry: a task that lists a name in its
:attr:`~xlm_onnx.tasks.base.Task.pipeline_tasks` answers it, so a task added later (in this
package or by an entry point) plugs in by declaring it. A call takes what transformers' call
takes: one text (one answer), a list (a list of answers, all at once), or any other iterable —
a generator, a dataset column — whose answers are yielded lazily and in order, ``batch_size``
inputs at a time: the pipeline never holds more than ``batch_size`` inputs it has not answered.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from .errors import InputError, InputTypeError
from .model import Model
from .tasks.base import Task, run_all
from .tasks.registry import pipeline_names, pipeline_task

__all__ = ["Pipeline", "pipeline"]


class Pipeline:
    """A task answering as a transformers pipeline does (build it with :func:`pipeline`).

    Attributes:
        task: transformers' task name (``"fill-mask"``), as a transformers pipeline has it.
        runner: The :class:`~xlm_onnx.tasks.base.Task` that answers.
        model: Its loaded :class:`~xlm_onnx.model.Model`.
        tokenizer: The model's :class:`~xlm_onnx.tokenization.XLMTokenizer`.
        defaults: Call arguments given at construction (a call's own override them).
        batch_size: Inputs per run when a call gives none (``None``: the task's default).
    """

    def __init__(self, task: str, runner: Task, defaults: Mapping[str, Any] | None = None,
                 batch_size: int | None = None) -> None:
        self.task, self.runner, self.model, self.tokenizer = task, runner, runner.model, runner.model.tokenizer
        self.defaults = dict(defaults or {})
        self.batch_size = _batch_size(batch_size)
        runner.pipeline_options(**self.defaults)  # a bad default fails here, as in transformers

    def __call__(self, inputs: Any, *args: Any, batch_size: int | None = None, num_workers: int | None = None,
                 **kwargs: Any) -> Any:
        """Answers ``inputs`` as transformers' pipeline of this task does.

        Args:
            inputs: A str (its answer), a list or tuple of str (the list of answers), or any
                other iterable of str (a lazy iterator of answers, in input order).
            *args: More texts, as transformers allows (``pipe("a", "b")`` is ``pipe(["a", "b"])``).
            batch_size: Inputs per model run, and how many are read ahead of the answers given.
            num_workers: Accepted for transformers' signature; tokenization runs in this thread.
            **kwargs: The task's call arguments (fill-mask: ``top_k``, ``targets``,
                ``tokenizer_kwargs``); they override the construction defaults.

        Raises:
            InputError: A bad argument, or a bad input (its message names ``inputs[i]``); for an
                iterable, raised when the input is reached, after the answers before it.
        """
        if args:
            inputs = [inputs, *args]
        options = self.runner.pipeline_options(**{**self.defaults, **kwargs})
        size = _batch_size(batch_size) or self.batch_size or self._task_batch(options)
        if isinstance(inputs, (list, tuple)):
            return self.runner.pipeline_list(list(self._stream(iter(inputs), options, size)))
        if isinstance(inputs, Iterable) and not isinstance(inputs, (str, bytes, bytearray, Mapping)):
            return self._stream(iter(inputs), options, size)
        return next(self._stream(iter([inputs]), options, size))

    def _task_batch(self, options: Any) -> int:
        rows, _ = self.runner.run_size(self.runner.batch_key(options))
        return rows or 1

    def _stream(self, inputs: Iterator[Any], options: Any, size: int) -> Iterator[Any]:
        """Answers ``size`` inputs at a time: reads them, encodes each as its own request, runs
        them together (:func:`~xlm_onnx.tasks.base.run_all`), yields their answers in order."""
        task, seen = self.runner, 0
        rows, tokens = task.run_size(task.batch_key(options))
        while chunk := list(islice(inputs, size)):
            prepared, error = [], None
            for text in chunk:
                try:
                    if isinstance(text, list):  # one input each: a list would be a batch of them
                        raise InputTypeError.about("inputs", f"must be one input, not a list ({len(text)} items)", 0)
                    prepared.append(task.encode(text, options))
                except InputError as exc:  # answers before it first, then the error, as transformers
                    error = _at(exc, seen + len(prepared))
                    break
            for answer in run_all(prepared, size if rows is not None else None, tokens):
                yield task.pipeline_answer(answer, options)
            if error is not None:
                raise error
            seen += len(chunk)


def _at(exc: InputError, position: int) -> InputError:
    """``exc`` naming the input's place in the whole call rather than inside its one-text request
    (:meth:`~xlm_onnx.errors.InputError.at`; a one-text request's ``inputs must be ...`` is
    ``inputs[0]`` to it)."""
    if exc.index is None and exc.field == "inputs" and exc.reason is not None:
        exc = type(exc).about(exc.field, exc.reason, 0, exc.fix)
    return exc.at(position)


def _batch_size(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InputError(f"batch_size must be a positive int or None, not {value!r}")
    return value


def _provider(device: Any) -> str:
    """transformers' ``device`` (``None``, ``"cpu"``, ``-1``, ``"cuda"``, ``"cuda:0"``, ``0``) as an
    onnxruntime provider."""
    if device is None or device == "cpu" or device == -1:
        return "cpu"
    if device == "cuda" or (isinstance(device, str) and device.startswith("cuda:")) or (
            isinstance(device, int) and not isinstance(device, bool) and device >= 0):
        return "cuda"
    raise InputError(f"device must be 'cpu', 'cuda', 'cuda:N', -1 or a GPU index, not {device!r}")


def pipeline(task: str, model: str | os.PathLike | Model | None = None, *, tokenizer: Any = None,
             device: Any = None, batch_size: int | None = None, **defaults: Any) -> Pipeline:
    """transformers' ``pipeline()`` for the tasks this package runs.

    Args:
        task: transformers' task name: ``"fill-mask"``, ``"feature-extraction"``, or any other a
            registered task declares (:func:`~xlm_onnx.tasks.registry.pipeline_names`).
        model: A directory written by ``xlm-onnx export``, a Hugging Face id or cache folder of
            one (looked up on this machine only), a loaded :class:`~xlm_onnx.model.Model`, or
            ``None`` for the embedded demo model.
        tokenizer: ``None``, or the same name as ``model``: a model directory holds its tokenizer.
        device: ``None`` / ``"cpu"`` / ``-1``, or ``"cuda"`` / a GPU index (onnxruntime's CUDA provider).
        batch_size: Inputs per run when a call gives none (default: the task's, 8 for fill-mask).
        **defaults: Call arguments every call gets unless it gives its own (``top_k=2``).

    Raises:
        InputError: An unknown task name (naming the known ones) or a bad argument.
        ModelNotFoundError, ModelFormatError: As :meth:`Model.load <xlm_onnx.model.Model.load>`.
    """
    cls = pipeline_task(task) if isinstance(task, str) else None
    if cls is None:
        raise InputError(f"unknown pipeline task {task!r}; this package answers {', '.join(pipeline_names())}")
    if tokenizer is not None and (isinstance(model, Model) or str(tokenizer) != str(model)):
        raise InputError("tokenizer= must be None or name the same model: a model directory holds its tokenizer")
    provider = _provider(device)
    if not isinstance(model, Model):
        if model is not None:
            from .lookup import resolve_model

            model = resolve_model(model)
        model = Model.load(model, provider=provider)
    return Pipeline(task, cls(model), defaults, batch_size)
