"""Reading an HF XLM tokenizer directory the way ``transformers`` 5.x ``XLMTokenizer.from_pretrained`` does.

Mirrors ``PreTrainedTokenizerBase._from_pretrained``, ``XLMTokenizer.__init__`` and
``PythonBackend.__init__``/``_add_tokens`` for the files an XLM checkpoint has: ``vocab.json``,
``merges.txt``, and optionally ``tokenizer_config.json``, ``special_tokens_map.json`` (read only when
the config has no ``added_tokens_decoder``, as in transformers) and ``added_tokens.json``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .added_tokens import AddedToken
from ..errors import TokenizerFileError
from ..format import ADDED_TOKENS_FILE, MERGES_FILE, VOCAB_FILE, XLM_EXTRA_SPECIAL_TOKENS, XLM_TOKEN_DEFAULTS
from ..format import SPECIAL_TOKENS_FILE as SPECIAL_TOKENS_MAP_FILE
from ..format import TOKENIZER_CONFIG_FILE as CONFIG_FILE

#: transformers' ``SPECIAL_TOKENS_ATTRIBUTES``, in its order (it fixes ``all_special_tokens``).
SPECIAL_ATTRS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
XLM_DEFAULTS = XLM_TOKEN_DEFAULTS
XLM_ADDITIONAL_SPECIAL_TOKENS = list(XLM_EXTRA_SPECIAL_TOKENS)
LARGE_INTEGER = int(1e20)
VERY_LARGE_INTEGER = int(1e30)


@dataclasses.dataclass
class TokenizerSpec:
    encoder: dict[str, int]
    bpe_ranks: dict[tuple, int]
    named: dict[str, str | None]  # special attribute -> token, in all_special_tokens order
    extras: list[str]
    added_decoder: dict[int, AddedToken]
    added_encoder: dict[str, int]
    do_lowercase_and_remove_accent: bool = True
    clean_up_tokenization_spaces: bool = False
    split_special_tokens: bool = False
    model_max_length: int = VERY_LARGE_INTEGER
    truncation_side: str = "right"


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise TokenizerFileError(f"malformed JSON in tokenizer file {path}: {e}") from e
    except OSError as e:
        raise TokenizerFileError(f"cannot read tokenizer file {path}: {e}") from e


def _read_object(path: Path) -> dict:
    value = _read_json(path)
    if not isinstance(value, dict):
        raise TokenizerFileError(f"{path} must hold a JSON object")
    return value


def _read_vocab(path: Path) -> dict[str, int]:
    for p in (path, path.with_name(MERGES_FILE)):
        if not p.is_file():
            raise TokenizerFileError(f"missing tokenizer file: {p}")
    encoder = _read_json(path)
    if not isinstance(encoder, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in encoder.items()
    ):
        raise TokenizerFileError(f"{path} must map token strings to integer ids")
    return encoder


def _read_merges(path: Path) -> dict[tuple[str, ...], int]:
    try:
        with open(path, encoding="utf-8") as f:  # text mode: \r\n and \r read as \n, as in transformers
            lines = f.read().split("\n")[:-1]
    except (OSError, UnicodeDecodeError) as e:
        raise TokenizerFileError(f"cannot read tokenizer file {path}: {e}") from e
    # Real XLM-100 lines are "a b count": only the first two fields count (as in transformers).
    merges = [tuple(line.split()[:2]) for line in lines]
    return dict(zip(merges, range(len(merges))))


def _read_config(cfg_path: Path) -> dict[str, Any]:
    init: dict[str, Any] = {}
    if cfg_path.is_file():
        init = dict(_read_object(cfg_path))
    if "additional_special_tokens" in init and not init.get("extra_special_tokens"):
        init["extra_special_tokens"] = init.pop("additional_special_tokens")
    return init


def _added_decoder(src: Any, cfg_path: Path) -> dict[int, AddedToken]:
    try:
        return {int(idx): AddedToken.from_json(tok) for idx, tok in src.items()}
    except (AttributeError, TypeError, ValueError) as e:
        raise TokenizerFileError(f"{cfg_path}: bad added_tokens_decoder entry: {e}") from e


def _legacy_added_tokens(d: Path, init: dict[str, Any]) -> dict[int, AddedToken]:
    """special_tokens_map.json merged into ``init`` (in place), and added_tokens.json's tokens."""
    added_decoder: dict[int, AddedToken] = {}
    map_path = d / SPECIAL_TOKENS_MAP_FILE
    if map_path.is_file():
        smap = _read_object(map_path)
        for key, value in smap.items():
            if key == "extra_special_tokens" and isinstance(value, list):
                existing = list(init.get("extra_special_tokens") or [])
                existing_str = [_token_str(t, map_path) for t in existing]
                for tok in value:
                    if _token_str(tok, map_path) not in existing_str:
                        existing.append(tok)
                value = existing
            init[key] = value
    added_path = d / ADDED_TOKENS_FILE
    if added_path.is_file():
        specials = {_token_str(init[k], added_path) for k in SPECIAL_ATTRS if init.get(k)}
        specials.update(_token_str(t, added_path) for t in (init.get("extra_special_tokens") or []))
        added = _read_object(added_path)
        for content, index in added.items():
            is_special = content in specials
            added_decoder[int(index)] = AddedToken(content, normalized=not is_special, special=is_special)
    return added_decoder


