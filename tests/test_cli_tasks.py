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
    monkeypatch.setattr(sys, "stdin", io.StringIO(TEXTS[2] + "\n\n"))
    assert main(["embed", *TEXTS[:2], "-", "--model", str(fp32_dir), "--json", "--normalize"]) == 0
    records = _json_lines(capsys)[-3:]
    assert [r["text"] for r in records] == TEXTS
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
    assert set(_json_lines(capsys)[0]) == {"text", "score"}


def test_errors_are_one_line_exit_2(fp32_dir, v1_dir, capsys):
    assert main(["score", "--model", str(fp32_dir)]) == 2
    assert capsys.readouterr().err == "xlm-onnx: error: no input: give TEXT arguments, '-' for stdin, or --input FILE\n"
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
