"""sacremoses' data tables, read without importing sacremoses, and the lazy ``str.translate`` table.

Shared by :mod:`xlm_onnx.tokenization.moses` (the XLM preprocessing steps) and :mod:`xlm_onnx.tokenization.moses_port` (the
ported Moses tokenizer); neither imports the other's internals, so there is no import cycle.
"""

from __future__ import annotations

import importlib.util
import os
import re


def _sacremoses_dir() -> str | None:
    spec = importlib.util.find_spec("sacremoses")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def sacremoses_version() -> str | None:
    """The installed sacremoses version, read from its ``__init__.py`` (importing it is slow)."""
    d = _sacremoses_dir()
    if d is None:
        return None
    try:
        with open(os.path.join(d, "__init__.py"), encoding="utf-8") as f:
            m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", f.read(), re.M)
    except OSError:
        return None
    return m.group(1) if m else None


def _load_sacremoses_module(name: str):
    """Execute one sacremoses data module by path, without running the package ``__init__``."""
    path = os.path.join(_sacremoses_dir() or "", name + ".py")
    spec = importlib.util.spec_from_file_location("_xlm_onnx_sacremoses_" + name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Data:
    """Character classes and prefix lists, exactly as ``sacremoses.MosesTokenizer`` builds them."""

    def __init__(self) -> None:
        props = _load_sacremoses_module("_data_perluniprops").PERLUNIPROPS
        indic = _load_sacremoses_module("indic")
        self.nbp_files = _load_sacremoses_module("_data_nonbreaking_prefixes").NONBREAKING_PREFIXES
        extra = "".join(indic.VIRAMAS) + "".join(indic.NUKTAS)
        self.is_alnum = "".join(props["IsAlnum"]) + extra
        self.is_alpha = "".join(props["IsAlpha"]) + extra
        self.is_n = "".join(props["IsN"])
        self.is_lower_set = frozenset(props["IsLower"])
        self.is_alpha_set = frozenset(self.is_alpha)
        for s in (self.is_alnum, self.is_alpha, self.is_n):
            # The strings are pasted into regex character classes, as sacremoses does; the set
            # shortcuts below are only equivalent if no character has a meaning inside a class.
            assert not set(s) & set("\\]^-["), "unexpected regex metacharacter in sacremoses data"
        langs = {
            "assamese": "as", "bengali": "bn", "catalan": "ca", "czech": "cs", "german": "de",
            "greek": "el", "english": "en", "spanish": "es", "estonian": "et", "finnish": "fi",
            "french": "fr", "irish": "ga", "gujarati": "gu", "hindi": "hi", "hungarian": "hu",
            "icelandic": "is", "italian": "it", "kannada": "kn", "lithuanian": "lt", "latvian": "lv",
            "malayalam": "ml", "manipuri": "mni", "marathi": "mr", "dutch": "nl", "oriya": "or",
            "punjabi": "pa", "polish": "pl", "portuguese": "pt", "romanian": "ro", "russian": "ru",
            "slovak": "sk", "slovenian": "sl", "swedish": "sv", "tamil": "ta", "telugu": "te",
            "tetum": "tdt", "cantonese": "yue", "chinese": "zh",
        }  # fmt: skip
        langs.update({v: v for v in langs.values()})
        self.langs = langs

    def nonbreaking_prefixes(self, lang: str) -> list[str]:
        # Port of NonbreakingPrefixes.words(): unknown languages fall back to English.
        names = ["nonbreaking_prefix." + self.langs.get(lang, "en")]
        out = []
        for name in names:
            for line in self.nbp_files[name].splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append(line.strip())
        return out


_DATA: _Data | None = None


def _data() -> _Data:
    global _DATA
    if _DATA is None:
        _DATA = _Data()
    return _DATA


class _CharTable(dict):
    """A ``str.translate`` table filled lazily: ``rule(ch)`` gives the replacement (None deletes).

    At most :attr:`MAX_ENTRIES` characters are kept (~100 B each); a character past them is looked
    up each time instead. Unbounded, text holding every code point grew a server by 214 MB (three
    tables); ``str.translate`` reads the table in C, so an LRU's bookkeeping on hits is not an
    option, and the characters of real text come first and stay.
    """

    MAX_ENTRIES = 1 << 16

    def __init__(self, rule) -> None:
        super().__init__()
        self._rule = rule

    def __missing__(self, cp: int):
        value = self._rule(chr(cp))
        if len(self) < self.MAX_ENTRIES:
            self[cp] = value
        return value
