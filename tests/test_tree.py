"""The tree speaks for itself: no references a reader cannot follow.

Code, comments, docs and tests say what the software does and why, with the measurement; a
pointer to a ticket (its number, or "the" + the word for it) or to when and by whom something was
measured (a numbered work session) means nothing to a reader of the repository, so none may appear.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# This file spells the words so that it does not match its own patterns.
TICKET, SESSION = "iss" "ue", "sess" "ion"
FORBIDDEN = {
    "a numbered ticket reference": re.compile(r"\bissues?\s*(?:#|no\.?\s*)?\s*\d+", re.IGNORECASE),
    "a reference to a ticket": re.compile(r"\bthe\s+issue(?:'s|s)?\b|\bissue[\s-]+tracker", re.IGNORECASE),
    "a reference to a work session": re.compile(r"\b(?:in|this|that|earlier|previous|last)\s+session\s+\d+|"
                                                r"\bsession\s+\d+\b", re.IGNORECASE),
    "a GitHub-style number reference": re.compile(r"(?:^|[\s(])#\d{1,5}\b(?![\d.])", re.MULTILINE),
}


def _tree_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no tracked tree to read")
    return [REPO / name for name in sorted(set(out.decode().split("\0"))) if name and (REPO / name).is_file()]


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None  # binary (ONNX graph, weights, images)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_the_tree_has_no_ticket_or_session_references():
    found = []
    for path in _tree_files():
        text = _text(path)
        if text is None:
            continue
        for what, pattern in FORBIDDEN.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(REPO)}:{line}: {what}: {match.group().strip()!r}")
    assert not found, "write the reason or the measurement instead:\n" + "\n".join(found)


@pytest.mark.parametrize("sample", [f"as {TICKET} 12 asks", f"see {TICKET.title()} {'#'}7", f"the {TICKET}'s goals",
                                    f"({'#'}42)", f"re-measured in {SESSION} 3", f"the {TICKET} tracker measured"])
def test_the_patterns_catch_what_they_are_for(sample):
    assert any(p.search(sample) for p in FORBIDDEN.values()), sample


@pytest.mark.parametrize("sample", ["InferenceSession", "create_session(path)", "a session-scoped fixture",
                                    "issues a warning", f"t{TICKET} 3", "color #fff", "x = a#1"])
def test_the_patterns_leave_ordinary_text_alone(sample):
    assert not any(p.search(sample) for p in FORBIDDEN.values()), sample
