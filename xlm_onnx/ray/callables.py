"""Ray Data callables: fill-mask, embeddings and PLL scoring over ``Dataset.map_batches`` (``[ray]`` extra).

Each class is a *callable class* for Ray Data's actor pools: the model is loaded once per actor
(``__init__``), and each call answers one batch::

    import ray
    from xlm_onnx.ray import EmbedBatch

    ds = ray.data.read_parquet("corpus/")
    ds = ds.map_batches(EmbedBatch, fn_constructor_kwargs={"model_dir": "xlm100-int8", "normalize": True},
                        batch_size=256, batch_format="pyarrow", num_cpus=2,
                        compute=ray.data.ActorPoolStrategy(size=4))   # Ray 2.60: compute=, not concurrency=
    ds.write_parquet("embeddings/")

The classes hold no model logic: each row is one request of a registered task
(:mod:`xlm_onnx.tasks.registry`), and a batch's rows run through the API's own loop
(:func:`~xlm_onnx.tasks.base.run_all`) on one :class:`~xlm_onnx.Model`, so a row's answer is
what the Python API gives for that text. :class:`FillMaskBatch`, :class:`EmbedBatch` and
:class:`ScoreBatch` fix their columns' Arrow types; ``BulkTask`` with ``task="NAME"`` runs any
other registered task (its :meth:`~xlm_onnx.tasks.base.Task.fields` as columns, types inferred). Every input column is kept (an ``id``
survives); the task's columns and ``error`` are added. A bad row (not a string, no mask token,
too long without ``truncation``) is validated on its own by the API's encoding step and gets the
API's message in ``error`` (``inputs[i]`` reads ``text``), with null results; the rest of the
batch is answered. Options that concern every row (``top_k``, ``targets``, ``lang``, ...) are
checked by the API in ``__init__``, so a wrong one fails the job at once, not row by row.

ORT's intra-op threads default to the CPUs Ray assigned to the actor (``num_cpus``): ORT's own
default (one per physical core) times several actors would oversubscribe the node.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError, missing_extra

try:
    import pyarrow as pa
except ImportError as exc:  # pragma: no cover - the [ray] extra brings it
    raise missing_extra("ray", exc.name or "pyarrow", "xlm_onnx.ray") from exc

from ..inputs import positive_int
from ..model import Model, default_model_dir
from ..tasks import registry
from ..tasks.base import run_each

#: Column holding a row's error message (null when the row was answered).
ERROR_COLUMN = "error"

_PREDICTION = pa.struct([("score", pa.float64()), ("token", pa.int64()), ("token_str", pa.string()),
                         ("sequence", pa.string())])
_UNSET: Any = object()


def actor_threads() -> int | None:
    """Intra-op threads for this process: the CPUs Ray assigned to it (rounded, at least 1).

    ``None`` outside a Ray worker, or where Ray assigned no CPU (ORT then picks, as the API does).
    """
    try:
        import ray

        if not ray.is_initialized():
            return None
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # not a worker of a cluster we can ask: keep ORT's default
        return None
    return max(1, round(cpus)) if cpus else None


def row_message(exc: InputError, column: str = "text") -> str:
    """The API's message for one row, naming the column instead of ``inputs[0]``."""
    return exc.say(column)


