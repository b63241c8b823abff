"""Start/end logits -> answer spans, with the semantics of transformers' ``question-answering`` pipeline.

Written from ``QuestionAnsweringPipeline`` (transformers 4.57: ``select_starts_ends``,
``decode_spans``, ``postprocess`` with a fast tokenizer) and kept to its arithmetic:

* windows: the context's pieces are cut into windows of ``max_seq_len - len(question) - 3``
  pieces that overlap by ``doc_stride`` (a fast tokenizer's ``stride`` with
  ``truncation="only_second"``); each window is one row ``<s> question </s> window </s>``;
* per window, positions that are not context get -10000 before two softmaxes (start, end);
  the "no answer" score is p_start(0) x p_end(0), its minimum over windows; then every
  (start <= end < start + max_answer_len) pair scores p_start x p_end and the ``top_k`` best
  whose ends are both context survive;
* answers from every window are sorted by score, the no-answer one added first when
  ``handle_impossible_answer``; spans are widened to whole words (``align_to_words``).

One difference, on purpose: position 0 (``<s>``) is the no-answer position and every ``</s>`` is
masked. The pipeline unmasks its tokenizer's ``cls_token`` for that role, which for XLM is
``</s>`` (so separators become candidate answers, and the slow-tokenizer path then fails with a
``KeyError`` in ``token_to_orig_map``), while leaving ``<s>`` at position 0 masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MASKED = -10000.0


@dataclass(frozen=True)
class Window:
    """One model row of a question: context pieces ``[first, first + count)`` after the question.

    Attributes:
        first: Index of the window's first context piece.
        count: Context pieces in the window.
        offset: Row position of the first context piece (``len(question) + 2``).
    """

    first: int
    count: int
    offset: int


def windows(n_context: int, capacity: int, doc_stride: int, offset: int) -> list[Window]:
    """Windows of at most ``capacity`` pieces covering ``n_context`` pieces, overlapping by ``doc_stride``."""
    out, first = [], 0
    while True:
        count = min(capacity, n_context - first)
        out.append(Window(first, count, offset))
        if first + count >= n_context:
            return out
        first += capacity - doc_stride


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def decode_spans(start: np.ndarray, end: np.ndarray, top_k: int, max_answer_len: int,
                 desired: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``decode_spans``: the ``top_k`` (start, end, score) with start <= end < start + max_answer_len,
    then those whose start and end are both ``desired``.

    The pipeline keeps, when ``top_k`` exceeds the candidates, pairs outside that band too (score
    0, end before start); they are not spans, so they are dropped here."""
    outer = np.outer(start, end)
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.ravel()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) < top_k:
        order = np.argsort(-flat, kind="stable")
    else:
        part = np.argpartition(-flat, top_k)[:top_k]
        order = part[np.argsort(-flat[part], kind="stable")]
    starts, ends = np.unravel_index(order, candidates.shape)
    keep = desired[starts] & desired[ends] & (starts <= ends) & (ends < starts + max_answer_len)
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[starts, ends]


def window_answers(start_logits: np.ndarray, end_logits: np.ndarray, window: Window, top_k: int,
                   max_answer_len: int) -> tuple[list[tuple[int, int, float]], float]:
    """``([(first piece, last piece, score)], no-answer score)`` of one window; pieces are context indices."""
    desired = np.zeros(len(start_logits), dtype=bool)
    desired[window.offset : window.offset + window.count] = True
    desired[0] = True  # the no-answer position
    start = _softmax(np.where(desired, np.asarray(start_logits, np.float64), MASKED))
    end = _softmax(np.where(desired, np.asarray(end_logits, np.float64), MASKED))
    null = float(start[0] * end[0])
    start[0] = end[0] = 0.0
    desired[0] = False
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, desired)
    shift = window.first - window.offset
    return [(int(s) + shift, int(e) + shift, float(v)) for s, e, v in zip(starts, ends, scores)], null


def answers(context: str, enc, outputs: list, wins: list[Window], top_k: int, max_answer_len: int,
            handle_impossible_answer: bool) -> list[dict]:
    """The best ``top_k`` answers over a context's windows, each ``score``/``start``/``end``/``answer``.

    Args:
        context: The original context.
        enc: Its :class:`~xlm_onnx.tokenization.offsets.TokenOffsets`.
        outputs: ``(start_logits, end_logits)`` of each window's row.
        wins: The windows.
        top_k: Answers to keep.
        max_answer_len: Most pieces in an answer.
        handle_impossible_answer: Add the no-answer ``{"score", "start": 0, "end": 0, "answer": ""}``.
    """
    found, null = [], 1000000.0
    for (start_logits, end_logits), window in zip(outputs, wins):
        spans, window_null = window_answers(start_logits, end_logits, window, top_k, max_answer_len)
        null = min(null, window_null)
        for first, last, score in spans:
            start = enc.words[enc.word_ids[first]][0]
            end = enc.words[enc.word_ids[last]][1]
            found.append({"score": score, "start": start, "end": end, "answer": context[start:end]})
    if handle_impossible_answer:
        found.append({"score": null, "start": 0, "end": 0, "answer": ""})
    return sorted(found, key=lambda a: a["score"], reverse=True)[:top_k]
