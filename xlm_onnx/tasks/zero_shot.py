"""``ZeroShotClassifier``: ``pipeline("zero-shot-classification")`` over an NLI sequence classifier.

Each (text, candidate label) is a premise / hypothesis pair, ``<s> text </s> hypothesis </s>``
with the hypothesis ``hypothesis_template.format(label)``; the rows of all labels of all texts
of a request (and of any other requests) share batched runs, instead of the pipeline's one run
per pair. Then, per text, from the logits ``[labels, classes]``::

    multi_label or one label: softmax over (contradiction, entailment) of each label   -> independent
    otherwise:                softmax of the entailment logits over the labels          -> sum to 1
    ─► {"sequence", "labels", "scores"}, best first

The entailment class is the first ``label2id`` entry whose name starts with "entail" (any case),
as the pipeline finds it (none: the last class, as there); contradiction is class 0, or the last
class when entailment is 0. Texts over the model's maximum are cut from the end, never the
hypothesis (the pipeline's ``only_first``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import format as fmt
from ..inputs import require_bool, text_list
from ..errors import InputError
from .base import Prepared, Unit
from .pairs import ONLY_FIRST, encode_pair
from .params import TEXT, Param, Params
from .text_classification import LogitsRows

DEFAULT_TEMPLATE = "This example is {}."
PARAMS = Params(
    Param("candidate_labels", list, None, "a candidate label (required); repeat for several, or give them "
          "comma-separated", flag="--label", metavar="LABEL"),
    Param("hypothesis_template", str, DEFAULT_TEMPLATE, "the hypothesis; {} is replaced by each label",
          flag="--template", metavar="TEMPLATE"),
    Param("multi_label", bool, False, "score each label on its own (several may be true)"),
    TEXT["lang"],
)


def entailment_id(manifest: fmt.Manifest) -> int:
    """The entailment class as the pipeline finds it (``label2id`` of the source config)."""
    label2id = manifest.source.get("config", {}).get("label2id") or {v: int(k) for k, v in manifest.id2label.items()}
    for label, index in label2id.items():
        if label.lower().startswith("entail"):
            return int(index)
    return -1


def candidate_list(candidate_labels: Any) -> list[str]:
    """A list of labels, or one str of comma-separated labels (the pipeline's two forms).

    Raises:
        TypeError, InputError: Not a str or list of str, or no label.
    """
    if candidate_labels is None:
        raise InputError("candidate_labels is required: the labels to rank each text by", field="candidate_labels")
    if isinstance(candidate_labels, str):
        candidate_labels = [label.strip() for label in candidate_labels.split(",") if label.strip()]
    if not isinstance(candidate_labels, (list, tuple)) or not all(isinstance(c, str) for c in candidate_labels):
        raise TypeError("candidate_labels must be a str of comma-separated labels or a list of str")
    if not candidate_labels:
        raise InputError("candidate_labels is empty: give at least one label")
    return list(candidate_labels)


@dataclass(frozen=True)
class ZeroShotOptions:
    """The options of a zero-shot request (:meth:`ZeroShotClassifier.options`).

    Attributes:
        labels: The candidate labels, in the caller's order.
        hypotheses: ``hypothesis_template.format(label)`` of each.
        multi_label: Score each label on its own (entailment vs contradiction).
        lang_id: The ``langs`` value (-1: none).
    """

    labels: tuple[str, ...]
    hypotheses: tuple[str, ...]
    multi_label: bool
    lang_id: int


class ZeroShotClassifier(LogitsRows):
    """Zero-shot classification over an exported NLI ``XLMForSequenceClassification`` (module docstring).

    ``classifier("text", candidate_labels=["a", "b"])`` -> ``{"sequence", "labels", "scores"}``;
    for a list of texts, one such dict per text.
    """

    name = "zero-shot-classification"
    aliases = ("zero-shot",)
    head = fmt.HEAD_SEQUENCE_CLASSIFICATION
    purpose = "zero-shot classification"
    summary = "candidate labels of each text ranked by an NLI classifier (entailment of 'This example is {}.')"
    batch_rows = 32
    params = PARAMS
    probe_options = {"candidate_labels": ["world"]}

    def __init__(self, model) -> None:
        super().__init__(model)
        self.entailment = entailment_id(model.manifest)
        self.contradiction = -1 if self.entailment == 0 else 0

    def options(self, candidate_labels: Any = None, hypothesis_template: str = DEFAULT_TEMPLATE,
                multi_label: bool = False, lang: str | None = None) -> ZeroShotOptions:
        labels = candidate_list(candidate_labels)
        if not isinstance(hypothesis_template, str):
            raise TypeError(f"hypothesis_template must be a str, not {type(hypothesis_template).__name__}")
        try:
            hypotheses = [hypothesis_template.format(label) for label in labels]
        except (IndexError, KeyError, ValueError) as exc:
            raise InputError(f"hypothesis_template {hypothesis_template!r} cannot be formatted with a label "
                             f"({type(exc).__name__}: {exc})") from None
        if hypotheses[0] == hypothesis_template:
            raise InputError(f"hypothesis_template {hypothesis_template!r} has no {{}} where the label should go")
        require_bool("multi_label", multi_label)
        return ZeroShotOptions(tuple(labels), tuple(hypotheses), multi_label, self.model.lang_id(lang))

    def encode(self, inputs: Any, options: ZeroShotOptions) -> Prepared:
        texts, single = text_list(inputs, "inputs")
        units = [Unit(encode_pair(self.model, text, hypothesis, index, ONLY_FIRST, ("text", "hypothesis")))
                 for index, text in enumerate(texts) for hypothesis in options.hypotheses]
        return Prepared(self, units, self.batch_key(options), single, (options, list(texts)))

    def finish(self, prepared: Prepared, outputs: list[np.ndarray]) -> Any:
        options, texts = prepared.state
        n = len(options.labels)
        logits = np.stack(outputs).astype(np.float32).reshape(len(texts), n, -1)
        answers = [self._answer(text, logits[i], options) for i, text in enumerate(texts)]
        return answers[0] if prepared.single else answers

    def _answer(self, text: str, logits: np.ndarray, options: ZeroShotOptions) -> dict[str, Any]:
        if options.multi_label or len(options.labels) == 1:
            pair = logits[:, [self.contradiction, self.entailment]]
            scores = _softmax(pair)[:, 1]
        else:
            scores = _softmax(logits[:, self.entailment])
        order = list(reversed(scores.argsort()))  # the pipeline's order, ties included
        return {"sequence": text, "labels": [options.labels[i] for i in order], "scores": scores[order].tolist()}

    def fields(self, answer: dict[str, Any]) -> dict[str, Any]:
        return {"labels": answer["labels"], "scores": answer["scores"]}

    def inference_api(self, answer: Any, inputs: Any) -> Any:
        """``[{"label", "score"}, ...]`` best first per text (``InferenceClient.zero_shot_classification``)."""
        ranked = [[{"label": label, "score": score} for label, score in zip(a["labels"], a["scores"])]
                  for a in ([answer] if isinstance(inputs, str) else answer)]
        return ranked[0] if isinstance(inputs, str) else ranked

    def show(self, text: str, answer: dict[str, Any]) -> str:
        """The text, then a row per label, best first."""
        width = max(len(label) for label in answer["labels"])
        return f"{text}\n" + "".join(f"  {label:<{width}}  {score:.4g}\n"
                                      for label, score in zip(answer["labels"], answer["scores"]))


def _softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (max-shifted: the pipeline's plain ``exp`` overflows on large logits)."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
