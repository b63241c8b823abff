"""Bad requests and broken model directories: typed errors through the API, one line + exit 2 in the CLI."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import subprocess
import sys

import pytest

from xlm_onnx import FillMask, InputError, ModelFormatError
from xlm_onnx import format as fmt
from parity import assert_same

MASKED = "Alle Menschen sind <special1> und gleich."


@pytest.fixture(scope="module")
def fm(fp32_dir):
    return FillMask.from_pretrained(fp32_dir)


# (name, kwargs for fm(...), exception type, message fragment, CLI args or None)
REQUEST_CASES = [
    ("no mask", dict(inputs="Alle Menschen sind frei."), InputError, "no mask token", ["Alle Menschen sind frei."]),
    # The CLI answers a blank line before the API sees it ("line 1 is blank": tests/test_cli_lines.py).
    ("empty text", dict(inputs=""), InputError, "no mask token", None),
    ("too long", dict(inputs="frei " * 600 + "<special1>"), InputError, "at most 512", ["frei " * 600 + "<special1>"]),
    ("mask lost by truncation", dict(inputs="frei " * 600 + "<special1>", truncation=True), InputError,
     "no mask token after truncation", ["--truncation", "frei " * 600 + "<special1>"]),
    ("top_k 0", dict(inputs=MASKED, top_k=0), InputError, "top_k must be between", ["--top-k", "0", MASKED]),
    ("top_k negative", dict(inputs=MASKED, top_k=-3), InputError, "top_k must be between", ["--top-k", "-3", MASKED]),
    ("top_k > vocab", dict(inputs=MASKED, top_k=10**7), InputError, "vocabulary size", ["--top-k", "10000000", MASKED]),
    ("top_k float", dict(inputs=MASKED, top_k=2.5), TypeError, "top_k must be an int", None),
    ("inputs int", dict(inputs=42), TypeError, "inputs must be a str", None),
    ("list item not str", dict(inputs=[MASKED, None]), TypeError, "inputs[1] must be a str", None),
    ("empty list", dict(inputs=[]), InputError, "empty list", None),
    ("targets wrong type", dict(inputs=MASKED, targets=3), TypeError, "targets must be", None),
    ("targets empty", dict(inputs=MASKED, targets=[]), InputError, "targets is empty", None),
    ("lang on a model without langs", dict(inputs=MASKED, lang="fr"), InputError, "no language embeddings",
     ["--lang", "fr", MASKED]),
]
#: What the CLI adds to a per-line error (fail-fast on line 1).
STOPPED = "; stopped there, 0 lines before it answered (--on-error skip answers the rest)"


def _cli_message(api_message: str, name: str) -> str:
    """The one line the CLI prints for a request the API refuses with ``api_message``: per-line
    errors name the line (and the option's CLI spelling) instead of ``inputs[0]``."""
    if name == "empty text":
        return "line 1 is blank (no text, no mask token)" + STOPPED
    if "inputs[0]" not in api_message:
        return api_message
    return api_message.replace("inputs[0]", "line 1").replace("truncation=True", "--truncation") + STOPPED


@pytest.mark.parametrize("name,kwargs,exc,fragment,cli", REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_request_errors(fm, fp32_dir, name, kwargs, exc, fragment, cli):
    kwargs = dict(kwargs)
    inputs = kwargs.pop("inputs")
    with pytest.raises(exc, match=fragment.replace("[", "\\[").replace("|", "\\|")) as info:
        fm(inputs, **kwargs)
    if cli is not None:
        proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "fill-mask", "--model", str(fp32_dir), *cli],
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == f"xlm-onnx: error: {_cli_message(str(info.value), name)}\n"


@pytest.mark.parametrize("text", ["<special1> " + "frei " * 600, "Alle <special1> und " + "frei " * 600],
                         ids=["mask first", "mask third"])
def test_truncation_keeping_the_mask_matches_hf(fm, hf_pipeline, text):
    """``truncation=True`` cuts to 512 with specials, as the HF tokenizer does with
    ``truncation=True, max_length=512``; a surviving mask answers like the pipeline."""
    ref = hf_pipeline(text, top_k=3, tokenizer_kwargs={"truncation": True, "max_length": 512})
    assert_same(fm(text, top_k=3, truncation=True), ref, where=text[:30])
    assert ref[0]["sequence"].count("frei") < 512  # the reference did cut the text


def test_lang_unknown_on_lang_model(lang_dir):
    with pytest.raises(InputError, match="unknown lang 'xx'"):
        FillMask.from_pretrained(lang_dir)(MASKED, lang="xx")
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "fill-mask", "--model", str(lang_dir), "--lang", "xx",
                           MASKED], capture_output=True, text=True)
    # The README promises the known languages in the message.
    assert proc.returncode == 2 and proc.stderr == "xlm-onnx: error: unknown lang 'xx'; this model knows de, en, fr\n"


