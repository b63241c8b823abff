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
head (format 2) in batches bounded like :class:`~xlm_onnx.tasks.score.Scorer`'s.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import format as fmt
from ..batching import plan
from ..errors import InputError
from ..model import Model
from .fill_mask_inputs import target_words
from .score import DEFAULT_MAX_ROWS, Scorer


def target_pieces(model: Model, targets: str | Sequence[str]) -> list[tuple[str, tuple[int, ...]]]:
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


def check_fit(rows: list[list[int]], targets: list[tuple[str, tuple[int, ...]]], max_positions: int) -> None:
    """Refuses, before any run, a text whose mask cannot hold the longest target at the length limit.

    Raises:
        InputError: Naming the input (``index`` set).
    """
    longest = max(len(pieces) for _, pieces in targets) - 1  # the pieces replace one mask
    for index, ids in enumerate(rows):
        if len(ids) + longest > max_positions:
            raise InputError(f"inputs[{index}] is {len(ids)} tokens long; with a target of {longest + 1} pieces "
                             f"in its mask it exceeds the model's {max_positions}", index)


class WholeWordTargets:
    """Scores target words in the masked slots of fill-mask requests (see the module docstring)."""

    def __init__(self, model: Model) -> None:
        model.manifest.require_head(fmt.HEAD_LABEL_LOG_PROBS, "whole-word targets")  # format 2
        self.model = model
        self.scorer = Scorer(model)

    def __call__(self, rows: list[list[int]], targets: list[tuple[str, tuple[int, ...]]], top_k: int,
                 lang_id: int = -1) -> list:
        """Pipeline-shaped results for ``rows`` (ids with specials and at least one mask, checked
        by :func:`check_fit`, as :meth:`FillMask.prepare <xlm_onnx.FillMask.prepare>` does)."""
        mask_id = self.model.manifest.mask_token_id
        slots = [(r, p) for r, ids in enumerate(rows) for p, t in enumerate(ids) if t == mask_id]
        filled, copies = [], []  # one filled row per (slot, target); one copy per piece of it
        for r, p in slots:
            for _, pieces in targets:
                filled.append(rows[r][:p] + list(pieces) + rows[r][p + 1:])
                copies += [(len(filled) - 1, range(p + j, p + len(pieces))) for j in range(len(pieces))]
        log_probs = np.zeros(len(filled), dtype=np.float64)
        for group in plan([len(filled[f]) for f, _ in copies], DEFAULT_MAX_ROWS, None):
            got = self.scorer.run_batch([filled[copies[c][0]] for c in group], [copies[c][1] for c in group],
                                        lang_id)
            np.add.at(log_probs, [copies[c][0] for c in group], got.astype(np.float64))
        return self._decode(rows, slots, targets, filled, log_probs, top_k)

    def _decode(self, rows, slots, targets, filled, log_probs, top_k: int) -> list:
        tok, pad = self.model.tokenizer, self.model.manifest.pad_token_id
        per_row: list[list] = [[] for _ in rows]
        for s, (r, p) in enumerate(slots):
            base = s * len(targets)
            order = sorted(range(len(targets)), key=lambda t: -log_probs[base + t])[:top_k]
            single = sum(1 for rr, _ in slots if rr == r) == 1
            per_row[r].append([{
                "score": float(np.exp(log_probs[base + t])),
                "token": list(targets[t][1]),
                "token_str": tok.decode(list(targets[t][1])),
                "sequence": tok.decode([i for i in filled[base + t] if i != pad], skip_special_tokens=single),
            } for t in order])
        return [props[0] if len(props) == 1 else props for props in per_row]