def _named_specials(init: dict[str, Any], cfg_path: Path) -> tuple[dict[str, str | None], list[str | None]]:
    """Named special tokens (XLMTokenizer's defaults, then model-specific ``*_token`` keys) and the extras."""
    named: dict[str, str | None] = {}
    for attr in SPECIAL_ATTRS:
        named[attr] = _token_str(init[attr], cfg_path) if attr in init else XLM_DEFAULTS.get(attr)
    extras_src = init.get("extra_special_tokens", init.get("additional_special_tokens", XLM_ADDITIONAL_SPECIAL_TOKENS))
    model_specific = {
        k: v for k, v in init.items() if k.endswith("_token") and k not in SPECIAL_ATTRS and isinstance(v, str)
    }
    if isinstance(extras_src, dict):
        model_specific.update({k: _token_str(v, cfg_path) for k, v in extras_src.items()})
        extras_src = []
    named.update(model_specific)
    return named, [_token_str(t, cfg_path) for t in (extras_src or [])]


def _add_specials(encoder: dict[str, int], added_decoder: dict[int, AddedToken], named: dict[str, str | None],
                  extras: list[str | None]) -> dict[str, int]:
    """PythonBackend.__init__ -> _add_tokens(special tokens not yet added): ids from the vocab, or new
    ids after it. They are plain strings there, so they never carry lstrip/rstrip flags. Fills
    ``added_decoder`` in place; returns the added tokens' ids by content."""
    added_encoder = {tok.content: idx for idx, tok in added_decoder.items()}
    all_special = list(dict.fromkeys([t for t in named.values() if t is not None] + extras))
    current_vocab = {**encoder, **added_encoder}
    new_idx, n_new = len(current_vocab), 0
    for token in all_special:
        if token == "" or token in added_encoder:
            continue
        if token not in current_vocab:
            index = new_idx + n_new
            current_vocab[token] = index
            n_new += 1
        else:
            index = current_vocab[token]
        added_decoder[index] = AddedToken(token, normalized=False, special=True)
        added_encoder[token] = index
    return added_encoder


def _token_str(value: Any, path: Path) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    raise TokenizerFileError(f"{path}: a special token must be a string or an AddedToken dict, got {value!r}")


def load_spec(directory: str | Path) -> TokenizerSpec:
    d = Path(directory)
    encoder, bpe_ranks = _read_vocab(d / VOCAB_FILE), _read_merges(d / MERGES_FILE)
    cfg_path = d / CONFIG_FILE
    init = _read_config(cfg_path)
    if "added_tokens_decoder" in init:
        added_decoder = _added_decoder(init["added_tokens_decoder"], cfg_path)
    else:  # older directories: special_tokens_map.json and added_tokens.json instead
        added_decoder = _legacy_added_tokens(d, init)
    named, extras = _named_specials(init, cfg_path)
    added_encoder = _add_specials(encoder, added_decoder, named, extras)
    max_len = init.get("model_max_length", init.get("max_len"))
    return TokenizerSpec(
        encoder=encoder,
        bpe_ranks=bpe_ranks,
        named=named,
        extras=extras,
        added_decoder=added_decoder,
        added_encoder=added_encoder,
        do_lowercase_and_remove_accent=bool(init.get("do_lowercase_and_remove_accent", True)),
        clean_up_tokenization_spaces=bool(init.get("clean_up_tokenization_spaces", False)),
        split_special_tokens=bool(init.get("split_special_tokens", False)),
        model_max_length=int(max_len) if max_len is not None else VERY_LARGE_INTEGER,
        truncation_side=str(init.get("truncation_side", "right")),
    )
