"""The runtime without torch: a blocked-import subprocess, and the CLI's happy paths."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from xlm_onnx import FillMask

BLOCKER = textwrap.dedent(
    """
    import sys
    BLOCKED = ("torch", "transformers", "optimum", "xlm_onnx_export", "onnx")
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {name}")
    sys.meta_path.insert(0, Block())
    """
)


def test_fill_mask_runs_with_torch_and_transformers_blocked(fp32_dir):
    code = BLOCKER + textwrap.dedent(
        f"""
        import json
        from xlm_onnx import FillMask
        fm = FillMask.from_pretrained({str(fp32_dir)!r})
        out = fm(["Alle Menschen sind <special1> und gleich.", "<special1> les <special1> humains"], top_k=3)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(json.dumps({{"out": out, "leaked": leaked}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["leaked"] == []
    fm = FillMask.from_pretrained(fp32_dir)
    expected = fm(["Alle Menschen sind <special1> und gleich.", "<special1> les <special1> humains"], top_k=3)
    assert result["out"] == json.loads(json.dumps(expected))


def _cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "xlm_onnx", *args], capture_output=True, text=True, input=stdin)


def test_cli_json_matches_api(fp32_dir):
    text = "Alle Menschen sind <mask> und gleich."
    proc = _cli("fill-mask", "--model", str(fp32_dir), "--json", "--top-k", "3", text)
    assert proc.returncode == 0, proc.stderr
    expected = FillMask.from_pretrained(fp32_dir)(text, top_k=3)
    assert json.loads(proc.stdout) == {"line": 1, "text": text, "result": json.loads(json.dumps(expected))}


def test_cli_reads_stdin_lines(fp32_dir):
    lines = ["Alle Menschen sind <special1> und gleich.", "", "Tous les <special1> humains."]
    proc = _cli("fill-mask", "--model", str(fp32_dir), "--json", "--on-error", "skip", "-",
                stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    fm = FillMask.from_pretrained(fp32_dir)
    first, third = json.loads(json.dumps(fm([lines[0], lines[2]])))
    assert rows == [{"line": 1, "text": lines[0], "result": first},
                    {"line": 2, "text": "", "error": "line 2 is blank"},
                    {"line": 3, "text": lines[2], "result": third}]  # the blank line is answered, not dropped


def test_cli_human_output_and_info(fp32_dir):
    proc = _cli("fill-mask", "--model", str(fp32_dir), "Alle Menschen sind <special1> und gleich.")
    assert proc.returncode == 0 and proc.stdout.startswith("Alle Menschen sind <special1> und gleich.\n")
    from xlm_onnx.tasks.fill_mask import format_scores

    props = FillMask.from_pretrained(fp32_dir)("Alle Menschen sind <special1> und gleich.")
    scores = format_scores([p["score"] for p in props])
    width = max(map(len, scores))
    assert proc.stdout.splitlines()[1:] == [f"  {s:<{width}}  {p['token_str']:<16} {p['sequence']}"
                                            for s, p in zip(scores, props)]
    info = _cli("info", str(fp32_dir))
    assert info.returncode == 0 and json.loads(info.stdout)["format_version"] == 2


def test_cli_without_model_uses_the_embedded_demo_model():
    import xlm_onnx

    proc = _cli("fill-mask", "--json", "Toute personne a droit à la <special1>.")
    expected = FillMask.from_pretrained(xlm_onnx.default_model_dir())("Toute personne a droit à la <special1>.")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == json.loads(json.dumps(expected))
