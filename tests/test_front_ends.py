"""The front ends are generated from the task registry: a task is one file, not a dozen edits.

A toy task (tests/toy_tasks.py: one ``Task`` subclass, registered by an installed package's entry
point) gets, with no edit to ``xlm_onnx/``: a command whose ``--help`` shows every option's default
and whose mistakes are one line with exit 2, answers that equal its Python API's, a bulk command of
its own, and a section of the built docs. And no front end names a built-in task.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toy_tasks import HiddenMean, pythonpath, write_distribution

from xlm_onnx import Model
from xlm_onnx.errors import ERRORS, HTTPError, InputError, LimitError, QueueFull, XLMOnnxError, outcome

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "xlm_onnx"
CLI = [sys.executable, "-m", "xlm_onnx"]


@pytest.fixture(scope="module")
def toy_env(tmp_path_factory):
    """The environment of a process that finds the toy task through its entry point."""
    site = write_distribution(tmp_path_factory.mktemp("site"), HiddenMean)
    return {**os.environ, "PYTHONPATH": pythonpath(site), "COLUMNS": "100"}


def _cli(env, *args):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, env=env, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_a_registered_task_gets_a_command_with_its_defaults_in_help(toy_env):
    top = _cli(toy_env, "--help")
    assert top.returncode == 0 and "hidden-mean" in top.stdout and "the mean hidden state" in top.stdout
    proc = _cli(toy_env, "hidden-mean", "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())  # argparse wraps lines
    for option in ("--lang LANG language code, for models with language embeddings (default: none)",
                   "--truncation cut texts longer than the model maximum (default: off)",
                   "--batch-size N texts per call (their model rows are batched by a token budget) (default: 32)",
                   "--on-error {fail,skip}", "--json", "--model MODEL"):
        assert option in text, (option, proc.stdout)
    # Every option says its default (argparse's own --help apart).
    options = re.findall(r"^  (--[\w-]+)", proc.stdout, re.MULTILINE)
    assert len(options) >= 10
    blocks = re.split(r"\n  (?=-)", proc.stdout.split("options:", 1)[1])
    assert all("default" in block for block in blocks if block.strip() and not block.startswith("-h")), blocks


def test_a_registered_tasks_bad_option_is_one_line_exit_2_with_the_closest_flag(toy_env):
    proc = _cli(toy_env, "hidden-mean", "--truncaton", "a text")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ("xlm-onnx: error: hidden-mean: unrecognized arguments: --truncaton; "
                           "did you mean --truncation?\n")
    bad_value = _cli(toy_env, "hidden-mean", "--batch-size", "many", "a text")
    assert bad_value.returncode == 2 and bad_value.stderr.count("\n") == 1
    assert bad_value.stderr.startswith("xlm-onnx: error: hidden-mean: argument --batch-size: invalid int value")


def test_the_built_in_commands_suggest_the_flag_meant(toy_env):
    proc = _cli(toy_env, "fill-mask", "--topk", "3", "Hello <mask> !")
    assert proc.returncode == 2
    assert proc.stderr == "xlm-onnx: error: fill-mask: unrecognized arguments: --topk; did you mean --top-k?\n"


def test_a_registered_tasks_command_answers_as_its_api_and_reports_a_bad_line(toy_env, fp32_dir):
    """Through run_each, the CLI's one bad-input policy: every line answered, a bad one with its index."""
    texts = ["Hello world", "x " * 600, "Bonjour le monde"]
    proc = _cli(toy_env, "hidden-mean", "--model", fp32_dir, "--json", "--on-error", "skip", *texts)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3]
    assert records[1]["error"].startswith("line 2 is 602 tokens long with specials; the model takes at most")
    assert records[1]["error"].endswith("(pass --truncation to cut it)")
    want = HiddenMean(Model.load(fp32_dir))([texts[0], texts[2]])
    np.testing.assert_allclose([records[0]["hidden_mean"], records[2]["hidden_mean"]], want, rtol=0, atol=1e-6)


def test_a_registered_task_gets_a_bulk_command_of_its_own(toy_env):
    bulk = _cli(toy_env, "bulk", "--help")
    own = _cli(toy_env, "bulk", "hidden-mean", "--help")
    assert bulk.returncode == own.returncode == 0
    assert "hidden-mean" in bulk.stdout and "--rows-per-file" not in bulk.stdout  # the jobs' options are per task
    text = " ".join(own.stdout.split())
    for option in ("--rows-per-file N rows per output file (default: 100000)", "--batch-size N rows per actor call "
                   "(default: 256)", "hidden-mean options:", "--truncation cut texts longer than the model maximum "
                   "(default: off)"):
        assert option in text, (option, own.stdout)
    assert "--top-k" not in own.stdout  # another task's option
    wrong = _cli(toy_env, "bulk", "hidden-mean", "--input", "in.jsonl", "--output", "out", "--top-k", "3")
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1


