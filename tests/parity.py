"""Helpers for comparing xlm-onnx results with the HF fill-mask pipeline."""

from __future__ import annotations

MASK = "<special1>"


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


def assert_same(ours, ref, tol: float = 1e-4, where: str = "") -> None:
    """Asserts two pipeline results are equal: tokens, strings and order exactly; scores to ``tol``."""
    if ref and isinstance(ref[0], list):
        assert isinstance(ours[0], list) and len(ours) == len(ref), f"{where}: mask count differs"
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_same(a, b, tol, f"{where} mask {i}")
        return
    assert [p["token"] for p in ours] == [p["token"] for p in ref], f"{where}: tokens differ"
    for a, b in zip(ours, ref):
        assert a["token_str"] == b["token_str"], where
        assert a["sequence"] == b["sequence"], where
        assert abs(a["score"] - b["score"]) <= tol, f"{where}: |{a['score']} - {b['score']}| > {tol}"


def max_score_delta(ours, ref) -> float:
    if ref and isinstance(ref[0], list):
        return max(max_score_delta(a, b) for a, b in zip(ours, ref))
    return max(abs(a["score"] - b["score"]) for a, b in zip(ours, ref))


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
