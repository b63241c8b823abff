"""Fenced blocks of the README and the quickstart pages, as the tests read them.

A block is tested when the line before its opening fence (blank lines aside) is a marker comment,
invisible on GitHub and in the built site:

* ``<!-- test -->``: run it as written (``bash`` with ``-e -o pipefail``, or ``python``); install
  lines (``python3 -m venv``, ``. .venv/bin/activate``, ``pip install '.[extra]'``) are checked,
  not run: they would need the network (``test_docs.py``'s ``network`` test runs the first one).
* ``<!-- test: output -->`` / ``<!-- test: output json -->``: what the previous block prints,
  compared line by line / as JSON with a float tolerance.
* ``<!-- test: server -->``: one ``xlm-onnx serve ...`` line, started as a real process on a free
  loopback port; ``<!-- test: client -->`` blocks after it run with ``localhost:8080`` and
  ``127.0.0.1:8080`` pointed at that port.
* ``<!-- test: export -->``: run as written in a temporary home whose
  ``~/models/xlm-mlm-100-1280`` is a tiny random XLM checkpoint (exporting XLM-100 itself takes
  minutes and a 1 GB download).
* ``<!-- test: tests -->``: ``bash .ci/run`` is syntax-checked and a pytest line is collected
  (running either would run this test again).
* ``<!-- not run: REASON -->``: a block no test can run here, and why (it needs the exported
  XLM-100, a GPU, a Ray cluster, the network, files of the reader's own); the reason is required.

Every shell and Python block of the README and of ``docs/`` carries one of these markers.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Pages whose every shell / Python block must carry a marker.
QUICKSTART_PAGES = ("README.md", "docs/getting-started.md")
ALL_PAGES = ("README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md")))
KINDS = ("run", "output", "output json", "server", "client", "export", "tests", "not run")
#: Kinds no test runs as such (``export`` and ``tests`` have tests of their own).
NOT_RUN_HERE = (None, "not run", "export", "tests")
CODE_LANGUAGES = ("bash", "sh", "shell", "console", "python", "py")

_MARKER = re.compile(r"^<!--\s*(?:test(?::\s*(?P<kind>[a-z ]+?))?|(?P<skip>not run):\s*\S.*?)\s*-->\s*$")
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
#: The port the documents show; a server started by the tests gets a free one instead.
DOC_ADDRESS = re.compile(r"\b(?:localhost|127\.0\.0\.1):8080\b")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its marker (``None``: unmarked) and its text."""

    page: str
    line: int
    lang: str
    kind: str | None
    code: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.lang in ("python", "py")


def read_blocks(page: str) -> list[Block]:
    """Every fenced block of ``page`` (relative to the repository root), in order."""
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    blocks, kind, i = [], None, 0
    while i < len(lines):
        marker, fence = _MARKER.match(lines[i].strip()), _FENCE.match(lines[i])
        if marker:
            kind = marker.group("skip") or marker.group("kind") or "run"
            if kind not in KINDS:
                raise ValueError(f"{page}:{i + 1}: unknown marker kind {kind!r} (known: {', '.join(KINDS)})")
        elif fence:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence.group("fence")), None)
            if end is None:
                raise ValueError(f"{page}:{i + 1}: fence never closed")
            blocks.append(Block(page, i + 1, fence.group("lang"), kind, "\n".join(lines[i + 1:end])))
            kind, i = None, end
        elif lines[i].strip() and kind is not None:
            raise ValueError(f"{page}:{i + 1}: a test marker must be followed by a fenced block")
        i += 1
    return blocks


def extras() -> set[str]:
    """The optional-dependency groups pyproject.toml declares."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return set(data["project"]["optional-dependencies"])


def _install_step(words: list[str]) -> str | None:
    """Why ``words`` is not an install step the documents may show, or ``None`` when it is."""
    if words[:1] in (["python"], ["python3"]) and words[1:3] == ["-m", "venv"] and len(words) == 4:
        return None
    if words[:1] in (["."], ["source"]) and len(words) == 2 and words[1].endswith("/bin/activate"):
        return None
    if words[:2] == ["pip", "install"] or words[1:4] == ["-m", "pip", "install"]:
        args = words[2:] if words[0] == "pip" else words[4:]
        specs = [a for a in args if not a.startswith("-")]
        if not specs or any(a not in ("-e", "-q", "--upgrade") for a in args if a.startswith("-")):
            return f"unexpected pip arguments {args}"
        for spec in specs:
            match = re.fullmatch(r"\.(?:\[(?P<extras>[a-z,]+)\])?", spec)
            if not match:
                return f"{spec!r}: install from the repository root, as '.' or '.[extra,...]'"
            unknown = set((match.group("extras") or "").split(",")) - extras() - {""}
            if unknown:
                return f"{spec!r}: no such extra {sorted(unknown)} in pyproject.toml"
        return None
    return "not an install command"


def install_problem(line: str) -> str | None:
    """For a line of install steps joined by ``&&``: what is wrong with it, or ``None``."""
    for part in command_part(line).split("&&"):
        problem = _install_step(shlex.split(part))
        if problem:
            return f"{part.strip()!r}: {problem}"
    return None


def command_part(line: str) -> str:
    """``line`` without its trailing ``# comment`` (a ``#`` inside quotes, or inside a word, is kept)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def is_install_line(line: str) -> bool:
    """Whether ``line`` starts with an install step (``python3 -m venv`` or ``pip install``)."""
    words = command_part(line).split()
    return words[:3] in (["python3", "-m", "venv"], ["python", "-m", "venv"]) or words[:2] == ["pip", "install"] \
        or words[1:4] == ["-m", "pip", "install"]


#: The extras table's row for what ``pip install .`` alone installs.
RUNTIME_ROW = "(runtime, no extra)"


def brings(requirements: list[str]) -> str:
    """The extras table's "brings" cell for a list of requirements: each distribution with its
    extras, and its version where pyproject.toml pins one (``ray[data,serve] 2.60.0``); the
    package's own extras it pulls in last (``+ the export, ray, serve extras``)."""
    names, own = [], []
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*(?:==\s*([^;,\s]+))?", requirement)
        name, extras, pin = match.group(1), match.group(2) or "", match.group(3)
        if name == "xlm-onnx":
            own += extras.strip("[]").split(",")
        else:
            names.append(f"{name}{extras}" + (f" {pin}" if pin else ""))
    return ", ".join(names) + (f" + the {', '.join(sorted(own))} extras" if own else "")


def extras_table_problems(page: str) -> list[str]:
    """How ``page``'s ``| extra | brings | for |`` table differs from pyproject.toml (empty: it
    does not): one row per extra and one for the runtime, each "brings" cell as :func:`brings`
    writes it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    want = {RUNTIME_ROW: brings(project["dependencies"]),
            **{extra: brings(reqs) for extra, reqs in project["optional-dependencies"].items()}}
    lines = (REPO / page).read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"^\|\s*extra\s*\|\s*brings\s*\|", line)), None)
    if start is None:
        return [f"{page}: no | extra | brings | for | table"]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1]
    problems = [f"{page}: no row for {name!r}" for name in want if name not in rows]
    problems += [f"{page}: row {name!r} is not an extra of pyproject.toml" for name in rows if name not in want]
    problems += [f"{page}: {name!r} brings {rows[name]!r}, pyproject.toml says {want[name]!r}"
                 for name in want if name in rows and rows[name] != want[name]]
    return problems