class BulkTask:
    """Loads the model, validates rows one by one, answers the valid ones (see the module docstring).

    Args:
        model_dir: Model directory, readable at this path on every node (``None``: the task's embedded
            model, ``Task.default_model``).
        task: The registered task's name (set by each subclass).
        text_column: The column holding the texts.
        threads: ORT intra-op threads (``None``: the actor's ``num_cpus``, see :func:`actor_threads`).
        provider: ``"cpu"``, ``"cuda"``, ``"tensorrt"`` or an ORT provider list.
        options: The task's options (its Python API's), and ``batch_size`` / ``max_tokens``: rows
            and padded tokens per ``session.run`` (default: the API's).
    """

    #: The registered task this class runs (``None``: given as ``task=``).
    task: ClassVar[str | None] = None
    #: Output columns with a fixed Arrow type (the others' types are inferred from the values).
    columns: ClassVar[dict[str, Any]] = {}

    def __init__(self, model_dir: str | os.PathLike | None = None, *, task: str | None = None,
                 text_column: str = "text", threads: int | None = None, provider: Any = "cpu",
                 **options: Any) -> None:
        name = task or self.task
        if name is None:
            raise TypeError(f"{type(self).__name__} needs task=NAME (one of {', '.join(registry.names())})")
        cls = registry.task_class(name)
        path = default_model_dir(cls.default_model) if model_dir is None else model_dir  # the task's own default
        self.runner = cls(Model.load(path, provider=provider, threads=threads or actor_threads()))
        self.model = self.runner.model
        self.text_column = text_column
        max_rows, max_tokens = options.pop("batch_size", _UNSET), options.pop("max_tokens", _UNSET)
        self.options = self.runner.options(**options)  # the API's checks: a wrong option fails the job at once
        default_rows, default_tokens = self.runner.run_size(self.runner.batch_key(self.options))
        self.max_rows = default_rows if max_rows is _UNSET else max_rows
        self.max_tokens = default_tokens if max_tokens is _UNSET else max_tokens
        positive_int("batch_size", self.max_rows, allow_none=True)
        positive_int("max_tokens", self.max_tokens, allow_none=True)
        # One text every model accepts, through the whole path: warms the session, fixes the columns.
        self.probe = self.runner.answer(self.runner.encode(self.runner.probe, self.options))
        self.names = list(self.columns) if self.columns else list(self.row(self.probe))
        # Types of the columns the class does not fix, from the probe's answer: every batch and
        # file of the job then has one schema, a batch of bad rows only included.
        self.types = {name: pa.array([value]).type for name, value in self.row(self.probe).items()}

    def row(self, answer: Any) -> dict[str, Any]:
        """One answered row's columns (default: the task's :meth:`~xlm_onnx.tasks.base.Task.fields`)."""
        return self.runner.fields(answer)

    def __call__(self, batch):
        """Answers one ``pyarrow.Table`` or ``pandas.DataFrame`` batch (the same type comes back)."""
        arrow = isinstance(batch, pa.Table)
        names = batch.column_names if arrow else [str(c) for c in batch.columns]
        if self.text_column not in names:
            raise ValueError(f"batch has no {self.text_column!r} column (columns: {', '.join(names)}); "
                             "pass text_column=")
        # pandas: read the Python values themselves (an object column may mix str and other types).
        texts = batch.column(self.text_column).to_pylist() if arrow else batch[self.text_column].tolist()
        outputs = self.outputs(texts)
        if arrow:  # an input column named like an output is replaced, not duplicated
            batch = batch.drop_columns([n for n in outputs if n in names])
            for name, array in outputs.items():
                batch = batch.append_column(name, array)
            return batch
        frame = batch.copy()  # Ray's zero-copy batches are read-only
        import pandas as pd

        for name, array in outputs.items():
            # Arrow-backed columns: the Arrow type (and its nulls) survive the way back to Ray's blocks;
            # numpy cells would make a batch with a bad row an object column and one without a tensor column.
            frame[name] = pd.Series(pd.arrays.ArrowExtensionArray(array), index=frame.index)
        return frame

    def outputs(self, texts: list) -> dict[str, Any]:
        """The task's columns and ``error`` for ``texts``, as Arrow arrays (null for bad rows)."""
        errors: list[str | None] = [None] * len(texts)
        out = {}
        full: dict[str, list] = {name: [None] * len(texts) for name in self.names}
        # One request per row (a bad row gets the API's message, the others are answered); all
        # rows' units planned together.
        for i, answer in enumerate(run_each(self.runner, texts, self.options, self.max_rows, self.max_tokens)):
            if isinstance(answer, InputError):
                if answer.index is None:  # the whole job's options, not the row
                    raise answer
                errors[i] = row_message(answer, self.text_column)
                continue
            for name, value in self.row(answer).items():
                full[name][i] = value
        for name, values in full.items():
            out[name] = self.to_array(name, values)
        out[ERROR_COLUMN] = pa.array(errors, type=pa.string())
        return out

    def to_array(self, name: str, values: list):
        """An output column (null for bad rows) with a fixed Arrow type where the class sets one, so
        every batch and file has one schema, even a batch of bad rows only."""
        return pa.array(values, type=self.columns.get(name) or self.types.get(name))


