"""``FillMask``: the torch-free fill-mask runtime (HF ``pipeline("fill-mask")`` results)."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import format as fmt
from .cpu import cpu_info, int8_saturation_message
from .errors import InputError, ModelFormatError, PrecisionWarning
from .requests import Encoded, encode_requests, resolve_targets
from .session import ProviderSpec, create_session
from .tokenizer import XLMTokenizer


def default_model_dir() -> Path:
    """Directory of the demo model shipped inside the package.

    Raises:
        ModelFormatError: This build ships no embedded model (yet).
    """
    path = Path(__file__).resolve().parent / "default_model"
    if not (path / fmt.MANIFEST_FILE).is_file():
        raise ModelFormatError(
            "no embedded default model in this xlm-onnx build; pass a model directory made by "
            "`xlm-onnx export CHECKPOINT_DIR OUT_DIR` (--model DIR on the command line)"
        )
    return path


_WARNED: set[Path] = set()


def _warn_if_inexact_here(root: Path, manifest: fmt.Manifest, session) -> None:
    """Warns once per directory when this CPU's int8 kernel saturates the model's weights."""
    if session.get_providers()[0] != "CPUExecutionProvider" or root in _WARNED:
        return
    message = int8_saturation_message(manifest.int8_weight_max, cpu_info())
    if message:
        _WARNED.add(root)
        warnings.warn(f"{root}: {message}", PrecisionWarning, stacklevel=3)


def _check_batch_size(batch_size: Any) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")


class FillMask:
    """Fill-mask over an exported xlm-onnx model directory.

    Results match ``transformers.pipeline("fill-mask")``: per input a list of ``{"score",
    "token", "token_str", "sequence"}`` dicts (a list of such lists when the input has several
    masks). One instance may be shared by threads: ``__call__`` keeps no state between calls and
    ``InferenceSession.run`` is thread-safe.
    """

    def __init__(self, session, tokenizer: XLMTokenizer, manifest: fmt.Manifest, batch_size: int = 8,
                 model_dir: Path | None = None) -> None:
        _check_batch_size(batch_size)
        self.session = session
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.batch_size = batch_size
        self.model_dir = model_dir

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, provider: ProviderSpec = "cpu",
                        threads: int | None = None, batch_size: int = 8, verify: bool = True,
                        optimization_level: str = "all") -> "FillMask":
        """Loads a model directory (default: the embedded demo model).

        Args:
            path: Directory written by ``xlm-onnx export``.
            provider: ``"cpu"``, ``"cuda"``, ``"tensorrt"`` or an ORT provider list.
            threads: Intra-op threads (``None``: ORT's default, one per physical core).
            batch_size: Sentences per ``session.run`` when a list is given.
            verify: Check file checksums against the manifest (sizes are always checked).
            optimization_level: ORT graph optimisation level.

        Raises:
            ModelFormatError: Missing/corrupt files or an unknown ``format_version``.

        Warns:
            PrecisionWarning: Once per directory, for full-range int8 weights on a CPU whose int8
                kernel saturates them (AVX2, AVX-512 without VNNI); re-export to fix.
        """
        _check_batch_size(batch_size)  # before the (slow) session is built
        root = default_model_dir() if path is None else Path(path)
        if not root.is_dir():
            raise ModelFormatError(f"{root}: not a directory")
        manifest = fmt.read_manifest(root)
        fmt.verify_files(root, manifest, checksums=False)  # presence and sizes: instant
        # Hashing (~0.6 s for the 0.58 GB int8 model) overlaps building the session: both release
        # the GIL. A mismatch still raises before the instance exists, so before any inference.
        with ThreadPoolExecutor(max_workers=1) as pool:
            checked = pool.submit(fmt.verify_checksums, root, manifest) if verify else None
            tokenizer = XLMTokenizer.from_pretrained(root)
            session = create_session(root / fmt.MODEL_FILE, provider, threads, optimization_level)
            if checked is not None:
                checked.result()
        names = tuple(i.name for i in session.get_inputs())
        if names != tuple(manifest.inputs):
            raise ModelFormatError(f"{root / fmt.MODEL_FILE}: graph inputs {names} differ from manifest {manifest.inputs}")
        _warn_if_inexact_here(root.resolve(), manifest, session)
        return cls(session, tokenizer, manifest, batch_size, root)

    def __call__(self, inputs: str | Sequence[str], top_k: int = 5, targets: str | Sequence[str] | None = None,
                 lang: str | None = None, truncation: bool = False) -> list:
        """Predicts the masked tokens.

        Args:
            inputs: A text, or a list of texts, each with at least one mask token
                (``<special1>``; ``<mask>`` and ``[MASK]`` are accepted too).
            top_k: Predictions per mask (clamped to the number of targets when given).
            targets: Restrict predictions to these words (HF semantics: a word outside the
                vocabulary is replaced by its first BPE piece).
            lang: Language code for models with language embeddings (``None``: none added,
                as in the HF pipeline).
            truncation: Cut texts longer than the model's maximum instead of raising.

        Raises:
            TypeError, InputError: For malformed requests, naming the problem.
        """
        single = isinstance(inputs, str)
        texts = [inputs] if single else inputs
        if not isinstance(texts, (list, tuple)):
            raise TypeError(f"inputs must be a str or a list of str, not {type(inputs).__name__}")
        if not texts:
            raise InputError("inputs is an empty list")
        top_k = self._check_top_k(top_k)
        target_ids = resolve_targets(self.tokenizer, targets)
        lang_id = self._lang_id(lang)
        encoded = encode_requests(self.tokenizer, texts, self.manifest.max_positions, truncation)
        results: list[Any] = [None] * len(encoded)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
        for start in range(0, len(order), self.batch_size):
            chunk = [encoded[i] for i in order[start:start + self.batch_size]]
            for i, result in zip(order[start:start + self.batch_size], self._run(chunk, top_k, target_ids, lang_id)):
                results[i] = result
        return results[0] if single else results

    def _check_top_k(self, top_k: Any) -> int:
        if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool):
            raise TypeError(f"top_k must be an int, not {type(top_k).__name__}")
        if not 1 <= top_k <= self.manifest.vocab_size:
            raise InputError(f"top_k must be between 1 and the vocabulary size {self.manifest.vocab_size}, not {top_k}")
        return int(top_k)

    def _lang_id(self, lang: str | None) -> int:
        if lang is None:
            return -1
        if not isinstance(lang, str):
            raise TypeError(f"lang must be a str or None, not {type(lang).__name__}")
        if not self.manifest.uses_langs:
            raise InputError(f"lang={lang!r} given, but this model has no language embeddings (use lang=None)")
        if lang not in self.manifest.lang2id:
            raise InputError(f"unknown lang {lang!r}; this model knows {', '.join(sorted(self.manifest.lang2id))}")
        return int(self.manifest.lang2id[lang])

    def _run(self, chunk: list[Encoded], top_k: int, target_ids: np.ndarray | None, lang_id: int) -> list:
        width = max(len(e.ids) for e in chunk)
        ids = np.full((len(chunk), width), self.manifest.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(chunk), width), dtype=np.int64)
        for row, e in enumerate(chunk):  # right padding: what fused Attention's mask index needs
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feed = {fmt.INPUT_IDS: ids, fmt.ATTENTION_MASK: mask,
                fmt.TOP_K: np.array([top_k if target_ids is None else 1], dtype=np.int64),
                fmt.TARGET_IDS: np.zeros(0, np.int64) if target_ids is None else target_ids}
        if self.manifest.uses_langs:
            feed[fmt.LANGS] = np.full_like(ids, lang_id)
        scores, token_ids, positions, target_scores = self.session.run(list(fmt.OUTPUT_NAMES), feed)
        if target_ids is not None:  # HF: top-k among the targets' probabilities
            k = min(top_k, len(target_ids))
            order = np.argsort(-target_scores, axis=-1, kind="stable")[:, :k]
            scores, token_ids = np.take_along_axis(target_scores, order, -1), target_ids[order]
        out = []
        for row, e in enumerate(chunk):
            picks = np.nonzero(positions[:, 0] == row)[0]
            per_mask = [self._propositions(e.ids, int(positions[p, 1]), scores[p], token_ids[p], len(picks) == 1)
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
