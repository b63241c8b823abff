"""Runtime promises from the README: manifest errors, verify=False, exit codes (internal error,
Ctrl-C), XLM_ONNX_DEBUG, long stdin, one-element lists, the messages the errors table quotes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from waiting import read_line
from xlm_onnx import FillMask, Model, ModelFormatError
from xlm_onnx import format as fmt
from xlm_onnx.cli import main

MASKED = "Alle Menschen sind <special1> und gleich."


def _cli(*args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "xlm_onnx", *args], capture_output=True, text=True, input=stdin,
                          env=None if env is None else {**os.environ, **env}, timeout=300)


def _edit_manifest(copy, edit):
    path = copy / fmt.MANIFEST_FILE
    if callable(edit):
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    else:
        path.write_text(edit)


MANIFEST_CASES = [
    ("invalid JSON", '{"format_version": 2,', "not valid JSON (Expecting property name enclosed in double quotes: "
                                              "line 1 column 22 (char 21))"),
    ("missing field", lambda d: d.pop("precision"), "missing field(s) precision"),
    ("unknown precision", lambda d: d.update(precision="bf16"),
     f"unknown precision 'bf16'; expected one of {fmt.PRECISIONS}"),
    ("newer version", lambda d: d.update(format_version=99),
     "format_version 99 is not supported; this xlm-onnx reads version(s) 1, 2 (upgrade xlm-onnx, or re-export "
     "the model with this version)"),
]


@pytest.mark.parametrize("name,edit,message", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_manifest_errors(fp32_dir, tmp_path, name, edit, message):
    copy = tmp_path / "copy"
    shutil.copytree(fp32_dir, copy)
    _edit_manifest(copy, edit)
    expected = f"{copy / fmt.MANIFEST_FILE}: {message}"
    with pytest.raises(ModelFormatError) as info:
        FillMask.from_pretrained(copy)
    assert str(info.value) == expected
    proc = _cli("fill-mask", "--model", str(copy), MASKED)
    assert proc.returncode == 2 and proc.stderr == f"xlm-onnx: error: {expected}\n"


def test_graph_inputs_differ_from_manifest(fp32_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(fp32_dir, copy)
    _edit_manifest(copy, lambda d: d.update(inputs=[n for n in d["inputs"] if n != fmt.LABEL_IDS]))
    graph_inputs = fmt.read_manifest(fp32_dir).inputs
    with pytest.raises(ModelFormatError) as info:
        Model.load(copy)
    assert str(info.value) == (f"{copy / fmt.MODEL_FILE}: graph inputs {graph_inputs} differ from manifest "
                               f"{graph_inputs[:-1]}")


def test_verify_false_skips_checksums_not_sizes(fp32_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(fp32_dir, copy)
    vocab = copy / fmt.VOCAB_FILE  # same size, other bytes: only a checksum can tell
    vocab.write_bytes(vocab.read_bytes().replace(b'"<s>"', b'"<S>"', 1))
    with pytest.raises(ModelFormatError, match="vocab.json: SHA-256 differs"):
        Model.load(copy)
    loaded = FillMask.from_pretrained(copy, verify=False)
    assert loaded(MASKED) == FillMask.from_pretrained(fp32_dir)(MASKED)  # the <s> row is not in these answers
    with open(copy / fmt.MODEL_DATA_FILE, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelFormatError, match="model.onnx.data: size"):
        Model.load(copy, verify=False)


def test_internal_error_exit_1_and_debug_traceback(fp32_dir, monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError("boom\n  second line")

    monkeypatch.setattr(Model, "load", boom)
    assert main(["fill-mask", "--model", str(fp32_dir), MASKED]) == 1
    assert capsys.readouterr().err == "xlm-onnx: internal error (RuntimeError): boom second line\n"
    monkeypatch.setenv("XLM_ONNX_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["fill-mask", "--model", str(fp32_dir), MASKED])


def test_debug_shows_the_traceback_of_a_user_error(fp32_dir, tmp_path):
    proc = _cli("fill-mask", "--model", str(tmp_path / "missing"), MASKED)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = _cli("fill-mask", "--model", str(tmp_path / "missing"), MASKED, env={"XLM_ONNX_DEBUG": "1"})
    assert proc.returncode == 1 and proc.stderr.startswith("Traceback (most recent call last):")
    assert "ModelNotFoundError" in proc.stderr.splitlines()[-1]


def test_ctrl_c_exits_130_quietly(fp32_dir):
    proc = subprocess.Popen([sys.executable, "-m", "xlm_onnx", "fill-mask", "--model", str(fp32_dir), "--json",
                             "--batch-size", "1", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # a test run started in the background inherits SIGINT ignored; a user's shell does not
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        proc.stdin.write("".join(MASKED + "\n" for _ in range(8)))  # one chunk: answered while stdin stays open
        proc.stdin.flush()
        assert json.loads(read_line(proc.stdout, "the first record"))["line"] == 1  # running, waiting for more
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert proc.stderr.read() == "xlm-onnx: interrupted\n"
    finally:
        proc.kill()


def test_stdin_over_256_lines(fp32_dir):
    texts = [MASKED, "Tous les êtres <mask> naissent libres.", "<special1> les <special1> humains"]
    lines = [texts[n % 3] for n in range(300)]
    proc = _cli("fill-mask", "--model", str(fp32_dir), "--json", "--top-k", "2", "-", stdin="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    fm = FillMask.from_pretrained(fp32_dir)
    expected = [json.loads(json.dumps(fm(t, top_k=2))) for t in texts]
    assert [r["line"] for r in rows] == list(range(1, 301))
    assert [r["result"] for r in rows] == [expected[n % 3] for n in range(300)]


def test_one_element_list_returns_a_one_element_list(fp32_dir, hf_pipeline):
    fm = FillMask.from_pretrained(fp32_dir)
    two_masks = "<special1> les <special1> humains"
    for text in (MASKED, two_masks):
        assert fm([text]) == [fm(text)]
    assert fm([MASKED, two_masks]) == [fm(MASKED), fm(two_masks)]
    assert len(fm([two_masks])) == 1 and len(fm([two_masks])[0]) == 2  # one input, two masks
    # the pipeline unwraps a one-element list (the documented difference)
    assert [p["token"] for p in hf_pipeline([MASKED])] == [p["token"] for p in fm(MASKED)]


def test_unavailable_provider_lists_the_available_ones(fp32_dir):
    import onnxruntime as ort

    available = ort.get_available_providers()
    missing = next(p for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider", "NoSuchExecutionProvider")
                   if p not in available)
    with pytest.raises(ValueError) as info:
        FillMask.from_pretrained(fp32_dir, provider=[missing])
    assert str(info.value) == (f"{missing} is not available in this onnxruntime build (available: "
                               f"{', '.join(available)}); for GPUs install the [gpu] extra (onnxruntime-gpu)")



def test_spinning_switch_reaches_ort(fp32_dir):
    """``spinning=False`` (the server's default) turns off ORT's idle-thread spin-wait; the default keeps it."""
    from xlm_onnx import Model

    def entry(model):
        try:
            return model.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
        except Exception:  # ORT raises when the key was never set: its default, spinning on
            return None

    assert entry(Model.load(fp32_dir, spinning=False)) == "0"
    assert entry(Model.load(fp32_dir)) in (None, "1")
