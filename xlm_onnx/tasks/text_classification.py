"""``TextClassifier``: a fine-tuned sequence classifier, with ``pipeline("text-classification")``'s answers.

One model row per text (or text pair), every request's rows batched together (the logits depend
on nothing but the ids); the scores are computed in numpy from the graph's ``logits``, as the
pipeline computes them::

    text | {"text", "text_pair"} ─► <s> A </s> [B </s>] ─► logits [num_labels]
        ─ function_to_apply: softmax | sigmoid | none   (default from problem_type and num_labels)
        ─ top_k not given: {"label", "score"} of the best label   (the pipeline's legacy answer)
          top_k=k / None: the k / all labels, best first          ({"label", "score"} each)

The default function is transformers': ``regression`` -> none; ``multi_label_classification`` or
one label -> sigmoid; otherwise softmax. Ties keep the label order (a stable sort), as there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np

from .. import format as fmt
from ..inputs import require_bool, one_of, positive_int, text_list
from ..errors import InputTypeError
from .base import Prepared, Task, Unit
from .pairs import LONGEST_FIRST, encode_pair
from .params import TEXT, Param, Params

#: ``function_to_apply`` values (transformers' ``ClassificationFunction``, lower case).
FUNCTIONS = ("softmax", "sigmoid", "none")
#: ``top_k``'s default in the Python API: not given (the pipeline's legacy answer: the best label
#: alone, not in a list). The front ends send an int (default 1): always a list per text.
BEST = "best"

PARAMS = Params(
    Param("top_k", int, 1, "labels per text, best first (more than the model has: every label)", minimum=1,
          metavar="K"),
    Param("function_to_apply", str, None, "softmax, sigmoid or none (default: from the model's problem_type)",
          choices=FUNCTIONS, flag="--function"),
) + TEXT


def apply_function(logits: np.ndarray, function: str) -> np.ndarray:
    """The pipeline's ``softmax`` / ``sigmoid`` / ``none`` on float32 logits (its exact numpy steps)."""
    outputs = logits.astype(np.float32, copy=False)
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-outputs))
    if function == "softmax":
        shifted = np.exp(outputs - np.max(outputs, axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    return outputs


def default_function(manifest: fmt.Manifest) -> str:
    """What the pipeline applies when ``function_to_apply`` is not given."""
    if manifest.problem_type == "regression":
        return "none"
    if manifest.problem_type == "multi_label_classification" or len(manifest.id2label) == 1:
        return "sigmoid"
    return "softmax"


class LogitsRows(Task):
    """A task whose rows are a classifier head's ``logits``, one run per language id: the run half
    that text classification and zero-shot classification share."""

    def batch_key(self, options: Any) -> Hashable:
        return options.lang_id

    def run_batch(self, units: Sequence[Unit], key: Hashable) -> list[np.ndarray]:
        batch = self.pad([u.ids for u in units])
        (logits,) = self.model.run([fmt.LOGITS], batch, key)
        return list(logits)


@dataclass(frozen=True)
class ClassifyOptions:
    """The options of a text-classification request (:meth:`TextClassifier.options`).

    Attributes:
        top_k: Labels per text, ``None`` for all, or :data:`BEST` (not given: the best label alone,
            not in a list).
        function: ``softmax``, ``sigmoid`` or ``none`` (resolved from the model when not given).
        truncation: Cut texts over the model's maximum (pairs: the longer text first).
        lang_id: The ``langs`` value (-1: none).
    """

    top_k: int | None | str
    function: str
    truncation: bool
    lang_id: int


class TextClassifier(LogitsRows):
    """Text classification over an exported ``XLMForSequenceClassification`` (module docstring).

    ``classifier("Bonjour")`` -> ``[{"label", "score"}]``; ``classifier(["a", "b"])`` -> one dict per
    text; with ``top_k`` (an int, or ``None`` for every label), a list of dicts per text (for one
    text, that list). A ``{"text": ..., "text_pair": ...}`` dict is a text pair.
    """

    name = "text-classification"
    aliases = ("classify",)
    default_model = "langid_model"  # the embedded language identifier
    head = fmt.HEAD_SEQUENCE_CLASSIFICATION
    purpose = "text classification"
    summary = "labels of each text, best first, from a fine-tuned classifier (default: the language identifier)"
    batch_rows = 32
    params = PARAMS

    def options(self, top_k: int | None | str = BEST, function_to_apply: str | None = None, truncation: bool = False,
                lang: str | None = None) -> ClassifyOptions:
        if top_k != BEST:
            positive_int("top_k", top_k, allow_none=True)
        if function_to_apply is None:
            function = default_function(self.model.manifest)
        else:
            if not isinstance(function_to_apply, str):
                raise TypeError(f"function_to_apply must be a str or None, not {type(function_to_apply).__name__}")
            function = function_to_apply.lower()
            one_of("function_to_apply", function, FUNCTIONS)
        require_bool("truncation", truncation)
        return ClassifyOptions(top_k, function, truncation, self.model.lang_id(lang))

    def encode(self, inputs: Any, options: ClassifyOptions) -> Prepared:
        single = isinstance(inputs, (str, dict))
        items, _ = text_list([inputs] if isinstance(inputs, dict) else inputs, "inputs")
        rows = [self._row(item, i, options.truncation) for i, item in enumerate(items)]
        state = (options, isinstance(inputs, str))
        return Prepared(self, [Unit(ids) for ids in rows], self.batch_key(options), single, state)

    def _row(self, item: Any, index: int, truncation: bool) -> list[int]:
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"text", "text_pair"})
            if unknown or "text" not in item:
                raise InputTypeError.about("inputs", "must be a str or a dict with 'text' and optionally "
                                           f"'text_pair', not a dict with keys {sorted(item)}", index)
            if item.get("text_pair") is not None:
                return encode_pair(self.model, item["text"], item["text_pair"], index,
                                   LONGEST_FIRST if truncation else None)
            item = item["text"]
        return self.model.encode_text(item, index, truncation)

    def finish(self, prepared: Prepared, outputs: list[np.ndarray]) -> Any:
        options, plain_str = prepared.state
        labels = self.model.manifest.labels
        answers = [_answer(apply_function(logits, options.function), labels, options.top_k) for logits in outputs]
        if not prepared.single:
            return answers
        # The pipeline's shapes: a lone str's best label comes in a list, a lone pair's does not.
        return [answers[0]] if plain_str and options.top_k == BEST else answers[0]

    def fields(self, answer: Any) -> dict[str, Any]:
        ranked = [answer] if isinstance(answer, dict) else answer
        return {"labels": [a["label"] for a in ranked], "scores": [a["score"] for a in ranked]}

    def inference_api(self, answer: Any, inputs: Any) -> Any:
        """A list of ranked labels per input, also for one (``InferenceClient.text_classification``
        reads the first)."""
        return [answer] if isinstance(inputs, (str, dict)) else answer

    def show(self, text: str, answer: Any) -> str:
        """``label  score  text`` for one label; else the text, then a row per label."""
        ranked = [answer] if isinstance(answer, dict) else answer
        if len(ranked) == 1:
            return f"{ranked[0]['label']}  {ranked[0]['score']:.4g}  {text}\n"
        width = max(len(a["label"]) for a in ranked)
        return f"{text}\n" + "".join(f"  {a['label']:<{width}}  {a['score']:.4g}\n" for a in ranked)


def _answer(scores: np.ndarray, labels: Sequence[str], top_k: int | None | str) -> Any:
    if top_k == BEST:
        best = int(scores.argmax())
        return {"label": labels[best], "score": float(scores[best])}
    ranked = sorted(({"label": labels[i], "score": float(s)} for i, s in enumerate(scores)),
                    key=lambda answer: answer["score"], reverse=True)
    return ranked if top_k is None else ranked[:top_k]
