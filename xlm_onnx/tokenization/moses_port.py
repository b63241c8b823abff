"""Hand-written port of sacremoses 0.2.0 ``MosesPunctNormalizer`` and ``MosesTokenizer``.

Why hand-written: see :mod:`xlm_onnx.tokenization.moses`. Only the configuration transformers' XLM tokenizer uses
is ported: normalizer ``(lang, penn=True, norm_quote_commas=True, norm_numbers=True)``, tokenizer
``tokenize(text, escape=False, aggressive_dash_splits=False, protected_patterns=None)``. The rules
are sacremoses' own, in its order; a rule runs only when its trigger substring is present (without
it the pattern cannot match, so skipping it changes nothing), and literal patterns use
``str.replace``.
"""

from __future__ import annotations

import re

from .moses_data import _CharTable

# Rules: ("lit", pattern, replacement) or ("re", trigger, compiled pattern, replacement template).
_SPACES = ("re", "  ", re.compile(r" +"), " ")
_NORM_COMMON = [
    # EXTRA_WHITESPACE
    ("lit", "\r", ""),
    ("lit", "(", " ("),
    ("lit", ")", ") "),
    _SPACES,
    ("re", ") ", re.compile(r"\) ([.!:?;,])"), r")\g<1>"),
    ("lit", "( ", "("),
    ("lit", " )", ")"),
    ("re", " %", re.compile(r"(\d) %"), r"\g<1>%"),
    ("lit", " :", ":"),
    ("lit", " ;", ";"),
    # NORMALIZE_UNICODE_IF_NOT_PENN (sacremoses adds it when penn=True)
    ("lit", "`", "'"),
    ("lit", "''", ' " '),
    # NORMALIZE_UNICODE
    ("lit", "„", '"'),
    ("lit", "“", '"'),
    ("lit", "”", '"'),
    ("lit", "–", "-"),
    ("lit", "—", " - "),
    _SPACES,
    ("lit", "´", "'"),
    ("re", "‘", re.compile("([a-zA-Z])‘([a-zA-Z])"), r"\g<1>'\g<2>"),
    ("re", "’", re.compile("([a-zA-Z])’([a-zA-Z])"), r"\g<1>'\g<2>"),
    ("lit", "‘", "'"),
    ("lit", "‚", "'"),
    ("lit", "’", "'"),
    ("lit", "''", '"'),
    ("lit", "´´", '"'),
    ("lit", "…", "..."),
    # FRENCH_QUOTES
    ("lit", "\u00a0«\u00a0", '"'),
    ("lit", "«\u00a0", '"'),
    ("lit", "«", '"'),
    ("lit", "\u00a0»\u00a0", '"'),
    ("lit", "\u00a0»", '"'),
    ("lit", "»", '"'),
    # HANDLE_PSEUDO_SPACES
    ("lit", "\u00a0%", "%"),
    ("lit", "nº\u00a0", "nº "),
    ("lit", "\u00a0:", ":"),
    ("lit", "\u00a0ºC", " ºC"),
    ("lit", "\u00a0cm", " cm"),
    ("lit", "\u00a0?", "?"),
    ("lit", "\u00a0!", "!"),
    ("lit", "\u00a0;", ";"),
    ("lit", ",\u00a0", ", "),
    _SPACES,
]
_NORM_EN_QUOTE = [("re", '"', re.compile(r'"([,.]+)'), r'\g<1>"')]
_NORM_DE_ES_FR_QUOTE = [
    ("lit", ',"', '",'),
    ("re", '"', re.compile(r'(\.+)"(\s*[^<])'), r'"\g<1>\g<2>'),
]
_NORM_NUM_COMMA = [("re", "\u00a0", re.compile("(\\d)\u00a0(\\d)"), r"\g<1>,\g<2>")]
_NORM_NUM_DOT = [("re", "\u00a0", re.compile("(\\d)\u00a0(\\d)"), r"\g<1>.\g<2>")]

