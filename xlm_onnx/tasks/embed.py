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
from ..limits import enforce, embed_cost
from ..inputs import require_bool, one_of, positive_int, text_list
from ..batching import DEFAULT_MAX_TOKENS
from .base import Prepared, Task, Unit, run_all
from ..pooling import POOLINGS, pool  # noqa: F401  (pool: public here since it was defined here)
from .params import TEXT, Param, Params

#: The options of an embedding request (the only place their defaults are written).
PARAMS = Params(
    Param("pooling", str, "mean", "mean of every token, or the <s> token's state", choices=POOLINGS),
    Param("normalize", bool, False, "unit-length vectors"),
) + TEXT
_D = PARAMS.defaults()


@dataclass(frozen=True)
class EmbedOptions:
    """The options of an embedding request (:meth:`Embedder.options`).

    Attributes:
        pooling: ``mean`` or ``cls``.
        normalize: Unit-length rows.
        lang_id: The ``langs`` value (-1: none).
        truncation: Cut texts over the model's maximum.
    """

    pooling: str
    normalize: bool
    lang_id: int
    truncation: bool = False


class Embedder(Task):
    """Sentence embeddings (see the module docstring) over a loaded model with the
    ``last_hidden_state`` head (format 2); built as every :class:`~xlm_onnx.tasks.base.Task` is."""

    name = "embed"
    head = fmt.HEAD_HIDDEN
    purpose = "embeddings"
    batch_rows = 32
    params = PARAMS
    array_field = "embedding"
    summary = "sentence embeddings (mean or <s> pooling of the last hidden state)"

    def embed(self, inputs: str | Sequence[str], pooling: str = _D["pooling"], normalize: bool = _D["normalize"],
              batch_size: int = 32, lang: str | None = _D["lang"], truncation: bool = _D["truncation"],
              max_tokens: int | None = DEFAULT_MAX_TOKENS) -> np.ndarray:
        """Embeds ``inputs``: float32 ``[n, dim]`` in input order (``[dim]`` for one str).

        Args:
            inputs: A text or a list of texts.
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
        return run_all([self.prepare(inputs, pooling, normalize, lang, truncation)], batch_size, max_tokens)[0]

    def prepare(self, inputs: str | Sequence[str], pooling: str = _D["pooling"], normalize: bool = _D["normalize"],
                lang: str | None = _D["lang"], truncation: bool = _D["truncation"]) -> Prepared:
        """Validates and encodes a request: the first step of :meth:`embed` (arguments and errors
        are its own)."""
        return self.encode(inputs, self.options(pooling, normalize, lang, truncation))

    def options(self, pooling: str = _D["pooling"], normalize: bool = _D["normalize"], lang: str | None = _D["lang"],
                truncation: bool = _D["truncation"]) -> EmbedOptions:
        one_of("pooling", pooling, POOLINGS)
        require_bool("normalize", normalize)
        return EmbedOptions(pooling, normalize, self.model.lang_id(lang), truncation)

    def encode(self, inputs: str | Sequence[str], options: EmbedOptions) -> Prepared:
        items, single = text_list(inputs, "inputs")
        rows = self.model.encode(items, options.truncation)
        dim = int(self.model.manifest.source.get("config", {}).get("emb_dim", 0))
        cost = enforce(self.request_limits, embed_cost(rows, dim))
        return Prepared(self, [Unit(ids) for ids in rows], self.batch_key(options), single, cost=cost)

    def batch_key(self, options: EmbedOptions) -> EmbedOptions:
        return EmbedOptions(options.pooling, options.normalize, options.lang_id)  # truncation acts before

    def run_batch(self, units: Sequence[Unit], key: EmbedOptions) -> np.ndarray:
        """Runs one padded batch and pools it: float32 ``[rows, dim]`` in unit order."""
        batch = self.pad([u.ids for u in units])
        (hidden,) = self.model.run([fmt.LAST_HIDDEN_STATE], batch, key.lang_id)
        return pool(hidden, batch.attention_mask, key.pooling, key.normalize)

    def finish(self, prepared: Prepared, outputs: list) -> np.ndarray:
        stacked = np.stack(outputs).astype(np.float32, copy=False)
        return stacked[0] if prepared.single else stacked

    def fields(self, answer: np.ndarray) -> dict:
        return {"embedding": answer.tolist()}

    def show(self, text: str, answer: np.ndarray) -> str:
        head = " ".join(f"{x:+.4f}" for x in answer[:4])
        return f"[{head} ...] dim {len(answer)}, norm {np.linalg.norm(answer):.4f}  {text}\n"
