"""Step 1 of an export: find, check and load a local Hugging Face XLM checkpoint safely.

Safety rules: never ``trust_remote_code``; weights come from safetensors, or from torch files
through ``torch.load(weights_only=True)`` (transformers' loader with that flag forced), so a
pickle payload in ``pytorch_model.bin`` is refused, never executed.
"""

from __future__ import annotations

import hashlib
import json
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


def load_model(checkpoint: Checkpoint):
    """Loads ``XLMWithLMHeadModel`` in eval mode, fp32, from local files only.

    Raises:
        CheckpointError: The weights cannot be loaded safely (e.g. a pickle with code in it).
    """
    import pickle

    from transformers import XLMWithLMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the exporter prints its own steps
    try:
        model = XLMWithLMHeadModel.from_pretrained(
            checkpoint.path,
            local_files_only=True,
            trust_remote_code=False,
            weights_only=True,
            dtype="float32",
        )
    except (pickle.UnpicklingError, OSError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{checkpoint.path / checkpoint.weights_file}: cannot load weights safely: {first}") from None
    return model.eval()
