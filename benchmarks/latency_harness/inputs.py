"""Benchmark inputs: English-like sentences that tokenize to exactly N tokens, one mask each.

Built once in the parent with the model's own tokenizer and handed to every system, so all
systems see the same texts (end-to-end) and the same ids (model-only).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if so no will more can out up other into "
    "some time only new could them these may two first then do any like my now over such our man me even most "
    "made after also did many before must through years where much your way well down should because each just "
    "those people how too little state good very make world still own see men work long get here between both "
    "life being under never day same another know while last might us great old year off come since against go "
    "came right used take three human rights free equal dignity reason conscience spirit brotherhood everyone "
    "liberty security person nation law country family children school water house city river mountain"
).split()
FILLERS = (",", "a", "I", ";")


@dataclass(frozen=True)
class Scenario:
    batch: int
    tokens: int  # sequence length with <s> and </s>

    @property
    def name(self) -> str:
        return f"{self.batch}x{self.tokens}"


DEFAULT_SCENARIOS = (Scenario(1, 16), Scenario(1, 64), Scenario(1, 128), Scenario(8, 64), Scenario(32, 128))


def parse_scenarios(text: str) -> list[Scenario]:
    """``"1x16,8x64"`` -> scenarios (batch x tokens, tokens counted with <s> and </s>)."""
    out = []
    for part in text.split(","):
        try:
            batch, tokens = (int(x) for x in part.strip().lower().split("x"))
        except ValueError:
            raise ValueError(f"scenario {part!r}: expected BATCHxTOKENS, e.g. 1x128") from None
        if batch < 1 or tokens < 4:
            raise ValueError(f"scenario {part!r}: batch >= 1 and tokens >= 4 required")
        out.append(Scenario(batch, tokens))
    return out


def _render(words: list[str], mask: str) -> str:
    ws = list(words)
    ws.insert(len(ws) // 2, mask)
    if ws and ws[0] != mask:
        ws[0] = ws[0].capitalize()
    return " ".join(ws) + "."


def sentence(tokenizer, n_tokens: int, rng: random.Random) -> str:
    """Appends random words until ``tokenizer.encode`` (specials included) gives ``n_tokens``;
    a word that overshoots is swapped for one that fits (1-token fillers always exist)."""
    mask = tokenizer.mask_token
    count = lambda ws: len(tokenizer.encode(_render(ws, mask)))  # noqa: E731
    words: list[str] = []
    n = count(words)
    if n > n_tokens:
        raise ValueError(f"{n_tokens} tokens is shorter than a bare masked sentence ({n})")
    while n != n_tokens:
        if n < n_tokens:
            words.append(rng.choice(WORDS))
            n = count(words)
            continue
        words.pop()
        candidates = list(WORDS) + list(FILLERS)
        rng.shuffle(candidates)
        for cand in candidates:
            m = count(words + [cand])
            if m <= n_tokens:
                words.append(cand)
                n = m
                break
        else:
            raise ValueError(f"cannot reach exactly {n_tokens} tokens")
    return _render(words, mask)


def build(tokenizer, scenarios: list[Scenario], seed: int = 0) -> list[dict]:
    """Per scenario: ``texts`` (batch sentences) and ``ids`` (batch x tokens, same lengths)."""
    out = []
    for sc in scenarios:
        rng = random.Random(f"{seed}-{sc.tokens}")  # 1x64 and 8x64 share their first sentence
        texts = [sentence(tokenizer, sc.tokens, rng) for _ in range(sc.batch)]
        ids = [tokenizer.encode(t) for t in texts]
        assert all(len(i) == sc.tokens and i.count(tokenizer.mask_token_id) == 1 for i in ids)
        out.append({"name": sc.name, "batch": sc.batch, "tokens": sc.tokens, "texts": texts, "ids": ids})
    return out
