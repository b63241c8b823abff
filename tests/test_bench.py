"""The latency harness end to end at --size tiny (structure only: no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory, tiny_checkpoint, fp32_dir):
    """The cache is seeded with the session's tiny checkpoint and fp32 export (what ``--size
    tiny`` would build: same architecture and seed), so this test only pays for the workers."""
    import shutil

    from benchmarks.latency_harness import main

    out = tmp_path_factory.mktemp("bench")
    root = out / "cache" / "tiny"
    shutil.copytree(tiny_checkpoint, root / "checkpoint")
    (root / "checkpoint" / ".complete").write_text("{}")
    shutil.copytree(fp32_dir, root / "fp32")
    argv = ["--size", "tiny", "--cache", str(out / "cache"), "--systems", "onnx-fp32,hf-fp32,hf-cuda-fp16",
            "--scenarios", "1x16", "--repeat", "2", "--warmup", "1", "--threads", "1", "--bandwidth-mb", "32",
            "--json", str(out / "r.json"), "--markdown", str(out / "r.md"), "--profile"]
    try:
        import matplotlib  # noqa: F401  (the [bench] extra)

        argv += ["--plot", str(out / "r.png")]
    except ImportError:
        pass
    status = main(argv)
    return status, json.loads((out / "r.json").read_text()), (out / "r.md").read_text()


def test_json_structure(bench_run):
    status, data, _ = bench_run
    assert status == 0
    if data.get("plot"):
        assert Path(data["plot"]).stat().st_size > 1000
    assert {"header", "bandwidth", "scenarios", "systems", "notes"} <= set(data)
    for key in ("python", "torch", "transformers", "onnxruntime", "onnx", "xlm-onnx"):
        assert key in data["header"]["versions"]
    assert data["header"]["threads"] == 1 and data["header"]["cpu"] and data["header"]["cores"] >= 1
    from xlm_onnx.cpu import cpu_info  # int8 speed and answers depend on the CPU class: every run names it

    isa = data["header"]["cpu_isa"]
    assert isa["isa_class"] == cpu_info().isa_class and isa["flags"] == list(cpu_info().flags)
    assert data["header"]["cpu"].endswith(f"({isa['isa_class']})")
    assert data["bandwidth"]["copy_gb_s"] > 0
    assert [s["name"] for s in data["scenarios"]] == ["1x16"]
    systems = data["systems"]
    assert systems["hf-cuda-fp16"]["status"] == "skipped" and "cuda" in systems["hf-cuda-fp16"]["note"]
    for name in ("onnx-fp32", "hf-fp32"):
        res = systems[name]
        assert res["status"] == "ok", res
        for key in ("cold_start_s", "peak_rss_mb", "model_bytes", "weight_bytes"):
            assert res[key] > 0, (name, key)
        for mode in ("e2e", "model"):
            cell = res["results"][mode]["1x16"]
            assert cell["n"] == 2
            assert 0 < cell["p50_ms"] <= cell["p90_ms"] <= cell["p99_ms"]
            assert cell["throughput_sps"] > 0
        assert res["roofline"]["floor_ms"] > 0 and res["roofline"]["model_1x16_pct"] > 0
    prof = systems["onnx-fp32"]["profile"]["top_ops"]
    assert 0 < len(prof) <= 10 and all(p["total_ms"] >= 0 for p in prof)


def test_markdown(bench_run, capsys):
    _, _, text = bench_run
    assert "| system | 1x16 |" in text and "| onnx-fp32 |" in text and "| hf-fp32 |" in text
    assert "Memory bandwidth" in text and "% floor 1x16" in text
    from xlm_onnx.cpu import cpu_info

    assert f"CPU ISA flags: {' '.join(cpu_info().flags)}." in text


def test_inputs_hit_exact_lengths(tiny_checkpoint):
    from xlm_onnx import XLMTokenizer
    from benchmarks.latency_harness.inputs import build, parse_scenarios

    tok = XLMTokenizer.from_pretrained(tiny_checkpoint)
    for sc in build(tok, parse_scenarios("1x16,3x40")):
        assert len(sc["texts"]) == sc["batch"]
        for text, ids in zip(sc["texts"], sc["ids"]):
            assert len(tok.encode(text)) == sc["tokens"] == len(ids)
            assert ids.count(tok.mask_token_id) == 1
    with pytest.raises(ValueError):
        parse_scenarios("1by16")


def test_cache_reuses_and_reports_missing(tmp_path, monkeypatch):
    from benchmarks.latency_harness import cache as cache_mod

    root = tmp_path / "tiny"
    (root / "checkpoint").mkdir(parents=True)
    (root / "checkpoint" / ".complete").write_text("{}")
    (root / "fp32").mkdir()
    (root / "fp32" / cache_mod.MANIFEST).write_text("{}")
    c = cache_mod.Cache(tmp_path, "tiny", log=lambda m: None)
    calls = []

    class Proc:
        returncode, stderr = cache_mod.NOT_IMPLEMENTED_EXIT, "NotImplementedError: int8 is not implemented yet\n"

    monkeypatch.setattr(c, "_run", lambda *a, **k: calls.append(a) or Proc())
    assert c.checkpoint() == root / "checkpoint" and c.export("fp32") == root / "fp32" and not calls
    assert c.export("int8") is None and c.export("int8") is None and len(calls) == 1
    assert c.notes["int8"].startswith("export not implemented: NotImplementedError")


def test_gpu_systems_skip_cleanly_without_a_gpu_provider():
    import onnxruntime as ort

    from benchmarks.latency_harness.run import precheck

    assert "--provider cuda" in precheck("hf-cuda-fp16", "cpu")
    assert precheck("onnx-fp32", "cpu") is None and precheck("hf-fp32", "cuda") is None
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert "CUDAExecutionProvider" in precheck("onnx-fp16", "cuda")
        assert "CUDAExecutionProvider" in precheck("onnx-fp16-cudagraph", "cuda")
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        assert "TensorrtExecutionProvider" in precheck("onnx-fp16-trt", "cuda")
