"""int8 export options: per-tensor scales and a floating-point tied embedding / LM head."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from parity import agreement_with_hf
from test_precision import TINY_THRESHOLDS
from xlm_onnx import FillMask
from xlm_onnx import format as fmt
from xlm_onnx_export.precision import ROW_SCALE
from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS

DIM = 64  # hidden size of the tiny checkpoint


def _export(tmp_path_factory, checkpoint, name, **options):
    from xlm_onnx_export import Exporter, Int8Options

    out = tmp_path_factory.mktemp("exports") / name
    Exporter(checkpoint, out, precision="int8", int8=Int8Options(**options), progress=False).run()
    return out


def _cli_export(checkpoint, out, *options):
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "export", str(checkpoint), str(out), "--precision", "int8",
                           "--quiet", *options], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {out} (int8) in ")
    return out


@pytest.fixture(scope="module")
def table_dirs(tmp_path_factory, tiny_checkpoint):
    """fp16 through the CLI's --tied-embedding, fp32 through the API."""
    fp16 = _cli_export(tiny_checkpoint, tmp_path_factory.mktemp("exports") / "int8-table-fp16", "--tied-embedding", "fp16")
    return {"fp16": fp16, "fp32": _export(tmp_path_factory, tiny_checkpoint, "int8-table-fp32", tied_embedding="fp32")}


def _graph(model_dir):
    return onnx.load(model_dir / fmt.MODEL_FILE, load_external_data=False).graph


def _score_deltas(model_dir, hf_pipeline):
    top1, deltas = agreement_with_hf(FillMask.from_pretrained(model_dir), hf_pipeline, SAMPLE_TEXTS)
    return top1, np.asarray(deltas)


@pytest.mark.parametrize("table", ["fp16", "fp32"])
def test_float_table_stored_once_with_fp32_head(table_dirs, table):
    graph = _graph(table_dirs[table])
    vocab = fmt.read_manifest(table_dirs[table]).vocab_size
    dtype = {"fp16": onnx.TensorProto.FLOAT16, "fp32": onnx.TensorProto.FLOAT}[table]
    tables = [(i.data_type, tuple(i.dims)) for i in graph.initializer if vocab in i.dims and DIM in i.dims]
    assert tables == [(dtype, (vocab, DIM))]  # no int8 copy beside it
    ops = [n.op_type for n in graph.node]
    assert "DynamicQuantizeMatMul" not in ops and ops.count("Gemm") == 1 and "MultiHeadAttention" in ops
    assert fmt.read_manifest(table_dirs[table]).quantization == {
        "weights": "int8 (signed, dynamic activations)", "per_channel": True, "tied_embedding": table,
        "weight_bits": 7, "activations": fmt.INT8_PER_ROW, "weight_max": fmt.INT8_SATURATION_SAFE_MAX}


