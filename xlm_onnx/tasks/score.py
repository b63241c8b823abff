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
from ..limits import enforce, score_cost
from ..inputs import require_bool, one_of, positive_int, text_list
from ..batching import DEFAULT_MAX_TOKENS, Batch, pad
from ..model import Model
from .base import Prepared, Task, Unit, run_all
from .params import TEXT, Param, Params

#: PLL variants: Salazar et al.'s, and Kauf & Ivanova's within-word left-to-right.
METRICS = ("original", "word_l2r")
#: The options of a scoring request (the only place their defaults are written).
PARAMS = Params(
    Param("metric", str, "original", "word_l2r also masks the later pieces of the scored piece's word "
          "(Kauf & Ivanova)", choices=METRICS),
    Param("per_token", bool, False, "add tokens, token_ids and token_log_probs"),
) + TEXT
_D = PARAMS.defaults()

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
class ScoreOptions:
    """The options of a scoring request (:meth:`Scorer.options`): ``metric``, ``per_token``,
    ``lang`` as its id, ``truncation``."""

    metric: str
    per_token: bool
    lang_id: int
    truncation: bool


@dataclass(frozen=True)
class LabelRun:
    """The run key of masked copies (scoring, whole-word targets): only the language differs a run."""

    lang_id: int


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


def masked_log_probs(model: Model, units: Sequence[Unit], lang_id: int = -1) -> np.ndarray:
    """One run of masked copies: unit ``i`` with the positions ``units[i].extra`` (a range) masked;
    log p(original token) at the range's first position, float32, one per unit."""
    ids, attention = pad([u.ids for u in units], model.manifest.pad_token_id)
    original = ids.copy()
    for i, unit in enumerate(units):
        ids[i, unit.extra.start:unit.extra.stop] = model.manifest.mask_token_id
    batch = Batch(ids, attention)
    labels = original[ids == model.manifest.mask_token_id]  # row-major, the graph's mask order
    positions, log_probs = model.run([fmt.MASK_POSITIONS, fmt.LABEL_LOG_PROBS], batch, lang_id, label_ids=labels)
    lookup = {(int(r), int(c)): i for i, (r, c) in enumerate(positions.tolist())}
    return log_probs[[lookup[(i, u.extra.start)] for i, u in enumerate(units)]]


class Scorer(Task):
    """Pseudo-log-likelihood scoring (see the module docstring) over a loaded model with the
    ``label_log_probs`` head (format 2); built as every :class:`~xlm_onnx.tasks.base.Task` is."""

    name = "score"
    head = fmt.HEAD_LABEL_LOG_PROBS
    purpose = "pseudo-log-likelihood scoring"
    rows_cap = DEFAULT_MAX_ROWS
    params = PARAMS
    summary = "pseudo-log-likelihood of each sentence (higher: more likely)"

    def __init__(self, model: Model) -> None:
        super().__init__(model)
        tok = model.tokenizer
        self._specials = set(tok.all_special_tokens) | set(tok._added_encoder)  # added tokens are words too

    def score(self, inputs: str | Sequence[str], metric: str = _D["metric"], per_token: bool = _D["per_token"],
              lang: str | None = _D["lang"], truncation: bool = _D["truncation"], max_tokens: int | None = DEFAULT_MAX_TOKENS):
        """PLL of each text.

        Args:
            inputs: A text or a list of texts.
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
        return run_all([self.prepare(inputs, metric, per_token, lang, truncation)], None, max_tokens)[0]

    def prepare(self, inputs: str | Sequence[str], metric: str = _D["metric"], per_token: bool = _D["per_token"],
                lang: str | None = _D["lang"], truncation: bool = _D["truncation"]) -> Prepared:
        """Validates and encodes a request, one :class:`~xlm_onnx.tasks.base.Unit` per masked copy:
        the first step of :meth:`score` (arguments and errors are its own)."""
        return self.encode(inputs, self.options(metric, per_token, lang, truncation))

    def options(self, metric: str = _D["metric"], per_token: bool = _D["per_token"], lang: str | None = _D["lang"],
                truncation: bool = _D["truncation"]) -> ScoreOptions:
        one_of("metric", metric, METRICS)
        require_bool("per_token", per_token)
        return ScoreOptions(metric, per_token, self.model.lang_id(lang), truncation)

    def encode(self, inputs: str | Sequence[str], options: ScoreOptions) -> Prepared:
        items, single = text_list(inputs, "inputs")
        rows = self.model.encode(items, options.truncation)
        units = [Unit(ids, m) for s, ids in enumerate(rows)
                 for m in mask_sets(ids, self._pieces(items[s], ids), self._specials, options.metric)]
        cost = enforce(self.request_limits, score_cost(rows, len(units), options.per_token))
        return Prepared(self, units, self.batch_key(options), single, (rows, options.per_token), cost)

    def batch_key(self, options: ScoreOptions) -> LabelRun:
        return LabelRun(options.lang_id)  # metric and per_token shape the copies and the answer, not the run

    def run_batch(self, units: Sequence[Unit], key: LabelRun) -> np.ndarray:
        """One run of masked copies (:func:`masked_log_probs`)."""
        return masked_log_probs(self.model, units, key.lang_id)

    def finish(self, prepared: Prepared, outputs: list):
        """The answer of :meth:`score` from each copy's log-prob (in unit order)."""
        rows, per_token = prepared.state
        starts = np.cumsum([0] + [max(len(ids) - 2, 0) for ids in rows])  # copy j of a text scores position 1 + j
        values = np.asarray(outputs, dtype=np.float32)
        results = [self.decode(ids, values[starts[s]:starts[s + 1]]) for s, ids in enumerate(rows)]
        if per_token:
            return results[0] if prepared.single else results
        sums = np.array([r.score for r in results], dtype=np.float64)
        return float(sums[0]) if prepared.single else sums

    def fields(self, answer) -> dict:
        if isinstance(answer, PLLScore):
            return {"score": answer.score, "tokens": list(answer.tokens), "token_ids": list(answer.token_ids),
                    "token_log_probs": list(answer.token_log_probs)}
        return {"score": float(answer)}

    def show(self, text: str, answer) -> str:
        return f"{self.fields(answer)['score']:12.4f}  {text}\n"

    def _pieces(self, text: str, ids: Sequence[int]) -> list[str]:
        """``<s>``, the BPE pieces of ``text`` (unknown ones still spelt, ``</w>`` kept), ``</s>``;
        cut like ``ids`` when it was truncated."""
        tok = self.model.tokenizer
        pieces = tok.tokenize(text)[: len(ids) - 2]
        if len(pieces) != len(ids) - 2:  # cannot happen with this tokenizer; never misalign
            pieces = tok.convert_ids_to_tokens(list(ids[1:-1]))
        return [tok.bos_token] + pieces + [tok.eos_token]

    def decode(self, ids: Sequence[int], log_probs: np.ndarray) -> PLLScore:
        """The :class:`PLLScore` of one row from its scored positions' log-probs."""
        inner = list(ids[1:-1])
        return PLLScore(score=float(np.sum(log_probs, dtype=np.float64)),
                        tokens=tuple(self.model.tokenizer.convert_ids_to_tokens(inner)),
                        token_ids=tuple(int(i) for i in inner),
                        token_log_probs=tuple(float(x) for x in log_probs))
