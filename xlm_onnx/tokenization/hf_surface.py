"""The part of ``transformers.XLMTokenizer``'s public surface an inference user touches, without torch.

:class:`HFSurface` is mixed into :class:`~xlm_onnx.tokenization.XLMTokenizer`: calling the tokenizer
(``tok(text)`` / ``tok([...])`` → ``input_ids``, ``attention_mask``), padding (right or left,
``padding_side``) and truncation with transformers' strategies, ``batch_decode``,
``get_special_tokens_mask``, ``num_special_tokens_to_add``, the added-token maps, and pickling.
Each behaves as transformers 5.23's ``XLMTokenizer`` (tests/test_hf_tokenizer.py runs both);
``save_pretrained`` lives in :mod:`xlm_onnx.tokenization.saving`.

Deliberate differences, each named in the error it raises: ``return_tensors`` is ``None`` (lists)
or ``"np"`` (there is no torch here); rows of unequal length are not stacked into a numpy array
(transformers makes an object array); overflowing tokens and ``stride`` are not offered.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from ..errors import InputError, InputTypeError
from .files import LARGE_INTEGER

_PADDING = {False: None, "do_not_pad": None, True: "longest", "longest": "longest", "max_length": "max_length"}
_TRUNCATION = {None: None, False: None, "do_not_truncate": None, True: "longest_first",
               "longest_first": "longest_first", "only_first": "only_first", "only_second": "only_second"}
_CALL_OPTIONS = frozenset({"pad_to_multiple_of", "padding_side", "return_attention_mask", "return_token_type_ids",
                           "return_special_tokens_mask", "return_length", "verbose"})


class Encoding(dict):
    """What calling the tokenizer returns: a dict (``input_ids``, ``attention_mask``, ...) whose keys
    are also attributes, as transformers' ``BatchEncoding``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _lookup(table: dict, name: str, value: Any) -> Any:
    try:
        return table[value]
    except (KeyError, TypeError):
        raise InputError(f"{name} must be one of {[k for k in table if k is not None]}, not {value!r}") from None


def longest_first(first: int, second: int, n: int) -> tuple[int, int]:
    """How many of ``n`` ids transformers' ``longest_first`` truncation takes from each of two
    sequences of ``first`` and ``second`` ids: it evens their lengths, then takes the rest half
    from each (the odd one from the second)."""
    evened = min(abs(second - first), n)
    rest = n - evened
    if first > second:
        return evened + rest // 2, rest - rest // 2
    return rest // 2, evened + rest - rest // 2


def _cut(ids: list[int], n: int, side: str) -> list[int]:
    return ids if n <= 0 else (ids[:-n] if side == "right" else ids[n:])


