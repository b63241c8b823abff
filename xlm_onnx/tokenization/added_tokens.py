"""Added/special-token handling of ``transformers`` 5.x slow tokenizers, ported without torch.

``Trie.split`` is transformers' ``tokenization_python.Trie.split`` (Apache-2.0) line for line, quirks
included, so text is cut around special tokens exactly where the reference cuts it; it is only
short-circuited when no character of the text can start a token. :func:`split_added_tokens` is the
part of ``PythonBackend.tokenize`` that applies the lstrip/rstrip/single_word flags.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class AddedToken:
    """The fields of ``tokenizers.AddedToken`` that the slow tokenizer reads."""

    content: str
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = True
    special: bool = False

    @classmethod
    def from_json(cls, value: dict) -> AddedToken:
        value = {k: v for k, v in value.items() if k != "__type"}
        return cls(**value)


class Trie:
    def __init__(self) -> None:
        self.data: dict = {}
        self._tokens: set[str] = set()

    def add(self, word: str) -> None:
        if not word:
            return
        self._tokens.add(word)
        ref = self.data
        for char in word:
            ref[char] = ref.setdefault(char, {})
            ref = ref[char]
        ref[""] = 1

    def split(self, text: str) -> list[str]:
        data = self.data
        # Fast path (not in the reference): no character can start a match, so the only cut is
        # the whole text, exactly what the loop below returns in that case.
        if not any(first in text for first in data):
            return [text] if text else []
        states: dict[int, dict] = {}
        offsets = [0]
        skip = 0
        for current, current_char in enumerate(text):
            if skip and current < skip:
                continue
            to_remove = set()
            reset = False
            for start, trie_pointer in states.items():
                if "" in trie_pointer:
                    start, end, skip = _longest_match(states, start, current, skip, text)
                    offsets.append(start)
                    offsets.append(end)
                    reset = True
                    break
                elif current_char in trie_pointer:
                    states[start] = trie_pointer[current_char]
                else:
                    to_remove.add(start)
            if reset:
                states = {}
            else:
                for start in to_remove:
                    del states[start]
            if current >= skip and current_char in data:
                states[current] = data[current_char]
        for start, trie_pointer in states.items():
            if "" in trie_pointer:
                offsets.append(start)
                offsets.append(len(text))
                break
        offsets.append(len(text))
        return _cut(text, offsets)


def _longest_match(states: dict[int, dict], start: int, current: int, skip: int, text: str) -> tuple[int, int, int]:
    """A match ends at ``current`` for the state begun at ``start``: the longest match of any state
    begun at or before it (the reference's lookahead); ``(start, end, skip)`` of the match kept."""
    end = current
    for lookstart, looktrie_pointer in states.items():
        if lookstart > start:
            break
        elif lookstart < start:
            lookahead_index = current + 1
            end = current + 1
        else:
            lookahead_index = current
            end = current
        next_char = text[lookahead_index] if lookahead_index < len(text) else None
        if "" in looktrie_pointer:
            start = lookstart
            end = lookahead_index
            skip = lookahead_index
        while next_char in looktrie_pointer:
            looktrie_pointer = looktrie_pointer[next_char]
            lookahead_index += 1
            if "" in looktrie_pointer:
                start = lookstart
                end = lookahead_index
                skip = lookahead_index
            if lookahead_index == len(text):
                break
            next_char = text[lookahead_index]
    return start, end, skip


def _cut(text: str, offsets: list[int]) -> list[str]:
    """``text`` cut at ``offsets`` (empty and backward pieces skipped)."""
    tokens = []
    start = 0
    for end in offsets:
        if start >= end:  # the reference logs an error for start > end and skips it too
            continue
        tokens.append(text[start:end])
        start = end
    return tokens


def split_added_tokens(pieces: list[str], added: dict[str, AddedToken]) -> list[str]:
    """Apply rstrip/lstrip/single_word of the added tokens found by ``Trie.split`` (in place)."""
    for i, token in enumerate(pieces):
        tok = added.get(token)
        if tok is None:
            continue
        left = pieces[i - 1] if i > 0 else None
        right = pieces[i + 1] if i < len(pieces) - 1 else None
        if tok.rstrip and right:
            pieces[i + 1] = right.lstrip()
        if tok.lstrip and left:
            pieces[i - 1] = left.rstrip()
        if tok.single_word:
            if left and left[-1] != " ":
                pieces[i - 1] += token
                pieces[i] = ""
            elif right and right[0] != " ":
                pieces[i + 1] = token + pieces[i + 1]
                pieces[i] = ""
    return pieces
