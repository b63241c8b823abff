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
from ..errors import InputError, InputTypeError
from .base import Prepared, Task, Unit
from .params import TEXT, Param, Params
from .qa_spans import answers, windows

#: The options of a question-answering request (the only place their defaults are written).
PARAMS = Params(
    Param("context", str, None, "the text every question is asked of, when the inputs are questions (str); "
          "a {question, context} input brings its own", metavar="TEXT"),
    Param("top_k", int, 1, "answers per question", minimum=1, metavar="K"),
    Param("doc_stride", int, None, "pieces shared by consecutive windows of a long context (default: "
          "min(max_seq_len // 2, 128))", minimum=1, metavar="N"),
    Param("max_answer_len", int, 15, "most pieces in an answer", minimum=1, metavar="N"),
    Param("max_seq_len", int, 384, "most pieces in a model row (question + window; capped by the model)",
          minimum=4, metavar="N"),
    Param("handle_impossible_answer", bool, False, "also score 'no answer' (answer '', start = end = 0)"),
    TEXT["lang"],
)
_D = PARAMS.defaults()


@dataclass(frozen=True)
class QAOptions:
    """The options of a request (:meth:`QuestionAnswerer.options`); see the pipeline's names."""

    top_k: int = 1
    doc_stride: int = 128
    max_answer_len: int = 15
    max_seq_len: int = 384
    handle_impossible_answer: bool = False
    lang_id: int = -1
    context: str | None = None


def _pair(item: Any, index: int, context: str | None) -> tuple[str, str]:
    """``(question, context)`` of one input: a ``{question, context}`` dict, or a question (str)
    asked of the ``context`` option."""
    if isinstance(item, str):
        if context is None:
            raise InputError.about("inputs", "is a question, but no context was given (pass context=..., or "
                                   "{'question': ..., 'context': ...} inputs)", index)
        item = {"question": item, "context": context}
    if not isinstance(item, dict) or set(item) != {"question", "context"}:
        raise InputTypeError.about("inputs", f"must be a question (str) or a dict with 'question' and 'context', "
                                   f"not {type(item).__name__} {sorted(item) if isinstance(item, dict) else ''}", index)
    for name in ("question", "context"):
        if not isinstance(item[name], str):
            raise InputTypeError.about("inputs", f"{name} must be a str, not {type(item[name]).__name__}", index)
        if not item[name].strip():
            raise InputError.about("inputs", f"{name} is empty", index)
    return item["question"], item["context"]


class QuestionAnswerer(Task):
    """Answers questions from contexts (see the module docstring); built as every
    :class:`~xlm_onnx.tasks.base.Task` is, from a model exported from
    ``XLMForQuestionAnsweringSimple``.

    ``QuestionAnswerer.from_pretrained(path)({"question": ..., "context": ...})`` gives
    ``{"score", "start", "end", "answer"}`` (a list of them with ``top_k`` > 1; a list of those
    for a list of questions).
    """

    name = "question-answering"
    aliases = ("qa",)
    head = fmt.HEAD_QUESTION_ANSWERING
    purpose = "extractive answers to questions, with their offsets in the context"
    batch_rows = 16
    params = PARAMS
    probe = {"question": "Who?", "context": "Hello world"}

    def options(self, context: str | None = _D["context"], top_k: int = _D["top_k"],
                doc_stride: int | None = _D["doc_stride"], max_answer_len: int = _D["max_answer_len"],
                max_seq_len: int = _D["max_seq_len"], handle_impossible_answer: bool = _D["handle_impossible_answer"],
                lang: str | None = _D["lang"]) -> QAOptions:
        """Validates a request's options.

        Args:
            context: The context of inputs that are questions (str).
            top_k: Answers per question.
            doc_stride: Pieces shared by consecutive windows (``None``: ``min(max_seq_len // 2, 128)``).
            max_answer_len: Most pieces in an answer.
            max_seq_len: Most pieces in a row (capped by the model's positions).
            handle_impossible_answer: Also score "no answer" (``answer`` "", ``start`` = ``end`` = 0).
            lang: Language for models with language embeddings.
        """
        values = {"context": context, "top_k": top_k, "doc_stride": doc_stride, "max_answer_len": max_answer_len,
                  "max_seq_len": max_seq_len, "handle_impossible_answer": handle_impossible_answer}
        for name, value in values.items():
            PARAMS[name].validate(value)
        max_seq_len = min(max_seq_len, self.model.manifest.max_positions)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        return QAOptions(top_k, doc_stride, max_answer_len, max_seq_len, handle_impossible_answer,
                         self.model.lang_id(lang), context)

    def encode(self, inputs: Any, options: QAOptions) -> Prepared:
        single = isinstance(inputs, (dict, str))
        items = [inputs] if single else inputs
        if not isinstance(items, (list, tuple)) or not items:
            raise InputTypeError.about("inputs", "must be a question, a {'question', 'context'} dict or a non-empty "
                                       "list of them")
        tok, units, state = self.model.tokenizer, [], []
        for index, item in enumerate(items):
            question, context = _pair(item, index, options.context)
            q = tok.encode(question, add_special_tokens=False)
            enc = tok.encode_with_offsets(context)
            capacity = options.max_seq_len - len(q) - 3
            if capacity <= options.doc_stride:
                raise InputError.about("inputs", f"question is {len(q)} tokens long: with max_seq_len "
                                       f"{options.max_seq_len} and doc_stride {options.doc_stride} no context fits "
                                       "(shorten the question or lower doc_stride)", index)
            if not enc.ids:
                raise InputError.about("inputs", "context has no tokens", index)
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