class FillMaskBatch(BulkTask):
    """Fill-mask per row: ``result`` holds, per mask, the API's list of predictions.

    A text with one mask gets a one-element list (the API returns the inner list itself); each
    prediction is ``{score, token, token_str, sequence}`` as ``FillMask`` returns it.

    Options: ``top_k`` (5), ``targets``, ``lang``, ``truncation`` (False), ``batch_size`` (8,
    texts per ``session.run``), as :class:`~xlm_onnx.FillMask`.
    """

    task = "fill-mask"
    columns = {"result": pa.list_(pa.list_(_PREDICTION))}

    def __init__(self, model_dir: str | os.PathLike | None = None, **kwargs: Any) -> None:
        if kwargs.get("whole_word_targets"):  # a prediction's token is then a list: not this column's type
            raise ValueError("FillMaskBatch does not take whole_word_targets (its result column holds one "
                             "token id per prediction)")
        super().__init__(model_dir, **kwargs)

    def row(self, answer: Any) -> dict[str, Any]:
        return {"result": answer if answer and isinstance(answer[0], list) else [answer]}


class EmbedBatch(BulkTask):
    """Sentence embedding per row: ``embedding``, float32 ``[dim]`` (a fixed-size list column).

    Options: ``pooling`` ("mean"), ``normalize`` (False), ``lang``, ``truncation`` (False),
    ``batch_size`` (32), ``max_tokens``, as :meth:`~xlm_onnx.Embedder.embed`.
    """

    task = "embed"
    columns = {"embedding": None}

    def __init__(self, model_dir: str | os.PathLike | None = None, **kwargs: Any) -> None:
        super().__init__(model_dir, **kwargs)
        self.dim = int(self.probe.shape[-1])

    def row(self, answer: Any) -> dict[str, Any]:
        return {"embedding": answer}  # the vector itself: to_array packs the rows into one block

    def to_array(self, name: str, values: list):
        # One float32 block + a validity mask: pa.array over per-row arrays costs ~0.2 ms a row at dim 1280.
        flat = np.zeros((len(values), self.dim), dtype=np.float32)
        for i, vector in enumerate(values):
            if vector is not None:
                flat[i] = vector
        missing = pa.array([v is None for v in values], type=pa.bool_())
        return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), self.dim, mask=missing)


class ScoreBatch(BulkTask):
    """Pseudo-log-likelihood per row: ``score`` (float64), with ``per_token`` also ``tokens`` and
    ``token_log_probs``.

    Options: ``metric`` ("original"), ``per_token`` (False), ``lang``, ``truncation`` (False),
    ``max_tokens``, as :meth:`~xlm_onnx.Scorer.score`.
    """

    task = "score"
    columns = {"score": pa.float64(), "tokens": pa.list_(pa.string()), "token_ids": pa.list_(pa.int64()),
               "token_log_probs": pa.list_(pa.float32())}

    def __init__(self, model_dir: str | os.PathLike | None = None, **kwargs: Any) -> None:
        super().__init__(model_dir, **kwargs)
        if not self.options.per_token:
            self.names = ["score"]


_ENTITY = pa.struct([("entity_group", pa.string()), ("entity", pa.string()), ("score", pa.float64()),
                     ("index", pa.int64()), ("word", pa.string()), ("start", pa.int64()), ("end", pa.int64())])
_ANSWER = pa.struct([("score", pa.float64()), ("start", pa.int64()), ("end", pa.int64()), ("answer", pa.string())])


class TokenClassificationBatch(BulkTask):
    """Entities per row: ``entities``, a list of ``{entity_group | entity (+ index), score, word,
    start, end}`` as :class:`~xlm_onnx.tasks.token_classification.TokenClassifier` returns them
    (one struct type for every strategy: the fields a strategy does not give are null).

    Options: ``aggregation_strategy`` ("none"), ``ignore_labels`` (["O"]), ``stride``, ``lang``, ``truncation``.
    """

    task = "token-classification"
    columns = {"entities": pa.list_(_ENTITY)}


class QuestionAnsweringBatch(BulkTask):
    """Answers per row, the row's text being a question asked of the ``context`` option:
    ``answers``, a list of ``{score, start, end, answer}`` (``top_k`` of them).

    Options: ``context`` (required here), ``top_k`` (1), ``doc_stride``, ``max_answer_len``,
    ``max_seq_len``, ``handle_impossible_answer``, ``lang``, as
    :class:`~xlm_onnx.tasks.question_answering.QuestionAnswerer`.
    """

    task = "question-answering"
    columns = {"answers": pa.list_(_ANSWER)}

    def row(self, answer: Any) -> dict[str, Any]:
        return {"answers": [answer] if isinstance(answer, dict) else answer}


#: ``xlm-onnx bulk TASK`` -> the callable class with fixed column types (other tasks: ``BulkTask``).
TASKS = {cls.task: cls for cls in (FillMaskBatch, EmbedBatch, ScoreBatch, TokenClassificationBatch,
                                   QuestionAnsweringBatch)}
