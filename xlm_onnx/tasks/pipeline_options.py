"""transformers' tokenizer arguments of a pipeline call, turned into the tasks' truncation options.

A transformers pipeline hands ``tokenizer_kwargs`` (fill-mask) or ``tokenize_kwargs`` (feature
extraction) to its tokenizer; here text becomes ids in one place, :meth:`Model.encode_text
<xlm_onnx.model.Model.encode_text>`, so only what changes the ids is taken: ``truncation`` and
``max_length`` (``padding`` is accepted and changes nothing: rows are padded per run and the
padding never reaches an answer).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..inputs import positive_int
from ..errors import InputError, InputTypeError
from ..tokenization.files import LARGE_INTEGER

TOKENIZER_KWARGS = ("truncation", "max_length", "padding")
_CUTS = (True, "longest_first", "only_first")
_NO_CUTS = (None, False, "do_not_truncate", "only_second")  # only_second cuts nothing from one text


def truncation_of(tokenizer: Any, kwargs: Mapping[str, Any] | None, name: str = "tokenizer_kwargs"
                  ) -> tuple[bool, int | None]:
    """``(truncation, max_length)`` for :meth:`Model.encode_text` from transformers' tokenizer arguments.

    As transformers: ``truncation=True`` cuts at ``max_length``, else at the tokenizer's
    ``model_max_length`` (when its config sets one); ``max_length`` without ``truncation`` and
    without ``padding`` truncates too. The model's own limit still applies.

    Raises:
        InputError: An argument other than :data:`TOKENIZER_KWARGS`, an unknown truncation
            strategy or a ``max_length`` that is not a positive int.
    """
    if kwargs is None:
        return False, None
    if not isinstance(kwargs, Mapping):
        raise InputTypeError(f"{name} must be a dict, not {type(kwargs).__name__}")
    unknown = sorted(set(kwargs) - set(TOKENIZER_KWARGS))
    if unknown:
        raise InputError(f"{name} {unknown} not supported; the tokenizer arguments that change the ids here are "
                         f"{list(TOKENIZER_KWARGS)}")
    truncation, max_length = kwargs.get("truncation"), kwargs.get("max_length")
    if truncation not in _CUTS + _NO_CUTS or isinstance(truncation, int) and not isinstance(truncation, bool):
        raise InputError(f"{name}['truncation'] must be a bool or a truncation strategy, not {truncation!r}")
    if max_length is not None:
        positive_int(f"{name}['max_length']", max_length)
    cut = truncation in _CUTS or (truncation is None and max_length is not None and not kwargs.get("padding"))
    if cut and max_length is None and tokenizer.model_max_length <= LARGE_INTEGER:
        max_length = tokenizer.model_max_length
    return cut, max_length
