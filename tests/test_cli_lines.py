"""fill-mask through the real CLI (``python -m xlm_onnx``): inputs, records, errors by line, streaming."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from waiting import read_line
from xlm_onnx import FillMask, InputError, __version__
from xlm_onnx.tasks.fill_mask import format_scores

GOOD = ["Alle Menschen sind <special1> und gleich.", "Tous les êtres <mask> naissent libres.",
        "All human beings are born <special1> and equal.", "<special1> les <special1> humains"]
TOO_LONG = "frei " * 600 + "<special1>"
NO_MASK_HINT = "has no mask token (write <special1>, <mask> or [MASK])"


def _cli(*args, stdin=None, env=None):
    return subprocess.run([sys.executable, "-m", "xlm_onnx", *args], capture_output=True, text=True, input=stdin,
                          env=None if env is None else {**os.environ, **env})


@pytest.fixture(scope="module")
def fm(fp32_dir):
    return FillMask.from_pretrained(fp32_dir)


@pytest.fixture(scope="module")
def expected(fm):
    """API answers for the GOOD texts, as they come back from JSON."""
    return {text: json.loads(json.dumps(fm(text, top_k=2))) for text in GOOD}


def _rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def _api_message(fm, text: str, number: int) -> str:
    with pytest.raises(InputError) as info:
        fm([text])
    return str(info.value).replace("inputs[0]", f"line {number}")


def test_2000_lines_with_bad_lines_skip(fm, fp32_dir, expected, tmp_path):
    """Every line accounted for, in order; errors at their global line numbers, with the API's message."""
    bad = {17: "", 300: "Hello world", 1500: TOO_LONG, 1999: "   "}
    lines = [bad.get(n, GOOD[n % len(GOOD)]) for n in range(1, 2001)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = _cli("fill-mask", "--model", str(fp32_dir), "--input", str(path), "--json", "--top-k", "2",
                "--on-error", "skip")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "xlm-onnx: warning: 4 of 2,000 lines answered with an error record\n"
    rows = _rows(proc.stdout)
    assert [r["line"] for r in rows] == list(range(1, 2001))
    errors = {r["line"]: r["error"] for r in rows if "error" in r}
    assert errors == {17: "line 17 is blank", 300: f"line 300 {NO_MASK_HINT}",
                      1500: "line 1500 is 1203 tokens long with specials; the model takes at most 512 (pass "
                            "--truncation to cut it)", 1999: "line 1999 is blank"}
    # The API's message, with the line number (and the option's CLI spelling) in place of inputs[0]
    assert errors[1500] == _api_message(fm, TOO_LONG, 1500).replace("truncation=True", "--truncation")
    for row, text in zip(rows, lines):
        assert row["text"] == text
        if row["line"] not in bad:
            assert row["result"] == expected[text], row["line"]


def test_fail_fast_names_the_global_line_and_what_was_done(fm, fp32_dir, expected, tmp_path):
    lines = [GOOD[n % len(GOOD)] for n in range(1, 1501)]
    lines[1499] = "Hello world"  # line 1,500: index 219 of its chunk in the old CLI
    path = tmp_path / "in.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = _cli("fill-mask", "--model", str(fp32_dir), "--input", str(path), "--json", "--top-k", "2")
    assert proc.returncode == 2
    assert proc.stderr == (f"xlm-onnx: error: line 1500 {NO_MASK_HINT}; stopped there, 1,499 lines before it "
                           "answered (--on-error skip answers the rest)\n")
    rows = _rows(proc.stdout)
    assert [r["line"] for r in rows] == list(range(1, 1500))
    assert all(r["result"] == expected[r["text"]] for r in rows)


def test_jsonl_input_keeps_ids(fp32_dir, expected, tmp_path):
    records = [json.dumps({"id": "a7", "text": GOOD[0]}), json.dumps({"text": GOOD[1]}),
               json.dumps({"id": 42, "text": "no mask here"}), "{not json", json.dumps({"id": None, "text": GOOD[2]}),
               json.dumps({"id": "x"}), json.dumps({"id": "y", "text": 5}), json.dumps(["a"]), "",
               json.dumps({"id": "z", "text": GOOD[3], "extra": 1})]
    want = [{"line": 1, "id": "a7", "text": GOOD[0], "result": expected[GOOD[0]]},
            {"line": 2, "text": GOOD[1], "result": expected[GOOD[1]]},
            {"line": 3, "id": 42, "text": "no mask here", "error": f"line 3 {NO_MASK_HINT}"},
            {"line": 4, "text": None, "error": "line 4 is not valid JSON (Expecting property name enclosed in "
                                               "double quotes at column 2)"},
            {"line": 5, "id": None, "text": GOOD[2], "result": expected[GOOD[2]]},
            {"line": 6, "id": "x", "text": None, "error": "line 6: no \"text\" field"},
            {"line": 7, "id": "y", "text": None, "error": "line 7: \"text\" is int, not a string"},
            {"line": 8, "text": None, "error": "line 8 is a JSON list, not an object with a \"text\" field"},
            {"line": 9, "text": None, "error": "line 9 is blank (expected a JSON object with a \"text\" field)"},
            {"line": 10, "id": "z", "text": GOOD[3], "result": expected[GOOD[3]]}]
    path = tmp_path / "in.jsonl"  # .jsonl: read as JSON Lines without --input-format
    path.write_text("\n".join(records) + "\n", encoding="utf-8")
    args = ["fill-mask", "--model", str(fp32_dir), "--json", "--top-k", "2", "--on-error", "skip"]
    from_file = _cli(*args, "--input", str(path))
    from_stdin = _cli(*args, "--input-format", "jsonl", "-", stdin=path.read_text(encoding="utf-8"))
    for proc in (from_file, from_stdin):
        assert proc.returncode == 0, proc.stderr
        assert _rows(proc.stdout) == want


def test_texts_and_stdin_are_numbered_in_order(fp32_dir, expected):
    stdin = f"{GOOD[1]}\r\n{GOOD[2]}"  # CRLF, and no final newline
    proc = _cli("fill-mask", "--model", str(fp32_dir), "--json", "--top-k", "2", GOOD[0], "-", GOOD[3], stdin=stdin)
    assert proc.returncode == 0, proc.stderr
    assert _rows(proc.stdout) == [{"line": n + 1, "text": t, "result": expected[t]} for n, t in enumerate(GOOD)]


def test_bad_utf8_line_is_answered(fp32_dir, expected, tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(GOOD[0].encode() + b"\n\xff\xfe <special1>\n" + GOOD[1].encode() + b"\n")
    proc = _cli("fill-mask", "--model", str(fp32_dir), "--json", "--top-k", "2", "--on-error", "skip",
                "--input", str(path))
    assert proc.returncode == 0, proc.stderr
    assert _rows(proc.stdout)[1] == {"line": 2, "text": None,
                                     "error": "line 2 is not valid UTF-8 (invalid start byte at byte 0)"}
    assert [r["line"] for r in _rows(proc.stdout)] == [1, 2, 3]


def test_results_stream_before_stdin_ends(fp32_dir, expected):
    """With --batch-size 2 a chunk is 8 lines: its records come while stdin is still open."""
    import queue
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "xlm_onnx", "fill-mask", "--model", str(fp32_dir), "--json",
                             "--top-k", "2", "--batch-size", "2", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        proc.stdin.write("".join(GOOD[n % 4] + "\n" for n in range(8)))
        proc.stdin.flush()
        got = []
        for _ in range(8):  # a deadlock guard, not a timing assertion: 120 s is far beyond any run
            try:
                got.append(json.loads(lines.get(timeout=120)))
            except queue.Empty:
                pytest.fail("no record before stdin was closed: output is not streamed")
        assert [r["line"] for r in got] == list(range(1, 9))
        assert [r["result"] for r in got] == [expected[GOOD[n % 4]] for n in range(8)]
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0 and lines.empty()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_target_options_do_not_swallow_texts(fm, fp32_dir):
    words = [p["token_str"] for p in fm(GOOD[0], top_k=3)][1:]
    want = json.loads(json.dumps(fm(GOOD[0], targets=words)))
    repeated = _cli("fill-mask", "--model", str(fp32_dir), "--json", "--target", words[0], "--target", words[1], GOOD[0])
    assert repeated.returncode == 0 and repeated.stderr == "", repeated.stderr
    assert _rows(repeated.stdout) == [{"line": 1, "text": GOOD[0], "result": want}]
    old = _cli("fill-mask", "--model", str(fp32_dir), "--json", "--targets", ",".join(words), GOOD[0])
    assert old.returncode == 0 and _rows(old.stdout) == _rows(repeated.stdout)
    assert old.stderr == ("xlm-onnx: warning: --targets is deprecated; it takes one comma-separated value "
                          "(--targets la,de); use --target WORD once per word\n")


def test_target_outside_vocabulary_warns_once(fp32_dir):
    word = "Menschenrechtserklärungsentwurf"
    proc = _cli("fill-mask", "--model", str(fp32_dir), "--json", "--batch-size", "1", "--target", word,
                *GOOD[:3])  # three API calls: still one warning
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"xlm-onnx: warning: target {word!r} is not in the vocabulary; using its first piece")


def test_version_and_python_m():
    proc = _cli("--version")
    assert proc.returncode == 0 and proc.stdout == f"xlm-onnx {__version__}\n"


def test_input_form_errors_are_one_line(fp32_dir, tmp_path):
    cases = [(["--input", str(tmp_path / "missing.txt")], f"--input {tmp_path / 'missing.txt'}: no such file"),
             (["--input", "-", GOOD[0]], "give texts or --input FILE, not both"),
             ([], "nothing to do: give a TEXT, '-' for stdin, or --input FILE"),
             (["-", "-"], "'-' (stdin) can be given once"),
             (["--revision", "main", GOOD[0]], None)]
    for args, message in cases:
        model = [] if message is None else ["--model", str(fp32_dir)]
        proc = _cli("fill-mask", *model, *args, stdin="")
        expected = message or "--revision needs --model (the embedded demo model has no revisions)"
        assert proc.returncode == 2 and proc.stderr == f"xlm-onnx: error: {expected}\n", (args, proc.stderr)


def test_format_scores_tell_candidates_apart():
    assert format_scores([0.0300, 0.0280, 0.0000123]) == ["0.03", "0.028", "1.23e-05"]
    assert format_scores([0.030012, 0.030009, 0.030009]) == ["0.030012", "0.030009", "0.030009"]
    assert format_scores([0.5]) == ["0.5"]


def test_human_output_of_an_error_line(fp32_dir):
    proc = _cli("fill-mask", "--model", str(fp32_dir), "--on-error", "skip", "Hello world")
    assert proc.returncode == 0
    assert proc.stdout == f"Hello world\n  error: line 1 {NO_MASK_HINT}\n"


def _run_with_tty_stderr(args):
    """Runs the CLI with stderr on a pseudo-terminal; returns (returncode, stdout, terminal output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "xlm_onnx", *args], stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stdout = proc.stdout.read()
    proc.wait(timeout=120)
    os.close(master)
    return proc.returncode, stdout.decode(), b"".join(chunks).decode()


def test_progress_on_a_terminal_silent_when_piped(fp32_dir, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("".join(GOOD[n % 4] + "\n" for n in range(40)), encoding="utf-8")
    args = ["fill-mask", "--model", str(fp32_dir), "--json", "--input", str(path)]
    rc, stdout, terminal = _run_with_tty_stderr(args)
    assert rc == 0 and len(stdout.splitlines()) == 40
    final = terminal.rstrip("\r\n").rsplit("\r\x1b[K", 1)[-1]
    assert final.startswith("40/40 lines, ") and final.endswith(" lines/s"), repr(terminal)
    piped = _cli(*args)
    assert piped.returncode == 0 and piped.stderr == ""


def test_reader_leaving_early_is_quiet(fp32_dir, tmp_path):
    """`xlm-onnx fill-mask ... | head -1`: exit 0, nothing on stderr (no BrokenPipeError report)."""
    path = tmp_path / "in.txt"
    path.write_text("".join(GOOD[n % 4] + "\n" for n in range(400)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "xlm_onnx", "fill-mask", "--model", str(fp32_dir), "--json",
                             "--input", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(read_line(proc.stdout, "the first record"))["line"] == 1
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""
