"""CUDA / TensorRT execution (skipped cleanly where onnxruntime has no GPU provider).

On a machine with an NVIDIA GPU: ``pip install -e '.[test,gpu]'`` then ``pytest tests/test_gpu.py``.
"""

from __future__ import annotations

import onnxruntime as ort
import pytest

from parity import assert_same, probe_inputs
from xlm_onnx import FillMask
from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS

AVAILABLE = ort.get_available_providers()
needs_cuda = pytest.mark.skipif("CUDAExecutionProvider" not in AVAILABLE,
                                reason=f"no CUDAExecutionProvider in onnxruntime ({', '.join(AVAILABLE)})")


@needs_cuda
@pytest.mark.parametrize("which,tol", [("fp32_dir", 1e-4), ("fp16_dir", 5e-3)])
def test_cuda_matches_hf(request, which, tol, hf_pipeline):
    fm = FillMask.from_pretrained(request.getfixturevalue(which), provider="cuda")
    assert fm.session.get_providers()[0] == "CUDAExecutionProvider"
    for text in probe_inputs(SAMPLE_TEXTS[:20], per_text=2):
        ours, ref = fm(text, top_k=1), hf_pipeline(text, top_k=1)
        assert_same(ours, ref, tol=tol, where=text)


@pytest.mark.skipif("TensorrtExecutionProvider" not in AVAILABLE, reason="no TensorrtExecutionProvider")
def test_tensorrt_runs(fp16_dir):
    fm = FillMask.from_pretrained(fp16_dir, provider="tensorrt")
    assert len(fm("Alle Menschen sind <special1> und gleich.", top_k=3)) == 3
