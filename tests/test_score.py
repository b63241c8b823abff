"""Differential tests: PLL scoring against a straightforward torch implementation of the paper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from parity import FP32_LOG_PROB_TOL
from test_embed import TEXTS
from xlm_onnx import InputError, Scorer
from xlm_onnx.tasks.score import PLLScore, mask_sets, word_ends
from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS

#: Largest |log p - torch log p| per token, per precision. Measured (tiny checkpoint): 1.1e-5
#: fp32 (tolerance: tests/parity.py), 0.016 fp16, 0.51 int8.
TOLERANCE = {"fp32": FP32_LOG_PROB_TOL, "fp16": 0.05, "int8": 1.0}
#: |sum log p| of a text scored in different batches (both ORT fp32): measured 0 (sums of
#: order -100); 1e-5 leaves room for kernels that block differently.
BATCH_SUM_TOL = 1e-5
SCORE_TEXTS = list(SAMPLE_TEXTS[:8]) + TEXTS[12:20] + ["", "Menschenrechtserklärung"]


def torch_pll(model, tokenizer, text, metric, lang_id=None) -> np.ndarray:
    """The paper's definition, written out: copy j masks token j (and, for word_l2r, the later
    pieces of its word, up to the BPE piece ending in </w>), full-vocabulary log_softmax at j,
    read the original token. All copies of the sentence run as one torch batch (same length)."""
    ids = tokenizer.encode(text)
    pieces = ["<s>"] + tokenizer.tokenize(text) + ["</s>"]  # before unknown pieces become <unk>
    copies = []
    for j in range(1, len(ids) - 1):
        masked = list(ids)
        k = j
        while True:
            masked[k] = tokenizer.mask_token_id
            if metric == "original" or pieces[k].endswith("</w>") or k + 1 >= len(ids) - 1:
                break
            k += 1
        copies.append(masked)
    if not copies:
        return np.zeros(0)
    x = torch.tensor(copies)
    kwargs = {} if lang_id is None else {"langs": torch.full_like(x, lang_id)}
    with torch.no_grad():
        log_probs = torch.log_softmax(model(x, **kwargs).logits, -1)
    return np.array([log_probs[j - 1, j, ids[j]].item() for j in range(1, len(ids) - 1)])


_REFERENCE: dict = {}


def _reference(model, tokenizer, text, metric) -> np.ndarray:
    key = (text, metric)
    if key not in _REFERENCE:
        _REFERENCE[key] = torch_pll(model, tokenizer, text, metric)
    return _REFERENCE[key]


@pytest.fixture(scope="module")
def torch_lm(tiny_checkpoint):
    from transformers import XLMWithLMHeadModel

    return XLMWithLMHeadModel.from_pretrained(tiny_checkpoint).eval()


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("metric", ["original", "word_l2r"])
def test_pll_matches_torch(request, precision, metric, torch_lm):
    scorer = Scorer.from_pretrained(request.getfixturevalue(f"{precision}_dir"))
    got = scorer.score(SCORE_TEXTS, metric=metric, per_token=True, max_tokens=200)
    worst = 0.0
    for text, result in zip(SCORE_TEXTS, got):
        ref = _reference(torch_lm, scorer.model.tokenizer, text, metric)
        assert isinstance(result, PLLScore) and len(result.token_log_probs) == len(ref) == len(result.tokens)
        if len(ref):
            worst = max(worst, float(np.abs(np.array(result.token_log_probs) - ref).max()))
        assert abs(result.score - ref.sum()) <= TOLERANCE[precision] * max(len(ref), 1)
    print(f"{precision} {metric}: max |delta log p| per token {worst:.2e}")
    assert worst <= TOLERANCE[precision]
    sums = scorer.score(SCORE_TEXTS, metric=metric, max_tokens=200)  # same batches: same figures
    assert sums.dtype == np.float64 and sums.tolist() == [r.score for r in got]


def test_word_l2r_differs_only_on_multi_piece_words(fp32_dir):
    scorer = Scorer.from_pretrained(fp32_dir)
    text = "Menschenrechtserklärung und Würde"
    tokens = scorer.model.tokenizer.convert_ids_to_tokens(scorer.model.tokenizer.encode(text))[1:-1]
    assert not tokens[0].endswith("</w>"), tokens  # the long word is split
    a = scorer.score(text, per_token=True).token_log_probs
    b = scorer.score(text, metric="word_l2r", per_token=True).token_log_probs
    for token, x, y in zip(tokens, a, b):  # a word's last piece masks itself only, in both metrics
        assert (abs(x - y) <= 1e-5) == token.endswith("</w>"), (token, x, y)


def test_mask_sets_follow_word_boundaries():
    tokens = ["<s>", "Men", "schen</w>", "und</w>", "W", "ü", "rde</w>", "</s>"]
    sets = mask_sets(list(range(8)), tokens, {"<s>", "</s>"}, "word_l2r")
    assert [list(r) for r in sets] == [[1, 2], [2], [3], [4, 5, 6], [5, 6], [6]]
    assert [list(r) for r in mask_sets(list(range(8)), tokens, set(), "original")] == [[p] for p in range(1, 7)]
    assert word_ends(["a", "<special1>", "b", "c</w>"], {"<special1>"}) == [0, 1, 3, 3]


def test_batching_never_changes_scores(fp32_dir):
    scorer = Scorer.from_pretrained(fp32_dir)
    ref = np.array([scorer.score(t) for t in SCORE_TEXTS])
    for max_tokens in (None, 1, 64, 10_000):
        got = scorer.score(SCORE_TEXTS, max_tokens=max_tokens)
        print(f"max_tokens {max_tokens}: max |delta sum log p| {np.abs(got - ref).max():.2e}")
        np.testing.assert_allclose(got, ref, rtol=0, atol=BATCH_SUM_TOL)


def test_lang_model_scores_match_torch(lang_dir, tiny_lang_checkpoint):
    from transformers import XLMWithLMHeadModel

    scorer = Scorer.from_pretrained(lang_dir)
    model = XLMWithLMHeadModel.from_pretrained(tiny_lang_checkpoint).eval()
    for lang, lang_id in [(None, None), ("fr", 1)]:
        got = scorer.score(SCORE_TEXTS[:6], lang=lang, per_token=True)
        for text, result in zip(SCORE_TEXTS[:6], got):
            ref = torch_pll(model, scorer.model.tokenizer, text, "original", lang_id)
            print(f"lang {lang}: max |delta log p| {np.abs(np.array(result.token_log_probs) - ref).max():.2e}")
            np.testing.assert_allclose(result.token_log_probs, ref, rtol=0, atol=FP32_LOG_PROB_TOL)


def test_bad_input_is_refused(fp32_dir):
    scorer = Scorer.from_pretrained(fp32_dir)
    with pytest.raises(ValueError, match="metric"):
        scorer.score("a", metric="within_word")
    with pytest.raises(InputError, match="empty"):
        scorer.score([])
    with pytest.raises(TypeError, match=r"inputs\[0\]"):
        scorer.score([None])
    with pytest.raises(TypeError, match="per_token"):
        scorer.score("a", per_token="yes")
    assert scorer.score("") == 0.0