# Strange but valid requests: each must answer (API and CLI), never crash.
EDGE_CASES = [
    ("only masks", "<special1> <special1>"),
    ("control characters", "\x00\x07 Alle \x1b<special1> und\x7f gleich.\x9f"),
    ("zero-width characters", "\u200bAlle\u200d Menschen <special1>\ufeff sind\u2060 gleich."),
    ("lone surrogate", "Alle \ud800 Menschen <special1>."),
    ("mask glued to words", "Alle<special1>Menschen"),
    ("whitespace runs and tabs", "  Alle \t\t Menschen\n\n<special1>   "),
    ("emoji with modifiers", "👍🏽 Alle 👨‍👩‍👧 <special1> 🇫🇷"),
]


@pytest.mark.parametrize("name,text", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_strange_but_valid_inputs_answer_like_hf(fm, fp32_dir, hf_pipeline, name, text):
    result = fm(text, top_k=2)
    assert_same(result, hf_pipeline(text, top_k=2), where=name)
    if "\ud800" in text or "\x00" in text:
        return  # not passable through argv
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "fill-mask", "--model", str(fp32_dir), "--json",
                           "--top-k", "2", text], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == json.loads(json.dumps(result))


TARGET_CASES = [  # (targets, warning the runtime must log, like the pipeline's)
    (["Menschenrechtserklärungsentwurf"], "target 'Menschenrechtserklärungsentwurf' is not in the vocabulary; "
                                          "using its first piece 'M'"),
    (["\u200b", "frei"], "target '\\u200b' is not in the vocabulary and tokenises to nothing; ignored"),
    (["frei", "frei"], "target 'frei' is not in the vocabulary; using its first piece 'fre'"),
]


@pytest.mark.parametrize("targets,warning", TARGET_CASES, ids=["outside vocabulary", "one to nothing", "duplicate"])
def test_target_edge_cases_match_hf_and_warn(fm, hf_pipeline, caplog, targets, warning):
    # On the package's logger itself: a CLI run in this process (test_check) stops its propagation.
    logger = logging.getLogger("xlm_onnx")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="xlm_onnx"):
            ours = fm(MASKED, targets=targets, top_k=3)
    finally:
        logger.removeHandler(caplog.handler)
    assert_same(ours, hf_pipeline(MASKED, targets=targets, top_k=3), where=str(targets))
    assert warning in [r.getMessage() for r in caplog.records]


def test_targets_edge_cases(fm):
    with pytest.raises(InputError, match="none of the targets"):
        fm(MASKED, targets=["\u200b"])  # tokenises to nothing
    with pytest.raises(TypeError, match=r"^targets must be a str or a list of str; targets\[1\] is int \(3\)$"):
        fm(MASKED, targets=["ok", 3])
    with pytest.raises(TypeError, match=r"^targets must be a str or a list of str; targets\[0\] is int \(123\)$"):
        fm(MASKED, targets=[123])
    with pytest.raises(TypeError, match=r"^targets must be a str or a list of str, not int$"):
        fm(MASKED, targets=3)


def test_large_batch_is_chunked(fp32_dir):
    fm = FillMask.from_pretrained(fp32_dir, batch_size=4)
    calls = []
    run = fm.session.run
    spy = type("Spy", (), {"run": lambda self, names, feed: calls.append(feed["input_ids"].shape) or run(names, feed)})()
    fm.model = dataclasses.replace(fm.model, session=spy)
    out = fm([MASKED] * 37)
    assert len(out) == 37 and len(calls) == 10 and max(shape[0] for shape in calls) == 4


