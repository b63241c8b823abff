"""``XLMTokenizer.save_pretrained``: a tokenizer directory that both this package and transformers load
back to the same tokenizer (tests/test_hf_tokenizer.py loads it with both).

The files are those transformers 5.23 writes for an XLM tokenizer: ``vocab.json``, ``merges.txt``
(one merge per line, in rank order, no header) and ``tokenizer_config.json`` (the named special
tokens, ``extra_special_tokens``, ``added_tokens_decoder`` and the settings this tokenizer reads).
Each file is written to a temporary name and renamed, so an interrupted save leaves no half file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..format import MERGES_FILE, TOKENIZER_CONFIG_FILE, VOCAB_FILE
from .files import VERY_LARGE_INTEGER


def _write(path: Path, text: str) -> str:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return str(path)


def tokenizer_config(tok: Any) -> dict[str, Any]:
    """The ``tokenizer_config.json`` of ``tok`` (what :func:`~xlm_onnx.tokenization.files.load_spec` reads)."""
    config: dict[str, Any] = {
        "added_tokens_decoder": {str(i): asdict(t) for i, t in tok.added_tokens_decoder.items()},
        "extra_special_tokens": list(tok._spec.extras),
        "clean_up_tokenization_spaces": tok.clean_up_tokenization_spaces,
        "do_lowercase_and_remove_accent": tok.do_lowercase_and_remove_accent,
        "split_special_tokens": tok.split_special_tokens,
        "truncation_side": tok.truncation_side,
        "padding_side": tok.padding_side,
        "tokenizer_class": "XLMTokenizer",
    }
    if tok.model_max_length < VERY_LARGE_INTEGER:
        config["model_max_length"] = tok.model_max_length
    config.update({name: token for name, token in tok._spec.named.items() if token is not None})
    return config


def save_pretrained(tok: Any, save_directory: str | os.PathLike) -> tuple[str, ...]:
    """Writes ``tok``'s files into ``save_directory`` (created if missing); returns their paths."""
    root = Path(save_directory)
    root.mkdir(parents=True, exist_ok=True)
    merges = "".join(" ".join(pair) + "\n" for pair, _ in sorted(tok.bpe_ranks.items(), key=lambda kv: kv[1]))
    return (_write(root / TOKENIZER_CONFIG_FILE, json.dumps(tokenizer_config(tok), indent=2, ensure_ascii=False)),
            _write(root / VOCAB_FILE, json.dumps(tok.encoder, indent=2, ensure_ascii=False)),
            _write(root / MERGES_FILE, merges))
