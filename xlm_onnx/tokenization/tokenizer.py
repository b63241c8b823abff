"""A torch-free XLM tokenizer whose output equals ``transformers.XLMTokenizer`` (transformers 5.23).

Pipeline, as in the reference: split out added/special tokens (transformers' trie, with the tokens'
lstrip/rstrip/single_word flags); on the other pieces ``replace_unicode_punct``, Moses punctuation
normalisation, removal of non-printing characters, Moses tokenization (no XML escaping), optional
lowercasing + accent removal, and BPE with ``</w>`` end-of-word markers; tokens missing from the
vocabulary become ``<unk>``. Only numpy (for :meth:`XLMTokenizer.encode_batch`) and the standard
library are imported; sacremoses is read for its data tables only (see :mod:`xlm_onnx.tokenization.moses`).

Differences from the reference, on purpose: ``lang`` is honoured by :meth:`tokenize` (transformers
5.x drops it before ``_tokenize``, so its ``tokenize(text, lang=...)`` always uses English rules);
``zh``/``ja``/``th`` (external segmenters) raise ``ValueError``; :attr:`eos_token_id` falls back to
the ``</s>`` separator when the config names no ``eos_token`` (the reference then returns None).
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

from . import moses as _moses
from .added_tokens import Trie, split_added_tokens
from .bpe import BPE, CACHE_BYTES
from .files import LARGE_INTEGER, load_spec
from .hf_surface import HFSurface
from .._lru import ByteLRU, pieces_bytes
from ..errors import InputError, InputTypeError

__all__ = ["XLMTokenizer", "pretokenize"]


def _check_text(text: Any, name: str = "text") -> str:
    if not isinstance(text, str):
        raise InputTypeError(f"{name} must be a str, not {type(text).__name__}")
    return text


def pretokenize(text: str, lang: str = "en", do_lowercase_and_remove_accent: bool = False) -> list[str]:
    """The words XLMTokenizer feeds to BPE for ``text`` (no added-token splitting; may hold "")."""
    steps = _PRETOKENIZE_STEPS.get(lang)
    if steps is None:
        _moses.check_lang(lang)
        steps = _PRETOKENIZE_STEPS[lang] = _moses.moses_steps(lang)
    return _moses.moses_words(steps, _check_text(text), lang, do_lowercase_and_remove_accent)


_PRETOKENIZE_STEPS: dict[str, Any] = {}


class XLMTokenizer(HFSurface):
    """XLM BPE tokenizer (Moses + BPE). Build it with :meth:`from_pretrained`; called, it answers as
    transformers' tokenizer does (:mod:`~xlm_onnx.tokenization.hf_surface`)."""

    def __init__(self, spec, moses_impl: str = "auto") -> None:
        self._spec = spec
        self.encoder: dict[str, int] = spec.encoder
        self.decoder: dict[int, str] = {v: k for k, v in spec.encoder.items()}
        self.bpe_ranks = spec.bpe_ranks
        self.do_lowercase_and_remove_accent: bool = spec.do_lowercase_and_remove_accent
        self.clean_up_tokenization_spaces: bool = spec.clean_up_tokenization_spaces
        self.split_special_tokens: bool = spec.split_special_tokens
        self.model_max_length: int = spec.model_max_length
        self.truncation_side: str = spec.truncation_side
        self._padding_side: str = spec.padding_side
        self._added_decoder = spec.added_decoder
        self._added_encoder = spec.added_encoder
        self._added_by_content = {c: spec.added_decoder[i] for c, i in spec.added_encoder.items()}
        self._trie = Trie()
        for tok in spec.added_decoder.values():
            self._trie.add(tok.content)
        self.all_special_tokens: list[str] = list(
            dict.fromkeys([t for t in spec.named.values() if t is not None] + spec.extras)
        )
        self._all_special_set = frozenset(self.all_special_tokens)
        self.all_special_ids: list[int] = self.convert_tokens_to_ids(self.all_special_tokens)
        self._moses_impl = moses_impl
        self._moses: dict[str, Any] = {}
        self._bpe = BPE(spec.bpe_ranks)
        self._ids_cache = ByteLRU(CACHE_BYTES, pieces_bytes)  # word -> ids; bounded in bytes

    @classmethod
    def from_pretrained(cls, path: str | Path, *, moses_impl: str = "auto") -> XLMTokenizer:
        """Load ``vocab.json`` + ``merges.txt`` (+ optional configs) from an HF tokenizer directory.

        Raises :class:`~xlm_onnx.errors.TokenizerFileError` naming the file that is missing or
        malformed. ``moses_impl``: ``"auto"`` (the fast port when the installed sacremoses is a
        verified version), ``"port"`` or ``"sacremoses"``.
        """
        return cls(load_spec(path), moses_impl=moses_impl)

    # --- special tokens -------------------------------------------------------------------------
    def _named(self, attr: str) -> str | None:
        return self._spec.named.get(attr)

    def _named_id(self, attr: str) -> int | None:
        tok = self._spec.named.get(attr)
        return None if tok is None else self._token_to_id(tok)

    mask_token = property(lambda self: self._named("mask_token"))
    pad_token = property(lambda self: self._named("pad_token"))
    bos_token = property(lambda self: self._named("bos_token"))
    unk_token = property(lambda self: self._named("unk_token"))
    sep_token = property(lambda self: self._named("sep_token"))
    cls_token = property(lambda self: self._named("cls_token"))
    mask_token_id = property(lambda self: self._named_id("mask_token"))
    pad_token_id = property(lambda self: self._named_id("pad_token"))
    bos_token_id = property(lambda self: self._named_id("bos_token"))
    unk_token_id = property(lambda self: self._named_id("unk_token"))
    sep_token_id = property(lambda self: self._named_id("sep_token"))
    cls_token_id = property(lambda self: self._named_id("cls_token"))

    @property
    def eos_token(self) -> str | None:
        """The configured ``eos_token``, else the ``</s>`` separator (XLM ends sequences with it)."""
        return self._named("eos_token") or self._named("sep_token")

    @property
    def eos_token_id(self) -> int | None:
        tok = self.eos_token
        return None if tok is None else self._token_to_id(tok)

    @property
    def vocab_size(self) -> int:
        """Size of ``vocab.json`` (like the reference; added tokens not in it are not counted)."""
        return len(self.encoder)

    def __len__(self) -> int:
        return len({**self.encoder, **self._added_encoder})

    def get_vocab(self) -> dict[str, int]:
        return dict(self.encoder, **self._added_encoder)

    # --- ids <-> tokens ---------------------------------------------------------------------------
    def vocab_id(self, token: str) -> int | None:
        """Id of ``token`` in the vocabulary or added tokens, ``None`` if absent (no dict copy,
        unlike ``get_vocab()[token]``: 200k entries for XLM-100)."""
        index = self._added_encoder.get(token)
        return index if index is not None else self.encoder.get(token)

    def _token_to_id(self, token: str) -> int:
        index = self.vocab_id(token)
        return index if index is not None else self.encoder.get(self._spec.named.get("unk_token"))

    def convert_tokens_to_ids(self, tokens: str | list[str]) -> int | list[int]:
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(t) for t in tokens]

    def _id_to_token(self, index: int) -> str:
        tok = self._added_decoder.get(index)
        if tok is not None:
            return tok.content
        return self.decoder.get(index, self._spec.named.get("unk_token"))

    def convert_ids_to_tokens(self, ids: Any, skip_special_tokens: bool = False) -> str | list[str]:
        if hasattr(ids, "tolist"):  # numpy arrays / scalars, without importing numpy
            ids = ids.tolist()
        if not isinstance(ids, (list, tuple)):
            return self._id_to_token(operator.index(ids))
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(i) for i in map(int, ids) if i not in skip]

    # --- tokenization -----------------------------------------------------------------------------
    def _steps(self, lang: str):
        steps = self._moses.get(lang)
        if steps is None:
            _moses.check_lang(lang)
            steps = self._moses[lang] = _moses.moses_steps(lang, self._moses_impl)
        return steps

    def _words(self, text: str, lang: str) -> list[str]:
        """XLMTokenizer._tokenize up to BPE: the Moses words of a piece without added tokens."""
        return _moses.moses_words(self._steps(lang), text, lang, self.do_lowercase_and_remove_accent)

    def _pieces(self, text: str) -> list[str]:
        """PythonBackend.tokenize's split: pieces of text and added tokens (in the added dict)."""
        if self.split_special_tokens:
            return [text]
        return split_added_tokens(self._trie.split(text), self._added_by_content)

    def tokenize(self, text: str, lang: str = "en") -> list[str]:
        """Tokens of ``text``, as ``transformers.XLMTokenizer.tokenize``."""
        _check_text(text)
        out: list[str] = []
        added, specials = self._added_encoder, self._all_special_set
        for piece in self._pieces(text):
            if not piece:
                continue
            if not self.split_special_tokens and (piece in added or piece in specials):
                out.append(piece)
                continue
            for word in self._words(piece, lang):
                if word:
                    out.extend(self._bpe(word))
        return out

    def _ids(self, text: str, lang: str) -> list[int]:
        _check_text(text)
        out: list[int] = []
        added, specials = self._added_encoder, self._all_special_set
        cache = self._ids_cache
        for piece in self._pieces(text):
            if not piece:
                continue
            if not self.split_special_tokens and (piece in added or piece in specials):
                out.append(self._token_to_id(piece))
                continue
            for word in self._words(piece, lang):
                if word:
                    ids = cache.get(word)
                    if ids is None:
                        ids = tuple(map(self._token_to_id, self._bpe(word)))
                        cache.put(word, ids)
                    out.extend(ids)
        return out

    def build_inputs_with_special_tokens(self, ids_0: list[int], ids_1: list[int] | None = None) -> list[int]:
        """``<s> A </s>`` or ``<s> A </s> B </s>``."""
        bos, sep = [self.bos_token_id], [self.sep_token_id]
        if ids_1 is None:
            return bos + ids_0 + sep
        return bos + ids_0 + sep + ids_1 + sep

    def encode(self, text: str, text_pair: str | None = None, add_special_tokens: bool = True, lang: str = "en",
               **options: Any) -> list[int]:
        """Ids of ``text`` (and ``text_pair``), as ``transformers.XLMTokenizer.encode``; ``options``
        (``max_length``, ``truncation``, ``padding``, ...) are those of calling the tokenizer."""
        if options:
            return self(text, text_pair, add_special_tokens=add_special_tokens, lang=lang, **options)["input_ids"]
        ids = self._ids(text, lang)
        pair = self._ids(_check_text(text_pair, "text_pair"), lang) if text_pair is not None else None
        if add_special_tokens:
            return self.build_inputs_with_special_tokens(ids, pair)
        return ids + (pair or [])

    def encode_with_offsets(self, text: str, lang: str = "en"):
        """Ids, pieces, original ``(start, end)`` spans and word indices, without ``<s>``/``</s>``
        (:func:`~xlm_onnx.tokenization.offsets.encode_with_offsets`)."""
        from .offsets import encode_with_offsets

        return encode_with_offsets(self, text, lang)

    def encode_batch(
        self,
        texts: list[str],
        max_length: int | None = None,
        truncation: bool = False,
        add_special_tokens: bool = True,
        lang: str = "en",
    ) -> dict[str, Any]:
        """Right-padded int64 ``input_ids``/``attention_mask``, as the reference's
        ``tokenizer(texts, padding=True, truncation=truncation, max_length=max_length)``.

        As there, ``max_length`` only matters with ``truncation=True``, which drops tokens from the
        end of the text (``truncation_side`` of the config) and keeps ``<s>``/``</s>``; without
        ``max_length`` it truncates to the config's ``model_max_length`` when that is set.
        """
        from ..batching import pad  # numpy: imported with the first batch, not with the tokenizer

        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise InputTypeError(f"texts must be a list of str, not {type(texts).__name__}")
        limit = max_length
        if truncation and limit is None and self.model_max_length <= LARGE_INTEGER:
            limit = self.model_max_length
        n_special = 2 if add_special_tokens else 0
        rows = []
        for text in texts:
            ids = self._ids(text, lang)
            if truncation and limit is not None and len(ids) + n_special > limit:
                drop = len(ids) + n_special - limit
                ids = ids[:-drop] if self.truncation_side == "right" else ids[drop:]
            rows.append(self.build_inputs_with_special_tokens(ids) if add_special_tokens else ids)
        pad_id = self.pad_token_id
        if pad_id is None and len({len(r) for r in rows}) > 1:
            raise InputError("cannot pad the batch: the tokenizer has no pad_token")
        input_ids, attention_mask = pad(rows, pad_id if pad_id is not None else 0)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    # --- decoding ---------------------------------------------------------------------------------
    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):  # fmt: skip
            text = text.replace(a, b)
        return text

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(tokens).replace("</w>", " ").strip()

    def decode(
        self, ids: Any, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None
    ) -> str | list[str]:
        """Text of ``ids`` (a list of lists gives a list of texts), as the reference's ``decode``."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if isinstance(ids, (list, tuple)) and ids and isinstance(ids[0], (list, tuple)):
            return [self.decode(row, skip_special_tokens, clean_up_tokenization_spaces) for row in ids]
        tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens)
        text = self.convert_tokens_to_string([tokens] if isinstance(tokens, str) else tokens)
        clean = clean_up_tokenization_spaces
        if clean is None:
            clean = self.clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean else text