_DEDUP_SPACE = re.compile(r"\s+")
_ASCII_JUNK = re.compile(r"[\000-\037]")
_HAS_ASCII_JUNK = re.compile(r"[\000-\037]").search
_MULTIDOT_RUN = re.compile(r"\.{2,}")
_MULTIDOT_MARKER = re.compile(r"(?:DOT)+MULTI")
_NUMERIC_ONLY_MARKER = re.compile(r"\s\#NUMERIC_ONLY\#")
_TRAILING_DOT_APOSTROPHE = re.compile(r"\.' ?$")
_KEEP_UNPADDED = frozenset(".'`,-")

def _char_class(chars: str) -> str:
    """The body of a regex class matching exactly ``chars``, as escaped code-point ranges.

    sacremoses pastes its 10k-character property strings into the class; the same set written as
    ~1k ranges compiles about 5x faster (sre's class optimiser is pure Python).
    """
    cps = sorted(set(map(ord, chars)))
    out, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        out.append(re.escape(chr(cps[i])) + ("-" + re.escape(chr(cps[j])) if j > i else ""))
        i = j + 1
    return "".join(out)


class _Patterns:
    """sacremoses' class-level regexes that embed Unicode property classes, compiled on first use."""

    _shared: dict[int, _Patterns] = {}

    def __init__(self, data) -> None:
        alnum_set = frozenset(data.is_alnum)

        # PAD_NOT_ISALNUM: r"([^{IsAlnum}\s\.'\`\,\-])" -> r" \1 " matches one character at a time, so
        # a per-character translate table is the same substitution (sre's \s is str.isspace()).
        def pad(ch: str) -> str:
            if ch in alnum_set or ch in _KEEP_UNPADDED or ch.isspace():
                return ch
            return " " + ch + " "

        self.pad = _CharTable(pad)
        self._data = data
        self._groups: dict[str, list] = {}
        self._classes: tuple[str, str] | None = None

    @classmethod
    def get(cls, data) -> _Patterns:
        got = cls._shared.get(id(data))
        if got is None:
            got = cls._shared[id(data)] = cls(data)
        return got

    def group(self, name: str) -> list:
        got = self._groups.get(name)
        if got is None:
            got = self._groups[name] = self._compile(name)
        return got

    def _compile(self, name: str) -> list:
        if self._classes is None:
            self._classes = (_char_class(self._data.is_alpha), _char_class(self._data.is_n))
        a, n = self._classes
        c = re.compile
        if name == "comma":  # COMMA_SEPARATE_1..3
            return [(c(r"([^{}])[,]".format(n)), r"\1 , "), (c(r"[,]([^{}])".format(n)), r" , \1"),
                    (c(r"([{}])[,]$".format(n)), r"\1 , ")]
        if name == "en":  # ENGLISH_SPECIFIC_APOSTROPHE
            return [(c(r"([^{a}])[']([^{a}])".format(a=a)), r"\1 ' \2"),
                    (c(r"([^{a}{n}])[']([{a}])".format(a=a, n=n)), r"\1 ' \2"),
                    (c(r"([{a}])[']([^{a}])".format(a=a)), r"\1 ' \2"),
                    (c(r"([{a}])[']([{a}])".format(a=a)), r"\1 '\2"),
                    (c(r"([{n}])[']([s])".format(n=n)), r"\1 '\2")]
        # FR_IT_SPECIFIC_APOSTROPHE
        return [(c(r"([^{a}])[']([^{a}])".format(a=a)), r"\1 ' \2"),
                (c(r"([^{a}])[']([{a}])".format(a=a)), r"\1 ' \2"),
                (c(r"([{a}])[']([^{a}])".format(a=a)), r"\1 ' \2"),
                (c(r"([{a}])[']([{a}])".format(a=a)), r"\1' \2")]


