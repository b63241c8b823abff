"""Exporter behaviour: directory format, manifest, fusion counts, safety, atomic writes."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys

import onnx
import pytest

from xlm_onnx import format as fmt
from xlm_onnx.golden import GATES
from xlm_onnx_export import CheckpointError, Exporter
from xlm_onnx_export.model_card import MODEL_CARD_FILE
from xlm_onnx_export.optimize import expected_counts


def test_directory_layout_and_manifest(fp32_dir, tiny_checkpoint):
    names = {p.name for p in fp32_dir.iterdir()}
    assert {fmt.MODEL_FILE, fmt.MODEL_DATA_FILE, fmt.MANIFEST_FILE, fmt.VOCAB_FILE, fmt.MERGES_FILE} <= names
    manifest = fmt.read_manifest(fp32_dir)
    assert manifest.format_version == fmt.FORMAT_VERSION
    assert manifest.inputs == (fmt.INPUT_IDS, fmt.ATTENTION_MASK, fmt.TOP_K, fmt.TARGET_IDS, fmt.LABEL_IDS)
    assert manifest.heads == fmt.HEADS
    assert manifest.outputs == fmt.OUTPUT_NAMES
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert manifest.source["config"] == config and manifest.vocab_size == config["vocab_size"]
    assert manifest.mask_token_id == 5 and manifest.pad_token_id == 2 and manifest.max_positions == 512
    assert manifest.validation["gate"] == dataclasses.asdict(GATES["fp32"])  # gated with today's thresholds
    assert set(manifest.files) == {n for n in names if n not in (fmt.MANIFEST_FILE, MODEL_CARD_FILE)}
    fmt.verify_files(fp32_dir, manifest)  # sizes and checksums hold
    props = {p.key: p.value for p in onnx.load(fp32_dir / fmt.MODEL_FILE, load_external_data=False).metadata_props}
    assert props == manifest.metadata_props()
    assert set(manifest.versions) >= {"onnx", "onnxruntime", "torch", "transformers"}


def test_every_layer_fused(fp32_dir, fp32_unfused_dir):
    manifest = fmt.read_manifest(fp32_dir)
    for name, count in expected_counts(2).items():
        assert manifest.fusion[name] == count
    graph = onnx.load(fp32_dir / fmt.MODEL_FILE, load_external_data=False).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("Attention") == 2 and ops.count("SkipLayerNormalization") == 4
    assert ops.count("Softmax") == 1  # the head's; attention softmaxes live inside Attention
    assert fmt.read_manifest(fp32_unfused_dir).fusion == {}
    assert "Attention" not in [n.op_type for n in onnx.load(fp32_unfused_dir / fmt.MODEL_FILE,
                                                              load_external_data=False).graph.node]


@pytest.mark.parametrize("which", ["fp32_dir", "fp16_dir", "int8_dir"])
def test_tied_embedding_stored_once(request, which):
    """One initializer holds the vocab x dim table, whatever its shape or type: a transposed (or
    reshaped, or cast) copy for the head would double the largest tensor at full size."""
    model_dir = request.getfixturevalue(which)
    manifest = fmt.read_manifest(model_dir)
    graph = onnx.load(model_dir / fmt.MODEL_FILE, load_external_data=False).graph
    table = manifest.vocab_size * 64
    big = [(i.name, tuple(i.dims)) for i in graph.initializer if math.prod(i.dims) == table]
    assert len(big) == 1, big


def test_lang_model_has_langs_input(lang_dir):
    manifest = fmt.read_manifest(lang_dir)
    assert fmt.LANGS in manifest.inputs and manifest.lang2id == {"en": 0, "fr": 1, "de": 2}


def test_existing_output_refused_and_untouched(tiny_checkpoint, fp32_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        Exporter(tiny_checkpoint, out, progress=False).run()
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_non_xlm_and_missing_weights_refused(tiny_checkpoint, tmp_path):
    bert = tmp_path / "bert"
    shutil.copytree(tiny_checkpoint, bert)
    config = json.loads((bert / "config.json").read_text())
    (bert / "config.json").write_text(json.dumps(dict(config, model_type="bert")))
    with pytest.raises(CheckpointError, match="model_type is 'bert'"):
        Exporter(bert, tmp_path / "o1", progress=False).run()
    empty = tmp_path / "noweights"
    shutil.copytree(tiny_checkpoint, empty)
    (empty / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights"):
        Exporter(empty, tmp_path / "o2", progress=False).run()
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_pickle_payload_never_executed(tiny_checkpoint, tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil"
    shutil.copytree(tiny_checkpoint, evil)
    (evil / "model.safetensors").unlink()
    with open(evil / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"x": Payload()}, handle)
    with pytest.raises(CheckpointError, match="refused: loading this pickle file could run code"):
        Exporter(evil, tmp_path / "out", progress=False).run()
    assert not marker.exists() and not (tmp_path / "out").exists()
    proc = _cli("export", str(evil), str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"xlm-onnx: error: {evil / 'pytorch_model.bin'}: refused: loading this pickle "
                                  "file could run code"), proc.stderr
    assert "model.safetensors" in proc.stderr and "weights_only" not in proc.stderr  # never torch's advice
    assert not marker.exists() and not (tmp_path / "out").exists()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "xlm_onnx", *args], capture_output=True, text=True)


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_vocab_size_differs_from_weights_one_line(tiny_checkpoint, tmp_path, weights):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_checkpoint, bad)
    config = json.loads((bad / "config.json").read_text())
    rows = config["vocab_size"]
    (bad / "config.json").write_text(json.dumps(dict(config, vocab_size=rows + 7)))
    if weights == "pytorch_model.bin":  # a plain tensor pickle: safe, but its shapes are known only once loaded
        import torch
        from safetensors.torch import load_file

        torch.save(load_file(bad / "model.safetensors"), bad / weights)
        (bad / "model.safetensors").unlink()
        expected = (f"{bad}: the weights do not match config.json: transformer.embeddings.weight is [{rows}, 64] "
                    f"in pytorch_model.bin but [{rows + 7}, 64] by config.json (vocab_size {rows + 7})")
    else:
        expected = (f"{bad}: config.json says vocab_size {rows + 7}, but the weights' transformer.embeddings.weight "
                    f"has {rows} rows; the config and the weights belong to different checkpoints (or the "
                    "vocabulary was resized without saving the config)")
    proc = _cli("export", str(bad), str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr == f"xlm-onnx: error: {expected}\n"  # no load-report table
    assert not (tmp_path / "out").exists()


BLOCK_AND_RUN = """
import runpy, sys
BLOCKED = tuple(sys.argv[1].split(","))
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
sys.argv = ["xlm-onnx", *sys.argv[2:]]
runpy.run_module("xlm_onnx", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("blocked", ["torch", "transformers,torch"])
def test_export_without_the_extra_one_line(blocked, tiny_checkpoint, tmp_path):
    proc = subprocess.run([sys.executable, "-c", BLOCK_AND_RUN, blocked, "export", str(tiny_checkpoint),
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("xlm-onnx: error: this command needs the [export] extra (")
    assert not (tmp_path / "out").exists()


def test_failed_validation_leaves_nothing(tiny_checkpoint, tmp_path, monkeypatch):
    from xlm_onnx_export import validate

    monkeypatch.setitem(validate.GATES, "fp32", validate.Gate(max_abs_score=-1.0, min_top1=0, min_top5_overlap=0))
    from xlm_onnx_export import ExportError

    with pytest.raises(ExportError, match="max \\|delta score\\|"):
        Exporter(tiny_checkpoint, tmp_path / "out", progress=False).run()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_export_leaves_nothing(tiny_checkpoint, tmp_path, monkeypatch):
    import xlm_onnx_export.head as head_module

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(head_module, "append_heads", interrupt)
    with pytest.raises(KeyboardInterrupt):
        Exporter(tiny_checkpoint, tmp_path / "out", progress=False).run()
    assert list(tmp_path.iterdir()) == []  # neither out/ nor the .out.partial-* temp dir
