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
from ..inputs import one_of, text_list
from ..errors import Fix, InputError, InputTypeError
from .base import Prepared, Task, Unit
from .params import TEXT, Param, Params
from .token_entities import STRATEGIES, entities

#: The options of a token-classification request (the only place their defaults are written).
PARAMS = Params(
    Param("aggregation_strategy", str, "none", "one entity per token (none), merged tags (simple), or one label "
          "per word from its first piece, the mean of its pieces or its most confident piece (first, average, max)",
          choices=STRATEGIES, flag="--aggregation", metavar="STRATEGY"),
    Param("ignore_labels", list, None, "leave out entities with this label; repeat for several (default: O)",
          flag="--ignore-label", metavar="LABEL"),
) + TEXT
_D = PARAMS.defaults()


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
    truncation: bool = False


def encode_text(model, text: Any, index: int, truncation: bool = False):
    """``(ids with <s>/</s>, TokenOffsets)`` of one text, within the model's positions.

    Raises:
        InputTypeError: ``text`` is not a str.
        InputError: It is longer than the model's positions without ``truncation`` (``index`` set).
    """
    if not isinstance(text, str):
        raise InputTypeError.about("inputs", f"must be a str, not {type(text).__name__}", index)
    tok, limit = model.tokenizer, model.manifest.max_positions
    enc = tok.encode_with_offsets(text)
    if len(enc.ids) + 2 > limit:
        if not truncation:
            raise InputError.about("inputs", f"is {len(enc.ids) + 2} tokens long with specials; the model takes at "
                                   f"most {limit}", index, Fix("truncation", True, "to cut it"))
        enc = enc.head(limit - 2)  # entities of the kept tokens only
    return tok.build_inputs_with_special_tokens(list(enc.ids)), enc


class TokenClassifier(Task):
    """Entities of texts (see the module docstring); built as every
    :class:`~xlm_onnx.tasks.base.Task` is, from a model exported from ``XLMForTokenClassification``.

    ``TokenClassifier.from_pretrained(path)("Ada Lovelace lived in London.",
    aggregation_strategy="simple")`` gives, for each entity, ``entity_group``, ``score``,
    ``word`` (``text[start:end]``), ``start`` and ``end``; with ``none``, ``entity`` and
    ``index`` (the token's position, ``<s>`` being 0) instead of ``entity_group``.
    """

    name = "token-classification"
    aliases = ("ner",)
    head = fmt.HEAD_TOKEN_CLASSIFICATION
    purpose = "named entities / token tags with offsets into the text"
    batch_rows = 32
    params = PARAMS

    @property
    def labels(self) -> tuple[str, ...]:
        """Label of each class index (the checkpoint's ``id2label``)."""
        return self.model.manifest.labels

    def options(self, aggregation_strategy: str = _D["aggregation_strategy"],
                ignore_labels: Sequence[str] | None = _D["ignore_labels"], lang: str | None = _D["lang"],
                truncation: bool = _D["truncation"]) -> TokenClassificationOptions:
        """Validates a request's options.

        Args:
            aggregation_strategy: ``none``, ``simple``, ``first``, ``average`` or ``max``.
            ignore_labels: Labels to leave out (``None``: ``["O"]``, as the pipeline).
            lang: Language for models with language embeddings.
            truncation: Cut texts longer than the model's positions (entities of the kept part).
        """
        one_of("aggregation_strategy", aggregation_strategy, STRATEGIES)
        labels = PARAMS["ignore_labels"].validate(ignore_labels)
        return TokenClassificationOptions(aggregation_strategy, ("O",) if labels is None else tuple(labels),
                                          self.model.lang_id(lang), PARAMS["truncation"].validate(truncation))

    def encode(self, inputs: str | Sequence[str], options: TokenClassificationOptions) -> Prepared:
        items, single = text_list(inputs, "inputs")
        encoded = [encode_text(self.model, text, i, options.truncation) for i, text in enumerate(items)]
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