def _apply(rules, text: str) -> str:
    for rule in rules:
        if rule[0] == "lit":
            if rule[1] in text:
                text = text.replace(rule[1], rule[2])
        elif rule[1] in text:
            text = rule[2].sub(rule[3], text)
    return text


class MosesPort:
    """Normalizer + tokenizer for one language (see module docstring for the configuration)."""

    def __init__(self, lang: str, data) -> None:
        self.lang = lang
        self._data = data
        rules = list(_NORM_COMMON)
        if lang == "en":
            rules += _NORM_EN_QUOTE
        elif lang in ("de", "es", "fr"):
            rules += _NORM_DE_ES_FR_QUOTE
        rules += _NORM_NUM_COMMA if lang in ("de", "es", "cz", "cs", "fr") else _NORM_NUM_DOT
        self._norm_rules = rules
        prefixes = data.nonbreaking_prefixes(lang)
        self._nbp = frozenset(prefixes)
        self._numeric_only = frozenset(
            w.rpartition(" ")[0] for w in prefixes if _NUMERIC_ONLY_MARKER.search(w)
        )
        self._p = _Patterns.get(data)

    def normalize(self, text: str) -> str:
        """``MosesPunctNormalizer(lang).normalize(text)``."""
        return _apply(self._norm_rules, text).strip()

    def tokenize(self, text: str) -> list[str]:
        """``MosesTokenizer(lang).tokenize(text, return_str=False, escape=False)``."""
        p = self._p
        text = _DEDUP_SPACE.sub(" ", text)
        if _HAS_ASCII_JUNK(text):
            text = _ASCII_JUNK.sub("", text)
        text = text.strip().translate(p.pad)
        if ".." in text:
            text = self._replace_multidots(text)
        if "," in text:
            for regexp, sub in p.group("comma"):
                text = regexp.sub(sub, text)
        if "'" in text:
            if self.lang == "en":
                for regexp, sub in p.group("en"):
                    text = regexp.sub(sub, text)
            elif self.lang in ("fr", "it"):
                for regexp, sub in p.group("fr_it"):
                    text = regexp.sub(sub, text)
            else:
                text = text.replace("'", " ' ")
        # handles_nonbreaking_prefixes() + DEDUPLICATE_SPACE + strip(): " ".join(split()) already
        # has single spaces only, so the dedup/strip pass after it is a no-op.
        text = " ".join(self._nonbreaking(text.split()) if "." in text else text.split())
        if "'" in text:
            text = _TRAILING_DOT_APOSTROPHE.sub(" . ' ", text)
        if "MULTI" in text:
            text = _MULTIDOT_MARKER.sub(lambda m: "." * ((m.end() - m.start() - 5) // 3), text)
        return text.split()

    @staticmethod
    def _replace_multidots(text: str) -> str:
        def to_marker(match: re.Match) -> str:
            marker = " " + "DOT" * (match.end() - match.start()) + "MULTI"
            return marker + " " if match.end() < len(text) else marker

        return _MULTIDOT_RUN.sub(to_marker, text)

    def _nonbreaking(self, tokens: list[str]) -> list[str]:
        alpha, lower = self._data.is_alpha_set, self._data.is_lower_set
        nbp, numeric_only = self._nbp, self._numeric_only
        last = len(tokens) - 1
        for i, token in enumerate(tokens):
            # re.search(r"^(\S+)\.$", token) on a whitespace-free token.
            if len(token) < 2 or token[-1] != ".":
                continue
            prefix = token[:-1]
            if (
                ("." in prefix and not alpha.isdisjoint(prefix))
                or (prefix in nbp and prefix not in numeric_only)
                or (i != last and tokens[i + 1] and tokens[i + 1][0] in lower)
            ):
                continue
            if prefix in numeric_only and i < last and tokens[i + 1][0] in "0123456789":
                continue
            tokens[i] = prefix + " ."
        return tokens
