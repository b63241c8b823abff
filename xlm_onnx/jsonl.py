"""Input lines as requests: one line of a text or JSON Lines file → its text, or why it has none.

The command line's ``--input FILE`` / stdin and ``xlm-onnx bulk`` read lines here, so a line gets
the same message in both. A line is split on ``\\n`` only (a ``\\r`` before it is dropped), read
as UTF-8, and, in JSON Lines, must be an object whose text field is a non-blank string::

    b'{"id": 7, "text": "Bonjour <mask>."}\\n' ─read_line─► Record(values={...}, text="Bonjour <mask>.")
    b'{"id": 8, "text": 12}\\n'                ─read_line─► Record(values={...}, error='line 2: "text" is int, ...')

A blank text is refused for every task, as a blank line is: an input line is a request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import json_error

#: File suffixes read as JSON Lines when the format is ``auto`` (anything else: one text per line).
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def is_jsonl(path: str) -> bool:
    """Whether ``auto`` reads ``path`` as JSON Lines (by its suffix)."""
    return path.lower().endswith(JSONL_SUFFIXES)


@dataclass(frozen=True)
class Record:
    """One input line.

    Attributes:
        values: The JSON object (``None`` for a text line, or a line that is no object).
        text: The text to answer; ``None`` when there is none.
        error: Why the line is not a request (then nothing is answered for it).
    """

    values: dict[str, Any] | None
    text: str | None
    error: str | None = None


def blank(number: int, text: str) -> str | None:
    """``line N is blank`` for a text of white space only, else ``None``."""
    return None if text.strip() else f"line {number} is blank"


def read_line(number: int, raw: bytes, jsonl: bool, field: str = "text") -> Record:
    """Line ``number`` (1-based) as a :class:`Record`: ``raw`` with or without its ``\\n``; ``field``
    names the text in a JSON Lines object."""
    raw = raw[:-1] if raw.endswith(b"\n") else raw
    raw = raw[:-1] if raw.endswith(b"\r") else raw  # CRLF files
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Record(None, None, f"line {number} is not valid UTF-8 ({exc.reason} at byte {exc.start})")
    if not jsonl:
        return Record(None, line, blank(number, line))
    if not line.strip():
        return Record(None, None, f"line {number} is blank (expected a JSON object with a \"{field}\" field)")
    try:
        values = json.loads(line)
    except json.JSONDecodeError as exc:
        return Record(None, None, f"line {number} is not valid JSON ({json_error(exc)})")
    if not isinstance(values, dict):
        return Record(None, None, f"line {number} is a JSON {type(values).__name__}, not an object with a "
                                  f"\"{field}\" field")
    text = values.get(field)
    if not isinstance(text, str):
        got = f"no \"{field}\" field" if field not in values else f"\"{field}\" is {type(text).__name__}, not a string"
        return Record(values, None, f"line {number}: {got}")
    return Record(values, text, blank(number, text))
