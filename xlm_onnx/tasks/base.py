"""The task protocol, and the one loop that runs tasks for every front end.

A task turns texts into model rows, runs rows in batches and turns each row's output back into
the API's answer. The Python API, the HTTP server's batcher, the Ray callables and whole-word
targets all run it through :func:`run_all`::

    inputs, options ─Task.options──► Options          validated once per request (or per job)
                    ─Task.encode───► Prepared(units)  validated + encoded; one Unit per model row
    Prepared of one or many requests
      ─ group by (task, Task.batch_key)                equal keys may share a session.run
      ─ plan(rows x longest <= max_tokens, rows <= max_rows)   (batching.plan)
      ─ Task.run_batch(units, key) ─ scatter back ─► outputs of each request, in unit order
      ─ Task.finish(prepared, outputs) ─► the API's answer, per request

A new task is a :class:`Task` subclass in one file plus :func:`~xlm_onnx.tasks.registry.register`
(or an entry point): its options declared once in :attr:`Task.params`, its answers serialized once
by :meth:`Task.fields`. The front ends find it by its :attr:`Task.name` and are generated from
those: a command, a bulk job, an HTTP route, a section of the reference pages. Every front end
answers a list of texts with :func:`run_each` (the one bad-input policy).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar, Hashable, Sequence

from ..batching import DEFAULT_MAX_TOKENS, Batch, pad, plan
from ..errors import InputError
from ..limits import Cost, RequestLimits, enforce
from ..model import Model
from ..session import ProviderSpec
from .params import TEXT, Params


@dataclass(frozen=True)
class Unit:
    """One model row of a request.

    Attributes:
        ids: Token ids with specials.
        extra: What :meth:`Task.run_batch` needs besides the ids (scoring: the masked positions).
    """

    ids: Sequence[int]
    extra: Any = None


@dataclass(frozen=True, eq=False)
class Prepared:
    """A validated, encoded request (:meth:`Task.encode`), ready to batch with others.

    Attributes:
        task: The task that runs and finishes it.
        units: Its model rows.
        key: :meth:`Task.batch_key` of its options: the run options its rows need.
        single: The caller gave one str (one answer, not a list of them).
        state: What :meth:`Task.finish` needs besides the outputs (rows, the answer's shape, ...).
        cost: The work it asks for (:class:`~xlm_onnx.limits.Cost`), computed before any run.
    """

    task: "Task"
    units: list[Unit]
    key: Hashable
    single: bool = False
    state: Any = None
    cost: Any = None

    @property
    def rows(self) -> int:
        return len(self.units)

    @property
    def longest(self) -> int:
        return max((len(u.ids) for u in self.units), default=0)


@dataclass(frozen=True)
class RunStats:
    """One ``session.run``, as :func:`run_all` reports it (for metrics)."""

    rows: int
    padded_tokens: int


class Task(ABC):
    """A task over a loaded :class:`~xlm_onnx.model.Model` (see the module docstring).

    Subclasses set :attr:`name` and :attr:`head`, and define :meth:`options`, :meth:`encode`,
    :meth:`batch_key`, :meth:`run_batch` and :meth:`finish`.

    Args:
        model: A loaded :class:`~xlm_onnx.model.Model`, which any number of tasks may share.

    Raises:
        ModelFormatError: The model's graph lacks the head the task needs (format 1: re-export).
    """

    #: The registry name: the CLI command, the server's route, ``xlm-onnx bulk TASK``.
    name: ClassVar[str]
    #: The graph head the task needs (``format.HEAD_*``), and what to call the task in the error.
    head: ClassVar[str]
    purpose: ClassVar[str]
    #: One line for ``--help`` and the reference pages (default: :attr:`purpose`).
    summary: ClassVar[str | None] = None
    #: The embedded model a task runs when none is named (``xlm_onnx.model.EMBEDDED_MODELS``).
    default_model: ClassVar[str] = "default_model"
    #: Other names of the command line's command (``classify`` for ``text-classification``,
    #: ``ner`` for ``token-classification``).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Rows per run by default (``None``: no limit but the token budget).
    batch_rows: ClassVar[int | None] = None
    #: Padded tokens per run by default (rows x longest; ``None``: rows only).
    batch_tokens: ClassVar[int | None] = DEFAULT_MAX_TOKENS
    #: Most rows per run whatever the caller allows (a head whose tensors grow with rows x vocabulary).
    rows_cap: ClassVar[int | None] = None
    #: transformers' pipeline task names this task answers in :func:`xlm_onnx.pipeline`
    #: (``("fill-mask",)``); it then defines :meth:`pipeline_options` unless :meth:`options` takes
    #: transformers' call arguments as they are.
    pipeline_tasks: ClassVar[tuple[str, ...]] = ()
    #: A request every model accepts: warms a session up and checks a job's options before its rows.
    probe: ClassVar[str] = "Hello world"
    #: The options of that request, for a task that needs some (zero-shot: candidate labels).
    probe_options: ClassVar[dict[str, Any]] = {}
    #: Refuses, in :meth:`encode`, a request that asks for more work than it allows, before any
    #: model run (:class:`~xlm_onnx.limits.RequestLimits`; ``None``: no limit; ``xlm-onnx serve``
    #: sets it on every task).
    request_limits: RequestLimits | None = None
    #: The request options :meth:`options` takes, declared once (:mod:`xlm_onnx.tasks.params`):
    #: the command line, JSON bodies, bulk jobs and the reference pages are generated from it.
    params: ClassVar[Params] = TEXT
    #: The field of :meth:`fields` that ``--npy`` writes as a float32 ``[texts, dim]`` array
    #: (``None``: the task's answers are not vectors).
    array_field: ClassVar[str | None] = None

    def __init__(self, model: Model) -> None:
        model.manifest.require_head(self.head, self.purpose)
        self.model = model

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, provider: ProviderSpec = "cpu",
                        threads: int | None = None, verify: bool = True, optimization_level: str = "all",
                        **task_options: Any):
        """Loads a model directory (default: the task's :attr:`default_model`) with :meth:`Model.load
        <xlm_onnx.model.Model.load>`, whose arguments, errors and ``PrecisionWarning`` these are;
        ``task_options`` go to the task's constructor."""
        cls.validate_construction(**task_options)  # before the (slow) session is built
        if path is None:
            from ..model import default_model_dir

            path = default_model_dir(cls.default_model)
        model = Model.load(path, provider=provider, threads=threads, verify=verify,
                           optimization_level=optimization_level)
        return cls(model, **task_options)

    @classmethod
    def validate_construction(cls, **task_options: Any) -> None:
        """Checks constructor options before a model is loaded (none by default)."""
        if task_options:
            raise TypeError(f"{cls.__name__}() got unexpected keyword arguments {sorted(task_options)}")

    # -- the protocol ------------------------------------------------------------------------------
    @abstractmethod
    def options(self, **options: Any) -> Any:
        """Validates the options that concern every text of a request (``lang``, ``top_k``, ...),
        resolved once (a language to its id, targets to ids); raises TypeError/ValueError/InputError."""

    @abstractmethod
    def encode(self, inputs: Any, options: Any) -> Prepared:
        """Validates and encodes ``inputs`` (a str or a list of them): one :class:`Unit` per model
        row. Raises :class:`~xlm_onnx.errors.InputError` with ``index`` for a bad text."""

    @abstractmethod
    def batch_key(self, options: Any) -> Hashable:
        """What :meth:`run_batch` reads of the options: rows of requests with equal keys may share a run."""

    @abstractmethod
    def run_batch(self, units: Sequence[Unit], key: Hashable) -> Sequence[Any]:
        """One ``session.run`` of ``units`` (any requests' rows with this ``key``): one output per unit."""

    @abstractmethod
    def finish(self, prepared: Prepared, outputs: list[Any]) -> Any:
        """The API's answer for one request from its units' outputs (in unit order)."""

    # -- as a transformers pipeline (xlm_onnx.pipeline) ----------------------------------------------
    def pipeline_options(self, **kwargs: Any) -> Any:
        """transformers' call arguments for this task (construction defaults merged with the call's)
        as :meth:`options`, checked once per call; by default they are :meth:`options`' own."""
        return self.options(**kwargs)

    def pipeline_answer(self, answer: Any, options: Any) -> Any:
        """One input's answer as transformers' pipeline gives it (by default :meth:`finish`'s)."""
        return answer

    def pipeline_list(self, answers: list[Any]) -> Any:
        """The answer to a list of inputs (by default the list of their answers)."""
        return answers

    def fields(self, answer: Any) -> dict[str, Any]:
        """The one serializer: the answer for one text as named JSON values, the same field by
        field in ``--json`` records, HTTP bodies and bulk columns."""
        return {"result": answer}

    def records(self, answer: Any, single: bool) -> list[dict[str, Any]]:
        """:meth:`fields` of each text of a request's answer (``single``: the request was one str)."""
        return [self.fields(a) for a in ([answer] if single else answer)]

    def inference_api(self, answer: Any, inputs: Any) -> Any:
        """The answer as the HF Inference API shapes it (a server's ``POST /``, where
        ``huggingface_hub.InferenceClient`` posts); default: the Python API's answer."""
        return answer

    def show(self, text: str, answer: Any) -> str:
        """The answer for one text as a terminal shows it (lines ending in a newline); default:
        the :meth:`fields` as JSON, then the text."""
        import json

        return f"{json.dumps(self.fields(answer), ensure_ascii=False)}  {text}\n"

    # -- helpers -----------------------------------------------------------------------------------
    def resolve(self, values: dict[str, Any], front: str | None = None) -> Any:
        """:meth:`options` from a front end's values (a JSON body's fields, a bulk job's options,
        parsed flags): checked against :attr:`params` (unknown names, types, choices, bounds, with
        the option named) and completed with its defaults.

        Args:
            values: Options by name; ``None`` is not given.
            front: ``"cli"``, ``"json"`` or ``"bulk"`` (:mod:`~xlm_onnx.tasks.params`): only that
                front's options are known (``None``: all).
        """
        return self.options(**self.params.resolve(values, front))

    def prepare(self, inputs: Any, **options: Any) -> Prepared:
        """:meth:`options` then :meth:`encode`: a request as the Python API takes it.

        A task whose :meth:`encode` does not price its work is priced by its rows and longest row
        (the encoder's padded tokens), so :attr:`request_limits` bound every registered task."""
        prepared = self.encode(inputs, self.options(**options))
        if prepared.cost is None:
            prepared = replace(prepared, cost=enforce(self.request_limits, Cost(prepared.rows, prepared.longest)))
        return prepared

    def rows_cap_for(self, key: Hashable) -> int | None:
        """Most rows per run for ``key`` whatever the caller allows (default: :attr:`rows_cap`)."""
        return self.rows_cap

    def pad(self, rows: Sequence[Sequence[int]]) -> Batch:
        """``rows`` right-padded with the model's pad id (:func:`~xlm_onnx.batching.pad`)."""
        ids, mask = pad(rows, self.model.manifest.pad_token_id)
        return Batch(ids, mask)

    def run_size(self, key: Hashable) -> tuple[int | None, int | None]:
        """``(max_rows, max_tokens)`` per run of the Python API (default: :attr:`batch_rows`,
        :attr:`batch_tokens`)."""
        return self.batch_rows, self.batch_tokens

    def answer(self, prepared: Prepared) -> Any:
        """Runs one prepared request within :meth:`limits`: what the Python API returns."""
        return run_all([prepared], *self.run_size(prepared.key))[0]

    def __call__(self, inputs: Any, **options: Any) -> Any:
        """Answers ``inputs`` (a str or a list of them): the Python API of any task."""
        return self.answer(self.prepare(inputs, **options))


def run_each(task: Task, inputs: Sequence[Any], options: Any, max_rows: int | None = None,
             max_tokens: int | None = None) -> list[Any]:
    """Answers each text on its own terms: the one bad-input policy of every front end.

    Each text is validated and encoded as a request of its own, so a bad one (not a str, no mask
    token, too long) is reported without failing the others; the good ones then share runs in
    one :func:`run_all` (the same runs as one request of them all).

    Returns:
        Per text, in order: its answer (as for one str), or the :class:`~xlm_onnx.errors.InputError`
        that refused it, with ``index`` its position in ``inputs``.
    """
    out: list[Any] = [None] * len(inputs)
    requests, places = [], []
    for i, text in enumerate(inputs):
        try:
            requests.append(task.encode(text if isinstance(text, str) else [text], options))
            places.append(i)
        except InputError as exc:
            out[i] = exc.at(i)
    for i, answer in zip(places, run_all(requests, max_rows, max_tokens)):
        out[i] = answer
    return out


def _smaller(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def run_all(requests: Sequence[Prepared], max_rows: int | None = None, max_tokens: int | None = None,
            on_run: Callable[[RunStats], None] | None = None, wanted: Callable[[int], bool] | None = None
            ) -> list[Any]:
    """Runs prepared requests (of one or several tasks and keys); returns each one's answer, in order.

    The units of requests with the same task and key are length-sorted and cut into runs by
    :func:`~xlm_onnx.batching.plan` (``rows x longest <= max_tokens``, ``rows <= max_rows``, and
    at most :meth:`Task.rows_cap_for`), so a request's answer does not depend on which front end
    batched it, only on what shared its runs.

    Args:
        requests: From :meth:`Task.encode` / :meth:`Task.prepare`.
        max_rows: Rows per run (``None``: no limit but the task's own).
        max_tokens: Padded tokens per run (``None``: rows only).
        on_run: Called after each ``session.run`` with its :class:`RunStats`.
        wanted: Asked before each run for every request with rows in it: the rows of a request
            for which ``wanted(index)`` is false are left out (a server's client has gone), and
            its answer is ``None``.
    """
    outputs: list[list[Any]] = [[None] * r.rows for r in requests]
    groups: dict[tuple, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault((id(request.task), request.key), []).append(i)
    for members in groups.values():
        first = requests[members[0]]
        owners = [(r, u) for r in members for u in range(requests[r].rows)]
        units = [requests[r].units[u] for r, u in owners]
        lengths = [len(unit.ids) for unit in units]
        for group in plan(lengths, _smaller(max_rows, first.task.rows_cap_for(first.key)), max_tokens):
            if wanted is not None:
                group = [i for i in group if wanted(owners[i][0])]
                if not group:
                    continue
            values = first.task.run_batch([units[i] for i in group], first.key)
            if on_run is not None:
                on_run(RunStats(len(group), len(group) * max(lengths[i] for i in group)))
            for i, value in zip(group, values):
                r, u = owners[i]
                outputs[r][u] = value
    return [request.task.finish(request, out) if wanted is None or wanted(r) else None
            for r, (request, out) in enumerate(zip(requests, outputs))]
