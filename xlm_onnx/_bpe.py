"""XLM's BPE (``transformers.XLMTokenizer.bpe``), ported verbatim and cached per word as pieces."""

from __future__ import annotations

from itertools import repeat


class BPE:
    def __init__(self, ranks: dict[tuple, int]) -> None:
        self.ranks = ranks
        self.cache: dict[str, tuple[str, ...]] = {}

    def __call__(self, token: str) -> tuple[str, ...]:
        """The pieces of one (non-empty) word, the last one ending in ``</w>``."""
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        if len(word) == 1:  # the reference returns early (and uncached) when there is no pair
            return (token + "</w>",)
        get = self.ranks.get
        inf = float("inf")
        while True:
            # The reference takes min() over the set of pairs keyed by rank. A pair has one rank, so
            # the lowest finite rank names the same bigram; no finite rank means no merge (stop).
            pairs = list(zip(word, word[1:]))
            pair_ranks = list(map(get, pairs, repeat(inf)))
            best = min(pair_ranks)
            if best == inf:
                break
            first, second = pairs[pair_ranks.index(best)]
            new_word: list[str] = []
            i, n = 0, len(word)
            while i < n:
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < n - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
        joined = " ".join(word)
        if joined == "\n  </w>":  # reference quirk, kept verbatim
            joined = "\n</w>"
        pieces = tuple(joined.split(" "))
        self.cache[token] = pieces
        return pieces
