"""Training and held-out text of the language identifier, and the random samples it trains on.

Labels: the 91 XLM language codes of ``../shared/data/udhr_xlm_dev.jsonl`` (UDHR paragraphs).
Held out: every paragraph of UDHR sections 6, 14, 20 and 28, in every language (a quarter of the
paragraphs), so no held-out article was seen in training in any language, and the demo corpus'
held-out Firefox strings. Train: the other UDHR paragraphs plus the demo recipe's train split of
Firefox UI strings (``recipes.demo_model.corpus``) of the same languages (Firefox locales mapped to
XLM codes; ``zh_tw`` is ``zh``, as XLM-100 has one Chinese).

Samples are drawn language first (uniformly, so a language with 20 paragraphs weighs as much as one
with 5000 UI strings), then a line, then a random window of its ids (as short as one token), and
sometimes several lines of the language joined, up to the model's 254 ids between ``<s>`` and
``</s>``: what a user may ask about, from one word to a page.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UDHR = REPO.parent / "shared" / "data" / "udhr_xlm_dev.jsonl"
HELD_OUT_SECTIONS = frozenset({6, 14, 20, 28})
#: Firefox locales (after the demo corpus' mapping) whose XLM code differs.
FIREFOX_TO_XLM = {"zh_tw": "zh"}
#: Ids between <s> and </s> (max_positions 256).
MAX_IDS = 254
#: Sentence ends for the single-sentence evaluation (Latin, Devanagari, CJK, Ethiopic, Arabic,
#: Armenian, Myanmar).
_SENTENCE_END = re.compile(r"(?<=[.!?।。！？።؟։။])\s+|(?<=[。！？])")


def udhr_rows(path: Path = UDHR) -> list[dict]:
    """UDHR paragraphs ``{"lang", "section", "text"}``, whitespace normalised."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"lang": r["lang"], "section": int(r["section"]), "text": " ".join(r["text"].split())} for r in rows]


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(train, held_out)`` by section (:data:`HELD_OUT_SECTIONS`)."""
    held = [r for r in rows if r["section"] in HELD_OUT_SECTIONS]
    return [r for r in rows if r["section"] not in HELD_OUT_SECTIONS], held


def sentences(text: str, min_chars: int = 12) -> list[str]:
    """The sentences of a paragraph (split after sentence-ending punctuation; short ones dropped)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) >= min_chars]


def firefox_lines(labels: set[str], split_name: str = "train") -> dict[str, list[str]]:
    """The demo corpus' Firefox strings of the languages in ``labels`` in its ``train`` or ``heldout``
    split (5% of the lines, by a hash of language and text; empty without the cache).

    A locale's untranslated strings are English (Firefox falls back to en-US): a line of another
    language that is also an English line is left out, or English would be learnt under that label.
    """
    from recipes.demo_model.corpus import CACHE, build_corpus

    out: dict[str, list[str]] = {}
    if not any((CACHE / "debs").glob("*.deb")) and not (CACHE / "corpus.jsonl").is_file():
        return out
    rows = [json.loads(line) for line in build_corpus().read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["source"] == "firefox"]
    english = {r["text"] for r in rows if r["lang"] == "en"}
    for row in rows:
        lang = FIREFOX_TO_XLM.get(row["lang"], row["lang"])
        if row["split"] == split_name and lang in labels and (lang == "en" or row["text"] not in english):
            out.setdefault(lang, []).append(row["text"])
    return out


class Sampler:
    """Random training samples (ids without specials, label index) from tokenized lines.

    Args:
        lines: Language -> its lines as id lists (UDHR paragraphs first, then other sources).
        udhr_share: Chance to draw from the language's UDHR paragraphs when it has other lines.
        seed: Seeds the draws (a run is reproducible for a given seed and data).
    """

    def __init__(self, lines: dict[str, tuple[list[list[int]], list[list[int]]]], udhr_share: float = 0.5,
                 seed: int = 0) -> None:
        self.labels = sorted(lines)
        self.lines = lines
        self.udhr_share = udhr_share
        self.rng = random.Random(seed)

    def _line(self, lang: str) -> list[int]:
        udhr, other = self.lines[lang]
        pool = udhr if (not other or self.rng.random() < self.udhr_share) and udhr else other
        return pool[self.rng.randrange(len(pool))]

    def sample(self, long: bool) -> tuple[list[int], int]:
        """One sample: a window of one line (``long=False``: at most 48 ids) or several joined lines."""
        label = self.rng.randrange(len(self.labels))
        lang = self.labels[label]
        if long:
            ids: list[int] = []
            target = self.rng.randint(48, MAX_IDS)
            while len(ids) < target:
                ids += self._line(lang)
            return ids[:target], label
        line = self._line(lang)
        size = min(len(line), self.rng.choice((self.rng.randint(1, 8), self.rng.randint(4, 48))))
        start = self.rng.randrange(len(line) - size + 1)
        return line[start:start + size], label
