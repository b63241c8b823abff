"""Length-sorted, right-padded batches under a token budget: the only place input arrays are built.

Every task (through :func:`xlm_onnx.tasks.base.run_all`), the tokenizer's ``encode_batch``, the
exporter's probes and the benchmarks pad here::

    rows (ids with specials, any order)
      ─ sort by length (stable) ─ cut where rows x longest > max_tokens or rows > max_rows
      ─ right-pad with pad_id ─► Batch(input_ids [r, w], attention_mask [r, w])

Right padding is what ORT's fused ``Attention`` mask index expects, and length sorting keeps the
padded cost (rows x longest, what a padded backend computes) close to the real token count, as
TEI's queue and sentence-transformers' ``encode`` do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .inputs import positive_int

#: Padded tokens (rows x longest) per ``session.run`` unless a task says otherwise: 32 rows of
#: 256 tokens. At XLM-100's width an fp32 forward pass holds a few hundred MB at this size.
DEFAULT_MAX_TOKENS = 8192


@dataclass(frozen=True)
class Batch:
    """Right-padded rows ready for the graph.

    Attributes:
        input_ids: int64 ``[rows, width]``, padded with the model's pad id.
        attention_mask: int64 ``[rows, width]``: 1 for tokens, 0 for padding.
    """

    input_ids: np.ndarray
    attention_mask: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per row, specials included."""
        return self.attention_mask.sum(axis=1)


def pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pads ``rows`` into int64 ``(input_ids, attention_mask)`` of width = the longest row."""
    width = max((len(r) for r in rows), default=0)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


def plan(lengths: Sequence[int], max_rows: int | None = None, max_tokens: int | None = DEFAULT_MAX_TOKENS
         ) -> list[list[int]]:
    """Groups row indices into batches, shortest first.

    A batch grows while ``rows <= max_rows`` and ``rows x longest <= max_tokens`` (``None``: no
    limit); a single row longer than ``max_tokens`` still gets a batch of its own.

    Raises:
        ValueError: ``max_rows`` or ``max_tokens`` is not a positive int or ``None``.
    """
    positive_int("max_rows", max_rows, allow_none=True)
    positive_int("max_tokens", max_tokens, allow_none=True)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])  # stable: ties keep input order
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        rows, longest = len(current) + 1, lengths[i]  # sorted, so the newcomer is the longest
        if current and ((max_rows is not None and rows > max_rows)
                        or (max_tokens is not None and rows * longest > max_tokens)):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches

