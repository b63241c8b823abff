"""Pooling of the encoder's last hidden state into one vector per row: what sentence embeddings
(:class:`~xlm_onnx.tasks.embed.Embedder`) and the golden gate's embedding probe (:mod:`xlm_onnx.golden`)
both compute, so it lives below both."""

from __future__ import annotations

import numpy as np

from .inputs import one_of

#: Pooling of the last hidden state: the mean of every token (specials included), or the first (``<s>``).
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
    one_of("pooling", pooling, POOLINGS)
    if pooling == "mean":
        weights = attention_mask[:, :, None].astype(np.float32)
        # Accumulate in float64: the sum of 512 rows must not lose the last digits of fp32.
        pooled = (hidden.astype(np.float64) * weights).sum(axis=1) / weights.sum(axis=1)
    else:  # cls
        pooled = hidden[:, 0, :].astype(np.float64)
    if normalize:
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return pooled.astype(np.float32)
