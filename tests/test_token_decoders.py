"""The numpy decoders of token classification and QA against references, on seeded random logits.

* Entities: transformers' own ``TokenClassificationPipeline.aggregate`` (every strategy), fed the
  same per-token scores and our word boundaries (``is_subword`` = not the first piece of its word:
  the pipeline computes the same thing with a fast tokenizer), then its ``ignore_labels`` filter.
  Our ``word`` is ``text[start:end]`` where the pipeline decodes pieces, so words are compared
  through that slice.
* QA spans: a brute-force reference written from the pipeline's documented semantics (every
  start <= end < start + max_answer_len over context positions, score p_start x p_end of the
  window's masked softmaxes, top_k per window, sorted over windows, the no-answer score the
  minimum over windows of p_start(0) p_end(0)), independent of ``qa_spans``' vectorised code.
"""

from __future__ import annotations

import itertools
import random
from types import SimpleNamespace

import numpy as np
import pytest

from xlm_onnx.model import default_model_dir
from xlm_onnx.tasks import qa_spans
from xlm_onnx.tasks.token_entities import STRATEGIES, entities, softmax
from xlm_onnx.tokenization import XLMTokenizer

LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "MISC")
TEXTS = [
    "Ada Lovelace lived in London, didn't she?",
    "Toute personne a droit à la liberté d'opinion et d'expression.",
    "«\u00a0Bon\u00a0» — ``x'' 1\u00a0000 ok… unbelievably-long-hyphenated words",
]


@pytest.fixture(scope="module")
def tok() -> XLMTokenizer:
    return XLMTokenizer.from_pretrained(default_model_dir())


def _hf_entities(tok, text, logits, enc, strategy, ignore):
    pytest.importorskip("transformers")
    from transformers.pipelines.token_classification import AggregationStrategy, TokenClassificationPipeline

    pipe = TokenClassificationPipeline.__new__(TokenClassificationPipeline)
    pipe.model = SimpleNamespace(config=SimpleNamespace(id2label=dict(enumerate(LABELS))))
    pipe.tokenizer = SimpleNamespace(convert_tokens_to_string=tok.convert_tokens_to_string)
    scores = softmax(logits)
    pre = [{"word": piece, "scores": scores[i], "start": s, "end": e, "index": i + 1,
            "is_subword": i > 0 and enc.word_ids[i - 1] == enc.word_ids[i]}
           for i, (piece, (s, e)) in enumerate(zip(enc.tokens, enc.offsets))]
    found = pipe.aggregate(pre, AggregationStrategy(strategy))
    return [e for e in found if e.get("entity") not in ignore and e.get("entity_group") not in ignore]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ignore", [("O",), (), ("O", "PER", "I-LOC")])
def test_entities_match_transformers_aggregation(tok, strategy, ignore):
    rng = np.random.default_rng(7)
    for text in TEXTS:
        enc = tok.encode_with_offsets(text)
        for _ in range(20):
            logits = rng.normal(scale=3.0, size=(len(enc.ids), len(LABELS))).astype(np.float32)
            ours = entities(text, logits, enc.offsets, enc.word_ids, LABELS, strategy, ignore)
            ref = _hf_entities(tok, text, logits, enc, strategy, ignore)
            assert len(ours) == len(ref)
            for a, b in zip(ours, ref):
                assert set(a) == set(b)
                for key in set(a) - {"score", "word"}:
                    assert a[key] == b[key], (key, a, b)
                assert a["score"] == pytest.approx(float(b["score"]), rel=1e-12)
                assert a["word"] == text[a["start"] : a["end"]]


def test_first_average_max_by_hand():
    """One two-piece word: first piece says PER (0.6), second LOC (0.9)."""
    text = "Londres"
    offsets, word_ids = [(0, 3), (3, 7)], [0, 0]
    probs = np.array([[0.1, 0.6, 0.1, 0.1, 0.05, 0.05], [0.02, 0.02, 0.02, 0.9, 0.02, 0.02]])
    logits = np.log(probs)
    first = entities(text, logits, offsets, word_ids, LABELS, "first")
    top = entities(text, logits, offsets, word_ids, LABELS, "max")
    mean = entities(text, logits, offsets, word_ids, LABELS, "average")
    assert [(e["entity_group"], round(e["score"], 6), e["word"]) for e in first] == [("PER", 0.6, "Londres")]
    assert [(e["entity_group"], round(e["score"], 6)) for e in top] == [("LOC", 0.9)]
    assert [(e["entity_group"], round(e["score"], 6)) for e in mean] == [("LOC", 0.5)]  # (0.1 + 0.9) / 2 beats PER (0.6 + 0.02) / 2
    assert [e["entity"] for e in entities(text, logits, offsets, word_ids, LABELS, "none")] == ["B-PER", "B-LOC"]


def _brute_force(windows, logits, top_k, max_answer_len):
    found, null = [], 1e6
    for window, (start_logits, end_logits) in zip(windows, logits):
        ok = [0] + list(range(window.offset, window.offset + window.count))

        def probs(x):
            z = np.array([x[i] if i in ok else -10000.0 for i in range(len(x))], dtype=np.float64)
            e = np.exp(z - z.max())
            return e / e.sum()

        ps, pe = probs(start_logits), probs(end_logits)
        null = min(null, ps[0] * pe[0])
        pairs = [(ps[s] * pe[e], s, e) for s, e in itertools.product(ok[1:], ok[1:]) if s <= e < s + max_answer_len]
        pairs.sort(key=lambda t: -t[0])
        shift = window.first - window.offset
        found += [(s + shift, e + shift, v) for v, s, e in pairs[:top_k]]
    return sorted(found, key=lambda t: -t[2])[:top_k], null


@pytest.mark.parametrize("top_k", [1, 3, 40])
def test_qa_spans_match_brute_force(top_k):
    rng = random.Random(5)
    for trial in range(30):
        n_context, q_len = rng.randint(1, 40), rng.randint(1, 6)
        capacity = rng.randint(2, 16)
        stride = rng.randint(0, capacity - 1)
        wins = qa_spans.windows(n_context, capacity, stride, q_len + 2)
        assert wins[0].first == 0 and wins[-1].first + wins[-1].count == n_context
        assert all(b.first == a.first + capacity - stride for a, b in zip(wins, wins[1:]))
        nrng = np.random.default_rng(trial)
        logits = [(nrng.normal(size=q_len + 3 + w.count) * 4, nrng.normal(size=q_len + 3 + w.count) * 4) for w in wins]
        max_len = rng.randint(1, 8)
        ours, ours_null = [], 1e6
        for (s_l, e_l), w in zip(logits, wins):
            spans, null = qa_spans.window_answers(s_l, e_l, w, top_k, max_len)
            ours += spans
            ours_null = min(ours_null, null)
        ours = sorted(ours, key=lambda t: -t[2])[:top_k]
        ref, ref_null = _brute_force(wins, logits, top_k, max_len)
        assert ours_null == pytest.approx(ref_null, rel=1e-9)
        assert [v for _, _, v in ours] == pytest.approx([v for _, _, v in ref], rel=1e-9)
        assert [(s, e) for s, e, _ in ours] == [(s, e) for s, e, _ in ref] or len({v for *_, v in ref}) < len(ref)
