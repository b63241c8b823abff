"""``FillMask``: the torch-free fill-mask runtime (HF ``pipeline("fill-mask")`` results)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import format as fmt
from .._checks import check_bool, positive_int, text_list
from ..batching import Batch, batches
from ..errors import InputError
from ..model import Model, default_model_dir  # noqa: F401  (default_model_dir: public here since v0.1)
from .fill_mask_inputs import encode_requests, resolve_targets
from ..session import ProviderSpec
from ..tokenization import XLMTokenizer


@dataclass(frozen=True, eq=False)
class FillMaskRequest:
    """A validated, encoded fill-mask request (:meth:`FillMask.prepare`), ready to batch.

    Attributes:
        rows: Ids with specials of each input, in input order.
        top_k: Predictions per mask.
        target_ids: Sorted unique target ids, or ``None``.
        lang_id: The ``langs`` value (-1: none).
        single: The caller gave one str (one result, not a list of them).
        word_targets: With ``whole_word_targets``: each target's pieces (``target_ids`` is then ``None``).
    """

    rows: list[list[int]]
    top_k: int
    target_ids: np.ndarray | None
    lang_id: int
    single: bool
    word_targets: Any = None


class FillMask:
    """Fill-mask over an exported xlm-onnx model directory.

    Results match ``transformers.pipeline("fill-mask")``: per input a list of ``{"score",
    "token", "token_str", "sequence"}`` dicts (a list of such lists when the input has several
    masks). One instance may be shared by threads: ``__call__`` keeps no state between calls and
    ``InferenceSession.run`` is thread-safe.
    """

    def __init__(self, session, tokenizer: XLMTokenizer, manifest: fmt.Manifest, batch_size: int = 8,
                 model_dir: Path | None = None) -> None:
        positive_int("batch_size", batch_size)
        manifest.require_head(fmt.HEAD_FILL_MASK, "fill-mask")
        self.session = session
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.batch_size = batch_size
        self.model_dir = model_dir

    @property
    def model(self) -> Model:
        """The loaded model this instance runs (built from its attributes, which callers may swap)."""
        return Model(self.session, self.tokenizer, self.manifest, self.model_dir)

    @classmethod
    def from_model(cls, model: Model, batch_size: int = 8) -> "FillMask":
        """Fill-mask on an already loaded :class:`~xlm_onnx.model.Model` (shared with other tasks)."""
        return cls(model.session, model.tokenizer, model.manifest, batch_size, model.model_dir)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, provider: ProviderSpec = "cpu",
                        threads: int | None = None, batch_size: int = 8, verify: bool = True,
                        optimization_level: str = "all") -> "FillMask":
        """Loads a model directory (default: the embedded demo model) with :meth:`Model.load`,
        whose arguments, errors and ``PrecisionWarning`` these are.

        Args:
            batch_size: Sentences per ``session.run`` when a list is given.
        """
        positive_int("batch_size", batch_size)  # before the (slow) session is built
        model = Model.load(path, provider=provider, threads=threads, verify=verify,
                           optimization_level=optimization_level)
        return cls.from_model(model, batch_size)

    def __call__(self, inputs: str | Sequence[str], top_k: int = 5, targets: str | Sequence[str] | None = None,
                 lang: str | None = None, truncation: bool = False, whole_word_targets: bool = False) -> list:
        """Predicts the masked tokens.

        Args:
            inputs: A text, or a list of texts, each with at least one mask token
                (``<special1>``; ``<mask>`` and ``[MASK]`` are accepted too).
            top_k: Predictions per mask (clamped to the number of targets when given).
            targets: Restrict predictions to these words. HF semantics by default: a target is
                looked up in the vocabulary as spelt, which finds a *word-internal* piece when
                there is one (``"monde"`` → ``monde``, not ``monde</w>``), and a word outside the
                vocabulary is replaced by its first BPE piece (``"Paris"`` → ``Par``).
            whole_word_targets: Score each target as the whole word it is instead: all its
                pieces written into the masked slot, scored by within-word left-to-right
                pseudo-log-likelihood (:mod:`xlm_onnx.tasks.whole_word`; format 2). ``token`` is then
                the list of the word's piece ids.
            lang: Language code for models with language embeddings (``None``: none added,
                as in the HF pipeline).
            truncation: Cut texts longer than the model's maximum instead of raising.

        Raises:
            TypeError, InputError: For malformed requests, naming the problem.
        """
        request = self.prepare(inputs, top_k, targets, lang, truncation, whole_word_targets)
        if request.word_targets is not None:
            from .whole_word import WholeWordTargets

            results = WholeWordTargets(self.model)(request.rows, request.word_targets, request.top_k, request.lang_id)
            return results[0] if request.single else results
        results: list[Any] = [None] * len(request.rows)
        # Length-sorted groups of batch_size rows (no token budget: results are as they always were).
        for batch in batches(request.rows, self.manifest.pad_token_id, max_rows=self.batch_size, max_tokens=None):
            for i, result in zip(batch.indices,
                                 self.run_batch(batch, request.top_k, request.target_ids, request.lang_id)):
                results[i] = result
        return results[0] if request.single else results

    def prepare(self, inputs: str | Sequence[str], top_k: int = 5, targets: str | Sequence[str] | None = None,
                lang: str | None = None, truncation: bool = False, whole_word_targets: bool = False
                ) -> FillMaskRequest:
        """Validates and encodes a request: the first step of :meth:`__call__` (arguments and errors
        are its own). Then :meth:`run_batch` on batches of its rows (the HTTP server batches rows
        of several requests with equal options together), unless ``word_targets`` is set (whole-word
        targets run their own masked copies: :mod:`xlm_onnx.tasks.whole_word`)."""
        texts, single = text_list(inputs, "inputs")
        top_k = self._check_top_k(top_k)
        check_bool("whole_word_targets", whole_word_targets)
        if whole_word_targets and targets is None:
            raise InputError("whole_word_targets=True needs targets (the words to score)")
        target_ids = None if whole_word_targets else resolve_targets(self.tokenizer, targets)
        lang_id = self.model.lang_id(lang)
        rows = [e.ids for e in encode_requests(self.tokenizer, texts, self.manifest.max_positions, truncation)]
        word_targets = None
        if whole_word_targets:
            from .whole_word import check_fit, target_pieces

            word_targets = target_pieces(self.model, targets)
            check_fit(rows, word_targets, self.manifest.max_positions)
        return FillMaskRequest(rows, top_k, target_ids, lang_id, single, word_targets)

    def _check_top_k(self, top_k: Any) -> int:
        if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool):
            raise TypeError(f"top_k must be an int, not {type(top_k).__name__}")
        if not 1 <= top_k <= self.manifest.vocab_size:
            raise InputError(f"top_k must be between 1 and the vocabulary size {self.manifest.vocab_size}, not {top_k}")
        return int(top_k)

    def run_batch(self, batch: Batch, top_k: int, target_ids: np.ndarray | None, lang_id: int = -1) -> list:
        """Runs one padded batch and decodes it: one pipeline-style result per row, in batch order."""
        scores, token_ids, positions, target_scores = self.model.run(
            fmt.FILL_MASK_OUTPUTS, batch, lang_id, top_k=top_k if target_ids is None else 1, target_ids=target_ids)
        if target_ids is not None:  # HF: top-k among the targets' probabilities
            k = min(top_k, len(target_ids))
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
