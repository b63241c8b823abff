"""Full-size (16 x 1280, vocab 200000) random-weight exports: slow, excluded from CI.

Run with ``pytest -m slow tests/test_full_size.py`` (about 8 minutes and 8 GB on 2 cores).
"""

from __future__ import annotations

import pytest

from xlm_onnx import FillMask
from xlm_onnx import format as fmt

pytestmark = pytest.mark.slow

LIMITS_GB = {"fp32": 2.4, "fp16": 1.2, "int8": 0.6}
ATTENTION = {"fp32": "Attention", "fp16": "Attention", "int8": "QAttention"}


@pytest.fixture(scope="module")
def full_checkpoint(tmp_path_factory):
    from xlm_onnx_export.testing import XLM_100, make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("full") / "ckpt", XLM_100, peaked=False)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_full_size_export(full_checkpoint, tmp_path, precision):
    from xlm_onnx_export import Exporter

    result = Exporter(full_checkpoint, tmp_path / precision, precision=precision, progress=False).run()
    manifest = result.manifest
    size = sum(f["size"] for f in manifest.files.values()) / 1e9
    print(f"{precision}: {result.seconds:.0f} s, peak RSS {result.peak_rss_mb:.0f} MB, {size:.3f} GB, "
          f"fusion {manifest.fusion}, validation {manifest.validation}")
    assert size <= LIMITS_GB[precision]
    assert manifest.fusion[ATTENTION[precision]] == 16 and manifest.fusion["Gelu-like"] == 16
    assert manifest.fusion["SkipLayerNormalization"] >= 32
    fm = FillMask.from_pretrained(tmp_path / precision, threads=2)
    assert len(fm("Toute personne a droit à la <special1>.", top_k=5)) == 5
    assert fmt.read_manifest(tmp_path / precision).precision == precision
    from xlm_onnx.check import check_model  # the golden self-check a deployment would run

    assert check_model(tmp_path / precision, threads=2).passed
    if precision == "int8":
        assert manifest.int8_weight_max == fmt.INT8_SATURATION_SAFE_MAX