def test_a_registered_task_gets_a_section_of_the_built_docs(toy_env, tmp_path):
    """``mkdocs build --strict`` with the toy's package installed: the task reference and the
    command-line pages carry its options, generated from its declaration."""
    try:
        import mkdocs  # noqa: F401  (the [docs] extra)
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("the [docs] extra is not installed")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=REPO,
                          capture_output=True, text=True, env={**toy_env, "NO_MKDOCS_2_WARNING": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    tasks = (site / "reference" / "tasks" / "index.html").read_text(encoding="utf-8")
    assert 'id="hidden-mean"' in tasks and "toy_tasks.HiddenMean" in tasks and "xlm-onnx bulk hidden-mean" in tasks
    assert "<code>--truncation</code>" in tasks
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert 'id="hidden-mean"' in cli and "usage: xlm-onnx hidden-mean" in cli


# -- no front end knows a built-in task -------------------------------------------------------------
#: The built-in tasks by name, module, class and Ray callable: "fill-mask", fill_mask, FillMask,
#: FillMaskBatch; "embed", Embedder, EmbedBatch; "score", Scorer, ScoreBatch. "embed" and "score"
#: count where they name the task (quoted, a route, a command), not as words ("delta score").
BUILT_IN = re.compile(r"fill[-_ ]?mask|FillMask|\bEmbed(?:der|Batch)\b|\bScor(?:er|eBatch)\b"
                      r"|[\"'`/](?:embed|score)\b|\b(?:xlm-onnx|bulk) (?:embed|score)\b", re.IGNORECASE)
#: Foreign protocols translate to and from a task's own request and answer, one module each: they
#: name the task they serve.
ADAPTERS = ("serve/adapters/",)


def _mentions(folder: str) -> list[str]:
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(ADAPTERS):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if BUILT_IN.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize("folder", ["cli", "bulk", "serve"])
def test_no_front_end_names_a_built_in_task(folder):
    assert _mentions(folder) == []


@pytest.mark.parametrize("line", ['COMMANDS = {"fill-mask": fill_mask}', "from ..tasks.fill_mask import FillMask",
                                  'route("/embed")', "task == 'score'", "xlm-onnx score --json", "Scorer(model)",
                                  "EmbedBatch", "FILL_MASK = 'fill-mask'"])
def test_the_task_name_pattern_catches_what_it_is_for(line):
    assert BUILT_IN.search(line)


@pytest.mark.parametrize("line", ["max |delta score| {x}", "the embedding / LM head table", "a task's scores",
                                  "--tied-embedding", "embedded demo model"])
def test_the_task_name_pattern_leaves_ordinary_words_alone(line):
    assert not BUILT_IN.search(line)


# -- one error table --------------------------------------------------------------------------------
def test_every_error_raised_on_purpose_is_in_the_tree_and_the_table():
    for exc in (HTTPError(404, "x"), QueueFull("full"), LimitError("max_copies", 2, 1, "copies"), InputError("x")):
        assert isinstance(exc, XLMOnnxError)
    assert (outcome(HTTPError(404, "gone")).status, outcome(QueueFull("x")).status) == (404, 429)
    assert outcome(LimitError("max_copies", 2, 1, "copies")).status == 413
    assert (outcome(InputError("x")).status, outcome(InputError("x")).exit_code) == (422, 2)
    assert (outcome(RuntimeError("bug")).status, outcome(RuntimeError("bug")).exit_code) == (500, 1)
    assert outcome(KeyboardInterrupt()).exit_code == 130
    kinds = [kind for kind, _ in ERRORS]
    for i, kind in enumerate(kinds):  # most specific first: no row is hidden by an earlier, broader one
        assert not any(issubclass(kind, earlier) for earlier in kinds[:i]), kind


def test_every_option_of_every_command_shows_its_default():
    """--help of every command (tasks, serve, bulk TASK, info, check, export) says each option's default."""
    import argparse

    from xlm_onnx.cli.main import parser
    from xlm_onnx.front.arguments import HelpFormatter

    missing = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                shown = HelpFormatter(path)._get_help_string(action) if action.help else ""
                if "default" not in shown:
                    missing.append(f"{path} {action.option_strings[-1]}")

    walk(parser(), "xlm-onnx")
    assert missing == []


def test_run_each_answers_every_good_text_and_names_each_bad_one(fp32_dir):
    """The one bad-input policy: each text's answer is what the API gives it alone; a bad one is its
    error, indexed in the caller's list, in the API's words or a front end's (``say``)."""
    from xlm_onnx import FillMask
    from xlm_onnx.errors import InputTypeError
    from xlm_onnx.tasks.base import run_each

    task = FillMask(Model.load(fp32_dir))
    texts = ["Hello <mask> !", "no mask here", 7, "Paris est la <mask> ." + " x" * 600, "Le <mask> ."]
    got = run_each(task, texts, task.options(top_k=3))
    for i in (0, 4):
        assert [p["token"] for p in got[i]] == [p["token"] for p in task(texts[i], top_k=3)]
        np.testing.assert_allclose([p["score"] for p in got[i]], [p["score"] for p in task(texts[i], top_k=3)],
                                   rtol=0, atol=1e-6)
    assert str(got[1]).startswith("inputs[1] has no mask token") and got[1].index == 1
    assert isinstance(got[2], InputTypeError) and str(got[2]) == "inputs[2] must be a str, not int"
    assert str(got[3]).endswith("(pass truncation=True to cut it)") and got[3].index == 3
    assert got[3].say("line 9", lambda fix: f"pass --{fix.option} {fix.effect}") == \
        str(got[3]).replace("inputs[3]", "line 9").replace("truncation=True", "--truncation")
