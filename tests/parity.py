"""Helpers for comparing xlm-onnx results with the HF fill-mask pipeline and torch.

Tolerances live here (and, for what the exporter gates, in :data:`xlm_onnx.golden.GATES`, which
these constants read), each with the figure actually achieved, so a test is only as loose as
the implementation needs. Measured on the tiny checkpoints (tests/conftest.py), natively on
AVX-512 VNNI and under ``qemu-x86_64 -cpu EPYC-Rome`` (AVX2):

* fp32 probability vs the HF pipeline: max |delta| 1.6e-6 over 224 probes (fused and unfused);
  the export's golden probes 0.9e-6 / 1.8e-6 (language model) VNNI, 1.1e-6 / 1.4e-6 AVX2.
  Tolerance 1e-5 (~6x). A LayerNorm eps of 1e-5 instead of 1e-12 moves them by 6-8.5e-6.
* fp32 label log-probability vs torch: golden 5.7e-6 (both classes); PLL per token on longer
  texts 1.1e-5. Tolerance 5e-5 (~4.5x). The wrong LayerNorm eps moves it by 1.4e-4.
* fp32 embeddings (pooled last hidden state) vs torch: max 1.3e-6, tolerance 5e-6.
"""

from __future__ import annotations

from xlm_onnx.golden import GATES

MASK = "<special1>"

#: |probability - torch/HF probability|, fp32 (the exporter's fp32 gate: the same figure).
FP32_SCORE_TOL = GATES["fp32"].max_abs_score
#: |log p - torch log p| per token, fp32 (the exporter's fp32 label gate).
FP32_LOG_PROB_TOL = GATES["fp32"].max_abs_label_log_prob
#: |hidden - torch hidden| per element of a mean-pooled embedding (values of order 1), fp32:
#: measured max 7.2e-7 (1.3e-6 with a language embedding); batched vs one at a time: 0.
FP32_HIDDEN_TOL = 5e-6


def probe_inputs(texts, per_text: int = 4, multi_every: int = 5) -> list[str]:
    """Masked probes from plain sentences: one word masked at several positions, and every
    ``multi_every``-th probe with a second mask."""
    probes = []
    for n, text in enumerate(texts):
        words = text.split()
        if len(words) < 2:
            continue
        for j in range(per_text):
            i = (j * 3 + n) % len(words)
            masked = list(words)
            masked[i] = MASK
            if (n + j) % multi_every == 0:
                masked[(i + 2) % len(words)] = MASK
            probes.append(" ".join(masked))
    return probes


def tie_blocks(scores, tol: float) -> list[range]:
    """Ranks of a descending score list grouped where neighbours are within ``2 * tol``: two
    answers each off by at most ``tol`` can swap order only inside such a block."""
    blocks, start = [], 0
    for i in range(1, len(scores) + 1):
        if i == len(scores) or scores[i - 1] - scores[i] > 2 * tol:
            blocks.append(range(start, i))
            start = i
    return blocks


def assert_ranked(ours, ref, tol: float = FP32_SCORE_TOL, where: str = "") -> None:
    """Asserts two ranked ``[(token, score), ...]`` lists agree: scores to ``tol``; order exactly
    wherever the reference's adjacent gap exceeds ``2 * tol``, as a set inside a near-tie; a
    near-tie at the end of the list may let a token tied with the reference's last one in."""
    assert len(ours) == len(ref), f"{where}: {len(ours)} answers, reference {len(ref)}"
    ref_scores, last = dict(ref), ref[-1][1] if ref else 0.0
    blocks = tie_blocks([s for _, s in ref], tol)
    for block in blocks:
        mine, theirs = {ours[i][0] for i in block}, {ref[i][0] for i in block}
        if block is blocks[-1]:  # the reference's k+1-th answer (unseen) may tie with its last
            swapped = [s for t, s in ours if t in mine - theirs] + [ref_scores[t] for t in theirs - mine]
            assert all(abs(s - last) <= 2 * tol for s in swapped), \
                f"{where}: ranks {block.start}-{block.stop - 1}: {ours[block.start:]} vs {ref[block.start:]}"
        else:
            assert mine == theirs, f"{where}: ranks {block.start}-{block.stop - 1}: {[ours[i] for i in block]} " \
                                   f"vs {[ref[i] for i in block]}"
    for token, score in ours:
        if token in ref_scores:
            assert abs(score - ref_scores[token]) <= tol, f"{where}: token {token}: |{score} - {ref_scores[token]}| > {tol}"


def assert_same(ours, ref, tol: float = FP32_SCORE_TOL, where: str = "") -> None:
    """Asserts two pipeline results are equal: tokens and order (:func:`assert_ranked`), strings
    and sequences of each token exactly, scores to ``tol``."""
    if ref and isinstance(ref[0], list):
        assert isinstance(ours[0], list) and len(ours) == len(ref), f"{where}: mask count differs"
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_same(a, b, tol, f"{where} mask {i}")
        return
    assert_ranked([(p["token"], p["score"]) for p in ours], [(p["token"], p["score"]) for p in ref], tol, where)
    by_token = {p["token"]: p for p in ref}
    for a in ours:
        if a["token"] in by_token:
            b = by_token[a["token"]]
            assert (a["token_str"], a["sequence"]) == (b["token_str"], b["sequence"]), where


def max_score_delta(ours, ref) -> float:
    if ref and isinstance(ref[0], list):
        return max(max_score_delta(a, b) for a, b in zip(ours, ref))
    scores = {p["token"]: p["score"] for p in ref}
    return max(abs(a["score"] - scores[a["token"]]) for a in ours if a["token"] in scores)


def near_ties(ref, tol: float = FP32_SCORE_TOL) -> int:
    """Masks of a pipeline result whose top-k holds a near-tie (order compared as a set there)."""
    if ref and isinstance(ref[0], list):
        return sum(near_ties(r, tol) for r in ref)
    return int(any(len(b) > 1 for b in tie_blocks([p["score"] for p in ref], tol)))


def agreement_with_hf(fill_mask, hf_pipeline, texts) -> tuple[float, list[float]]:
    """Top-1 agreement with the HF pipeline, and |score - HF score| of every shared top-5 token,
    on the single-mask probes of ``texts``."""
    top1, deltas = [], []
    for text in [p for p in probe_inputs(texts, per_text=2) if p.count(MASK) == 1]:
        ours, ref = fill_mask(text, top_k=5), hf_pipeline(text, top_k=5)
        top1.append(ours[0]["token"] == ref[0]["token"])
        ref_scores = {p["token"]: p["score"] for p in ref}
        deltas += [abs(p["score"] - ref_scores[p["token"]]) for p in ours if p["token"] in ref_scores]
    return sum(top1) / len(top1), deltas
