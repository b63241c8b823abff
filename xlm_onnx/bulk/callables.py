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

The classes hold no model logic: they run the steps of :class:`~xlm_onnx.FillMask`,
:class:`~xlm_onnx.Embedder` and :class:`~xlm_onnx.Scorer` on one :class:`~xlm_onnx.Model`, so a
row's answer is what the Python API gives for that text. Every input column is kept (an ``id``
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
from typing import Any, Sequence

import numpy as np

try:
    import pyarrow as pa
except ImportError as exc:  # pragma: no cover - the [ray] extra brings it
    raise ImportError("xlm_onnx.ray needs the [ray] extra: pip install 'xlm-onnx[ray]'") from exc

from ..batching import DEFAULT_MAX_TOKENS, batches
from ..tasks.embed import Embedder
from ..errors import InputError, message_at
from ..tasks.fill_mask import FillMask
from ..model import Model
from ..tasks.fill_mask_inputs import encode_requests, resolve_targets
from ..tasks.score import Scorer

#: Column holding a row's error message (null when the row was answered).
ERROR_COLUMN = "error"
#: A one-mask text run through the API once per actor: checks the job's options, warms the session.
_PROBE = "a <special1> b"

_PREDICTION = pa.struct([("score", pa.float64()), ("token", pa.int64()), ("token_str", pa.string()),
                         ("sequence", pa.string())])


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


def row_message(exc: Exception, column: str = "text") -> str:
    """The API's message for one row, naming the column instead of ``inputs[0]``."""
    return message_at(exc, column)


class BulkTask:
    """Base of the callables: loads the model, validates rows one by one, answers the valid ones.

    Args:
        model_dir: Model directory, readable at this path on every node (``None``: the demo model
            shipped inside the package).
        text_column: The column holding the texts.
        threads: ORT intra-op threads (``None``: the actor's ``num_cpus``, see :func:`actor_threads`).
        provider: ``"cpu"``, ``"cuda"``, ``"tensorrt"`` or an ORT provider list.
        options: The task's options (see each subclass).
    """

    #: Output columns (name -> Arrow type, ``None``: built per model), set by each subclass.
    columns: dict[str, Any] = {}

    def __init__(self, model_dir: str | os.PathLike | None = None, *, text_column: str = "text",
                 threads: int | None = None, provider: Any = "cpu", **options: Any) -> None:
        self.model = Model.load(model_dir, provider=provider, threads=threads or actor_threads())
        self.text_column = text_column
        self.setup(**options)

    def setup(self, **options: Any) -> None:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def prepare(self, text: Any) -> list[int]:
        """Ids of one text, through the API's validation (raises TypeError / InputError)."""
        return self.model.encode([text], self.truncation)[0]

    def answer(self, rows: list[list[int]], texts: list[str]) -> dict[str, list]:
        """Output columns (as Python lists, in ``rows`` order) for valid rows."""
        raise NotImplementedError  # pragma: no cover

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
        valid, rows = [], []
        for i, text in enumerate(texts):
            try:
                rows.append(self.prepare(text))
                valid.append(i)
            except (TypeError, InputError) as exc:  # this row only: the API's message, the job goes on
                errors[i] = row_message(exc, self.text_column)
        answered = self.answer(rows, [texts[i] for i in valid]) if rows else {name: [] for name in self.columns}
        out = {}
        for name, values in answered.items():
            full: list = [None] * len(texts)
            for i, value in zip(valid, values):
                full[i] = value
            out[name] = self.to_array(name, full)
        out[ERROR_COLUMN] = pa.array(errors, type=pa.string())
        return out

    def to_array(self, name: str, values: list):
        """An output column (null for bad rows) with a fixed Arrow type, so every batch and file
        has one schema, even a batch of bad rows only."""
        return pa.array(values, type=self.columns[name])


