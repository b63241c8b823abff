"""``Embedder``: sentence embeddings from the encoder's last hidden state (format 2).

Each batch: prepare (tokenize, length-sort, pad) → run (``last_hidden_state``) → decode (pool)::

    last_hidden_state [b, s, d] ─×attention_mask─Sum(s)─÷tokens─► mean   [b, d]
                                └─[:, 0]─────────────────────► cls    [b, d]   (the <s> row)
                                          (normalize) ─÷‖·‖₂──► float32 rows, input order

Mean pooling is sentence-transformers' and TEI's: every non-padding position, ``<s>`` and
``</s>`` included. The graph's padded rows hold garbage (the export leaves out XLM's zeroing of
padding, see ``xlm_onnx_export.modeling``), so the mask is what keeps them out. Pooling is done
here rather than in the graph so both poolings (and token-level states) come from one output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import format as fmt
from .._checks import check_bool, positive_int, text_list
from ..batching import DEFAULT_MAX_TOKENS, Batch, batches
from ..model import Model, ModelTask

POOLINGS = ("mean", "cls")


def pool(hidden: np.ndarray, attention_mask: np.ndarray, pooling: str = "mean", normalize: bool = False
         ) -> np.ndarray:
    """Pools ``hidden`` ``[b, s, d]`` over each row's tokens into float32 ``[b, d]``.

    Args:
        hidden: The graph's ``last_hidden_state``.
        attention_mask: 1 for tokens, 0 for right padding.
        pooling: ``mean`` (every token, specials included) or ``cls`` (the first, ``<s>``).
        normalize: Scale each row to unit L2 norm.
    """
    if pooling == "mean":
        weights = attention_mask[:, :, None].astype(np.float32)
        # Accumulate in float64: the sum of 512 rows must not lose the last digits of fp32.
        pooled = (hidden.astype(np.float64) * weights).sum(axis=1) / weights.sum(axis=1)
    elif pooling == "cls":
        pooled = hidden[:, 0, :].astype(np.float64)
    else:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
    if normalize:
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled.astype(np.float32)


@dataclass(frozen=True)
class EmbedRequest:
    """A validated, encoded embedding request (:meth:`Embedder.prepare`), ready to batch.

    Attributes:
        rows: Ids with specials of each text, in input order.
        pooling: ``mean`` or ``cls``.
        normalize: Unit-length rows.
        lang_id: The ``langs`` value (-1: none).
        single: The caller gave one str (``[dim]``, not ``[n, dim]``).
    """

    rows: list[list[int]]
    pooling: str
    normalize: bool
    lang_id: int
    single: bool


class Embedder(ModelTask):
    """Sentence embeddings over a loaded model (see the module docstring).

    Args:
        model: A :class:`~xlm_onnx.model.Model` of format 2 (shared with other tasks).

    Raises:
        ModelFormatError: The directory has no ``last_hidden_state`` output (format 1): re-export.
    """

    def __init__(self, model: Model) -> None:
        model.manifest.require_head(fmt.HEAD_HIDDEN, "embeddings")
        self.model = model

    def embed(self, texts: str | Sequence[str], pooling: str = "mean", normalize: bool = False,
              batch_size: int = 32, lang: str | None = None, truncation: bool = False,
              max_tokens: int | None = DEFAULT_MAX_TOKENS) -> np.ndarray:
        """Embeds ``texts``: float32 ``[n, dim]`` in input order (``[dim]`` for one str).

        Args:
            texts: A text or a list of texts.
            pooling: ``mean`` or ``cls`` (see :func:`pool`).
            normalize: Unit-length rows (cosine similarity is then a dot product).
            batch_size: Most texts per ``session.run`` (texts are length-sorted first).
            lang: Language code for models with language embeddings (``None``: none).
            truncation: Cut texts longer than the model's maximum instead of raising.
            max_tokens: Token budget per run (rows x longest); ``None``: rows only.

        Raises:
            TypeError, InputError, ValueError: Malformed texts or options, naming the problem.
        """
        positive_int("batch_size", batch_size)
        positive_int("max_tokens", max_tokens, allow_none=True)
        request = self.prepare(texts, pooling, normalize, lang, truncation)
        rows = request.rows
        out: np.ndarray | None = None
        for batch in batches(rows, self.model.manifest.pad_token_id, batch_size, max_tokens):
            pooled = self.run_batch(batch, request.pooling, request.normalize, request.lang_id)
            if out is None:
                out = np.empty((len(rows), pooled.shape[1]), dtype=np.float32)
            out[list(batch.indices)] = pooled
        return out[0] if request.single else out

    def prepare(self, texts: str | Sequence[str], pooling: str = "mean", normalize: bool = False,
                lang: str | None = None, truncation: bool = False) -> EmbedRequest:
        """Validates and encodes a request: the first step of :meth:`embed` (arguments and errors
        are its own). Then :meth:`run_batch` on batches of its rows."""
        items, single = text_list(texts, "texts")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        check_bool("normalize", normalize)
        lang_id = self.model.lang_id(lang)
        return EmbedRequest(self.model.encode(items, truncation), pooling, normalize, lang_id, single)

    def run_batch(self, batch: Batch, pooling: str = "mean", normalize: bool = False, lang_id: int = -1
                  ) -> np.ndarray:
        """Runs one padded batch and pools it: float32 ``[rows, dim]`` in batch order."""
        (hidden,) = self.model.run([fmt.LAST_HIDDEN_STATE], batch, lang_id)
        return pool(hidden, batch.attention_mask, pooling, normalize)
