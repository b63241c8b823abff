"""XLM's BPE (``transformers.XLMTokenizer.bpe``), ported verbatim and cached per word as pieces."""

from __future__ import annotations

from itertools import repeat

#: Words kept per cache; the cache is emptied when full (the reference's cache is unbounded).
CACHE_LIMIT = 1 << 20


class BPE:
    def __init__(self, ranks: dict[tuple, int]) -> None:
        self.ranks = ranks
        self.cache: dict[str, tuple[str, ...]] = {}

    def __call__(self, token: str) -> tuple[str, ...]:
        """The pieces of one (non-empty) word, the last one ending in ``</w>``."""
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        if len(token) == 1:  # the reference returns early (and uncached) when there is no pair
            return (token + "</w>",)
        word = list(token[:-1])
        word.append(token[-1] + "</w>")
        get = self.ranks.get
        inf = float("inf")
        # ranks[i] = rank of the pair (word[i], word[i + 1]). The reference takes min() over the set of
        # pairs keyed by rank; each rank belongs to one pair, so the lowest finite rank names the same
        # bigram and the positions holding it are its occurrences. No finite rank: no merge, stop.
        ranks = list(map(get, zip(word, word[1:]), repeat(inf)))
        while True:
            best = min(ranks)
            if best == inf:
                break
            k = ranks.index(best)
            merged = word[k] + word[k + 1]
            if ranks.count(best) == 1:  # one occurrence: merge it and re-rank its two neighbours
                word[k : k + 2] = [merged]
                del ranks[k]
                if k > 0:
                    ranks[k - 1] = get((word[k - 1], merged), inf)
                if k < len(word) - 1:
                    ranks[k] = get((merged, word[k + 1]), inf)
            else:  # merge left to right without overlap, as the reference's index() scan does
                new_word: list[str] = []
                prev = 0
                while True:
                    new_word.extend(word[prev:k])
                    new_word.append(merged)
                    prev = k + 2
                    try:
                        k = ranks.index(best, prev)
                    except ValueError:
                        break
                new_word.extend(word[prev:])
                word = new_word
                ranks = list(map(get, zip(word, word[1:]), repeat(inf)))
            if len(word) == 1:
                break
        joined = " ".join(word)
        if joined == "\n  </w>":  # reference quirk, kept verbatim
            joined = "\n</w>"
        pieces = tuple(joined.split(" "))
        if len(self.cache) >= CACHE_LIMIT:
            self.cache.clear()
        self.cache[token] = pieces
        return pieces
