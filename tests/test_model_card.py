"""``MODEL_CARD.md`` of an export: written from the manifest, outside its checksums, honest about the licence."""

from __future__ import annotations

import dataclasses
import json

import pytest

from xlm_onnx import Model
from xlm_onnx import format as fmt

pytest.importorskip("torch")
from xlm_onnx_export.model_card import (MODEL_CARD_FILE, XLM100_SHAPE, render_model_card,  # noqa: E402
                                        source_name)


def test_export_writes_a_card_from_its_manifest(int8_dir, tiny_checkpoint):
    card = (int8_dir / MODEL_CARD_FILE).read_text(encoding="utf-8")
    manifest = fmt.read_manifest(int8_dir)
    golden = json.loads((int8_dir / fmt.GOLDEN_FILE).read_text(encoding="utf-8"))
    assert card.startswith(f"# {int8_dir.name}\n")  # the published name, not the temporary one
    assert f"Checkpoint: `{tiny_checkpoint.name}`" in card and manifest.source["config_sha256"] in card
    assert "Precision: **int8**" in card and "weight bits: `7`" in card and "every CPU class" in card
    val, gate = manifest.validation, manifest.validation["gate"]
    assert f"| top-1 agreement with torch fp32 | {val['top1_agreement']:.1%} | >= {gate['min_top1']:.1%} |" in card
    assert f"| {val['max_abs_score_delta']:.2g} | <= {gate['max_abs_score']:.2g} |" in card
    assert f"class **{golden['made_on']['isa_class']}**" in card
    assert "**Not stated**" in card  # the tiny checkpoint declares no licence and is not XLM-100-shaped
    assert MODEL_CARD_FILE not in manifest.files
    Model.load(int8_dir)  # a card beside the checked files does not disturb the checks


def test_fp32_card_says_fp32(fp32_dir):
    card = (fp32_dir / MODEL_CARD_FILE).read_text(encoding="utf-8")
    assert "Precision: **fp32**" in card and "int8 weight" not in card


def _manifest(int8_dir, **config):
    manifest = fmt.read_manifest(int8_dir)
    return dataclasses.replace(manifest, source={**manifest.source, "config": {**manifest.source["config"], **config}})


def test_xlm100_shaped_weights_are_cc_by_nc(int8_dir):
    card = render_model_card(_manifest(int8_dir, **XLM100_SHAPE), int8_dir, None, name="xlm100-int8")
    assert "**CC-BY-NC-4.0** (non-commercial)" in card and "FacebookAI/xlm-mlm-100-1280" in card


def test_the_checkpoints_declared_licence_wins(int8_dir, tmp_path):
    (tmp_path / "README.md").write_text("---\nlanguage: multilingual\nlicense: apache-2.0\n---\n# My XLM\n")
    card = render_model_card(_manifest(int8_dir, **XLM100_SHAPE), int8_dir, tmp_path)
    assert "**APACHE-2.0**, as the source checkpoint's `README.md` declares" in card and "CC-BY-NC" not in card


def test_source_name_of_a_hugging_face_cache_snapshot(tmp_path):
    snapshot = tmp_path / "hub" / "models--FacebookAI--xlm-mlm-100-1280" / "snapshots" / ("ab12" * 10)
    snapshot.mkdir(parents=True)
    assert source_name(snapshot) == "FacebookAI/xlm-mlm-100-1280 (revision ab12ab12ab12)"
    assert source_name(tmp_path / "ckpt") == "ckpt"  # a plain directory: its name, never the machine's path
