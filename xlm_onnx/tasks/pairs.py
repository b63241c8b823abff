"""Text pairs as model rows, ``<s> A </s> B </s>``, truncated as transformers truncates them.

What the classification tasks share: text-classification's ``{"text", "text_pair"}`` inputs
(``longest_first``, transformers' ``truncation=True``), zero-shot's premise / hypothesis rows
(``only_first``: the hypothesis naming the label is never cut, as the zero-shot pipeline does) and
multiple choice's question / choice rows. XLM's tokenizer gives no ``token_type_ids`` (its
``model_input_names`` are ids and attention mask), so the ids are the whole row.

Cut to the model's ``max_positions`` (the limit :meth:`Model.encode_text
<xlm_onnx.model.Model.encode_text>` applies to single texts), from the right.
"""

from __future__ import annotations

from typing import Any

from ..errors import Fix, InputError, InputTypeError
from ..model import Model
from ..tokenization.hf_surface import longest_first

LONGEST_FIRST, ONLY_FIRST = "longest_first", "only_first"
#: Specials in a pair row: ``<s>``, ``</s>`` after each text.
PAIR_SPECIALS = 3


def cut(first: list[int], second: list[int], excess: int, strategy: str) -> tuple[list[int], list[int]]:
    """Removes ``excess`` ids as ``PreTrainedTokenizer.truncate_sequences`` does (right side).

    ``longest_first`` first evens the two lengths, then takes the rest half from each (the odd
    one from the second); ``only_first`` takes all of it from the first.
    """
    if excess <= 0:
        return first, second
    if strategy == ONLY_FIRST:
        return first[:-excess], second
    from_first, from_second = longest_first(len(first), len(second), excess)
    return (first[:-from_first] if from_first else first), (second[:-from_second] if from_second else second)


def encode_pair(model: Model, first: Any, second: Any, index: int, truncation: str | None,
                names: tuple[str, str] = ("text", "text_pair")) -> list[int]:
    """``<s> first </s> second </s>`` ids, checked against the model's length limit.

    Args:
        model: The loaded model (tokenizer, ``max_positions``).
        first, second: The two texts.
        index: Position of the pair in the caller's list, for messages.
        truncation: ``longest_first``, ``only_first`` or ``None`` (refuse a pair over the limit).
        names: What the caller calls the two texts, for messages.

    Raises:
        TypeError: A text is not a str.
        InputError: The pair is too long (without truncation, or even with the first text cut
            to nothing), naming ``index``.
    """
    for name, value in zip(names, (first, second)):
        if not isinstance(value, str):
            raise InputTypeError.about("inputs", f"{name} must be a str, not {type(value).__name__}", index)
    tokenizer = model.tokenizer
    a = tokenizer.encode(first, add_special_tokens=False)
    b = tokenizer.encode(second, add_special_tokens=False)
    limit = model.manifest.max_positions
    excess = len(a) + len(b) + PAIR_SPECIALS - limit
    if excess > 0:
        if truncation is None:
            raise InputError.about("inputs", f"is {limit + excess} tokens long with specials; the model takes at "
                                   f"most {limit}", index, Fix("truncation", True, "to cut it"))
        if truncation == ONLY_FIRST and excess >= len(a):
            raise InputError.about("inputs", f"has a {names[1]} of {len(b) + PAIR_SPECIALS} tokens with specials; "
                                   f"the model takes at most {limit}, and only the {names[0]} may be cut", index)
        a, b = cut(a, b, excess, truncation)
    return tokenizer.build_inputs_with_special_tokens(a, b)