def _broken(fp32_dir, tmp_path, edit):
    bad = tmp_path / "bad"
    shutil.copytree(fp32_dir, bad)
    edit(bad)
    return bad


def _manifest_version(d, version):
    data = json.loads((d / fmt.MANIFEST_FILE).read_text())
    (d / fmt.MANIFEST_FILE).write_text(json.dumps(dict(data, format_version=version)))


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DIR_CASES = [
    ("missing model.onnx", lambda d: (d / fmt.MODEL_FILE).unlink(), "model.onnx: missing"),
    ("missing external data", lambda d: (d / fmt.MODEL_DATA_FILE).unlink(), "model.onnx.data: missing"),
    ("truncated external data", lambda d: _truncate(d / fmt.MODEL_DATA_FILE), "model.onnx.data: size"),
    ("missing vocab", lambda d: (d / fmt.VOCAB_FILE).unlink(), "vocab.json: missing"),
    ("newer format_version", lambda d: _manifest_version(d, 99), "format_version 99 is not supported"),
    ("missing manifest", lambda d: (d / fmt.MANIFEST_FILE).unlink(), "manifest not found"),
    ("tampered data", lambda d: _flip_byte(d / fmt.MODEL_DATA_FILE), "SHA-256 differs"),
    ("garbage model.onnx", lambda d: _garbage(d), "model.onnx: cannot be loaded"),
]


def _garbage(d):
    """A garbage model.onnx whose manifest entry is updated, so only ORT can notice."""
    (d / fmt.MODEL_FILE).write_bytes(b"\x00garbage" * 100)
    data = json.loads((d / fmt.MANIFEST_FILE).read_text())
    data["files"][fmt.MODEL_FILE] = {"size": 800, "sha256": fmt.sha256_file(d / fmt.MODEL_FILE)}
    (d / fmt.MANIFEST_FILE).write_text(json.dumps(data))


@pytest.mark.parametrize("name,edit,fragment", DIR_CASES, ids=[c[0] for c in DIR_CASES])
def test_broken_model_dirs(fp32_dir, tmp_path, name, edit, fragment):
    bad = _broken(fp32_dir, tmp_path, edit)
    with pytest.raises(ModelFormatError, match=fragment.replace(".", "\\.")) as info:
        FillMask.from_pretrained(bad)
    proc = subprocess.run([sys.executable, "-m", "xlm_onnx", "fill-mask", "--model", str(bad), MASKED],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr == f"xlm-onnx: error: {' '.join(str(info.value).split())}\n"


def test_cli_export_errors_one_line(tiny_checkpoint, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    cases = [(["export", str(tiny_checkpoint), str(out)], f"{out}: exists; pass force=True (--force) to replace it"),
             (["export", str(tmp_path / "nope"), str(tmp_path / "o")], f"{tmp_path / 'nope'}: no such directory"),
             (["export", str(tiny_checkpoint), str(tmp_path / "o"), "--tied-embedding", "fp16"],
              "--per-tensor, --tied-embedding, --weight-bits and --activations apply to --precision int8 only"),
             (["export", str(tiny_checkpoint), str(tmp_path / "o"), "--activations", "per-tensor"],
              "--per-tensor, --tied-embedding, --weight-bits and --activations apply to --precision int8 only")]
    for args, message in cases:
        proc = subprocess.run([sys.executable, "-m", "xlm_onnx", *args], capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stderr == f"xlm-onnx: error: {message}\n"
    assert not (tmp_path / "o").exists() and list(out.iterdir()) == []


def test_unavailable_or_unknown_provider(fp32_dir):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ValueError, match="CUDAExecutionProvider is not available"):
            FillMask.from_pretrained(fp32_dir, provider="cuda")
    with pytest.raises(ValueError, match="provider 'tpu' is unknown"):
        FillMask.from_pretrained(fp32_dir, provider="tpu")
    with pytest.raises(TypeError, match="provider must be"):
        FillMask.from_pretrained(fp32_dir, provider=3)
    explicit = FillMask.from_pretrained(fp32_dir, provider=["CPUExecutionProvider"])
    assert explicit(MASKED) == FillMask.from_pretrained(fp32_dir)(MASKED)
