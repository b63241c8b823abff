"""Character offsets into the original text for every token of :meth:`XLMTokenizer.encode`.

XLM's pipeline rewrites text before BPE (``replace_unicode_punct``, Moses punctuation normalisation,
removal of non-printing characters, Moses tokenization, optional lowercasing + accent removal), so
a piece's characters are not a substring of the input. Instead of threading positions through
every one of those ~60 rewrite rules (and through sacremoses itself, which the tokenizer falls
back to), the tokens are produced exactly as the tokenizer produces them and then *aligned* to the
original (XLM runs Moses with ``escape=False``: there are no HTML entities to undo). Both sides are
reduced, character by character, to a comparison key (:func:`_fold`: the punctuation maps of the
pipeline, quotes as ``''``, case and accents folded, whitespace and non-printing characters
dropped), and the two key strings are matched left to right. They are equal except where the
pipeline inserts or reorders characters (a ``.``/``,`` put between digits split by a no-break
space; ``"hello",`` -> ``"hello,"`` in English quote normalisation); there the matcher
re-synchronises (:func:`_resync`), and the few token characters left unmatched get no original
character.

What this guarantees (``tests/test_offsets.py`` checks it on every UDHR line of every script):

* ids and tokens equal :meth:`XLMTokenizer.encode` (without special tokens: callers add them);
* spans are in order and never overlap; a word's pieces tile the word's span;
* every character of a word matched in the original lies inside the word's span, and a word's span
  holds nothing else but characters the pipeline drops (marks, format characters) after it.

Languages ``zh``/``ja``/``th`` raise ``ValueError`` here as in the tokenizer (transformers sends
them to external segmenters); text in those scripts is tokenized and aligned with ``lang="en"``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .moses import _RUP_MAP

__all__ = ["TokenOffsets", "encode_with_offsets"]

# Characters the normaliser rewrites one for one (or to a fixed string); quotes become "''" so
# that '"' (one character in a token) matches "''", "``" and "´´" (two characters in the original).
_PUNCT = {**_RUP_MAP, "。": ".", "．": ".", "`": "'", "´": "'", "‘": "'", "’": "'", "‚": "'",
          "„": '"', "“": '"', "”": '"', "«": '"', "»": '"', "–": "-", "—": "-", "…": "..."}  # fmt: skip
_RESYNC_RUN = 3  # characters that must agree to re-synchronise after a mismatch
_RESYNC_WINDOW = 24  # farthest skip, in characters, tried on either side


@lru_cache(maxsize=65536)
def _fold(ch: str, lowercase: bool) -> str:
    """The comparison key of one character ("" for characters the pipeline may drop)."""
    if ch.isspace() or unicodedata.category(ch)[0] == "C":
        return ""
    s = _PUNCT.get(ch, ch).replace('"', "''")
    if lowercase:  # the pipeline's lowercase_and_remove_accent, on one character
        s = "".join(c for c in unicodedata.normalize("NFD", s.lower()) if unicodedata.category(c) != "Mn")
        s = s.lower()
    return s


@dataclass(frozen=True)
class TokenOffsets:
    """The tokens of one text with their original character spans.

    Attributes:
        ids: Token ids, equal to ``XLMTokenizer.encode(text, add_special_tokens=False)``.
        tokens: The pieces (``</w>`` marks a word's last piece); added tokens as they are.
        offsets: ``(start, end)`` of each token in the original text (``text[start:end]``).
        word_ids: Index of the word (a Moses word or an added token) each token belongs to.
        words: ``(start, end)`` of each word in the original text.
    """

    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    offsets: tuple[tuple[int, int], ...]
    word_ids: tuple[int, ...]
    words: tuple[tuple[int, int], ...]

    def head(self, n: int) -> TokenOffsets:
        """The first ``n`` tokens and the words they belong to (truncation)."""
        words = self.words[: self.word_ids[n - 1] + 1] if n > 0 else ()
        return TokenOffsets(self.ids[:n], self.tokens[:n], self.offsets[:n], self.word_ids[:n], words)


def _word_pieces(tokenizer, text: str, lang: str) -> list[tuple[str, tuple[str, ...]]]:
    """(word, pieces) in encode's order; an added token is its own word with itself as piece."""
    out = []
    added, specials = tokenizer._added_encoder, tokenizer._all_special_set
    for piece in tokenizer._pieces(text):
        if not piece:
            continue
        if not tokenizer.split_special_tokens and (piece in added or piece in specials):
            out.append((piece, (piece,)))
            continue
        for word in tokenizer._words(piece, lang):
            if word:
                out.append((word, tuple(tokenizer._bpe(word))))
    return out


def _align(orig: list[tuple[str, int]], keys: str) -> list[int]:
    """Original index of each character of ``keys`` (-1: unmatched), matching left to right."""
    n, m = len(orig), len(keys)
    if n == m and all(c == keys[k] for k, (c, _) in enumerate(orig)):
        return [i for _, i in orig]
    out = [-1] * m
    i = j = 0
    while i < n and j < m:
        if orig[i][0] == keys[j]:
            out[j] = orig[i][1]
            i, j = i + 1, j + 1
            continue
        i, j = _resync(orig, keys, i, j)
    return out


def _agree(orig: list[tuple[str, int]], keys: str, a: int, b: int, run: int) -> bool:
    run = min(run, len(orig) - a, len(keys) - b)
    return run > 0 and all(orig[a + r][0] == keys[b + r] for r in range(run))


def _resync(orig: list[tuple[str, int]], keys: str, i: int, j: int) -> tuple[int, int]:
    """Where matching resumes after orig[i] != keys[j]: one inserted, dropped or replaced
    character when the next two agree (the pipeline's usual edits, cheap to test), else the
    nearest common 3-character run within the window, else one step on each side."""
    for a, b in ((i, j + 1), (i + 1, j), (i + 1, j + 1)):
        if _agree(orig, keys, a, b, 2):
            return a, b
    for d in range(2, _RESYNC_WINDOW + 1):
        for di in range(d + 1):
            if _agree(orig, keys, i + di, j + d - di, _RESYNC_RUN):
                return i + di, j + d - di
    return i + 1, j + 1


def _spans(text: str, word_pieces, matched: list[int], lowercase: bool):
    """Word spans (extended over trailing dropped characters) and piece spans tiling them."""
    words, offsets, k, prev_end = [], [], 0, 0
    for word, pieces in word_pieces:
        hits = []
        for p in pieces:
            n = len(_key(p.removesuffix("</w>"), lowercase))
            hits.append([h for h in matched[k : k + n] if h >= 0])
            k += n
        found = [h for piece_hits in hits for h in piece_hits]
        start = max(found[0], prev_end) if found else prev_end
        end = max(found[-1] + 1, start) if found else start
        limit = _next_start(matched, k, len(text))
        while end < limit and not text[end].isspace() and not _fold(text[end], lowercase):
            end += 1
        words.append((start, end))
        starts = [start]
        for q in range(1, len(pieces)):
            s = hits[q][0] if hits[q] else (hits[q - 1][-1] + 1 if hits[q - 1] else starts[-1])
            starts.append(min(max(s, starts[-1]), end))
        offsets.extend(zip(starts, starts[1:] + [end]))
        prev_end = end
    return words, offsets


def _next_start(matched: list[int], k: int, default: int) -> int:
    for i in range(k, len(matched)):  # not a slice: that copies the rest once per word
        if matched[i] >= 0:
            return matched[i]
    return default


def _key(s: str, lowercase: bool) -> str:
    return "".join(_fold(c, lowercase) for c in s)


def encode_with_offsets(tokenizer, text: str, lang: str = "en") -> TokenOffsets:
    """Tokens of ``text`` (no ``<s>``/``</s>``) with their spans in ``text`` and word indices.

    Args:
        tokenizer: An :class:`~xlm_onnx.tokenization.XLMTokenizer`.
        text: The original text.
        lang: Moses language rules, as for :meth:`XLMTokenizer.encode`.

    Raises:
        TypeError: ``text`` is not a str.
        ValueError: ``lang`` is ``zh``, ``ja`` or ``th``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    lowercase = tokenizer.do_lowercase_and_remove_accent
    word_pieces = _word_pieces(tokenizer, text, lang)
    orig = [(c, i) for i, ch in enumerate(text) for c in _fold(ch, lowercase)]
    keys = "".join(_key(p.removesuffix("</w>"), lowercase) for _, pieces in word_pieces for p in pieces)
    matched = _align(orig, keys)
    words, offsets = _spans(text, word_pieces, matched, lowercase)
    tokens = tuple(p for _, pieces in word_pieces for p in pieces)
    word_ids = tuple(w for w, (_, pieces) in enumerate(word_pieces) for _ in pieces)
    ids = tuple(tokenizer.convert_tokens_to_ids(list(tokens)))
    return TokenOffsets(ids, tokens, tuple(offsets), word_ids, tuple(words))
