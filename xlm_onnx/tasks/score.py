"""``Scorer``: pseudo-log-likelihood (PLL) of sentences (Salazar et al., ACL 2020), format 2.

A sentence's PLL is the sum, over every token but ``<s>`` and ``</s>``, of log p(original token)
with that token masked. Each (sentence, position) is one masked copy; copies of every sentence
are length-sorted and batched under the token budget, never all at once::

    ids ─copies (one per scored position)─ plan(rows x longest <= max_tokens, rows <= max_rows)
      ─pad─► graph(label_ids = original id at every mask) ─► label_log_probs [n_masks]
      ─pick the copy's own position─ Σ per sentence ─► PLL

The graph gathers the masked rows before the vocabulary-wide matmul (``label_log_probs`` head),
so a run holds ``[masks, V]`` logits, not ``[rows, seq, V]``: ``max_rows`` bounds it.

``metric="word_l2r"`` is Kauf & Ivanova's (2023) PLL-word-l2r, minicons' ``within_word_l2r``:
when scoring a piece, the pieces to its right *within the same word* are masked too, which
removes PLL's inflated scores for words split into several pieces. XLM's BPE marks the last piece
of a word with ``</w>``; boundaries are read from the BPE pieces *before* unknown pieces become
``<unk>`` (which carries no marker), and a special or added token is a word of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import format as fmt
from ..batching import DEFAULT_MAX_TOKENS, Batch, pad, plan
from .._checks import check_bool, positive_int, text_list
from ..model import Model, ModelTask

METRICS = ("original", "word_l2r")
#: Masked copies per run: bounds the head's ``[rows, V]`` tensors (logits, probabilities,
#: log-probabilities: 3 x 64 x 200k x 4 B = 154 MB at XLM-100's vocabulary).
DEFAULT_MAX_ROWS = 64


@dataclass(frozen=True)
class PLLScore:
    """Pseudo-log-likelihood of one sentence.

    Attributes:
        score: Sum of ``token_log_probs`` (natural log).
        tokens: The scored tokens (every token but ``<s>`` and ``</s>``).
        token_ids: Their ids.
        token_log_probs: log p(token) with the token (and, for ``word_l2r``, the rest of its word)
            masked.
    """

    score: float
    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    token_log_probs: tuple[float, ...]


@dataclass(frozen=True)
class ScoreRequest:
    """A validated, encoded scoring request (:meth:`Scorer.prepare`), ready to batch.

    Attributes:
        rows: Ids with specials of each text, in input order.
        copies: The masked copies to run: ``(row index, masked positions)``; each scores the
            first position of its range.
        lang_id: The ``langs`` value (-1: none).
        per_token: Answer :class:`PLLScore` objects instead of sums.
        single: The caller gave one str.
    """

    rows: list[list[int]]
    copies: list[tuple[int, range]]
    lang_id: int
    per_token: bool
    single: bool


def word_ends(tokens: Sequence[str], specials: set[str]) -> list[int]:
    """Index of the last piece of the word each piece belongs to (``</w>`` ends a word; a special
    token is a word of its own, and ends the word before it)."""
    ends, end = [0] * len(tokens), len(tokens) - 1
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i] in specials or tokens[i].endswith("</w>") or (i + 1 < len(tokens) and tokens[i + 1] in specials):
            end = i
        ends[i] = end
    return ends


def mask_sets(ids: Sequence[int], tokens: Sequence[str], specials: set[str], metric: str) -> list[range]:
    """Positions masked in each copy of one sentence (``<s>`` and ``</s>`` are never scored);
    copy ``j`` scores position ``1 + j``, the first position of its range."""
    inner = range(1, len(ids) - 1)
    if metric == "original":
        return [range(p, p + 1) for p in inner]
    ends = word_ends([tokens[p] for p in inner], specials)
    return [range(p, 1 + 1 + ends[p - 1]) for p in inner]


class Scorer(ModelTask):
    """Pseudo-log-likelihood scoring over a loaded model (see the module docstring).

    Args:
        model: A :class:`~xlm_onnx.model.Model` of format 2 (shared with other tasks).

    Raises:
        ModelFormatError: The graph has no ``label_log_probs`` output (format 1): re-export.
    """

    def __init__(self, model: Model) -> None:
        model.manifest.require_head(fmt.HEAD_LABEL_LOG_PROBS, "pseudo-log-likelihood scoring")
        self.model = model
        tok = model.tokenizer
        self._specials = set(tok.all_special_tokens) | set(tok._added_encoder)  # added tokens are words too

    def score(self, texts: str | Sequence[str], metric: str = "original", per_token: bool = False,
              lang: str | None = None, truncation: bool = False, max_tokens: int | None = DEFAULT_MAX_TOKENS):
        """PLL of each text.

        Args:
            texts: A text or a list of texts.
            metric: ``original`` (Salazar et al.) or ``word_l2r`` (Kauf & Ivanova).
            per_token: Return :class:`PLLScore` objects (tokens and their log-probs) instead of sums.
            lang: Language code for models with language embeddings (``None``: none).
            truncation: Cut texts longer than the model's maximum instead of raising.
            max_tokens: Token budget per run (copies x length); at most :data:`DEFAULT_MAX_ROWS`
                copies per run whatever the budget.

        Returns:
            float64 ``[n]`` sums (a float for one str), or a list of :class:`PLLScore` (one for
            one str) with ``per_token``. A text of no tokens scores 0.

        Raises:
            TypeError, InputError, ValueError: Malformed texts or options, naming the problem.
        """
        positive_int("max_tokens", max_tokens, allow_none=True)
        request = self.prepare(texts, metric, per_token, lang, truncation)
        values = np.zeros(len(request.copies), dtype=np.float32)
        lengths = [len(request.rows[s]) for s, _ in request.copies]
        for group in plan(lengths, DEFAULT_MAX_ROWS, max_tokens):
            chosen = [request.copies[c] for c in group]
            values[group] = self.run_batch([request.rows[s] for s, _ in chosen], [m for _, m in chosen],
                                           request.lang_id)
        return self.finish(request, values)

    def prepare(self, texts: str | Sequence[str], metric: str = "original", per_token: bool = False,
                lang: str | None = None, truncation: bool = False) -> ScoreRequest:
        """Validates and encodes a request, and lists its masked copies: the first step of
        :meth:`score` (arguments and errors are its own). Then :meth:`run_batch` on groups of
        copies (of one or several requests), and :meth:`finish` with each copy's value."""
        items, single = text_list(texts, "texts")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
        check_bool("per_token", per_token)
        lang_id = self.model.lang_id(lang)
        rows = self.model.encode(items, truncation)
        copies = [(s, m) for s, ids in enumerate(rows)
                  for m in mask_sets(ids, self._pieces(items[s], ids), self._specials, metric)]
        return ScoreRequest(rows, copies, lang_id, per_token, single)

    def finish(self, request: ScoreRequest, copy_log_probs: Sequence[float]):
        """The answer of :meth:`score` from each copy's log-prob (in ``request.copies`` order)."""
        out = [np.zeros(max(len(ids) - 2, 0), dtype=np.float32) for ids in request.rows]
        for (s, masked), value in zip(request.copies, copy_log_probs):
            out[s][masked[0] - 1] = value
        results = [self.decode(ids, lp) for ids, lp in zip(request.rows, out)]
        if request.per_token:
            return results[0] if request.single else results
        sums = np.array([r.score for r in results], dtype=np.float64)
        return float(sums[0]) if request.single else sums

    def _pieces(self, text: str, ids: Sequence[int]) -> list[str]:
        """``<s>``, the BPE pieces of ``text`` (unknown ones still spelt, ``</w>`` kept), ``</s>``;
        cut like ``ids`` when it was truncated."""
        tok = self.model.tokenizer
        pieces = tok.tokenize(text)[: len(ids) - 2]
        if len(pieces) != len(ids) - 2:  # cannot happen with this tokenizer; never misalign
            pieces = tok.convert_ids_to_tokens(list(ids[1:-1]))
        return [tok.bos_token] + pieces + [tok.eos_token]

    def run_batch(self, rows: Sequence[Sequence[int]], masked: Sequence[range], lang_id: int = -1) -> np.ndarray:
        """One run: row ``i`` with ``masked[i]`` masked; log p(original) at ``masked[i][0]``, float32."""
        model = self.model
        ids, attention = pad(rows, model.manifest.pad_token_id)
        original = ids.copy()
        for i, positions in enumerate(masked):
            ids[i, positions.start:positions.stop] = model.manifest.mask_token_id
        batch = Batch(tuple(range(len(rows))), ids, attention)
        labels = original[ids == model.manifest.mask_token_id]  # row-major, the graph's mask order
        positions, log_probs = model.run([fmt.MASK_POSITIONS, fmt.LABEL_LOG_PROBS], batch, lang_id,
                                         label_ids=labels)
        lookup = {(int(r), int(c)): i for i, (r, c) in enumerate(positions.tolist())}
        return log_probs[[lookup[(i, m.start)] for i, m in enumerate(masked)]]

    def decode(self, ids: Sequence[int], log_probs: np.ndarray) -> PLLScore:
        """The :class:`PLLScore` of one row from its scored positions' log-probs."""
        inner = list(ids[1:-1])
        return PLLScore(score=float(np.sum(log_probs, dtype=np.float64)),
                        tokens=tuple(self.model.tokenizer.convert_ids_to_tokens(inner)),
                        token_ids=tuple(int(i) for i in inner),
                        token_log_probs=tuple(float(x) for x in log_probs))
