"""``QuestionAnswerer``: extractive answers of a fine-tuned ``XLMForQuestionAnsweringSimple``.

A question and its context become one or more rows ``<s> question </s> window </s>`` (windows of
the context's pieces, overlapping by ``doc_stride``, so a context longer than the model's
positions is read whole); the graph's ``logits`` ``[b, s, 2]`` (start, end) are decoded in
numpy by :mod:`.qa_spans` (transformers' ``question-answering`` semantics), and each answer's
``start``/``end`` index the original context (``context[start:end] == answer``)::

    question ─encode─► q pieces        context ─encode_with_offsets─► pieces, spans, words
    rows: <s> q </s> window_i </s> ─► start/end logits ─► best spans over windows ─► words ─► answers
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .. import format as fmt
from .._checks import check_bool, positive_int
from ..errors import InputError
from .base import Prepared, Task, Unit
from .qa_spans import answers, windows


@dataclass(frozen=True)
class QAOptions:
    """The options of a request (:meth:`QuestionAnswerer.options`); see the pipeline's names."""

    top_k: int = 1
    doc_stride: int | None = None
    max_answer_len: int = 15
    max_seq_len: int = 384
    handle_impossible_answer: bool = False
    lang_id: int = -1


def _pair(item: Any, index: int) -> tuple[str, str]:
    if not isinstance(item, dict) or set(item) - {"question", "context"}:
        raise TypeError(f"inputs[{index}] must be a dict with 'question' and 'context', not {item!r:.80}")
    question, context = item.get("question"), item.get("context")
    for name, value in (("question", question), ("context", context)):
        if not isinstance(value, str):
            raise TypeError(f"inputs[{index}].{name} must be a str, not {type(value).__name__}")
        if not value.strip():
            raise InputError(f"inputs[{index}].{name} is empty", index=index)
    return question, context


class QuestionAnswerer(Task):
    """Answers questions from contexts (see the module docstring); built as every
    :class:`~xlm_onnx.tasks.base.Task` is, from a model exported from
    ``XLMForQuestionAnsweringSimple``.

    ``QuestionAnswerer.from_pretrained(path)({"question": ..., "context": ...})`` gives
    ``{"score", "start", "end", "answer"}`` (a list of them with ``top_k`` > 1; a list of those
    for a list of questions).
    """

    name = "question-answering"
    head = fmt.HEAD_QUESTION_ANSWERING
    purpose = "question answering"
    batch_rows = 16
    probe = {"question": "Who?", "context": "Hello world"}

    def options(self, top_k: int = 1, doc_stride: int | None = None, max_answer_len: int = 15,
                max_seq_len: int = 384, handle_impossible_answer: bool = False, lang: str | None = None) -> QAOptions:
        """Validates a request's options.

        Args:
            top_k: Answers per question.
            doc_stride: Pieces shared by consecutive windows (``None``: ``min(max_seq_len // 2, 128)``).
            max_answer_len: Most pieces in an answer.
            max_seq_len: Most pieces in a row (capped by the model's positions).
            handle_impossible_answer: Also score "no answer" (``answer`` "", ``start`` = ``end`` = 0).
            lang: Language for models with language embeddings.
        """
        for name, value in (("top_k", top_k), ("max_answer_len", max_answer_len), ("max_seq_len", max_seq_len)):
            positive_int(name, value)
        positive_int("doc_stride", doc_stride, allow_none=True)
        check_bool("handle_impossible_answer", handle_impossible_answer)
        max_seq_len = min(max_seq_len, self.model.manifest.max_positions)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        return QAOptions(top_k, doc_stride, max_answer_len, max_seq_len, handle_impossible_answer,
                         self.model.lang_id(lang))

    def encode(self, inputs: Any, options: QAOptions) -> Prepared:
        single = isinstance(inputs, dict)
        items = [inputs] if single else inputs
        if not isinstance(items, (list, tuple)) or not items:
            raise TypeError("inputs must be a {'question', 'context'} dict or a non-empty list of them")
        tok, units, state = self.model.tokenizer, [], []
        for index, item in enumerate(items):
            question, context = _pair(item, index)
            q = tok.encode(question, add_special_tokens=False)
            enc = tok.encode_with_offsets(context)
            capacity = options.max_seq_len - len(q) - 3
            if capacity <= options.doc_stride:
                raise InputError(f"inputs[{index}].question is {len(q)} tokens long: with max_seq_len "
                                 f"{options.max_seq_len} and doc_stride {options.doc_stride} no context fits "
                                 "(shorten the question or lower doc_stride)", index=index)
            if not enc.ids:
                raise InputError(f"inputs[{index}].context has no tokens", index=index)
            wins = windows(len(enc.ids), capacity, options.doc_stride, len(q) + 2)
            for w in wins:
                window = list(enc.ids[w.first : w.first + w.count])
                units.append(Unit(tok.build_inputs_with_special_tokens(list(q), window)))
            state.append((context, enc, wins))
        return Prepared(self, units, self.batch_key(options), single, (options, state))

    def batch_key(self, options: QAOptions) -> int:
        return options.lang_id

    def run_batch(self, units: Sequence[Unit], key: int) -> list:
        """``(start_logits, end_logits)`` of each unit, float32 ``[len(ids)]`` each."""
        batch = self.pad([u.ids for u in units])
        (logits,) = self.model.run([fmt.LOGITS], batch, key)  # [b, s, 2]: start, end
        return [(logits[i, : len(u.ids), 0], logits[i, : len(u.ids), 1]) for i, u in enumerate(units)]

    def finish(self, prepared: Prepared, outputs: list) -> Any:
        options, state = prepared.state
        out, used = [], 0
        for context, enc, wins in state:
            found = answers(context, enc, outputs[used : used + len(wins)], wins, options.top_k,
                            options.max_answer_len, options.handle_impossible_answer)
            used += len(wins)
            out.append((found[0] if found else None) if options.top_k == 1 else found)
        return out[0] if prepared.single else out

    def fields(self, answer: Any) -> dict[str, Any]:
        return answer if isinstance(answer, dict) else {"answers": answer}
