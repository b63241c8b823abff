"""Exporter promises the README makes, each with a successful (or refused) tiny export: other
checkpoint layouts, --no-optimize, refusals, the fusion check, language models in fp16/int8
(--per-tensor, --tied-embedding, --opset and --force: tests/test_int8_options.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from parity import FP32_SCORE_TOL, assert_same, probe_inputs
from test_precision import TINY_THRESHOLDS
from xlm_onnx import FillMask, check_model
from xlm_onnx import format as fmt
from xlm_onnx_export import CheckpointError, ExportError, Exporter
from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS

PROBES = probe_inputs(SAMPLE_TEXTS[:12], per_text=2)
#: fp16 graph, padded batch vs one at a time: measured max |delta score| 9.2e-7.
FP16_BATCH_TOL = 5e-6


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "xlm_onnx", *args], capture_output=True, text=True)


def _same_answers(model_dir, reference_dir, tol=FP32_SCORE_TOL):
    """Same weights, same graph family: the answers of ``reference_dir`` to ``tol``."""
    ours, ref = FillMask.from_pretrained(model_dir), FillMask.from_pretrained(reference_dir)
    for text in PROBES:
        assert_same(ours(text, top_k=5), ref(text, top_k=5), tol=tol, where=text)


def _with_weights(tiny_checkpoint, tmp_path, layout: str):
    """``tiny_checkpoint`` re-saved as ``pytorch_model.bin`` (a plain state-dict pickle, what
    older HF releases wrote) or sharded safetensors with ``model.safetensors.index.json``."""
    from safetensors.torch import load_file, save_file

    out = tmp_path / layout
    shutil.copytree(tiny_checkpoint, out)
    weights = load_file(out / "model.safetensors")
    (out / "model.safetensors").unlink()
    if layout == "bin":
        torch.save(weights, out / "pytorch_model.bin")
        return out
    names = sorted(weights)
    shards = {f"model-0000{n + 1}-of-00003.safetensors": names[n::3] for n in range(3)}
    for shard, keys in shards.items():
        save_file({k: weights[k] for k in keys}, out / shard, metadata={"format": "pt"})
    index = {"metadata": {"total_size": sum(w.numel() * w.element_size() for w in weights.values())},
             "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    return out


def test_cli_no_optimize_from_pytorch_model_bin(tiny_checkpoint, fp32_unfused_dir, tmp_path):
    checkpoint = _with_weights(tiny_checkpoint, tmp_path, "bin")
    proc = _cli("export", str(checkpoint), str(tmp_path / "out"), "--no-optimize", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("fused none")
    manifest = fmt.read_manifest(tmp_path / "out")
    assert manifest.fusion == {} and manifest.source["weights_file"] == "pytorch_model.bin"
    ops = {n.op_type for n in onnx.load(tmp_path / "out" / fmt.MODEL_FILE, load_external_data=False).graph.node}
    assert not ops & {"Attention", "SkipLayerNormalization", "FastGelu", "BiasGelu"}
    _same_answers(tmp_path / "out", fp32_unfused_dir)


def test_sharded_safetensors_checkpoint(tiny_checkpoint, fp32_unfused_dir, tmp_path):
    checkpoint = _with_weights(tiny_checkpoint, tmp_path, "sharded")
    assert len(list(checkpoint.glob("model-*-of-00003.safetensors"))) == 3
    Exporter(checkpoint, tmp_path / "out", optimize=False, progress=False).run()  # unfused: the loader is the point
    assert fmt.read_manifest(tmp_path / "out").source["weights_file"] == "model.safetensors.index.json"
    _same_answers(tmp_path / "out", fp32_unfused_dir)


@pytest.mark.parametrize("key,message", [
    ("asm", "adaptive softmax (asm=true) heads are not supported"),
    ("causal", "causal XLM models are not masked language models"),
])
def test_asm_and_causal_checkpoints_refused(tiny_checkpoint, tmp_path, key, message):
    bad = tmp_path / key
    shutil.copytree(tiny_checkpoint, bad)
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(dict(config, **{key: True})))
    with pytest.raises(CheckpointError) as info:
        Exporter(bad, tmp_path / "out", progress=False).run()
    assert str(info.value) == f"{bad / 'config.json'}: {message}"
    proc = _cli("export", str(bad), str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr == f"xlm-onnx: error: {bad / 'config.json'}: {message}\n"
    assert not (tmp_path / "out").exists()


def test_export_fails_if_a_layer_did_not_fuse(tiny_checkpoint, tmp_path, monkeypatch):
    """Attention fusion really switched off in ORT's optimizer: the count check must refuse."""
    from onnxruntime.transformers import fusion_options

    class NoAttention(fusion_options.FusionOptions):
        def __init__(self, model_type):
            super().__init__(model_type)
            self.enable_attention = False

    monkeypatch.setattr(fusion_options, "FusionOptions", NoAttention)
    with pytest.raises(ExportError, match=r"^fusion incomplete: Attention 0/2 \(expected every one of 2 layers fused\)$"):
        Exporter(tiny_checkpoint, tmp_path / "out", progress=False).run()
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def lang_lowp_dirs(tmp_path_factory, tiny_lang_checkpoint):
    out = tmp_path_factory.mktemp("exports")
    for precision in ("fp16", "int8"):
        Exporter(tiny_lang_checkpoint, out / precision, precision=precision, progress=False).run()
    return {p: out / p for p in ("fp16", "int8")}


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_lang_model_in_lower_precision_matches_torch(lang_lowp_dirs, tiny_lang_checkpoint, precision):
    from transformers import XLMWithLMHeadModel

    model = XLMWithLMHeadModel.from_pretrained(tiny_lang_checkpoint).eval()
    fm = FillMask.from_pretrained(lang_lowp_dirs[precision])
    assert fmt.LANGS in fm.manifest.inputs
    want = TINY_THRESHOLDS[precision]
    top1, deltas, firsts = [], [], {}
    for lang, lang_id in {"en": 0, "fr": 1, "de": 2}.items():
        for text in [p for p in PROBES if p.count("<special1>") == 1]:
            ids = fm.tokenizer.encode(text)
            with torch.no_grad():
                logits = model(torch.tensor([ids]), langs=torch.full((1, len(ids)), lang_id)).logits[0]
            probs = torch.softmax(logits[ids.index(fm.tokenizer.mask_token_id)], -1).numpy()
            got = fm(text, lang=lang, top_k=5)
            top1.append(got[0]["token"] == int(np.argmax(probs)))
            deltas += [abs(p["score"] - probs[p["token"]]) for p in got]
            firsts.setdefault(text, set()).add(round(got[0]["score"], 4))
    print(f"lang {precision}: top-1 {np.mean(top1):.3f}, max |delta| {max(deltas):.2e}")
    assert np.mean(top1) >= want["top1"] and max(deltas) <= want["max_delta"]
    assert any(len(s) > 1 for s in firsts.values()), "the langs input has no effect"
    assert check_model(lang_lowp_dirs[precision]).passed


def test_fp16_padded_batch_equals_single(fp16_dir):
    fm = FillMask.from_pretrained(fp16_dir, batch_size=6)
    worst = 0.0
    for text, got in zip(PROBES, fm(PROBES, top_k=5)):
        single = fm(text, top_k=5)
        assert_same(got, single, tol=FP16_BATCH_TOL, where=text)
        for a, b in (zip(got, single) if isinstance(got[0], list) else [(got, single)]):
            worst = max([worst] + [abs(x["score"] - y["score"]) for x, y in zip(a, b)])
    print(f"fp16 batched vs single: max |delta score| {worst:.2e}")
