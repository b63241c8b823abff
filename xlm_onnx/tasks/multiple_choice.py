"""``MultipleChoice``: an exported ``XLMForMultipleChoice`` picks among a question's choices.

transformers has no pipeline for it; this is its documented use, one row per choice::

    {"question": q, "choices": [c1, c2, ...]} ─► <s> q </s> ci </s> per choice (longest_first truncation)
        ─► one logit per choice ─ softmax over the question's choices ─► choices ranked, best first

Each choice is scored from its own row alone (the model's ``[batch, choices, seq]`` input is
flattened to rows), so the choices of many questions batch together like texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np

from .. import format as fmt
from ..inputs import require_bool
from ..errors import InputError, InputTypeError
from .base import Prepared, Task, Unit
from .pairs import LONGEST_FIRST, encode_pair
from .params import TEXT
from .text_classification import apply_function


@dataclass(frozen=True)
class ChoiceOptions:
    """Options of a multiple-choice request: ``truncation`` and the ``langs`` value ``lang_id``."""

    truncation: bool
    lang_id: int


class MultipleChoice(Task):
    """Multiple choice over an exported ``XLMForMultipleChoice`` (module docstring).

    ``mc({"question": "...", "choices": ["a", "b"]})`` -> ``[{"choice", "index", "score", "logit"}, ...]``,
    best first, scores summing to 1; a list of such questions -> one list per question.
    """

    name = "multiple-choice"
    head = fmt.HEAD_MULTIPLE_CHOICE
    purpose = "multiple choice"
    summary = "the choices of each {question, choices} input ranked (JSON inputs: HTTP, Python, bulk)"
    batch_rows = 32
    params = TEXT
    probe = {"question": "Hello", "choices": ["world", "there"]}

    def options(self, truncation: bool = False, lang: str | None = None) -> ChoiceOptions:
        require_bool("truncation", truncation)
        return ChoiceOptions(truncation, self.model.lang_id(lang))

    def encode(self, inputs: Any, options: ChoiceOptions) -> Prepared:
        single = isinstance(inputs, dict)
        questions = [inputs] if single else inputs
        if not isinstance(questions, (list, tuple)) or not questions:
            raise InputTypeError("inputs must be a {'question', 'choices'} dict or a non-empty list of them",
                                 field="inputs")
        units, counts = [], []
        for index, item in enumerate(questions):
            choices = _choices(item, index)
            units += [Unit(encode_pair(self.model, item["question"], choice, index,
                                       LONGEST_FIRST if options.truncation else None, ("question", "choice")))
                      for choice in choices]
            counts.append(len(choices))
        return Prepared(self, units, self.batch_key(options), single, (questions, counts))

    def batch_key(self, options: ChoiceOptions) -> Hashable:
        return options.lang_id

    def run_batch(self, units: Sequence[Unit], key: Hashable) -> list[float]:
        batch = self.pad([u.ids for u in units])
        (logits,) = self.model.run([fmt.LOGITS], batch, key)
        return [float(v) for v in logits[:, 0]]

    def finish(self, prepared: Prepared, outputs: list[float]) -> Any:
        questions, counts = prepared.state
        answers, start = [], 0
        for item, count in zip(questions, counts):
            logits = np.array(outputs[start:start + count], dtype=np.float32)
            start += count
            scores = apply_function(logits, "softmax")
            answers.append(sorted(({"choice": c, "index": i, "score": float(s), "logit": float(v)}
                                   for i, (c, s, v) in enumerate(zip(item["choices"], scores, logits))),
                                  key=lambda a: a["score"], reverse=True))
        return answers[0] if prepared.single else answers

    def fields(self, answer: list[dict[str, Any]]) -> dict[str, Any]:
        return {"choices": [a["choice"] for a in answer], "scores": [a["score"] for a in answer]}


def _choices(item: Any, index: int) -> list[str]:
    if not isinstance(item, dict) or set(item) != {"question", "choices"}:
        raise InputTypeError.about("inputs", "must be a dict with exactly 'question' and 'choices'", index)
    choices = item["choices"]
    if not isinstance(choices, (list, tuple)) or not all(isinstance(c, str) for c in choices):
        raise InputTypeError.about("inputs", "choices must be a list of str", index)
    if not choices:
        raise InputError.about("inputs", "has no choices", index)
    return list(choices)