def test_fp16_table_is_widened_once_at_session_start(table_dirs, tmp_path):
    """ORT folds the Cast of the fp16 initializer: the optimised graph holds the fp32 table and no Cast of it."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # constant folding is basic
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "optimized.data")
    ort.InferenceSession(str(table_dirs["fp16"] / fmt.MODEL_FILE), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(tmp_path / "optimized.onnx", load_external_data=False).graph
    vocab = fmt.read_manifest(table_dirs["fp16"]).vocab_size
    assert [i.data_type for i in graph.initializer if tuple(i.dims) == (vocab, DIM)] == [onnx.TensorProto.FLOAT]
    assert not [n for n in graph.node if n.op_type == "Cast" and n.input[0].endswith(".fp16")]


@pytest.mark.parametrize("table", ["fp16", "fp32"])
def test_float_table_is_closer_to_hf_than_int8_table(table_dirs, int8_dir, hf_pipeline, table):
    base_top1, base = _score_deltas(int8_dir, hf_pipeline)
    top1, deltas = _score_deltas(table_dirs[table], hf_pipeline)
    print(f"int8 table: top-1 {base_top1:.3f}, mean |delta| {base.mean():.2e}; "
          f"{table} table: top-1 {top1:.3f}, mean |delta| {deltas.mean():.2e}")
    assert top1 >= TINY_THRESHOLDS["int8"]["top1"] and deltas.max() <= TINY_THRESHOLDS["int8"]["max_delta"]
    assert top1 >= base_top1 and deltas.mean() < base.mean()


def _weight_scale_sizes(model_dir):
    """Element counts of the quantizer's weight scales (the int8 table's row scales excluded)."""
    graph = _graph(model_dir)
    return [int(np.prod(i.dims)) for i in graph.initializer if i.name.endswith("_scale") and i.name != ROW_SCALE]


def test_per_tensor_scales(tmp_path, tiny_checkpoint, int8_dir, hf_pipeline):
    """Through the CLI: --per-tensor, --opset 17, and --force replacing an existing directory."""
    out = tmp_path / "int8-per-tensor"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    _cli_export(tiny_checkpoint, out, "--per-tensor", "--opset", "17", "--force")
    assert not (out / "stale.txt").exists() and [p.name for p in tmp_path.iterdir()] == [out.name]
    assert {o.domain: o.version for o in onnx.load(out / fmt.MODEL_FILE, load_external_data=False).opset_import}[""] == 17
    assert _weight_scale_sizes(out) and set(_weight_scale_sizes(out)) == {1}
    assert max(_weight_scale_sizes(int8_dir)) > 1  # the default is per channel
    assert fmt.read_manifest(out).quantization["per_channel"] is False
    top1, deltas = _score_deltas(out, hf_pipeline)
    assert top1 >= TINY_THRESHOLDS["int8"]["top1"] and deltas.max() <= TINY_THRESHOLDS["int8"]["max_delta"]


def test_options_are_checked(tiny_checkpoint, tmp_path):
    from xlm_onnx_export import Exporter, Int8Options

    with pytest.raises(ValueError, match="tied_embedding must be one of"):
        Int8Options(tied_embedding="bf16")
    with pytest.raises(TypeError, match="per_channel must be a bool"):
        Int8Options(per_channel="no")
    with pytest.raises(ValueError, match="apply to precision='int8' only"):
        Exporter(tiny_checkpoint, tmp_path / "o", precision="fp32", int8=Int8Options())
    with pytest.raises(TypeError, match="int8 must be an Int8Options"):
        Exporter(tiny_checkpoint, tmp_path / "o", precision="int8", int8={"per_channel": False})


def test_manifest_without_quantization_field_still_reads(int8_dir, tmp_path):
    """Manifests written before the field existed (format_version 1) stay readable."""
    data = json.loads((int8_dir / fmt.MANIFEST_FILE).read_text())
    assert data.pop("quantization")["tied_embedding"] == "int8"
    (tmp_path / fmt.MANIFEST_FILE).write_text(json.dumps(data))
    assert fmt.read_manifest(tmp_path).quantization == {}


def test_benchmark_counts_the_widened_table(table_dirs, int8_dir):
    """The latency report's bandwidth floor reads the fp16 table at fp32 width (ORT widens it once)."""
    from benchmarks.latency_harness.systems import onnx_weight_bytes

    vocab = fmt.read_manifest(int8_dir).vocab_size
    fp16, fp32, q8 = (onnx_weight_bytes(d / fmt.MODEL_FILE) for d in (table_dirs["fp16"], table_dirs["fp32"], int8_dir))
    assert fp16 == fp32
    assert abs((fp32 - q8) - vocab * DIM * 3) <= vocab * 4 + 64  # 4 vs 1 byte per entry, less row scales and axes


def test_int8_table_dequantizes_to_the_checkpoint(int8_dir, tiny_checkpoint):
    """Row v of the stored table times row_scale[v] is the checkpoint's row v to half a step, and
    the step is that row's max |w| / 64 (7-bit): a wrong or misaligned row scale cannot hide in
    the loose int8 accuracy thresholds."""
    from onnx import numpy_helper
    from safetensors.numpy import load_file

    from xlm_onnx_export.precision import TABLE_Q8

    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(int8_dir / fmt.MODEL_FILE).graph.initializer
             if i.name in (TABLE_Q8, ROW_SCALE)}
    weights = load_file(tiny_checkpoint / "model.safetensors")["transformer.embeddings.weight"]
    q8, scale = inits[TABLE_Q8].T.astype(np.float64), inits[ROW_SCALE].astype(np.float64)
    np.testing.assert_allclose(scale, np.abs(weights).max(axis=1) / fmt.INT8_SATURATION_SAFE_MAX, rtol=1e-6)
    error = np.abs(q8 * scale[:, None] - weights)
    assert (error <= scale[:, None] * 0.5 * (1 + 1e-5)).all(), float((error / scale[:, None]).max())
