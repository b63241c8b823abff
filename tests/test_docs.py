"""The README and the quickstart pages run as written (see ``doc_blocks`` for the markers).

Commands run in a scratch directory with this interpreter's ``bin`` first on ``PATH`` (so
``xlm-onnx`` and ``python`` are the ones under test); the server is a real ``xlm-onnx serve``
process on a free 127.0.0.1 port. What a page shows as output is compared with what the demo model
prints: the fill-mask answers are the same on every CPU class (7-bit int8 weights), so they are
compared exactly, and JSON with a 1e-6 tolerance on floats.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from doc_blocks import (ALL_PAGES, CODE_LANGUAGES, DOC_ADDRESS, NOT_RUN_HERE, QUICKSTART_PAGES, REPO, Block,
                        command_part, extras_table_problems, install_problem, is_install_line, read_blocks)

#: Pages with a block that a test runs as written.
PAGES = [page for page in ALL_PAGES if any(b.kind not in (*NOT_RUN_HERE, "output", "output json")
                                           for b in read_blocks(page))]
TIMEOUT = 600


def _env(home: Path | None = None) -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "COLUMNS": "100", "PYTHONIOENCODING": "utf-8"}
    if home is not None:
        env["HOME"] = str(home)
    return env


def _run(block: Block, cwd: Path, env: dict, code: str | None = None) -> str:
    """Runs ``block`` (install lines checked and left out); returns its stdout."""
    code = block.code if code is None else code
    if block.is_python:
        argv = [sys.executable, "-c", code]
    else:
        lines = []
        for line in code.splitlines():
            if is_install_line(line):
                problem = install_problem(line)
                assert problem is None, f"{block.where}: {problem}"
                line = ":"  # checked above; installing needs the network (see the network test)
            lines.append(line)
        argv = ["bash", "-e", "-o", "pipefail", "-c", "\n".join(lines)]
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, f"{block.where} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _close(got, shown, path="$"):
    if isinstance(shown, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and abs(got - shown) <= 1e-6, f"{path}: {got} != {shown}"
    elif isinstance(shown, dict):
        assert isinstance(got, dict) and got.keys() == shown.keys(), f"{path}: {got} != {shown}"
        for key in shown:
            _close(got[key], shown[key], f"{path}.{key}")
    elif isinstance(shown, list):
        assert isinstance(got, list) and len(got) == len(shown), f"{path}: {got} != {shown}"
        for i, (a, b) in enumerate(zip(got, shown)):
            _close(a, b, f"{path}[{i}]")
    else:
        assert got == shown, f"{path}: {got!r} != {shown!r}"


def _compare(output: Block, printed: str) -> None:
    if output.kind == "output json":
        shown, lines = json.loads(output.code), [line for line in printed.splitlines() if line.strip()]
        # JSON Lines (one record per input line) are shown as one list.
        got = [json.loads(line) for line in lines] if isinstance(shown, list) and len(lines) > 1 else json.loads(printed)
        _close(got, shown)
    else:
        got = [line.rstrip() for line in printed.rstrip("\n").splitlines()]
        assert got == [line.rstrip() for line in output.code.splitlines()], f"{output.where}: printed\n{printed}"


def _walk(blocks: list[Block], run) -> int:
    """Runs each block with ``run(block)``, comparing shown outputs; returns how many blocks ran."""
    printed, ran = None, 0
    for block in blocks:
        if block.kind in ("output", "output json"):
            assert printed is not None, f"{block.where}: an output block must follow a block that runs"
            _compare(block, printed)
            printed = None
        else:
            printed = run(block)
            ran += printed is not None
    return ran


@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_shell_and_python_block_is_run_or_says_why_not(page):
    blocks = read_blocks(page)
    unmarked = [b.where for b in blocks if b.kind is None and b.lang in CODE_LANGUAGES]
    assert not unmarked, f"blocks that no test runs (mark them, see tests/doc_blocks.py): {unmarked}"
    if page in QUICKSTART_PAGES:
        assert any(b.kind == "output" for b in blocks), "no output is compared"


@pytest.mark.parametrize("page", QUICKSTART_PAGES)
def test_extras_table_says_what_pyproject_installs(page):
    assert extras_table_problems(page) == []


@pytest.fixture(scope="module")
def doc_servers():
    """``options -> ServerProcess``: one server per distinct ``xlm-onnx serve`` line, started once
    for every page that shows it (a start costs seconds), stopped after the last page."""
    servers: dict = {}

    def get(options: tuple):
        if options not in servers:
            from xlm_onnx.serve.process import ServerProcess

            servers[options] = ServerProcess(None, list(options), env=_env())
            servers[options].start()
        return servers[options]

    yield get
    for server in servers.values():
        code, stderr = server.stop()
        assert code in (0, -signal.SIGTERM), stderr  # SIGTERM: drains, then exits by the signal


def _runnable(blocks: list[Block]) -> list[Block]:
    """The blocks a test runs, and the outputs shown for them (not those of a block not run)."""
    kept = []
    for before, block in zip([None, *blocks], blocks):
        if block.kind in NOT_RUN_HERE or (block.kind in ("output", "output json") and before.kind in NOT_RUN_HERE):
            continue
        kept.append(block)
    return kept


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_as_written(page, tmp_path, doc_servers):
    blocks = _runnable(read_blocks(page))
    server = None
    if any(b.kind == "server" for b in blocks):
        from serve_util import require_serve_extra

        require_serve_extra()

    def run(block: Block) -> str | None:
        nonlocal server
        if block.kind == "server":
            words = shlex.split(command_part(block.code.strip()))
            assert words[:2] == ["xlm-onnx", "serve"] and "\n" not in block.code.strip(), block.where
            server = doc_servers(tuple(words[2:]))
            return None
        if block.kind == "client":
            assert server is not None, f"{block.where}: a client block needs a server block before it"
            assert DOC_ADDRESS.search(block.code), f"{block.where}: no localhost:8080 / 127.0.0.1:8080 to point"
            return _run(block, tmp_path, _env(), DOC_ADDRESS.sub(f"127.0.0.1:{server.port}", block.code))
        return _run(block, tmp_path, _env())

    assert _walk(blocks, run) > 0


@pytest.mark.parametrize("page", [p for p in ALL_PAGES if any(b.kind == "export" for b in read_blocks(p))])
def test_export_blocks_run_as_written(page, tmp_path, tiny_checkpoint):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    shutil.copytree(tiny_checkpoint, home / "models" / "xlm-mlm-100-1280")
    work = tmp_path / "work"
    work.mkdir()
    blocks = [b for b in read_blocks(page) if b.kind == "export"]
    for block in blocks:
        _run(block, work, _env(home))
    card = next(work.rglob("MODEL_CARD.md"), None)
    assert card is not None, "the export wrote no model card"


@pytest.mark.parametrize("page", [p for p in ALL_PAGES if any(b.kind == "tests" for b in read_blocks(p))])
def test_test_commands_are_runnable(page):
    for block in (b for b in read_blocks(page) if b.kind == "tests"):
        for line in filter(None, (command_part(x) for x in block.code.splitlines())):
            if is_install_line(line):
                assert install_problem(line) is None, f"{block.where}: {install_problem(line)}"
                continue
            words = shlex.split(line)
            if words[0] == "bash":
                assert (REPO / words[1]).is_file(), f"{block.where}: {words[1]} missing"
                subprocess.run(["bash", "-n", words[1]], cwd=REPO, check=True, timeout=60)
                continue
            assert words[:3] == ["python", "-m", "pytest"], f"{block.where}: {line}"
            # Collected, not run: the selection includes this test.
            proc = subprocess.run([sys.executable, *words[1:], "--collect-only", "-p", "no:cacheprovider"],
                                  cwd=REPO, env=_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False)
            assert proc.returncode == 0, f"{block.where}: {proc.stdout}\n{proc.stderr}"
            summary = proc.stdout.strip().splitlines()[-1]
            assert re.search(r"\b\d+(/\d+)? tests? collected", summary) and "error" not in summary, summary


@pytest.mark.network
def test_first_command_in_a_clean_virtualenv(tmp_path):
    """The README's first block, install included, in a copy of the tracked tree (needs PyPI)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    copy = tmp_path / "xlm-onnx"
    for name in filter(None, files.decode().split("\0")):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, copy / name)
    blocks = read_blocks("README.md")
    first = next(i for i, b in enumerate(blocks) if b.kind == "run")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", blocks[first].code], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stderr
    shown = blocks[first + 1]
    _compare(shown, "\n".join(proc.stdout.splitlines()[-len(shown.code.splitlines()):]))  # after pip's lines
