"""Shared fixtures: tiny random XLM checkpoints and their exports, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XLM_ONNX_SHARED", REPO.parent / "shared"))
UDHR = SHARED / "data" / "udhr_xlm_dev.jsonl"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """2 layers x 64, 4 heads, no language embeddings (like XLM-100), BPE from SAMPLE_TEXTS."""
    from xlm_onnx_export.testing import TINY, make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", TINY, seed=0)


@pytest.fixture(scope="session")
def tiny_lang_checkpoint(tmp_path_factory) -> Path:
    """3 layers x 64 with language embeddings (en, fr, de)."""
    from xlm_onnx_export.testing import Arch, make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-lang", Arch(n_layers=3), use_lang_emb=True, seed=1)


def _export(tmp_path_factory, checkpoint: Path, name: str, **kwargs) -> Path:
    from xlm_onnx_export import Exporter

    out = tmp_path_factory.mktemp("exports") / name
    Exporter(checkpoint, out, progress=False, **kwargs).run()
    return out


@pytest.fixture(scope="session")
def fp32_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    """Fused fp32 export of ``tiny_checkpoint``."""
    return _export(tmp_path_factory, tiny_checkpoint, "fp32")


@pytest.fixture(scope="session")
def fp32_unfused_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    return _export(tmp_path_factory, tiny_checkpoint, "fp32-unfused", optimize=False)


@pytest.fixture(scope="session")
def lang_dir(tmp_path_factory, tiny_lang_checkpoint) -> Path:
    return _export(tmp_path_factory, tiny_lang_checkpoint, "fp32-lang")


@pytest.fixture(scope="session")
def hf_pipeline(tiny_checkpoint):
    from transformers import pipeline

    return pipeline("fill-mask", model=str(tiny_checkpoint), tokenizer=str(tiny_checkpoint), device="cpu")


@pytest.fixture(scope="session")
def fp16_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    return _export(tmp_path_factory, tiny_checkpoint, "fp16", precision="fp16")


@pytest.fixture(scope="session")
def int8_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    return _export(tmp_path_factory, tiny_checkpoint, "int8", precision="int8")
