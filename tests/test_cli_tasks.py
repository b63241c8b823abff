"""``xlm-onnx embed`` / ``xlm-onnx score``: answers equal the Python API's, in input order."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from test_runtime_cli import BLOCKER
from xlm_onnx import Embedder, ModelFormatError, Scorer
from xlm_onnx.cli import main

TEXTS = ["Alle Menschen sind frei und gleich.", "Tous les êtres humains naissent libres.", "x"]


def _json_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_embed_json_and_npy(fp32_dir, tmp_path, capsys, monkeypatch):
    expected = Embedder.from_pretrained(fp32_dir).embed(TEXTS, normalize=True)
    monkeypatch.setattr(sys, "stdin", io.StringIO(TEXTS[2] + "\n"))
    assert main(["embed", *TEXTS[:2], "-", "--model", str(fp32_dir), "--json", "--normalize"]) == 0
    records = _json_lines(capsys)[-3:]
    assert [r["text"] for r in records] == TEXTS and [r["line"] for r in records] == [1, 2, 3]
    np.testing.assert_allclose(np.array([r["embedding"] for r in records]), expected, rtol=1e-5, atol=1e-6)
    source = tmp_path / "in.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "e.npy"
    assert main(["embed", "--input", str(source), "--model", str(fp32_dir), "--npy", str(out), "--normalize"]) == 0
    saved = np.load(out)
    assert saved.dtype == np.float32 and saved.shape == (3, 64)
    np.testing.assert_allclose(saved, expected, rtol=1e-5, atol=1e-6)


def test_score_json_per_token(fp32_dir, capsys):
    expected = Scorer.from_pretrained(fp32_dir).score(TEXTS, metric="word_l2r", per_token=True)
    assert main(["score", *TEXTS, "--model", str(fp32_dir), "--json", "--per-token", "--metric", "word_l2r"]) == 0
    records = _json_lines(capsys)
    assert [r["text"] for r in records] == TEXTS
    for record, want in zip(records, expected):
        assert record["score"] == want.score and record["tokens"] == list(want.tokens)
        assert record["token_log_probs"] == list(want.token_log_probs)
    assert main(["score", TEXTS[0], "--model", str(fp32_dir), "--json"]) == 0
    assert set(_json_lines(capsys)[0]) == {"line", "text", "score"}


def test_errors_are_one_line_exit_2(fp32_dir, v1_dir, capsys):
    assert main(["score", "--model", str(fp32_dir)]) == 2
    assert capsys.readouterr().err == "xlm-onnx: error: nothing to do: give a TEXT, '-' for stdin, or --input FILE\n"
    with pytest.raises(ModelFormatError) as info:
        Embedder.from_pretrained(v1_dir)
    assert main(["embed", "a", "--model", str(v1_dir)]) == 2
    assert capsys.readouterr().err == f"xlm-onnx: error: {' '.join(str(info.value).split())}\n"
    for task in ("score", "embed"):
        assert main([task, "a", "--model", str(fp32_dir), "--lang", "fr"]) == 2
        assert capsys.readouterr().err == ("xlm-onnx: error: lang='fr' given, but this model has no language "
                                           "embeddings (use lang=None)\n")


def test_tasks_run_with_torch_blocked(fp32_dir):
    code = BLOCKER + textwrap.dedent(
        f"""
        from xlm_onnx import Embedder, Model, Scorer
        model = Model.load({str(fp32_dir)!r})
        Embedder(model).embed(["a b c", "d"]); Scorer(model).score(["a b c"], metric="word_l2r")
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_embed_and_score_share_fill_masks_line_policy(fp32_dir, tmp_path, capsys):
    """Blank lines and lines over the limit are errors naming the line, as in fill-mask; with
    --on-error skip each becomes an error record and ids of JSON Lines input are kept."""
    source = tmp_path / "in.jsonl"
    long_text = " ".join(["x"] * 600)  # over the tiny model's 512 positions
    source.write_text("\n".join(json.dumps(r) for r in [{"id": "a", "text": TEXTS[0]}, {"id": "b", "text": " "},
                                                        {"id": 7, "text": long_text}, {"text": TEXTS[1]}]) + "\n")
    assert main(["score", "--input", str(source), "--model", str(fp32_dir)]) == 2
    assert capsys.readouterr().err.strip() == (
        "xlm-onnx: error: line 2 is blank; stopped there, 1 line before it answered "
        "(--on-error skip answers the rest)")
    want = Scorer.from_pretrained(fp32_dir).score([TEXTS[0], TEXTS[1]])
    assert main(["score", "--input", str(source), "--model", str(fp32_dir), "--json", "--on-error", "skip"]) == 0
    records = _json_lines(capsys)
    assert [(r["line"], r.get("id")) for r in records] == [(1, "a"), (2, "b"), (3, 7), (4, None)]
    assert [r["score"] for r in (records[0], records[3])] == list(want)
    assert records[1]["error"] == "line 2 is blank"
    assert records[2]["error"].startswith("line 3 is 602 tokens long with specials; the model takes at most 512 "
                                          "(pass --truncation to cut it)")

    out = tmp_path / "e.npy"
    capsys.readouterr()
    assert main(["embed", "--input", str(source), "--model", str(fp32_dir), "--npy", str(out)]) == 2
    assert not out.exists() and not list(tmp_path.glob(".e.npy.*"))  # nothing half-written
    assert capsys.readouterr().err == (f"xlm-onnx: error: line 2 is blank; stopped there, nothing written to {out} "
                                       "(--on-error skip writes a row of NaN for it and goes on)\n")
    assert main(["embed", "--input", str(source), "--model", str(fp32_dir), "--npy", str(out),
                 "--on-error", "skip"]) == 0
    saved = np.load(out)
    np.testing.assert_allclose(saved[[0, 3]], Embedder.from_pretrained(fp32_dir).embed([TEXTS[0], TEXTS[1]]),
                               rtol=1e-6, atol=1e-6)
    assert np.isnan(saved[[1, 2]]).all()
