"""``TokenClassifier``: named entities / tags of a fine-tuned ``XLMForTokenClassification``.

Each text is one model row ``<s> pieces </s>``; the graph's ``logits`` ``[b, s, labels]`` are
read on the text's pieces and decoded in numpy by :mod:`.token_entities` (transformers'
``token-classification`` semantics, with offsets into the original text)::

    text ─encode_with_offsets─► pieces, (start, end), word ids
         ─<s> … </s>─► logits [s, labels] ─[1:-1]─softmax─► entities (none | simple | first | average | max)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .. import format as fmt
from .._checks import one_of, text_list
from ..errors import InputError
from .base import Prepared, Task, Unit
from .token_entities import STRATEGIES, entities


@dataclass(frozen=True)
class TokenClassificationOptions:
    """The options of a request (:meth:`TokenClassifier.options`).

    Attributes:
        aggregation_strategy: One of ``none``, ``simple``, ``first``, ``average``, ``max``.
        ignore_labels: Labels left out of the answer.
        lang_id: The ``langs`` value (-1: none).
    """

    aggregation_strategy: str = "none"
    ignore_labels: tuple[str, ...] = ("O",)
    lang_id: int = -1


def encode_text(model, text: Any, index: int):
    """``(ids with <s>/</s>, TokenOffsets)`` of one text, within the model's positions.

    Raises:
        TypeError: ``text`` is not a str.
        InputError: It is longer than the model's positions (``index`` set).
    """
    if not isinstance(text, str):
        raise TypeError(f"inputs[{index}] must be a str, not {type(text).__name__}")
    tok = model.tokenizer
    enc = tok.encode_with_offsets(text)
    ids = tok.build_inputs_with_special_tokens(list(enc.ids))
    if len(ids) > model.manifest.max_positions:
        raise InputError(f"inputs[{index}] is {len(ids)} tokens long with specials; the model takes at most "
                         f"{model.manifest.max_positions}", index=index)
    return ids, enc


class TokenClassifier(Task):
    """Entities of texts (see the module docstring); built as every
    :class:`~xlm_onnx.tasks.base.Task` is, from a model exported from ``XLMForTokenClassification``.

    ``TokenClassifier.from_pretrained(path)("Ada Lovelace lived in London.",
    aggregation_strategy="simple")`` gives, for each entity, ``entity_group``, ``score``,
    ``word`` (``text[start:end]``), ``start`` and ``end``; with ``none``, ``entity`` and
    ``index`` (the token's position, ``<s>`` being 0) instead of ``entity_group``.
    """

    name = "token-classification"
    head = fmt.HEAD_TOKEN_CLASSIFICATION
    purpose = "token classification"
    batch_rows = 32

    @property
    def labels(self) -> tuple[str, ...]:
        """Label of each class index (the checkpoint's ``id2label``)."""
        return self.model.manifest.labels

    def options(self, aggregation_strategy: str = "none", ignore_labels: Sequence[str] | None = None,
                lang: str | None = None) -> TokenClassificationOptions:
        """Validates a request's options.

        Args:
            aggregation_strategy: ``none``, ``simple``, ``first``, ``average`` or ``max``.
            ignore_labels: Labels to leave out (``None``: ``["O"]``, as the pipeline).
            lang: Language for models with language embeddings.
        """
        one_of("aggregation_strategy", aggregation_strategy, STRATEGIES)
        if ignore_labels is None:
            ignore_labels = ("O",)
        if isinstance(ignore_labels, str) or not isinstance(ignore_labels, (list, tuple)) or not all(
                isinstance(label, str) for label in ignore_labels):
            raise TypeError(f"ignore_labels must be a list of str, not {ignore_labels!r}")
        return TokenClassificationOptions(aggregation_strategy, tuple(ignore_labels), self.model.lang_id(lang))

    def encode(self, inputs: str | Sequence[str], options: TokenClassificationOptions) -> Prepared:
        items, single = text_list(inputs, "inputs")
        encoded = [encode_text(self.model, text, i) for i, text in enumerate(items)]
        units = [Unit(ids) for ids, _ in encoded]
        state = (options, list(items), [enc for _, enc in encoded])
        return Prepared(self, units, self.batch_key(options), single, state)

    def batch_key(self, options: TokenClassificationOptions) -> int:
        return options.lang_id

    def run_batch(self, units: Sequence[Unit], key: int) -> list[np.ndarray]:
        """``logits`` of each unit's pieces (``<s>``/``</s>`` rows dropped), float32 ``[n, labels]``."""
        batch = self.pad([u.ids for u in units])
        (logits,) = self.model.run([fmt.LOGITS], batch, key)
        return [logits[i, 1 : len(u.ids) - 1] for i, u in enumerate(units)]

    def finish(self, prepared: Prepared, outputs: list) -> list:
        options, texts, encs = prepared.state
        answers = [entities(text, logits, enc.offsets, enc.word_ids, self.labels, options.aggregation_strategy,
                            options.ignore_labels) for text, logits, enc in zip(texts, outputs, encs)]
        return answers[0] if prepared.single else answers

    def fields(self, answer: list) -> dict[str, Any]:
        return {"entities": answer}
