"""Moses preprocessing of XLM text, output-identical to sacremoses 0.2.0 + transformers' XLM helpers.

Why hand-written: ``import sacremoses`` costs ~0.33 s (its ``__init__`` pulls joblib, tqdm and numpy
and compiles ~60 regexes with 10k-character classes), and its per-line work dominates XLM tokenization
(dozens of ``re.sub`` passes, most of which cannot match). This module ports exactly the steps
``transformers.XLMTokenizer`` runs (``replace_unicode_punct``, ``MosesPunctNormalizer.normalize``,
``remove_non_printing_char``, ``MosesTokenizer.tokenize(escape=False)``,
``lowercase_and_remove_accent``), reading the Perl Unicode property tables and non-breaking prefixes
from sacremoses' own data modules so both sides use the same character sets. Each step skips the
substitutions whose trigger characters are absent (a regex that cannot match returns its input
unchanged) and uses ``str.replace`` for literal patterns (same leftmost, non-overlapping semantics).
``tests/test_tokenizer*.py`` prove identity against the reference.

The port is used only with the sacremoses version it was verified against; any other version gets
:class:`_SacremosesSteps`, which calls sacremoses itself (slower, still identical to the reference).
"""

from __future__ import annotations

import re
import unicodedata

from .moses_data import _CharTable, _data, sacremoses_version
from ..errors import InputError, InputTypeError

VERIFIED_SACREMOSES_VERSIONS = ("0.2.0",)
#: Languages ``transformers.XLMTokenizer`` sends to external word segmenters (not supported here).
CUSTOM_TOKENIZER_LANGS = frozenset({"zh", "ja", "th"})
#: A language code: ISO 639-1/-3 letters, with an optional region or script subtag ("pt-BR").
_LANG_CODE = re.compile(r"[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?")


_category = unicodedata.category
# remove_non_printing_char: drop every character of Unicode category C*.
_NON_PRINTING = _CharTable(lambda ch: None if _category(ch)[0] == "C" else ch)
# lowercase_and_remove_accent: drop nonspacing marks (Mn) after NFD.
_MN = _CharTable(lambda ch: None if _category(ch) == "Mn" else ch)

# replace_unicode_punct (transformers.models.xlm): 34 one-character replacements applied in
# sequence, plus "。\s*" / "．\s*" -> ". ". No replacement produces a character another rule
# matches, and none of the keys is whitespace, so one left-to-right pass is equivalent.
_RUP_MAP = {
    "，": ",", "、": ",", "”": '"', "“": '"', "∶": ":", "：": ":", "？": "?", "《": '"', "》": '"',
    "）": ")", "！": "!", "（": "(", "；": ";", "１": "1", "」": '"', "「": '"', "０": "0", "３": "3",
    "２": "2", "５": "5", "６": "6", "９": "9", "７": "7", "８": "8", "４": "4", "～": "~", "’": "'",
    "…": "...", "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%",
}  # fmt: skip
_RUP_RE = re.compile("[。．]\\s*|[" + "".join(map(re.escape, _RUP_MAP)) + "]")


def _rup_sub(m: re.Match) -> str:
    return _RUP_MAP.get(m.group(), ". ")


def replace_unicode_punct(text: str) -> str:
    return _RUP_RE.sub(_rup_sub, text)


def remove_non_printing_char(text: str) -> str:
    # isprintable() is False for every C* (and Z* except " ") character: True means nothing to drop.
    return text if text.isprintable() else text.translate(_NON_PRINTING)


def lowercase_and_remove_accent(tokens: list[str]) -> list[str]:
    text = unicodedata.normalize("NFD", " ".join(tokens).lower())
    if not text.isascii():
        text = text.translate(_MN)
    return text.lower().split(" ")


def romanian_preprocessing(text: str) -> str:
    text = text.replace("\u015e", "\u0218").replace("\u015f", "\u0219")
    text = text.replace("\u0162", "\u021a").replace("\u0163", "\u021b")
    text = text.replace("\u0218", "S").replace("\u0219", "s")
    text = text.replace("\u021a", "T").replace("\u021b", "t")
    text = text.replace("\u0102", "A").replace("\u0103", "a")
    text = text.replace("\u00c2", "A").replace("\u00e2", "a")
    text = text.replace("\u00ce", "I").replace("\u00ee", "i")
    return text


def check_lang(lang: str) -> str:
    if not isinstance(lang, str):
        raise InputTypeError(f"lang must be a str, not {type(lang).__name__}")
    if not _LANG_CODE.fullmatch(lang):  # "french", "EN", "": a mistake that would silently mean defaults
        raise InputError(f"lang={lang!r} is not a language code (two or three lowercase letters, as 'fr'); "
                         "a code Moses has no rules for gets its default rules")
    if lang in CUSTOM_TOKENIZER_LANGS:
        raise ValueError(
            f"lang={lang!r} is unsupported: transformers uses an external word segmenter for zh/ja/th; "
            "tokenize such text with lang='en' (Moses rules) instead"
        )
    return lang


def moses_words(steps, text: str, lang: str, lowercase: bool) -> list[str]:
    """XLMTokenizer._tokenize up to BPE: the words of a text that holds no added tokens."""
    text = replace_unicode_punct(text)
    text = steps.normalize(text)
    text = remove_non_printing_char(text)
    if lang == "ro":
        text = romanian_preprocessing(text)
    words = steps.tokenize(text)
    if lowercase:
        words = lowercase_and_remove_accent(words)
    return words


def moses_steps(lang: str, impl: str = "auto"):
    """The Moses normalizer + tokenizer for ``lang``: the port, or sacremoses itself."""
    if impl not in ("auto", "port", "sacremoses"):
        raise ValueError(f"unknown Moses implementation {impl!r}")
    if lang in ("ko", "cjk"):
        # sacremoses extends its alnum classes for these only partly (its apostrophe regexes are
        # class attributes built before): not ported, so they always go to sacremoses.
        impl = "sacremoses"
    elif impl == "auto":
        impl = "port" if sacremoses_version() in VERIFIED_SACREMOSES_VERSIONS else "sacremoses"
    if impl == "sacremoses":
        return _SacremosesSteps(lang)
    from .moses_port import MosesPort

    return MosesPort(lang, _data())


class _SacremosesSteps:
    """Fallback: sacremoses' own classes, configured exactly as transformers.XLMTokenizer does."""

    def __init__(self, lang: str) -> None:
        import sacremoses

        self._norm = sacremoses.MosesPunctNormalizer(lang=lang)
        self._tok = sacremoses.MosesTokenizer(lang=lang)

    def normalize(self, text: str) -> str:
        return self._norm.normalize(text)

    def tokenize(self, text: str) -> list[str]:
        return self._tok.tokenize(text, return_str=False, escape=False)
