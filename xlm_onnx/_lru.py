"""A mapping bounded in bytes that forgets its least recently used entries first.

Why hand-written: ``functools.lru_cache`` bounds the number of entries, not their size, and the
entries here (a word and its BPE pieces, a log message's digest) vary from a few bytes to
hundreds of kilobytes (a 10,000-letter word), so a count bound lets hostile input hold
gigabytes. Sizes are the caller's estimate (``size_of``); an entry larger than the whole budget
is not kept at all.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable

#: What an OrderedDict entry costs besides its key and value (hash table slot + links), measured
#: with tracemalloc on CPython 3.11: ~100 B; rounded up.
ENTRY_OVERHEAD = 128


class ByteLRU:
    """``get``/``put`` with at most ``max_bytes`` of estimated entry sizes kept.

    Args:
        max_bytes: The budget (0: keep nothing).
        size_of: Estimated bytes of ``(key, value)``; :data:`ENTRY_OVERHEAD` is added to it.
    """

    __slots__ = ("max_bytes", "size_of", "bytes", "_data")

    def __init__(self, max_bytes: int, size_of: Callable[[Any, Any], int]) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, not {max_bytes}")
        self.max_bytes = max_bytes
        self.size_of = size_of
        self.bytes = 0
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value (now the most recently used), or ``default``."""
        entry = self._data.get(key)
        if entry is None:
            return default
        self._data.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, value: Any) -> None:
        """Keeps ``value`` under ``key``, dropping the least recently used entries to stay in budget."""
        size = self.size_of(key, value) + ENTRY_OVERHEAD
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        if size > self.max_bytes:
            return
        self._data[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, dropped) = self._data.popitem(last=False)
            self.bytes -= dropped

    def pop(self, key: Hashable, default: Any = None) -> Any:
        entry = self._data.pop(key, None)
        if entry is None:
            return default
        self.bytes -= entry[1]
        return entry[0]

    def items(self) -> list[tuple[Hashable, Any]]:
        """A snapshot of ``(key, value)``, least recently used first (does not change the order)."""
        return [(key, value) for key, (value, _) in self._data.items()]

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0


def str_bytes(text: str) -> int:
    """CPython's size of a str object: 49 B of header plus 1, 2 or 4 B per character."""
    if text.isascii():
        return 49 + len(text)
    width = 4 if max(text) > "\uffff" else 2 if max(text) > "\xff" else 1
    return 74 + width * len(text)


def pieces_bytes(word: str, pieces: tuple) -> int:
    """A word and its tuple of piece strs (or of ids, which the vocabulary already holds). The
    pieces spell the word plus ``</w>``, so their characters are the word's: estimated from it
    in O(1) instead of measuring each piece (this runs once per new word)."""
    size = str_bytes(word)
    if pieces and isinstance(pieces[0], str):
        size += 53 * len(pieces) + (size - 49)
    return size + 40 + 8 * len(pieces)