class HFSurface:
    """transformers' tokenizer calls over :class:`XLMTokenizer`'s own ``_ids`` and special tokens."""

    #: What the model takes, in transformers' order (XLM: no ``token_type_ids`` unless asked for).
    model_input_names = ["input_ids", "attention_mask"]

    # --- pickling: the Moses steps and word caches are rebuilt on first use ------------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for cache in ("_moses", "_ids_cache", "_bpe"):  # closures, compiled tables: not picklable
            state.pop(cache, None)
        return state

    def __setstate__(self, state: dict) -> None:
        from .._lru import ByteLRU, pieces_bytes
        from .bpe import BPE, CACHE_BYTES

        self.__dict__.update(state)
        self._moses, self._bpe = {}, BPE(self.bpe_ranks)
        self._ids_cache = ByteLRU(CACHE_BYTES, pieces_bytes)

    # --- padding side --------------------------------------------------------------------------------
    @property
    def padding_side(self) -> str:
        """``"right"`` (the default) or ``"left"``: where padding goes."""
        return self.__dict__.get("_padding_side", "right")

    @padding_side.setter
    def padding_side(self, side: str) -> None:
        if side not in ("right", "left"):
            raise InputError(f"padding_side must be 'right' or 'left', not {side!r}")
        self._padding_side = side

    # --- special tokens ------------------------------------------------------------------------------
    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """Specials added around one text (``<s> A </s>``: 2) or a pair (``<s> A </s> B </s>``: 3)."""
        return 3 if pair else 2

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 where :meth:`build_inputs_with_special_tokens` puts a special token, else 0; with
        ``already_has_special_tokens``, 1 for every id of a special token in ``token_ids_0``."""
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise InputError("token_ids_1 must be None when already_has_special_tokens=True")
            specials = set(self.all_special_ids)
            return [1 if i in specials else 0 for i in token_ids_0]
        mask = [1] + [0] * len(token_ids_0) + [1]
        return mask if token_ids_1 is None else mask + [0] * len(token_ids_1) + [1]

    @property
    def added_tokens_decoder(self) -> dict[int, Any]:
        """Id → added token (``content``, ``lstrip``, ``rstrip``, ``single_word``, ``normalized``,
        ``special``), sorted by id."""
        return dict(sorted(self._added_decoder.items()))

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        """Added token → id, sorted by id."""
        return {tok.content: index for index, tok in sorted(self._added_decoder.items())}

    def get_added_vocab(self) -> dict[str, int]:
        """Added token → id (the specials XLM declares included, as in transformers)."""
        return self.added_tokens_encoder

    def save_pretrained(self, save_directory: str | os.PathLike) -> tuple[str, ...]:
        """Writes ``vocab.json``, ``merges.txt`` and ``tokenizer_config.json`` (see
        :func:`~xlm_onnx.tokenization.saving.save_pretrained`); returns their paths."""
        from .saving import save_pretrained

        return save_pretrained(self, save_directory)

    # --- decoding ------------------------------------------------------------------------------------
    def batch_decode(self, sequences: Sequence[Sequence[int]], skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        """:meth:`decode` of each row of ``sequences`` (a list of id lists, or a 2-D array)."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(row, skip_special_tokens, clean_up_tokenization_spaces) for row in sequences]

    # --- calling the tokenizer -----------------------------------------------------------------------
    def __call__(self, text: str | Sequence[str], text_pair: str | Sequence[str] | None = None, *,
                 add_special_tokens: bool = True, padding: bool | str = False, truncation: bool | str | None = None,
                 max_length: int | None = None, return_tensors: str | None = None, lang: str = "en",
                 **options: Any) -> Encoding:
        """``input_ids`` and ``attention_mask`` of a text, a pair, or a batch of them, as transformers.

        Args:
            text: A str, or a list of them (a batch).
            text_pair: The second text of each pair (a str, or a list as long as ``text``). The
                arguments after it are keywords (transformers' third positional is ``text_target``).
            add_special_tokens: Add ``<s>`` / ``</s>``.
            padding: ``False``, ``True`` / ``"longest"`` (to the longest row), ``"max_length"``.
            truncation: ``None``/``False``, ``True`` / ``"longest_first"``, ``"only_first"``,
                ``"only_second"``; ``None`` with ``max_length`` and no padding truncates, as there.
            max_length: Length with specials (default with truncation: ``model_max_length``).
            return_tensors: ``None`` (lists) or ``"np"`` (int64 arrays, with a batch axis).
            lang: Moses language rules (see :meth:`XLMTokenizer.tokenize`; transformers ignores it).
            **options: ``pad_to_multiple_of``, ``padding_side``, ``return_attention_mask``,
                ``return_token_type_ids``, ``return_special_tokens_mask``, ``return_length``.

        Raises:
            InputError: An unknown option or strategy, a ``return_tensors`` other than ``"np"``,
                or rows to stack of unequal length; :class:`~xlm_onnx.errors.InputTypeError` for
                a text that is not a str.
        """
        unknown = sorted(set(options) - _CALL_OPTIONS)
        if unknown:
            raise InputError(f"unsupported tokenizer arguments {unknown}; this tokenizer takes "
                             f"{sorted(_CALL_OPTIONS | {'padding', 'truncation', 'max_length', 'return_tensors'})}")
        if return_tensors not in (None, "np"):
            raise InputError(f"return_tensors={return_tensors!r}: only None (lists) and 'np' are "
                             "available without torch")
        batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        pairs = list(text_pair) if batched and text_pair is not None else [text_pair] * len(texts)
        if batched and text_pair is not None and (isinstance(text_pair, str) or len(pairs) != len(texts)):
            raise InputError("text_pair must be a list as long as text when text is a list")
        strategy = _lookup(_TRUNCATION, "truncation", truncation)
        if truncation is None and max_length is not None and padding in (False, "do_not_pad"):
            strategy = "longest_first"  # transformers: max_length alone truncates
        limit = max_length
        if strategy and limit is None and self.model_max_length <= LARGE_INTEGER:
            limit = self.model_max_length
        pad_to, multiple = _lookup(_PADDING, "padding", padding), options.get("pad_to_multiple_of")
        if pad_to == "max_length" and max_length is None:  # transformers: model_max_length, if there is one
            max_length = self.model_max_length if self.model_max_length <= LARGE_INTEGER else None
            pad_to = pad_to if max_length is not None else None
        if pad_to and strategy and multiple and limit is not None and limit % multiple:
            raise InputError(f"Truncation and padding are both activated but truncation length ({limit}) is not "
                             f"a multiple of pad_to_multiple_of ({multiple}).")
        rows = [self._encode_row(t, p, add_special_tokens, strategy, limit, lang, options)
                for t, p in zip(texts, pairs)]
        count = options.get("return_length")  # transformers counts a batch's rows before padding, one text after
        rows = _with_length(rows) if count and batched else rows
        rows = self._pad_rows(rows, pad_to, max_length, options)
        rows = _with_length(rows) if count and not batched else rows
        out = Encoding({key: [row[key] for row in rows] for key in rows[0]} if rows else {"input_ids": []})
        if not batched:
            out = Encoding({key: value[0] for key, value in out.items()})
        return _as_arrays(out, batched) if return_tensors == "np" else out

    def _encode_row(self, text: Any, pair: Any, add_special: bool, strategy: str | None, limit: int | None,
                    lang: str, options: dict) -> dict:
        if not isinstance(text, str):
            raise InputTypeError(f"text must be a str or a list of str, not {type(text).__name__}")
        ids = self._ids(text, lang)
        pair_ids = None if pair is None else self._ids(pair if isinstance(pair, str) else _bad_pair(pair), lang)
        n_special = self.num_special_tokens_to_add(pair_ids is not None) if add_special else 0
        excess = len(ids) + len(pair_ids or ()) + n_special - (limit if strategy and limit is not None else 1 << 62)
        if excess > 0:
            ids, pair_ids = self._truncate(ids, pair_ids, excess, strategy)
        if add_special:
            row = {"input_ids": self.build_inputs_with_special_tokens(ids, pair_ids),
                   "special_tokens_mask": self.get_special_tokens_mask(ids, pair_ids)}
            types = [0] * (len(ids) + 2) + ([1] * (len(pair_ids) + 1) if pair_ids is not None else [])
        else:
            row = {"input_ids": ids + (pair_ids or []), "special_tokens_mask": [0] * (len(ids) + len(pair_ids or []))}
            types = [0] * len(ids) + [1] * len(pair_ids or [])
        if options.get("return_token_type_ids"):
            row["token_type_ids"] = types
        if not options.get("return_special_tokens_mask"):
            del row["special_tokens_mask"]
        if options.get("return_attention_mask", True):
            row["attention_mask"] = [1] * len(row["input_ids"])
        return row

    def _truncate(self, ids: list[int], pair_ids: list[int] | None, n: int, strategy: str):
        """transformers' ``truncate_sequences`` for ``n`` tokens too many (no overflow kept)."""
        side = self.truncation_side
        if strategy == "only_second" and not pair_ids:  # nothing to cut from: left as it is, as there
            return ids, pair_ids
        if strategy == "only_second" or (strategy == "only_first" and pair_ids is not None):
            cut_first = strategy == "only_first"  # too short a sequence is emptied, as there
            return (_cut(ids, n, side), pair_ids) if cut_first else (ids, _cut(pair_ids, n, side))
        if pair_ids is None:
            return _cut(ids, n, side), None
        from_ids, from_pair = longest_first(len(ids), len(pair_ids), n)
        if side == "left" and not pair_ids:  # transformers' left cut turns an empty pair into none
            return _cut(ids, from_ids, side), None
        return _cut(ids, from_ids, side), _cut(pair_ids, from_pair, side)

    def _pad_rows(self, rows: list[dict], padding: str | None, max_length: int | None, options: dict) -> list[dict]:
        if padding is None or not rows:
            return rows
        target = max(len(r["input_ids"]) for r in rows) if padding == "longest" or max_length is None else max_length
        multiple = options.get("pad_to_multiple_of")
        if multiple:
            target = -(-target // multiple) * multiple
        side = options.get("padding_side") or self.padding_side
        if side not in ("right", "left"):
            raise InputError(f"padding_side must be 'right' or 'left', not {side!r}")
        fill = {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0, "special_tokens_mask": 1}
        if fill["input_ids"] is None and any(len(r["input_ids"]) < target for r in rows):
            raise InputError("cannot pad: the tokenizer has no pad_token")
        out = []
        for row in rows:
            n = target - len(row["input_ids"])
            padded = {}
            for key, value in row.items():
                if key not in fill or n <= 0:
                    padded[key] = value
                else:
                    padded[key] = value + [fill[key]] * n if side == "right" else [fill[key]] * n + value
            out.append(padded)
        return out


def _with_length(rows: list[dict]) -> list[dict]:
    return [dict(row, length=len(row["input_ids"])) for row in rows]


def _bad_pair(pair: Any) -> str:
    raise InputTypeError(f"text_pair must be a str or a list of str, not {type(pair).__name__}")


def _as_arrays(out: Encoding, batched: bool) -> Encoding:
    import numpy as np  # imported with the first array asked for, not with the tokenizer

    arrays = {}
    for key, value in out.items():
        rows = value if batched else [value]
        if key != "length" and len({len(r) for r in rows}) > 1:
            raise InputError("return_tensors='np' needs rows of equal length: pass padding=True")
        arrays[key] = np.array(rows, dtype=np.int64)
    return Encoding(arrays)
