"""Turning fill-mask requests into ids: mask aliases, the mask check, targets."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from ..errors import InputError

logger = logging.getLogger("xlm_onnx")

#: Spellings users bring from other models, accepted for the model's own mask token.
MASK_ALIASES = ("<mask>", "[MASK]")


def encode_requests(model, texts: Sequence, truncation: bool) -> list[list[int]]:
    """Ids of ``texts`` (:meth:`Model.encode_text <xlm_onnx.model.Model.encode_text>`, mask
    aliases replaced); each must hold at least one mask. Texts are checked in order, so the error
    names the first bad one.

    Raises:
        TypeError: An item is not a str.
        InputError: No mask token, or too long without ``truncation``.
    """
    mask, mask_id = model.tokenizer.mask_token, model.tokenizer.mask_token_id

    def own_mask(text: str) -> str:
        for alias in MASK_ALIASES:
            text = text.replace(alias, mask)
        return text

    out = []
    for index, text in enumerate(texts):
        ids = model.encode_text(text, index, truncation, rewrite=own_mask)
        if mask_id not in ids:
            where = " after truncation" if truncation and len(ids) == model.manifest.max_positions else ""
            raise InputError.about("inputs", f"has no mask token{where} (write {mask}, <mask> or [MASK])", index)
        out.append(ids)
    return out


def target_words(targets) -> list[str]:
    """``targets`` (a word or a list of words) as a list, checked.

    Raises:
        TypeError: ``targets`` is not a str or a list of str (naming the bad item).
        InputError: It is empty.
    """
    items = [targets] if isinstance(targets, str) else targets
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"targets must be a str or a list of str, not {type(targets).__name__}")
    bad = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
    if bad is not None:  # name the item: "not list" would point at the wrong thing
        raise TypeError(f"targets must be a str or a list of str; targets[{bad}] is "
                        f"{type(items[bad]).__name__} ({items[bad]!r})")
    if not items:
        raise InputError("targets is empty; pass at least one word, or targets=None")
    return list(items)


def resolve_targets(tokenizer, targets) -> np.ndarray | None:
    """Target words -> unique ids, with HF's rules (a word outside the vocabulary is replaced by
    its first BPE piece, with a warning; one that tokenises to nothing is dropped).

    Raises:
        TypeError: ``targets`` is not a str or a list of str.
        InputError: It is empty, or no target maps to a token.
    """
    if targets is None:
        return None
    items = target_words(targets)
    ids = []
    for target in items:
        token_id = tokenizer.vocab_id(target)
        if token_id is None:
            pieces = tokenizer.encode(target, add_special_tokens=False)
            if not pieces:
                logger.warning("target %r is not in the vocabulary and tokenises to nothing; ignored", target)
                continue
            token_id = pieces[0]
            logger.warning("target %r is not in the vocabulary; using its first piece %r",
                           target, tokenizer.convert_ids_to_tokens([token_id])[0])
        ids.append(token_id)
    if not ids:
        raise InputError(f"none of the targets {list(items)!r} maps to a token of the vocabulary")
    return np.array(sorted(set(ids)), dtype=np.int64)
