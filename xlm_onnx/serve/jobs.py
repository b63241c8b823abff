"""What the server runs for each task: the Python API's own steps, and nothing else.

Each task is the API's ``prepare`` (validation, encoding, the API's error messages) → model rows
→ the task's ``run_batch`` on a :class:`~xlm_onnx.batching.Batch` built by ``batching`` from the
rows of one or several requests → the API's answer per request::

    Job(key, prepared, units)  ─┐
    Job(key, prepared, units)  ─┼─ plan(rows x longest, rows) ─ pad ─ run_batch ─ scatter ─ finish
    Job(key, prepared, units)  ─┘                                                 (per job)

Requests share a batch only when their ``key`` (the run options: task, ``top_k``, targets,
``lang``, pooling, ...) is equal, so every row runs with exactly the options its caller asked
for. No model logic lives here: the server's results equal the API's by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..batching import Batch, pad, plan

FILL_MASK, EMBED, SCORE = "fill-mask", "embed", "score"


@dataclass(frozen=True, eq=False)
class Job:
    """One prepared request, ready to queue.

    Attributes:
        task: ``fill-mask``, ``embed`` or ``score``.
        key: Requests with equal keys may share a batch (the task and its run options).
        prepared: The task's ``prepare`` result (``FillMaskRequest``, ``EmbedRequest``, ``ScoreRequest``).
        units: The model rows it needs, ids with specials (for scoring: one per masked copy).
        extras: Per unit, what ``run_batch`` needs besides the ids (scoring: the masked positions).
    """

    task: str
    key: tuple
    prepared: Any
    units: list[list[int]]
    extras: list[Any] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.units)

    @property
    def longest(self) -> int:
        return max((len(u) for u in self.units), default=0)


@dataclass(frozen=True)
class RunStats:
    """One ``session.run``: for the metrics."""

    rows: int
    padded_tokens: int


class Tasks:
    """The tasks of one loaded model, as the API builds them (a task the model lacks is ``None``).

    Args:
        model: A loaded :class:`~xlm_onnx.model.Model`.
        pooling: ``mean`` or ``cls`` for the embedding routes (a server setting, as in TEI).
    """

    def __init__(self, model, pooling: str = "mean") -> None:
        from ..tasks.embed import Embedder
        from ..errors import ModelFormatError
        from ..tasks.fill_mask import FillMask
        from ..tasks.score import DEFAULT_MAX_ROWS, Scorer

        self.model = model
        self.pooling = pooling
        self.score_max_rows = DEFAULT_MAX_ROWS
        built: dict[str, Any] = {}
        for name, make in ((FILL_MASK, FillMask.from_model), (EMBED, Embedder), (SCORE, Scorer)):
            try:
                built[name] = make(model)
            except ModelFormatError:  # a format-1 directory: fill-mask only
                built[name] = None
        self.fill_mask, self.embedder, self.scorer = built[FILL_MASK], built[EMBED], built[SCORE]

    @property
    def available(self) -> list[str]:
        return [n for n, t in ((FILL_MASK, self.fill_mask), (EMBED, self.embedder), (SCORE, self.scorer)) if t]

    # -- prepare: the API's validation and encoding --------------------------------------------
    def prepare(self, task: str, kwargs: dict) -> Job:
        """The task's ``prepare(**kwargs)`` as a :class:`Job` (raises the API's own errors)."""
        if task == FILL_MASK:
            request = self.fill_mask.prepare(**kwargs)
            targets = None if request.target_ids is None else tuple(request.target_ids.tolist())
            words = None if request.word_targets is None else tuple(w for w, _ in request.word_targets)
            return Job(task, (task, request.top_k, targets, words, request.lang_id), request, request.rows)
        if task == EMBED:
            request = self.embedder.prepare(pooling=self.pooling, **kwargs)
            return Job(task, (task, request.pooling, request.normalize, request.lang_id), request, request.rows)
        request = self.scorer.prepare(**kwargs)
        units = [request.rows[s] for s, _ in request.copies]
        # per_token changes only the answer's shape, not the run: not part of the key.
        return Job(task, (task, request.lang_id), request, units, [m for _, m in request.copies])

    # -- run: the task's run_batch on batches of rows of several jobs ----------------------------
    def run(self, jobs: Sequence[Job], max_rows: int, max_tokens: int,
            on_run: Callable[[RunStats], None] | None = None) -> list[Any]:
        """Runs ``jobs`` (equal keys) together; returns each job's API answer, in order.

        Rows are length-sorted and cut by :func:`~xlm_onnx.batching.plan` (rows x longest <=
        ``max_tokens``, rows <= ``max_rows``), exactly as the API's own entry points do.
        """
        owners = [(j, u) for j, job in enumerate(jobs) for u in range(job.rows)]
        units = [jobs[j].units[u] for j, u in owners]
        outputs: list[list[Any]] = [[None] * job.rows for job in jobs]
        first = jobs[0]
        if first.task == SCORE:
            max_rows = min(max_rows, self.score_max_rows)
        for group in plan([len(u) for u in units], max_rows, max_tokens):
            values = self._run_group(first, [owners[i] for i in group], jobs)
            if on_run is not None:
                on_run(RunStats(len(group), len(group) * max(len(units[i]) for i in group)))
            for i, value in zip(group, values):
                j, u = owners[i]
                outputs[j][u] = value
        return [self._finish(job, out) for job, out in zip(jobs, outputs)]

    def _run_group(self, first: Job, members: list[tuple[int, int]], jobs: Sequence[Job]) -> Sequence[Any]:
        rows = [jobs[j].units[u] for j, u in members]
        if first.task == SCORE:
            masked = [jobs[j].extras[u] for j, u in members]
            return self.scorer.run_batch(rows, masked, first.prepared.lang_id)
        ids, mask = pad(rows, self.model.manifest.pad_token_id)
        batch = Batch(tuple(range(len(rows))), ids, mask)
        if first.task == FILL_MASK:
            p = first.prepared
            if p.word_targets is not None:  # whole-word targets: their own masked copies, per row
                from ..tasks.whole_word import WholeWordTargets

                return WholeWordTargets(self.model)(rows, p.word_targets, p.top_k, p.lang_id)
            return self.fill_mask.run_batch(batch, p.top_k, p.target_ids, p.lang_id)
        p = first.prepared
        return list(self.embedder.run_batch(batch, p.pooling, p.normalize, p.lang_id))

    def _finish(self, job: Job, outputs: list[Any]) -> Any:
        """The API's answer for one job from its rows' outputs (input order)."""
        p = job.prepared
        if job.task == SCORE:
            return self.scorer.finish(p, outputs)
        if job.task == EMBED:
            stacked = np.stack(outputs).astype(np.float32, copy=False)
            return stacked[0] if p.single else stacked
        return outputs[0] if p.single else outputs
