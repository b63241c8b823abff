"""A loaded model directory (manifest, file checks, tokenizer, session), shared by every task.

Load once, then hand the same :class:`Model` to ``FillMask``, ``Embedder`` and ``Scorer``::

    model = Model.load(path)              # manifest -> sizes -> (checksums ∥ tokenizer, session)
    FillMask(model); Embedder(model); Scorer(model)

Each task feeds the graph through :meth:`Model.run`, which fills the inputs a task does not use
(``top_k``, ``target_ids``, ``label_ids``, ``langs``) so every task calls one graph the same way.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import format as fmt
from .batching import Batch
from .cpu import cpu_info, int8_saturation_message
from .errors import Fix, InputError, InputTypeError, ModelFormatError, PrecisionWarning
from .session import ProviderSpec, create_session
from .tokenization import XLMTokenizer

_EMPTY = np.zeros(0, dtype=np.int64)


#: The models shipped inside the package, by directory name: the demo masked LM (``default_model``,
#: every masked-LM task's default) and the language identifier (``langid_model``, text
#: classification's default; see ``Task.default_model``).
EMBEDDED_MODELS = ("default_model", "langid_model")


def default_model_dir(name: str = "default_model") -> Path:
    """Directory of a model shipped inside the package (default: the demo model).

    Args:
        name: One of :data:`EMBEDDED_MODELS`.

    Raises:
        ModelFormatError: This build ships no such embedded model.
    """
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"name must be one of {EMBEDDED_MODELS}, not {name!r}")
    path = Path(__file__).resolve().parent / name
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
        warnings.warn(f"{root}: {message}", PrecisionWarning, stacklevel=4)


@dataclass(frozen=True)
class Model:
    """An exported model, ready to run: what every task shares.

    Attributes:
        session: The ``onnxruntime.InferenceSession`` (thread-safe ``run``).
        tokenizer: The directory's :class:`~xlm_onnx.tokenization.XLMTokenizer`.
        manifest: Its :class:`~xlm_onnx.format.Manifest`.
        model_dir: Where it was loaded from (``None`` when built by hand).
    """

    session: Any
    tokenizer: XLMTokenizer
    manifest: fmt.Manifest
    model_dir: Path | None = None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, provider: ProviderSpec = "cpu", threads: int | None = None,
             verify: bool = True, optimization_level: str = "all", spinning: bool = True) -> "Model":
        """Loads a model directory (default: the embedded demo model).

        Args:
            path: Directory written by ``xlm-onnx export``.
            provider: ``"cpu"``, ``"cuda"``, ``"tensorrt"`` or an ORT provider list.
            threads: Intra-op threads (``None``: ORT's default, one per physical core).
            verify: Check file checksums against the manifest (sizes are always checked).
            optimization_level: ORT graph optimisation level.
            spinning: ORT's idle-thread spin-wait (see :func:`~xlm_onnx.session.create_session`).

        Raises:
            ModelFormatError: Missing/corrupt files or an unknown ``format_version``.

        Warns:
            PrecisionWarning: Once per directory, for full-range int8 weights on a CPU whose int8
                kernel saturates them (AVX2, AVX-512 without VNNI); re-export to fix.
        """
        root = default_model_dir() if path is None else Path(path)
        if not root.is_dir():
            raise ModelFormatError(f"{root}: not a directory")
        manifest = fmt.read_manifest(root)
        fmt.verify_files(root, manifest, checksums=False)  # presence and sizes: instant
        # Hashing (~0.6 s for the 0.58 GB int8 model) overlaps building the session: both release
        # the GIL. A mismatch still raises before the model exists, so before any inference.
        with ThreadPoolExecutor(max_workers=1) as pool:
            checked = pool.submit(fmt.verify_checksums, root, manifest) if verify else None
            tokenizer = XLMTokenizer.from_pretrained(root)
            session = create_session(root / fmt.MODEL_FILE, provider, threads, optimization_level, spinning=spinning)
            if checked is not None:
                checked.result()
        names = tuple(i.name for i in session.get_inputs())
        if names != tuple(manifest.inputs):
            raise ModelFormatError(f"{root / fmt.MODEL_FILE}: graph inputs {names} differ from manifest {manifest.inputs}")
        _warn_if_inexact_here(root.resolve(), manifest, session)
        return cls(session, tokenizer, manifest, root)

    def lang_id(self, lang: str | None) -> int:
        """The ``langs`` value for ``lang`` (-1: no language embedding, as HF without ``langs``).

        Raises:
            TypeError, InputError: ``lang`` is not a str, or this model does not know it.
        """
        if lang is None:
            return -1
        if not isinstance(lang, str):
            raise InputTypeError(f"lang must be a str or None, not {type(lang).__name__}")
        if not self.manifest.uses_langs:
            raise InputError(f"lang={lang!r} given, but this model has no language embeddings (use lang=None)")
        if lang not in self.manifest.lang2id:
            raise InputError(f"unknown lang {lang!r}; this model knows {', '.join(sorted(self.manifest.lang2id))}")
        return int(self.manifest.lang2id[lang])

    def encode(self, texts: Sequence[Any], truncation: bool = False, max_length: int | None = None
               ) -> list[list[int]]:
        """Ids with ``<s>``/``</s>`` of each text (:meth:`encode_text`), in order.

        Raises:
            InputError: As :meth:`encode_text`, for the first bad text.
        """
        return [self.encode_text(text, index, truncation, max_length=max_length) for index, text in enumerate(texts)]

    def encode_text(self, text: Any, index: int = 0, truncation: bool = False,
                    rewrite: Callable[[str], str] | None = None, max_length: int | None = None) -> list[int]:
        """Ids with ``<s>``/``</s>`` of ``inputs[index]``, checked against the model's length limit:
        the one place a text becomes model ids (every task encodes through it).

        Args:
            text: The text.
            index: Its position in the caller's list, for the message.
            truncation: Cut a text over the limit, keeping ``</s>`` (as HF's ``truncation=True``).
            rewrite: Applied to the text before tokenizing (fill-mask: mask spellings of other models).
            max_length: With ``truncation``, cut at this many ids when under the model's limit (as
                transformers' ``max_length``; ``xlm_onnx.pipeline`` passes the tokenizer's).

        Raises:
            InputTypeError: ``text`` is not a str.
            InputError: It is too long without ``truncation`` (``index`` set).
        """
        if not isinstance(text, str):
            raise InputTypeError.about("inputs", f"must be a str, not {type(text).__name__}", index)
        limit = self.manifest.max_positions
        ids = self.tokenizer.encode(text if rewrite is None else rewrite(text))
        if truncation and max_length is not None:
            limit = min(limit, max_length)
        if len(ids) > limit:
            if not truncation:
                raise InputError.about("inputs", f"is {len(ids)} tokens long with specials; the model takes at most "
                                       f"{limit}", index, Fix("truncation", True, "to cut it"))
            ids = ids[: limit - 1] + [self.tokenizer.eos_token_id]
        return ids

    def run(self, outputs: Sequence[str], batch: Batch, lang_id: int = -1, top_k: int = 1,
            target_ids: np.ndarray | None = None, label_ids: np.ndarray | None = None) -> list[np.ndarray]:
        """One ``session.run`` of ``batch``, fetching ``outputs``.

        Inputs a task does not use get neutral values: ``top_k`` 1, no targets, no labels. Only
        the graph's own inputs are fed (a fine-tuned head's graph has no fill-mask inputs).
        """
        feed = {fmt.INPUT_IDS: batch.input_ids, fmt.ATTENTION_MASK: batch.attention_mask}
        inputs = self.manifest.inputs
        if fmt.TOP_K in inputs:
            feed[fmt.TOP_K] = np.array([top_k], dtype=np.int64)
            feed[fmt.TARGET_IDS] = _EMPTY if target_ids is None else target_ids
        if fmt.LABEL_IDS in inputs:
            feed[fmt.LABEL_IDS] = _EMPTY if label_ids is None else label_ids
        if self.manifest.uses_langs:
            feed[fmt.LANGS] = np.full_like(batch.input_ids, lang_id)
        return self.session.run(list(outputs), feed)

