"""``FillMask``: the torch-free fill-mask runtime (HF ``pipeline("fill-mask")`` results)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Iterable, Sequence

import numpy as np

from .. import format as fmt
from ..inputs import require_bool, positive_int, text_list
from ..errors import InputError, InputTypeError
from ..limits import enforce, fill_mask_cost
from ..model import Model, default_model_dir  # noqa: F401  (default_model_dir: public here since v0.1)
from ..session import ProviderSpec
from .base import Prepared, Task, Unit
from .fill_mask_inputs import encode_requests, resolve_targets
from .params import CLI, JSON, TEXT, Param, Params
from .pipeline_options import truncation_of
from .score import DEFAULT_MAX_ROWS, LabelRun, masked_log_probs
from .whole_word import Target, check_fit, decode, target_pieces, word_units


#: The options of a fill-mask request (the only place their defaults are written).
PARAMS = Params(
    # No minimum here: the API checks 1 <= top_k <= the vocabulary size, which only the model knows.
    Param("top_k", int, 5, "predictions per mask", metavar="K"),
    Param("targets", list, None, "score only this word; repeat for several (outside the vocabulary: its first "
          "BPE piece)", flag="--target", metavar="WORD", csv_flag="--targets"),
    # Not in bulk jobs: a prediction's token is then a list of ids, which the bulk column's type cannot hold.
    Param("whole_word_targets", bool, False, "score each target as the whole word (all its pieces, by PLL), "
          "not one piece", flag="--whole-word", fronts=frozenset({CLI, JSON})),
) + TEXT
_D = PARAMS.defaults()
#: Predictions per mask when ``top_k`` is not given (or is ``None``), as in transformers.
DEFAULT_TOP_K = _D["top_k"]


@dataclass(frozen=True)
class FillMaskOptions:
    """The options of a fill-mask request (:meth:`FillMask.options`), validated and resolved.

    Attributes:
        top_k: Predictions per mask.
        target_ids: Sorted unique target ids, or ``None``.
        word_targets: With ``whole_word_targets``: each target word and its pieces (``target_ids``
            is then ``None``).
        lang_id: The ``langs`` value (-1: none).
        truncation: Cut texts over the model's maximum.
        max_length: With ``truncation``, cut at this many ids instead when fewer (transformers'
            ``tokenizer_kwargs``).
    """

    top_k: int
    target_ids: tuple[int, ...] | None
    word_targets: tuple[Target, ...] | None
    lang_id: int
    truncation: bool
    max_length: int | None = None


@dataclass(frozen=True)
class TopK:
    """The run key of fill-mask rows: what the graph's ``top_k`` and ``target_ids`` inputs get."""

    top_k: int
    target_ids: tuple[int, ...] | None
    lang_id: int


