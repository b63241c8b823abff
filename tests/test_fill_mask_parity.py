"""Differential tests: xlm-onnx FillMask against transformers' fill-mask pipeline (torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from parity import FP32_SCORE_TOL, assert_ranked, assert_same, max_score_delta, near_ties, probe_inputs
from xlm_onnx import FillMask
from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS


#: Same texts in a padded batch vs one at a time (both ORT fp32): measured max |delta| 0 here
#: (padding changes no real row's sums); 1e-6 leaves room for kernels that block differently.
BATCH_TOL = 1e-6


@pytest.fixture(scope="module")
def probes():
    items = probe_inputs(SAMPLE_TEXTS)
    assert len(items) >= 200 and sum(p.count("<special1>") > 1 for p in items) >= 20
    return items


@pytest.mark.parametrize("which", ["fp32_dir", "fp32_unfused_dir"])
def test_parity_with_hf_pipeline_single(request, which, probes, hf_pipeline):
    fm = FillMask.from_pretrained(request.getfixturevalue(which))
    worst, ties = 0.0, 0
    for text in probes:
        ours, ref = fm(text, top_k=5), hf_pipeline(text, top_k=5)
        assert_same(ours, ref, where=text)
        worst, ties = max(worst, max_score_delta(ours, ref)), ties + near_ties(ref)
    print(f"{which}: {len(probes)} probes, max |delta score| {worst:.2e} (tolerance {FP32_SCORE_TOL:g}), "
          f"{ties} masks with a near-tie in their top-5")


def test_batched_equals_single_and_hf(fp32_dir, probes, hf_pipeline):
    fm = FillMask.from_pretrained(fp32_dir, batch_size=7)
    batched = fm(probes, top_k=3)
    assert len(batched) == len(probes)
    worst = 0.0
    for text, got in zip(probes, batched):
        single = fm(text, top_k=3)
        assert_same(got, single, tol=BATCH_TOL, where=text)  # padding must not change results
        assert_same(got, hf_pipeline(text, top_k=3), where=text)
        worst = max(worst, max_score_delta(got, single))
    print(f"batched vs single: max |delta score| {worst:.2e} (tolerance {BATCH_TOL:g})")


def test_targets_match_hf(fp32_dir, hf_pipeline, probes):
    fm = FillMask.from_pretrained(fp32_dir)
    vocab = fm.tokenizer.get_vocab()
    words = [w for w in vocab if w.endswith("</w>")][20:26]
    # In-vocab tokens, a word outside the vocabulary (first BPE piece used), a duplicate.
    targets = words + ["Menschenrechtserklärung", words[0]]
    for text in probes[:40]:
        assert_same(fm(text, targets=targets, top_k=4), hf_pipeline(text, targets=targets, top_k=4), where=text)
        assert_same(fm(text, targets=words[:2], top_k=5), hf_pipeline(text, targets=words[:2], top_k=5), where=text)


def test_lang_model_matches_hf(lang_dir, tiny_lang_checkpoint):
    from transformers import XLMWithLMHeadModel, pipeline

    pipe = pipeline("fill-mask", model=str(tiny_lang_checkpoint), tokenizer=str(tiny_lang_checkpoint))
    fm = FillMask.from_pretrained(lang_dir)
    texts = probe_inputs(SAMPLE_TEXTS[:15], per_text=2)
    for text in texts:  # lang=None: no language embedding, exactly what the pipeline does
        assert_same(fm(text), pipe(text), where=text)
    model = XLMWithLMHeadModel.from_pretrained(tiny_lang_checkpoint).eval()
    text = "Tous les êtres humains <special1> libres et égaux."
    ids = fm.tokenizer.encode(text)
    position = ids.index(fm.tokenizer.mask_token_id)
    top1 = set()
    for lang, lang_id in {"en": 0, "fr": 1, "de": 2}.items():
        with torch.no_grad():
            logits = model(torch.tensor([ids]), langs=torch.full((1, len(ids)), lang_id)).logits[0]
        probs = torch.softmax(logits[position], -1).numpy()
        got = fm(text, lang=lang, top_k=5)
        ref = [(int(i), float(probs[i])) for i in np.argsort(-probs)[:5]]
        assert_ranked([(p["token"], p["score"]) for p in got], ref, where=lang)
        top1.add(round(got[0]["score"], 6))
    assert len(top1) > 1, "the langs input has no effect"


def test_mask_aliases(fp32_dir):
    fm = FillMask.from_pretrained(fp32_dir)
    canonical = fm("Alle Menschen sind <special1> und gleich.")
    assert fm("Alle Menschen sind <mask> und gleich.") == canonical
    assert fm("Alle Menschen sind [MASK] und gleich.") == canonical


def test_threads_share_one_instance(fp32_dir, probes):
    from concurrent.futures import ThreadPoolExecutor

    fm = FillMask.from_pretrained(fp32_dir, threads=1)
    expected = [fm(p) for p in probes[:48]]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(fm, probes[:48]))
    assert got == expected
