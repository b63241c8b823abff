"""``TokenClassifier``: named entities / tags of a fine-tuned ``XLMForTokenClassification``.

Each text is one model row ``<s> pieces </s>`` (a text longer than the model: rows of windows
sharing ``stride`` pieces); the graph's ``logits`` ``[b, s, labels]`` are read on the text's
pieces and decoded in numpy by :mod:`.token_entities` (transformers' ``token-classification``
semantics, with offsets into the original text)::

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
from .qa_spans import Window, windows
from .token_entities import STRATEGIES, entities, merge_overlapping

#: The options of a token-classification request (the only place their defaults are written).
PARAMS = Params(
    Param("aggregation_strategy", str, "none", "one entity per token (none), merged tags (simple), or one label "
          "per word from its first piece, the mean of its pieces or its most confident piece (first, average, max)",
          choices=STRATEGIES, flag="--aggregation", metavar="STRATEGY"),
    Param("ignore_labels", list, None, "leave out entities with this label; repeat for several (default: O)",
          flag="--ignore-label", metavar="LABEL"),
    Param("stride", int, None, "read a text longer than the model in windows sharing this many pieces "
          "(default: refuse it, or cut it with truncation)", minimum=0, metavar="N"),
) + TEXT
_D = PARAMS.defaults()


@dataclass(frozen=True)
class TokenClassificationOptions:
    """The options of a request (:meth:`TokenClassifier.options`).

    Attributes:
        aggregation_strategy: One of ``none``, ``simple``, ``first``, ``average``, ``max``.
        ignore_labels: Labels left out of the answer.
        lang_id: The ``langs`` value (-1: none).
        truncation: Cut a text longer than the model (without ``stride``).
        stride: Pieces shared by the windows of a text longer than the model (``None``: no windows).
    """

    aggregation_strategy: str = "none"
    ignore_labels: tuple[str, ...] = ("O",)
    lang_id: int = -1
    truncation: bool = False
    stride: int | None = None


def encode_text(model, text: Any, index: int, options: TokenClassificationOptions):
    """``(TokenOffsets, windows)`` of one text: one window if it fits the model's positions, else
    windows overlapping by ``options.stride``, or its head with ``options.truncation``.

    Raises:
        InputTypeError: ``text`` is not a str.
        InputError: It is longer than the model's positions without ``stride`` or ``truncation``.
    """
    if not isinstance(text, str):
        raise InputTypeError.about("inputs", f"must be a str, not {type(text).__name__}", index)
    capacity = model.manifest.max_positions - 2
    enc = model.tokenizer.encode_with_offsets(text)
    if len(enc.ids) <= capacity:
        return enc, [Window(0, len(enc.ids), 0)]
    if options.stride is not None:
        return enc, windows(len(enc.ids), capacity, options.stride, 0)
    if not options.truncation:
        raise InputError.about("inputs", f"is {len(enc.ids) + 2} tokens long with specials; the model takes at "
                               f"most {capacity + 2} (stride=N reads it in windows)", index,
                               Fix("truncation", True, "to cut it"))
    enc = enc.head(capacity)  # entities of the kept tokens only
    return enc, [Window(0, capacity, 0)]


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
                ignore_labels: Sequence[str] | None = _D["ignore_labels"], stride: int | None = _D["stride"],
                lang: str | None = _D["lang"], truncation: bool = _D["truncation"]) -> TokenClassificationOptions:
        """Validates a request's options.

        Args:
            aggregation_strategy: ``none``, ``simple``, ``first``, ``average`` or ``max``.
            ignore_labels: Labels to leave out (``None``: ``["O"]``, as the pipeline).
            stride: Pieces shared by the windows a text longer than the model is read in.
            lang: Language for models with language embeddings.
            truncation: Cut texts longer than the model's positions (entities of the kept part).
        """
        one_of("aggregation_strategy", aggregation_strategy, STRATEGIES)
        labels = PARAMS["ignore_labels"].validate(ignore_labels)
        PARAMS["stride"].validate(stride)
        if stride is not None and stride >= self.model.manifest.max_positions - 2:
            raise InputError.about("stride", f"must be less than the model's {self.model.manifest.max_positions - 2} "
                                   "pieces per window")
        return TokenClassificationOptions(aggregation_strategy, ("O",) if labels is None else tuple(labels),
                                          self.model.lang_id(lang), PARAMS["truncation"].validate(truncation), stride)

    def encode(self, inputs: str | Sequence[str], options: TokenClassificationOptions) -> Prepared:
        items, single = text_list(inputs, "inputs")
        encoded = [encode_text(self.model, text, i, options) for i, text in enumerate(items)]
        build = self.model.tokenizer.build_inputs_with_special_tokens
        units = [Unit(build(list(enc.ids[w.first : w.first + w.count]))) for enc, wins in encoded for w in wins]
        return Prepared(self, units, self.batch_key(options), single, (options, list(items), encoded))

    def batch_key(self, options: TokenClassificationOptions) -> int:
        return options.lang_id

    def run_batch(self, units: Sequence[Unit], key: int) -> list[np.ndarray]:
        """``logits`` of each unit's pieces (``<s>``/``</s>`` rows dropped), float32 ``[n, labels]``."""
        batch = self.pad([u.ids for u in units])
        (logits,) = self.model.run([fmt.LOGITS], batch, key)
        return [logits[i, 1 : len(u.ids) - 1] for i, u in enumerate(units)]

    def finish(self, prepared: Prepared, outputs: list) -> list:
        options, texts, encoded = prepared.state
        answers, used = [], 0
        for text, (enc, wins) in zip(texts, encoded):
            found = []
            for w, logits in zip(wins, outputs[used : used + len(wins)]):
                part = slice(w.first, w.first + w.count)
                found += entities(text, logits, enc.offsets[part], enc.word_ids[part], self.labels,
                                  options.aggregation_strategy, options.ignore_labels)
            used += len(wins)
            answers.append(merge_overlapping(found) if len(wins) > 1 else found)
        return answers[0] if prepared.single else answers

    def fields(self, answer: list) -> dict[str, Any]:
        return {"entities": answer}