class FillMaskBatch(BulkTask):
    """Fill-mask per row: ``result`` holds, per mask, the API's list of predictions.

    A text with one mask gets a one-element list (the API returns the inner list itself); each
    prediction is ``{score, token, token_str, sequence}`` as ``FillMask`` returns it.

    Options: ``top_k`` (5), ``targets``, ``lang``, ``truncation`` (False), ``batch_size`` (8,
    texts per ``session.run``), as :class:`~xlm_onnx.FillMask`.
    """

    columns = {"result": pa.list_(pa.list_(_PREDICTION))}

    def setup(self, top_k: int = 5, targets: str | Sequence[str] | None = None, lang: str | None = None,
              truncation: bool = False, batch_size: int = 8) -> None:
        self.fm = FillMask.from_model(self.model, batch_size)
        self.fm(_PROBE, top_k=top_k, targets=targets, lang=lang)  # the API's checks of the options
        self.top_k, self.truncation = int(top_k), truncation
        self.target_ids = resolve_targets(self.model.tokenizer, targets)
        self.lang_id = self.model.lang_id(lang)

    def prepare(self, text: Any) -> list[int]:
        manifest = self.model.manifest
        return encode_requests(self.model.tokenizer, [text], manifest.max_positions, self.truncation)[0].ids

    def answer(self, rows, texts):
        # FillMask.__call__'s loop: length-sorted batches of batch_size, then decode per row.
        results: list[Any] = [None] * len(rows)
        for batch in batches(rows, self.model.manifest.pad_token_id, max_rows=self.fm.batch_size, max_tokens=None):
            for i, result in zip(batch.indices, self.fm.run_batch(batch, self.top_k, self.target_ids, self.lang_id)):
                results[i] = result if result and isinstance(result[0], list) else [result]
        return {"result": results}


class EmbedBatch(BulkTask):
    """Sentence embedding per row: ``embedding``, float32 ``[dim]`` (a fixed-size list column).

    Options: ``pooling`` ("mean"), ``normalize`` (False), ``lang``, ``truncation`` (False),
    ``batch_size`` (32), ``max_tokens``, as :meth:`~xlm_onnx.Embedder.embed`.
    """

    columns = {"embedding": None}

    def setup(self, pooling: str = "mean", normalize: bool = False, lang: str | None = None,
              truncation: bool = False, batch_size: int = 32, max_tokens: int | None = DEFAULT_MAX_TOKENS) -> None:
        self.embedder = Embedder(self.model)
        probe = self.embedder.embed(_PROBE, pooling=pooling, normalize=normalize, batch_size=batch_size, lang=lang,
                                    max_tokens=max_tokens)
        self.dim = int(probe.shape[-1])
        self.pooling, self.normalize, self.truncation = pooling, normalize, truncation
        self.batch_size, self.max_tokens, self.lang_id = batch_size, max_tokens, self.model.lang_id(lang)

    def to_array(self, name: str, values: list):
        # One float32 block + a validity mask: pa.array over per-row arrays costs ~0.2 ms a row at dim 1280.
        flat = np.zeros((len(values), self.dim), dtype=np.float32)
        for i, vector in enumerate(values):
            if vector is not None:
                flat[i] = vector
        missing = pa.array([v is None for v in values], type=pa.bool_())
        return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), self.dim, mask=missing)

    def answer(self, rows, texts):
        # Embedder.embed's loop on already validated rows.
        out: list[Any] = [None] * len(rows)
        for batch in batches(rows, self.model.manifest.pad_token_id, self.batch_size, self.max_tokens):
            pooled = self.embedder.run_batch(batch, self.pooling, self.normalize, self.lang_id)
            for i, vector in zip(batch.indices, pooled):
                out[i] = vector
        return {"embedding": out}


class ScoreBatch(BulkTask):
    """Pseudo-log-likelihood per row: ``score`` (float64), with ``per_token`` also ``tokens`` and
    ``token_log_probs``.

    Options: ``metric`` ("original"), ``per_token`` (False), ``lang``, ``truncation`` (False),
    ``max_tokens``, as :meth:`~xlm_onnx.Scorer.score`.
    """

    columns = {"score": pa.float64(), "tokens": pa.list_(pa.string()), "token_log_probs": pa.list_(pa.float32())}

    def setup(self, metric: str = "original", per_token: bool = False, lang: str | None = None,
              truncation: bool = False, max_tokens: int | None = DEFAULT_MAX_TOKENS) -> None:
        self.scorer = Scorer(self.model)
        self.options = {"metric": metric, "lang": lang, "truncation": truncation, "max_tokens": max_tokens}
        self.scorer.score(_PROBE, per_token=per_token, **self.options)
        self.truncation, self.per_token = truncation, per_token
        if not per_token:
            self.columns = {"score": pa.float64()}

    def answer(self, rows, texts):
        # Rows were validated by the API's encoding; score() encodes again (noise next to one run per token).
        results = self.scorer.score(list(texts), per_token=True, **self.options)
        out = {"score": [r.score for r in results]}
        if self.per_token:
            out.update(tokens=[list(r.tokens) for r in results],
                       token_log_probs=[list(r.token_log_probs) for r in results])
        return out


#: ``xlm-onnx bulk TASK`` -> callable class.
TASKS = {"fill-mask": FillMaskBatch, "embed": EmbedBatch, "score": ScoreBatch}
