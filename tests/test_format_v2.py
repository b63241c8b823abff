"""Format 2: one graph, three heads; a version-2 reader still answers fill-mask on version 1."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import onnx
import pytest

from parity import assert_same, probe_inputs
from xlm_onnx import FillMask, Model, ModelFormatError, Scorer, check_model
from xlm_onnx import format as fmt
from xlm_onnx.golden import GATES
from xlm_onnx.batching import Batch, pad, plan
from xlm_onnx_export.head import HEAD_NODE_COUNT
from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS


def test_manifest_lists_heads_and_graph_has_them(fp32_dir, fp16_dir, int8_dir):
    for model_dir in (fp32_dir, fp16_dir, int8_dir):
        manifest = fmt.read_manifest(model_dir)
        assert (manifest.format_version, manifest.heads, manifest.outputs) == (2, fmt.HEADS, fmt.OUTPUT_NAMES)
        graph = onnx.load(model_dir / fmt.MODEL_FILE, load_external_data=False).graph
        assert [o.name for o in graph.output] == list(fmt.OUTPUT_NAMES)
        assert [n.op_type for n in graph.node].count("LogSoftmax") == 1  # one label branch, one logits node
        # every head was gated, with today's thresholds (the figures themselves: test_check.py)
        assert manifest.validation["gate"] == dataclasses.asdict(GATES[manifest.precision])
        assert None not in (manifest.validation["min_embedding_cosine"], manifest.validation["max_abs_label_log_prob_delta"])
    assert HEAD_NODE_COUNT == {"fp32": 12, "fp16": 14, "int8": 13}


def test_v1_directory_answers_fill_mask_as_before(v1_dir, fp32_dir):
    manifest = fmt.read_manifest(v1_dir)
    assert (manifest.format_version, manifest.heads) == (1, fmt.V1_HEADS)
    old, new = FillMask.from_pretrained(v1_dir), FillMask.from_pretrained(fp32_dir)
    probes = probe_inputs(SAMPLE_TEXTS[:20], per_text=2)
    for text, got in zip(probes, old(probes, top_k=4, targets=None)):
        assert_same(got, new(text, top_k=4), tol=1e-6, where=text)
    assert check_model(v1_dir).passed  # golden version 1: the v2 figures are absent, not failed
    assert check_model(v1_dir).min_embedding_cosine is None


def test_v1_directory_refuses_scoring_clearly(v1_dir):
    with pytest.raises(ModelFormatError, match=r"format_version 1.*re-export"):
        Scorer.from_pretrained(v1_dir)


def test_v2_manifest_without_heads_is_refused(fp32_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(fp32_dir, copy)
    data = json.loads((copy / fmt.MANIFEST_FILE).read_text())
    del data["heads"]
    (copy / fmt.MANIFEST_FILE).write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match="missing field heads"):
        fmt.read_manifest(copy)
    (copy / fmt.MANIFEST_FILE).write_text(json.dumps({**data, "heads": ["fill_mask", "telepathy"]}))
    with pytest.raises(ModelFormatError, match="unknown head"):
        fmt.read_manifest(copy)


def test_label_count_must_match_masks_or_be_empty(fp32_dir):
    model = Model.load(fp32_dir)
    batch = Batch(*pad([[0, 5, 7, 5, 1]], pad_id=2))
    (lp,) = model.run([fmt.LABEL_LOG_PROBS], batch)
    assert lp.shape == (0,)
    (lp,) = model.run([fmt.LABEL_LOG_PROBS], batch, label_ids=np.array([7, 9]))
    assert lp.shape == (2,) and (lp < 0).all()


def test_batching_plan_respects_budget_and_order():
    lengths = [5, 3, 9, 3, 7, 2, 9]
    groups = plan(lengths, max_rows=3, max_tokens=16)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert [i for g in groups for i in g] == sorted(range(len(lengths)), key=lambda i: lengths[i])
    for group in groups:
        assert len(group) <= 3 and (len(group) == 1 or len(group) * max(lengths[i] for i in group) <= 16)
    assert plan([40], max_tokens=16) == [[0]]  # a row over the budget still runs, alone
    ids, mask = pad([[1, 2, 3], [4]], pad_id=9)
    assert ids.tolist() == [[1, 2, 3], [4, 9, 9]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="max_tokens"):
        plan([1], max_tokens=0)
