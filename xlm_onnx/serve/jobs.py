"""What the server runs for each task: the Python API's own steps, and nothing else.

Each request is its task's ``prepare`` (validation, encoding, the API's error messages) → model
rows (:class:`~xlm_onnx.tasks.base.Unit`) → :func:`~xlm_onnx.tasks.base.run_all`, the loop the
API itself runs, over the rows of one or several requests → the API's answer per request::

    Job(key, prepared)  ─┐
    Job(key, prepared)  ─┼─ run_all: plan(rows x longest, rows) ─ run_batch ─ scatter ─ finish
    Job(key, prepared)  ─┘                                                     (per job)

Requests share a batch only when their ``key`` (the task and its batch key: ``top_k``, targets,
``lang``, pooling, ...) is equal, so every row runs with exactly the options its caller asked
for. No model logic lives here: the server's results equal the API's by construction, and every
registered task (:mod:`xlm_onnx.tasks.registry`) is served without a line here naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..errors import ModelFormatError
from ..tasks import registry
from ..tasks.base import Prepared, RunStats, Task, run_all

__all__ = ["Job", "RunStats", "Tasks"]


@dataclass(frozen=True, eq=False)
class Job:
    """One prepared request, ready to queue.

    Attributes:
        task: The task's name.
        key: Requests with equal keys may share a batch: ``(task, the task's batch key)``.
        prepared: The task's :class:`~xlm_onnx.tasks.base.Prepared` request.
    """

    task: str
    key: tuple
    prepared: Prepared

    @property
    def units(self) -> list[list[int]]:
        """The model rows it needs, ids with specials (for scoring: one per masked copy)."""
        return [list(u.ids) for u in self.prepared.units]

    @property
    def rows(self) -> int:
        return self.prepared.rows

    @property
    def longest(self) -> int:
        return self.prepared.longest


class Tasks:
    """Every registered task the model can run, built once (a task whose head the model lacks,
    as format 1 lacks embeddings and scoring, is left out).

    Args:
        model: A loaded :class:`~xlm_onnx.model.Model`.
        defaults: Server settings that are task options (``{"pooling": "cls"}``, as TEI's
            ``--pooling``): the default of that option for every task that has it.
        limits: The :class:`~xlm_onnx.limits.RequestLimits` of every request (``None``: none).
    """

    def __init__(self, model, defaults: dict | None = None, limits=None) -> None:
        self.model = model
        self.defaults: dict = dict(defaults or {})
        self.tasks: dict[str, Task] = {}
        for name in registry.names():
            try:
                self.tasks[name] = registry.task_class(name)(model)
            except ModelFormatError:  # a format-1 directory: the tasks of its one head only
                pass
        for task in self.tasks.values():  # each encode refuses what the limits do not allow (413)
            task.request_limits = limits

    @property
    def available(self) -> list[str]:
        return list(self.tasks)

    def prepare(self, task: str, kwargs: dict) -> Job:
        """The task's ``prepare(**kwargs)`` as a :class:`Job` (raises the API's own errors); an
        ``inputs`` entry is passed as the first argument, whatever the task calls it."""
        names = self.tasks[task].params.names()
        kwargs = {**{k: v for k, v in self.defaults.items() if k in names}, **kwargs}
        args = (kwargs.pop("inputs"),) if "inputs" in kwargs else ()
        prepared = self.tasks[task].prepare(*args, **kwargs)
        return Job(task, (task, prepared.key), prepared)

    def probe(self, task: str) -> Job:
        """A request the task answers on any model (the warm-up's)."""
        return self.prepare(task, {"inputs": self.tasks[task].probe, **self.tasks[task].probe_options})

    def run(self, jobs: Sequence[Job], max_rows: int, max_tokens: int,
            on_run: Callable[[RunStats], None] | None = None, wanted: Callable[[int], bool] | None = None
            ) -> list[Any]:
        """Runs ``jobs`` (equal keys) together; returns each job's API answer, in order.

        Rows are length-sorted and cut by :func:`~xlm_onnx.batching.plan` (rows x longest <=
        ``max_tokens``, rows <= ``max_rows`` and the task's own row limit), as the API's own
        entry points do: it is the same :func:`~xlm_onnx.tasks.base.run_all`. Before each run,
        the rows of a job for which ``wanted(index)`` is false are left out (its client has
        gone); its answer is ``None``.
        """
        return run_all([job.prepared for job in jobs], max_rows, max_tokens, on_run, wanted)