class FillMask(Task):
    """Fill-mask over an exported xlm-onnx model directory.

    Results match ``transformers.pipeline("fill-mask")``: per input a list of ``{"score",
    "token", "token_str", "sequence"}`` dicts (a list of such lists when the input has several
    masks). One instance may be shared by threads: ``__call__`` keeps no state between calls and
    ``InferenceSession.run`` is thread-safe.

    Args:
        model: A loaded :class:`~xlm_onnx.model.Model` (shared with other tasks).
        batch_size: Sentences per ``session.run`` when a list is given.
    """

    name = "fill-mask"
    pipeline_tasks = ("fill-mask",)
    head = fmt.HEAD_FILL_MASK
    purpose = "fill-mask"
    batch_tokens = None  # batch_size rows, no token budget: results are as they always were
    probe = "Hello <mask> !"
    params = PARAMS
    summary = "predict <special1> / <mask> / [MASK] tokens"
    batch_rows = 8  # texts per run (the constructor's batch_size)

    def __init__(self, model: Model, batch_size: int = 8) -> None:
        self.validate_construction(batch_size)
        super().__init__(model)
        self.batch_size = self.batch_rows = batch_size

    @classmethod
    def validate_construction(cls, batch_size: int = 8) -> None:
        positive_int("batch_size", batch_size)

    # The loaded model's parts, as attributes of FillMask since v0.1.
    session = property(lambda self: self.model.session)
    tokenizer = property(lambda self: self.model.tokenizer)
    manifest = property(lambda self: self.model.manifest)
    model_dir = property(lambda self: self.model.model_dir)

    @classmethod
    def from_model(cls, model: Model, batch_size: int = 8) -> "FillMask":
        """Fill-mask on an already loaded :class:`~xlm_onnx.model.Model` (the same as ``FillMask(model)``)."""
        return cls(model, batch_size)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, provider: ProviderSpec = "cpu",
                        threads: int | None = None, batch_size: int = 8, verify: bool = True,
                        optimization_level: str = "all") -> "FillMask":
        """Loads a model directory (default: the embedded demo model) with :meth:`Model.load`,
        whose arguments, errors and ``PrecisionWarning`` these are.

        Args:
            batch_size: Sentences per ``session.run`` when a list is given.
        """
        return super().from_pretrained(path, provider, threads, verify, optimization_level, batch_size=batch_size)

    def __call__(self, inputs: str | Sequence[str], top_k: int | None = _D["top_k"],
                 targets: str | Iterable[str] | None = _D["targets"], lang: str | None = _D["lang"],
                 truncation: bool = _D["truncation"], whole_word_targets: bool = _D["whole_word_targets"]) -> list:
        """Predicts the masked tokens.

        Args:
            inputs: A text, or a list of texts, each with at least one mask token
                (``<special1>``; ``<mask>`` and ``[MASK]`` are accepted too).
            top_k: Predictions per mask (clamped to the number of targets when given; ``None``: 5).
            targets: Restrict predictions to these words (a str, or a list, set or any iterable
                of them). HF semantics by default: a target is looked up in the vocabulary as
                spelt, which finds a *word-internal* piece when there is one (``"monde"`` →
                ``monde``, not ``monde</w>``), and a word outside the vocabulary is replaced by its
                first BPE piece (``"Paris"`` → ``Par``).
            whole_word_targets: Score each target as the whole word it is instead: all its
                pieces written into the masked slot, scored by within-word left-to-right
                pseudo-log-likelihood (:mod:`xlm_onnx.tasks.whole_word`; format 2). ``token`` is then
                the list of the word's piece ids.
            lang: Language code for models with language embeddings (``None``: none added,
                as in the HF pipeline).
            truncation: Cut texts longer than the model's maximum instead of raising.

        Raises:
            InputError: For malformed requests, naming the problem (:class:`~xlm_onnx.errors.InputTypeError`,
                also a ``TypeError``, for a value of the wrong type).
        """
        return self.answer(self.prepare(inputs, top_k, targets, lang, truncation, whole_word_targets))

    def prepare(self, inputs: str | Sequence[str], top_k: int | None = _D["top_k"],
                targets: str | Iterable[str] | None = _D["targets"], lang: str | None = _D["lang"],
                truncation: bool = _D["truncation"], whole_word_targets: bool = _D["whole_word_targets"]) -> Prepared:
        """Validates and encodes a request: the first step of :meth:`__call__` (arguments and errors
        are its own). Its units are the texts' rows, or with whole-word targets the masked copies
        that score them (:mod:`xlm_onnx.tasks.whole_word`)."""
        text_list(inputs, "inputs")  # an empty list is named before any option
        return self.encode(inputs, self.options(top_k, targets, lang, truncation, whole_word_targets))

    def options(self, top_k: int | None = _D["top_k"], targets: str | Iterable[str] | None = _D["targets"],
                lang: str | None = _D["lang"], truncation: bool = _D["truncation"],
                whole_word_targets: bool = _D["whole_word_targets"]) -> FillMaskOptions:
        top_k = self._check_top_k(top_k)
        require_bool("whole_word_targets", whole_word_targets)
        if whole_word_targets and targets is None:
            raise InputError("whole_word_targets=True needs targets (the words to score)")
        target_ids = None if whole_word_targets else resolve_targets(self.tokenizer, targets)
        lang_id = self.model.lang_id(lang)
        word_targets = None
        if whole_word_targets:
            self.manifest.require_head(fmt.HEAD_LABEL_LOG_PROBS, "whole-word targets")  # format 2
            word_targets = tuple(target_pieces(self.model, targets))
        return FillMaskOptions(top_k, None if target_ids is None else tuple(target_ids.tolist()), word_targets,
                               lang_id, truncation)

    def encode(self, inputs: str | Sequence[str], options: FillMaskOptions) -> Prepared:
        texts, single = text_list(inputs, "inputs")
        rows = encode_requests(self.model, texts, options.truncation, options.max_length)
        key = self.batch_key(options)
        targets = options.word_targets
        if targets is not None:
            check_fit(rows, targets, self.manifest.max_positions)
        n_targets = None if options.target_ids is None else len(options.target_ids)
        cost = enforce(self.request_limits, fill_mask_cost(rows, texts, self.manifest.mask_token_id, options.top_k,
                                                         n_targets, targets and [len(p) for _, p in targets]))
        if targets is None:
            return Prepared(self, [Unit(ids) for ids in rows], key, single, cost=cost)
        units, copies = word_units(rows, targets, self.manifest.mask_token_id)
        return Prepared(self, units, key, single, (copies, options.top_k), cost)

    def pipeline_options(self, top_k: int | None = None, targets: str | Iterable[str] | None = None,
                         tokenizer_kwargs: dict | None = None, lang: str | None = None,
                         whole_word_targets: bool = False) -> FillMaskOptions:
        """transformers' ``FillMaskPipeline`` arguments (``top_k``, ``targets``, ``tokenizer_kwargs``),
        and this task's ``lang`` and ``whole_word_targets``."""
        truncation, max_length = truncation_of(self.tokenizer, tokenizer_kwargs)
        options = self.options(top_k, targets, lang, truncation, whole_word_targets)
        return replace(options, max_length=max_length)

    def pipeline_list(self, answers: list) -> list:
        return answers[0] if len(answers) == 1 else answers  # transformers: a one-text list answers as one text

    def batch_key(self, options: FillMaskOptions) -> TopK | LabelRun:
        if options.word_targets is not None:  # masked copies: any targets' copies may share a run
            return LabelRun(options.lang_id)
        return TopK(options.top_k, options.target_ids, options.lang_id)

    def run_size(self, key) -> tuple[int | None, int | None]:
        # batch_size counts texts; whole-word copies are bounded as Scorer bounds its copies.
        return (None, None) if isinstance(key, LabelRun) else (self.batch_size, None)

    def rows_cap_for(self, key) -> int | None:
        return DEFAULT_MAX_ROWS if isinstance(key, LabelRun) else None

    def _check_top_k(self, top_k: Any) -> int:
        if top_k is None:  # what wrappers pass when their caller gave nothing (transformers: the default)
            return DEFAULT_TOP_K
        if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool):
            raise InputTypeError(f"top_k must be an int, not {type(top_k).__name__}")
        if not 1 <= top_k <= self.manifest.vocab_size:
            raise InputError(f"top_k must be between 1 and the vocabulary size {self.manifest.vocab_size}, not {top_k}")
        return int(top_k)

    def run_batch(self, units: Sequence[Unit], key: TopK | LabelRun) -> list:
        """One run: pipeline-style results per row (whole-word copies: each one's log-probability)."""
        if isinstance(key, LabelRun):
            return masked_log_probs(self.model, units, key.lang_id)
        batch = self.pad([u.ids for u in units])
        target_ids = None if key.target_ids is None else np.array(key.target_ids, dtype=np.int64)
        scores, token_ids, positions, target_scores = self.model.run(
            fmt.FILL_MASK_OUTPUTS, batch, key.lang_id, top_k=key.top_k if target_ids is None else 1,
            target_ids=target_ids)
        if target_ids is not None:  # HF: top-k among the targets' probabilities
            k = min(key.top_k, len(target_ids))
            order = np.argsort(-target_scores, axis=-1, kind="stable")[:, :k]
            scores, token_ids = np.take_along_axis(target_scores, order, -1), target_ids[order]
        out = []
        for row, length in enumerate(batch.lengths.tolist()):
            ids = batch.input_ids[row, :length].tolist()
            picks = np.nonzero(positions[:, 0] == row)[0]
            per_mask = [self._propositions(ids, int(positions[p, 1]), scores[p], token_ids[p], len(picks) == 1)
                        for p in picks]
            out.append(per_mask[0] if len(per_mask) == 1 else per_mask)
        return out

    def finish(self, prepared: Prepared, outputs: list) -> list:
        if isinstance(prepared.key, LabelRun):
            copies, top_k = prepared.state
            outputs = decode(self.tokenizer, self.manifest.pad_token_id, copies, outputs, top_k)
        return outputs[0] if prepared.single else outputs

    def show(self, text: str, answer: list) -> str:
        """The text, then one row per candidate (score, token, filled sentence)."""
        out = [f"{text}\n"]
        per_mask = answer if answer and isinstance(answer[0], list) else [answer]
        for index, props in enumerate(per_mask):
            if len(per_mask) > 1:
                out.append(f"  mask {index + 1}:\n")
            scores = format_scores([p["score"] for p in props])
            width = max(len(s) for s in scores)
            out += [f"  {score:<{width}}  {p['token_str']!s:<16} {p['sequence']}\n" for score, p in zip(scores, props)]
        return "".join(out)

    def _propositions(self, ids: list[int], position: int, scores, token_ids, single_mask: bool) -> list[dict]:
        decode = self.tokenizer.decode
        props = []
        for score, token in zip(scores.tolist(), token_ids.tolist()):
            filled = list(ids)
            filled[position] = token
            filled = [t for t in filled if t != self.manifest.pad_token_id]  # as HF does
            props.append({"score": score, "token": token, "token_str": decode([token]),
                          "sequence": decode(filled, skip_special_tokens=single_mask)})
        return props


def format_scores(scores: list[float]) -> list[str]:
    """Scores with the fewest significant digits (at least 4) that keep distinct scores distinct.

    ``0.0001`` for every small score hid the ranking; ``{:.4g}`` switches to scientific notation
    below 1e-4, and more digits are used only when four would print two different scores alike.
    """
    distinct = len(set(scores))
    for digits in range(4, 10):
        texts = [f"{s:.{digits}g}" for s in scores]
        if len(set(texts)) == distinct:
            return texts
    return [repr(s) for s in scores]
