"""The golden-output self-check (``xlm-onnx check``): written at export, re-run anywhere."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from xlm_onnx import format as fmt
from xlm_onnx.golden import Golden, check_model, run_golden
from xlm_onnx.cli import main
from xlm_onnx.errors import ModelFormatError
from xlm_onnx.session import create_session


def _republish(model_dir, golden: Golden | None):
    """Rewrites (or removes) golden.json and the manifest's record of it, as an export would."""
    manifest = fmt.read_manifest(model_dir)
    files = dict(manifest.files)
    if golden is None:
        (model_dir / fmt.GOLDEN_FILE).unlink()
        files.pop(fmt.GOLDEN_FILE)
    else:
        golden.write(model_dir)
        files.update(fmt.describe_files(model_dir, [fmt.GOLDEN_FILE]))
    fmt.write_manifest(model_dir, dataclasses.replace(manifest, files=files))


@pytest.mark.parametrize("which", ["fp32_dir", "fp16_dir", "int8_dir", "lang_dir"])
def test_check_reproduces_the_export_validation(request, which):
    model_dir = request.getfixturevalue(which)
    manifest = fmt.read_manifest(model_dir)
    assert fmt.GOLDEN_FILE in manifest.files  # checksummed like every other file
    report = check_model(model_dir)
    assert report.passed and report.tokenizer_mismatches == 0
    stored = manifest.validation
    assert (report.n_masks, report.n_sentences) == (stored["n_masks"], stored["n_sentences"]) == (24, 12)
    # Same machine, same probes, same code: the figures the exporter stored come back.
    assert abs(report.max_abs_score_delta - stored["max_abs_score_delta"]) <= 1e-6
    assert report.top1_agreement == stored["top1_agreement"] and report.top5_overlap == stored["top5_overlap"]


def test_golden_reference_is_torch_fp32(fp32_dir, tiny_checkpoint):
    """The stored answers are the HF model's own probabilities at the masked positions."""
    import torch
    from transformers import XLMWithLMHeadModel

    golden = Golden.read(fp32_dir)
    model = XLMWithLMHeadModel.from_pretrained(tiny_checkpoint).eval()
    ids = torch.tensor(golden.input_ids)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.tensor(golden.attention_mask)).logits
    rows, cols = np.nonzero(ids.numpy() == fmt.read_manifest(fp32_dir).mask_token_id)
    probs = torch.softmax(logits[rows, cols], -1).numpy()
    assert np.array_equal(np.argsort(-probs, -1, kind="stable")[:, :1], np.array(golden.top_ids)[:, :1])
    np.testing.assert_allclose(np.take_along_axis(probs, np.array(golden.top_ids), -1), golden.top_scores, atol=1e-6)


def test_wrong_answers_fail_the_gate(int8_dir):
    golden = Golden.read(int8_dir)
    session = create_session(int8_dir / fmt.MODEL_FILE)
    shifted = [[s * 0.5 for s in row] for row in golden.top_scores]  # half the reference probability
    report = run_golden(session, dataclasses.replace(golden, top_scores=shifted), "int8")
    assert not report.passed and report.failures()[0].startswith("max |delta score|")
    rotated = [row[1:] + row[:1] for row in golden.top_ids]  # reference top-1 is now the 2nd best
    report = run_golden(session, dataclasses.replace(golden, top_ids=rotated), "int8")
    assert report.top1_agreement < 0.5 and any("top-1 agreement" in f for f in report.failures())


def test_a_different_tokenizer_fails(int8_dir):
    from xlm_onnx.tokenization import XLMTokenizer

    golden = Golden.read(int8_dir)
    tampered = dataclasses.replace(golden, token_ids=[ids[:-2] + ids[-1:] for ids in golden.token_ids])
    report = run_golden(create_session(int8_dir / fmt.MODEL_FILE), tampered, "int8", XLMTokenizer.from_pretrained(int8_dir))
    assert report.tokenizer_mismatches == 12 and "12 probe(s) tokenize differently" in report.failures()[-1]


def test_cli_check_exit_codes(int8_dir, tmp_path, capsys):
    assert main(["check", str(int8_dir)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "passed" and "24 masks in 12 probes" in out

    failing = tmp_path / "failing"
    shutil.copytree(int8_dir, failing)
    golden = Golden.read(failing)
    _republish(failing, dataclasses.replace(golden, top_scores=[[0.0] * len(r) for r in golden.top_scores]))
    assert main(["check", str(failing), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False and report["cpu"]["isa_class"]

    older = tmp_path / "older"
    shutil.copytree(int8_dir, older)
    _republish(older, None)
    with pytest.raises(ModelFormatError, match="predates the self-check"):
        check_model(older)
    assert main(["check", str(older)]) == 2
    assert "golden.json: missing; this directory predates the self-check" in capsys.readouterr().err


def test_modified_golden_file_is_refused(int8_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(int8_dir, copy)
    path = copy / fmt.GOLDEN_FILE
    path.write_text(path.read_text().replace('"golden_version": 2', '"golden_version": 2 '))
    with pytest.raises(ModelFormatError, match="golden.json: size"):
        check_model(copy)
