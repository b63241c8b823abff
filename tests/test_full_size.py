"""Full-size (16 x 1280, vocab 200000) exports of a *peaked* random checkpoint: slow, not in CI.

Run with ``pytest -m slow tests/test_full_size.py`` (about 6 minutes and 11.5 GB on 2 cores).

HF's own init gives near-uniform predictions at this size (every probability ~5e-6), so no
accuracy gate could fail on it. The fixture redraws the weights so predictions are peaked (see
:func:`_peak`), which makes the exporter's gates and the comparison with the HF pipeline below
able to catch an accuracy regression at 16 x 1280.
"""

from __future__ import annotations

import numpy as np
import pytest

from parity import FP32_SCORE_TOL, assert_same, probe_inputs
from xlm_onnx import FillMask
from xlm_onnx import format as fmt
from xlm_onnx.golden import GATES, Golden

pytestmark = pytest.mark.slow

LIMITS_GB = {"fp32": 2.4, "fp16": 1.2, "int8": 0.6}
ATTENTION = {"fp32": "Attention", "fp16": "Attention", "int8": "MultiHeadAttention"}  # int8: after per-row QKV
#: Weight draw of the peaked checkpoint. Matrices N(0, GAIN^2 / fan_in) keep activations of order
#: one through 16 layers (HF's Linear init is ~0.58 / sqrt(fan_in), which washes the input out);
#: the tied embedding's std sets the logits' spread (std ~ EMBEDDING_STD * sqrt(1280)). Chosen
#: from torch runs of this architecture on random ids: embedding std 0.08 gave top-1
#: probabilities 0.014-0.11 (median 0.025; uniform would be 5e-6) with torch's own fp32 vs fp64
#: difference 4.6e-7, far inside the fp32 gate (1e-5). A gain of 0.64 made the model predict
#: the mask token itself (top-1 ~0.98: degenerate, and fp32 vs fp64 then differs by 1e-4).
#: At std 0.1 (golden top-1 median 0.09, max 0.31) fp32 (|delta| 2.2e-6, log p 1.5e-5) and fp16
#: (1.5e-3) passed their gates but int8 failed its own (max |delta score| 0.077 > 0.05). Per-row
#: activations do not change that: 0.062 on the same 24 probe masks; against torch on 1008 masks
#: of 120 UDHR lines, top-1 agreement 78.6% vs 80.2% and the worst |delta p| per mask averages
#: 0.0334 vs 0.0343 per-tensor: at this size the 7-bit weights, not the activations, dominate.
GAIN, EMBEDDING_STD, LAYER_NORM_STD = 1.0, 0.08, 0.1
#: Uniform would be 1 / 200000 = 5e-6: the fixture must be far from it to be a real check.
MIN_MEDIAN_TOP1 = 0.01


def _peak(checkpoint) -> None:
    """Redraws ``checkpoint``'s weights in place (see :data:`GAIN`)."""
    import torch
    from safetensors.torch import load_file, save_file

    path = checkpoint / "model.safetensors"
    weights = load_file(path)
    generator = torch.Generator().manual_seed(1)
    for name, w in weights.items():
        noise = torch.randn(w.shape, generator=generator)
        if "layer_norm" in name and name.endswith("weight"):
            weights[name] = 1 + LAYER_NORM_STD * noise
        elif "embeddings" in name:
            weights[name] = EMBEDDING_STD * noise
        elif w.dim() > 1:
            weights[name] = GAIN / w.shape[1] ** 0.5 * noise
        else:
            weights[name] = 0.02 * noise
    save_file(weights, path, metadata={"format": "pt"})


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory):
    from xlm_onnx_export.fixtures.checkpoints import XLM_100, make_checkpoint

    checkpoint = make_checkpoint(tmp_path_factory.mktemp("full") / "ckpt", XLM_100, peaked=False)
    _peak(checkpoint)
    return checkpoint


@pytest.fixture(scope="module")
def full_pipeline(full_checkpoint):
    from transformers import pipeline

    return pipeline("fill-mask", model=str(full_checkpoint), tokenizer=str(full_checkpoint), device="cpu")


PROBES = [p for p in probe_inputs([
    "Toute personne a droit à la liberté et à la sûreté de sa personne.",
    "All human beings are born free and equal in dignity and rights.",
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
], per_text=3)]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_full_size_export(full_checkpoint, full_pipeline, tmp_path, precision):
    from xlm_onnx_export import Exporter

    result = Exporter(full_checkpoint, tmp_path / precision, precision=precision, progress=False).run()
    manifest = result.manifest
    size = sum(f["size"] for f in manifest.files.values()) / 1e9
    top1 = np.array(Golden.read(tmp_path / precision).top_scores)[:, 0]
    print(f"{precision}: {result.seconds:.0f} s, peak RSS {result.peak_rss_mb:.0f} MB, {size:.3f} GB, "
          f"fusion {manifest.fusion}, validation {manifest.validation}; torch top-1 probability "
          f"min {top1.min():.3g} median {np.median(top1):.3g} max {top1.max():.3g}")
    assert np.median(top1) >= MIN_MEDIAN_TOP1, "the fixture is not peaked: its accuracy checks could not fail"
    assert size <= LIMITS_GB[precision]
    assert manifest.fusion[ATTENTION[precision]] == 16 and manifest.fusion["Gelu-like"] == 16
    assert manifest.fusion["SkipLayerNormalization"] >= 32
    assert fmt.read_manifest(tmp_path / precision).precision == precision
    from xlm_onnx.golden import check_model  # the golden self-check a deployment would run

    assert check_model(tmp_path / precision, threads=2).passed
    if precision == "int8":
        assert manifest.int8_weight_max == fmt.INT8_SATURATION_SAFE_MAX
    # Differential, beyond the exporter's probes: the HF pipeline on other sentences.
    fm = FillMask.from_pretrained(tmp_path / precision, threads=2)
    gate = GATES[precision]
    worst, agree = 0.0, []
    for text in PROBES:
        ours, ref = fm(text, top_k=5), full_pipeline(text, top_k=5)
        for mine, theirs in (zip(ours, ref) if isinstance(ref[0], list) else [(ours, ref)]):
            if precision == "fp32":
                assert_same(mine, theirs, tol=FP32_SCORE_TOL, where=text)
            scores = {p["token"]: p["score"] for p in theirs}
            worst = max([worst] + [abs(p["score"] - scores[p["token"]]) for p in mine if p["token"] in scores])
            agree.append(mine[0]["token"] == theirs[0]["token"])
    print(f"{precision} vs HF pipeline: {len(agree)} masks, top-1 agreement {np.mean(agree):.3f}, "
          f"max |delta score| {worst:.2e}")
    assert worst <= gate.max_abs_score and np.mean(agree) >= gate.min_top1
