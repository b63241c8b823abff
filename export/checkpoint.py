"""Step 1 of an export: find, check and load a local Hugging Face XLM checkpoint safely.

Safety rules: never ``trust_remote_code``; weights come from safetensors, or from torch files
through ``torch.load(weights_only=True)`` (transformers' loader with that flag forced), so a
pickle payload in ``pytorch_model.bin`` is refused, never executed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import re
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlm_onnx import format as fmt

from .errors import CheckpointError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class Checkpoint:
    """A checked checkpoint directory.

    Attributes:
        path: The directory.
        config: ``config.json`` as a dict.
        config_sha256: SHA-256 of the raw ``config.json`` bytes.
        weights_file: The weights file found (safetensors preferred).
    """

    path: Path
    config: dict[str, Any]
    config_sha256: str
    weights_file: str

    @property
    def uses_langs(self) -> bool:
        """XLM adds ``lang_embeddings(langs)`` only when both flags say so (XLM-100 does not)."""
        return bool(self.config.get("use_lang_emb", True)) and int(self.config.get("n_langs", 1)) > 1

    @property
    def lang2id(self) -> dict[str, int]:
        """Language code -> id, for checkpoints that use language embeddings."""
        return dict(self.config.get("lang2id") or {}) if self.uses_langs else {}


def inspect_checkpoint(path: str | Path) -> Checkpoint:
    """Checks ``path`` is a local XLM checkpoint with weights and tokenizer files.

    Raises:
        CheckpointError: Naming what is missing or wrong.
    """
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(f"{root}: not a directory (expected a local Hugging Face XLM checkpoint)")
    config_path = root / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: missing; {root} is not a Hugging Face checkpoint directory")
    raw = config_path.read_bytes()
    try:
        config = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not valid JSON ({exc})") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type != "xlm":
        raise CheckpointError(f"{config_path}: model_type is {model_type!r}; xlm-onnx exports XLM checkpoints only ('xlm')")
    if config.get("asm"):
        raise CheckpointError(f"{config_path}: adaptive softmax (asm=true) heads are not supported")
    if config.get("causal"):
        raise CheckpointError(f"{config_path}: causal XLM models are not masked language models")
    weights = next((name for name in WEIGHT_FILES if (root / name).is_file()), None)
    if weights is None:
        raise CheckpointError(f"{root}: no weights found (looked for {', '.join(WEIGHT_FILES)})")
    for name in fmt.REQUIRED_TOKENIZER_FILES:
        if not (root / name).is_file():
            raise CheckpointError(f"{root / name}: missing tokenizer file")
    return Checkpoint(root, config, hashlib.sha256(raw).hexdigest(), weights)


#: Names of the embedding table (tied with the LM head) in XLM checkpoints, newer and older layouts.
EMBEDDING_KEYS = ("transformer.embeddings.weight", "embeddings.weight")
_MISMATCH = re.compile(r"(\S+)\s*\|\s*MISMATCH\s*\|.*?ckpt:\s*torch\.Size\((\[[^\]]*\])\)\s*vs\s*model:\s*"
                       r"torch\.Size\((\[[^\]]*\])\)")


@contextlib.contextmanager
def captured_output():
    """Collects what libraries print (fd 1 and 2, warnings) instead of showing it.

    transformers prints a load-report table and torch prints pickle advice straight to the
    terminal, some of it from C++; only file-descriptor redirection catches all of it. The
    yielded list holds the captured lines once the block ends; the caller decides what to say.
    """
    captured: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.extend(sink.read().decode("utf-8", "replace").splitlines())
            captured.extend(str(w.message) for w in caught)


def check_weight_shapes(checkpoint: Checkpoint) -> None:
    """Compares ``vocab_size`` with the embedding rows in a safetensors header (no weights read).

    Raises:
        CheckpointError: They differ (transformers would re-initialise the table at random).
    """
    if not checkpoint.weights_file.startswith("model.safetensors"):
        return  # a pickle's shapes are only known by loading it
    from safetensors import safe_open

    files = [checkpoint.weights_file]
    if checkpoint.weights_file.endswith(".index.json"):
        weight_map = json.loads((checkpoint.path / checkpoint.weights_file).read_text(encoding="utf-8"))["weight_map"]
        files = [weight_map[k] for k in EMBEDDING_KEYS if k in weight_map][:1]
    for name in files:
        with safe_open(checkpoint.path / name, framework="np") as handle:
            key = next((k for k in EMBEDDING_KEYS if k in handle.keys()), None)
            if key is None:
                return
            rows = handle.get_slice(key).get_shape()[0]
        _check_rows(checkpoint, key, rows)


def _check_rows(checkpoint: Checkpoint, key: str, rows) -> None:
    vocab = checkpoint.config.get("vocab_size")
    if rows != vocab:
        raise CheckpointError(
            f"{checkpoint.path}: config.json says vocab_size {vocab}, but the weights' {key} has {rows} rows; "
            "the config and the weights belong to different checkpoints (or the vocabulary was resized "
            "without saving the config)"
        )


def _refusal(checkpoint: Checkpoint, exc: BaseException, noise: list[str]) -> CheckpointError:
    """One line for a load failure, from the exception and what the loader printed."""
    weights = checkpoint.path / checkpoint.weights_file
    text = f"{exc}"
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
        return CheckpointError(
            f"{weights}: refused: loading this pickle file could run code (it holds objects other than plain "
            "tensors, which torch's safe loader rejects). Use a model.safetensors checkpoint instead: ask its "
            "publisher, or convert it with the Hub's safetensors/convert Space "
            "(https://huggingface.co/spaces/safetensors/convert), or, only for a file you trust, load it once in a "
            "throwaway environment and save it with save_pretrained(), which writes model.safetensors"
        )
    mismatches = [m.groups() for m in map(_MISMATCH.search, noise) if m]
    if mismatches:  # the report's row order varies: name the embedding table when it is among them
        key, ckpt, model = min(mismatches, key=lambda m: m[0] not in EMBEDDING_KEYS)
        return CheckpointError(f"{checkpoint.path}: the weights do not match config.json: {key} is {ckpt} in "
                               f"{checkpoint.weights_file} but {model} by config.json (vocab_size "
                               f"{checkpoint.config.get('vocab_size')})")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return CheckpointError(f"{weights}: cannot load weights: {first}")


def load_model(checkpoint: Checkpoint, model_class: str = "XLMWithLMHeadModel"):
    """Loads ``model_class`` (a transformers XLM class, from :data:`.heads.ARCHITECTURES`) in eval
    mode, fp32, from local files only.

    What transformers and torch print while loading is captured: a failure becomes one line.

    Raises:
        CheckpointError: The weights cannot be loaded safely (e.g. a pickle with code in it), or
            do not match ``config.json``.
    """
    import transformers
    from transformers.utils import logging as hf_logging

    check_weight_shapes(checkpoint)
    hf_logging.disable_progress_bar()  # the exporter prints its own steps
    with captured_output() as noise:
        try:
            model = getattr(transformers, model_class).from_pretrained(
                checkpoint.path,
                local_files_only=True,
                trust_remote_code=False,
                weights_only=True,
                dtype="float32",
            )
        except (pickle.UnpicklingError, OSError, RuntimeError, ValueError) as exc:
            error = exc
        else:
            error = None
    if error is not None:
        raise _refusal(checkpoint, error, noise) from None
    return model.eval()
