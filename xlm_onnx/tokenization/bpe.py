"""XLM's BPE (``transformers.XLMTokenizer.bpe``), ported verbatim and cached per word as pieces.

Two merge loops give the reference's pieces: the reference's own scan (rescans the word after
each merge: quadratic, fastest on the short words of running text) and, for words longer than
:data:`HEAP_FROM` characters, a heap of pair ranks over a linked list of symbols (O(n log n): a
10,000-letter word in ~30 ms instead of ~1.2 s, so one request of long words cannot hold a core
for minutes). Both merge the lowest-ranked pair everywhere it occurs, left to right without
overlap, before looking at the next rank, as the reference does.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from itertools import repeat

from .._lru import ByteLRU, pieces_bytes

#: Bytes of words and pieces kept in the cache (least recently used dropped first). The
#: reference's cache is unbounded; a count bound would let long distinct words hold gigabytes.
CACHE_BYTES = 8 << 20
#: Words longer than this many characters use the heap merge loop (same pieces, O(n log n)).
HEAP_FROM = 48


class BPE:
    def __init__(self, ranks: dict[tuple, int], cache_bytes: int = CACHE_BYTES) -> None:
        self.ranks = ranks
        self.cache = ByteLRU(cache_bytes, pieces_bytes)

    def __call__(self, token: str) -> tuple[str, ...]:
        """The pieces of one (non-empty) word, the last one ending in ``</w>``."""
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        if len(token) == 1:  # the reference returns early (and uncached) when there is no pair
            return (token + "</w>",)
        word = list(token[:-1])
        word.append(token[-1] + "</w>")
        word = self._merge_long(word) if len(word) > HEAP_FROM else self._merge_short(word)
        joined = " ".join(word)
        if joined == "\n  </w>":  # reference quirk, kept verbatim
            joined = "\n</w>"
        pieces = tuple(joined.split(" "))
        self.cache.put(token, pieces)
        return pieces

    def _merge_short(self, word: list[str]) -> list[str]:
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
        return word

    def _merge_long(self, word: list[str]) -> list[str]:
        """The same merges with a heap of ``(rank, position)``: a merged pair keeps its left node's
        position, so positions stay in word order. All entries of the lowest rank are taken at
        once and merged left to right; a merge can only create pairs of other ranks (the merged
        symbol is longer than either half), so a rank's round is complete, as in the reference."""
        get = self.ranks.get
        sym: list[str | None] = list(word)
        nxt = list(range(1, len(sym) + 1))
        nxt[-1] = -1
        prv = list(range(-1, len(sym) - 1))
        heap = [(r, i) for i, r in enumerate(map(get, zip(word, word[1:]))) if r is not None]
        heapify(heap)
        while heap:
            best = heap[0][0]
            round_ = []
            while heap and heap[0][0] == best:
                round_.append(heappop(heap)[1])
            for i in sorted(round_):
                j = nxt[i]
                if sym[i] is None or j < 0 or get((sym[i], sym[j])) != best:  # stale: a symbol changed
                    continue
                sym[i] = merged = sym[i] + sym[j]
                sym[j] = None
                k = nxt[i] = nxt[j]
                if k >= 0:
                    prv[k] = i
                    rank = get((merged, sym[k]))
                    if rank is not None:
                        heappush(heap, (rank, i))
                h = prv[i]
                if h >= 0:
                    rank = get((sym[h], merged))
                    if rank is not None:
                        heappush(heap, (rank, h))
        out, i = [], 0
        while i >= 0:
            out.append(sym[i])
            i = nxt[i]
        return out
