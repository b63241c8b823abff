"""Whole-word targets for fill-mask: each target competes as the word it is, not as one BPE piece.

``transformers``' ``targets=`` (and xlm-onnx's default) looks a target up in the vocabulary *as
spelt*: ``"monde"`` finds the word-internal piece ``monde`` (not the word-final ``monde</w>``), and
a word outside the vocabulary is replaced by its first piece (``"Paris"`` → ``Par``). Neither is
the word. With ``whole_word_targets=True`` each target is tokenized as text (``Paris`` →
``Par is</w>``), written into the masked slot, and scored by pseudo-log-likelihood with Kauf &
Ivanova's within-word left-to-right masking::

    ... la <mask> .   target "Paris" = [Par, is</w>]
      copy 1: ... la <mask> <mask> .   log p(Par  | both pieces masked)
      copy 2: ... la Par    <mask> .   log p(is</w> | Par visible)
      score = exp(sum)   — the chain rule over the word's pieces, left to right

For a single-piece target this is exactly the fill-mask probability of that piece, so one-piece
and many-piece targets are ranked on one scale. The copies run through the ``label_log_probs``
head (format 2) as units of the fill-mask request, batched like :class:`~xlm_onnx.tasks.score.Scorer`'s copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..model import Model
from .base import Unit
from .fill_mask_inputs import target_words

#: A target word and its piece ids.
Target = tuple[str, tuple[int, ...]]


def target_pieces(model: Model, targets: str | Sequence[str]) -> list[Target]:
    """Each distinct target word with its piece ids, as the tokenizer splits it in running text.

    Raises:
        TypeError: ``targets`` is not a str or a list of str.
        InputError: It is empty, or a target tokenizes to nothing.
    """
    out = []
    for word in dict.fromkeys(target_words(targets)):  # distinct, first-seen order
        ids = tuple(model.tokenizer.encode(word, add_special_tokens=False))
        if not ids:
            raise InputError(f"target {word!r} tokenizes to nothing")
        out.append((word, ids))
    return out


def check_fit(rows: list[list[int]], targets: Sequence[Target], max_positions: int) -> None:
    """Refuses, before any run, a text whose mask cannot hold the longest target at the length limit.

    Raises:
        InputError: Naming the input (``index`` set).
    """
    longest = max(len(pieces) for _, pieces in targets) - 1  # the pieces replace one mask
    for index, ids in enumerate(rows):
        if len(ids) + longest > max_positions:
            raise InputError.about("inputs", f"is {len(ids)} tokens long; with a target of {longest + 1} pieces "
                                   f"in its mask it exceeds the model's {max_positions}", index)


@dataclass(frozen=True)
class WordCopies:
    """The masked copies of a request's (mask slot, target) pairs, and what decoding them needs.

    Attributes:
        rows: The texts' ids (with their masks).
        slots: ``(row, position)`` of every mask, in text order.
        targets: The target words and their pieces.
        filled: One row per (slot, target): the target's pieces written into the slot.
        owners: Per unit, the index in ``filled`` whose log-probability it adds to.
    """

    rows: list[list[int]]
    slots: list[tuple[int, int]]
    targets: tuple[Target, ...]
    filled: list[list[int]]
    owners: list[int]


def word_units(rows: list[list[int]], targets: Sequence[Target], mask_id: int) -> tuple[list[Unit], WordCopies]:
    """One unit per piece of each target in each mask slot (the module docstring's copies): unit
    ``j`` of a target masks its pieces ``j..`` and scores piece ``j``. Rows are checked by
    :func:`check_fit` first."""
    slots = [(r, p) for r, ids in enumerate(rows) for p, t in enumerate(ids) if t == mask_id]
    filled, units, owners = [], [], []
    for r, p in slots:
        for _, pieces in targets:
            filled.append(rows[r][:p] + list(pieces) + rows[r][p + 1:])
            for j in range(len(pieces)):
                units.append(Unit(filled[-1], range(p + j, p + len(pieces))))
                owners.append(len(filled) - 1)
    return units, WordCopies(rows, slots, tuple(targets), filled, owners)


def decode(tokenizer, pad_id: int, copies: WordCopies, outputs: Sequence[float], top_k: int) -> list:
    """Pipeline-shaped results per row from each unit's log-probability (in unit order)."""
    log_probs = np.zeros(len(copies.filled), dtype=np.float64)
    np.add.at(log_probs, copies.owners, np.asarray(outputs, dtype=np.float32).astype(np.float64))
    targets, slots = copies.targets, copies.slots
    per_row: list[list] = [[] for _ in copies.rows]
    for s, (r, p) in enumerate(slots):
        base = s * len(targets)
        order = sorted(range(len(targets)), key=lambda t: -log_probs[base + t])[:top_k]
        single = sum(1 for rr, _ in slots if rr == r) == 1
        per_row[r].append([{
            "score": float(np.exp(log_probs[base + t])),
            "token": list(targets[t][1]),
            "token_str": tokenizer.decode(list(targets[t][1])),
            "sequence": tokenizer.decode([i for i in copies.filled[base + t] if i != pad_id],
                                         skip_special_tokens=single),
        } for t in order])
    return [props[0] if len(props) == 1 else props for props in per_row]
