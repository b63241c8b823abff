"""Input lines of ``xlm-onnx TASK``: positional texts, stdin (``-``) and ``--input FILE``.

Every input line becomes one :class:`Line` with its global 1-based number, so every line is
answered by exactly one output record, and errors name the line a user can open in an editor.
Lines that cannot be requests (blank, bad UTF-8, bad JSON, no ``text`` field) carry their
error instead of a text; the caller answers them with an error record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Any, Iterable, Iterator

from ..jsonl import blank, is_jsonl, read_line

INPUT_FORMATS = ("auto", "text", "jsonl")
STDIN = "-"


@dataclass(frozen=True)
class Line:
    """One input line.

    Attributes:
        number: 1-based position among all inputs (positional texts and stdin or file lines,
            in order); for ``--input FILE`` alone, the file's line number.
        text: The request text; ``None`` when the line could not be read as one.
        id: The JSON Lines record's ``id`` (any JSON value), when ``has_id``.
        has_id: The record had an ``id`` field (kept even when it is ``null``).
        error: Why the line is not a request (blank, not UTF-8, not JSON, no text field).
    """

    number: int
    text: str | None
    id: Any = None
    has_id: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Source:
    """Where input lines come from: a literal text, or a stream/file of lines."""

    text: str | None = None
    path: str | None = None  # "-" for stdin
    jsonl: bool = False


def sources(texts: list[str], input_path: str | None, input_format: str) -> list[Source]:
    """Positional texts (``-`` is stdin) or ``--input FILE``, as :class:`Source` items.

    Raises:
        ValueError: Both forms, neither, or stdin named twice.
    """
    if input_path is not None and texts:
        raise ValueError("give texts or --input FILE, not both")
    if input_path is None and not texts:
        raise ValueError("nothing to do: give a TEXT, '-' for stdin, or --input FILE")
    paths = [input_path] if input_path is not None else [t for t in texts if t == STDIN]
    if len(paths) > 1:
        raise ValueError("'-' (stdin) can be given once")

    def from_path(path: str) -> Source:
        jsonl = input_format == "jsonl" or (input_format == "auto" and is_jsonl(path))
        return Source(path=path, jsonl=jsonl)

    if input_path is not None:
        if input_path != STDIN and not os.path.isfile(input_path):
            raise FileNotFoundError(f"--input {input_path}: no such file")
        return [from_path(input_path)]
    return [from_path(t) if t == STDIN else Source(text=t) for t in texts]


def read_lines(items: list[Source], stdin: IO[bytes]) -> Iterator[Line]:
    """Yields every input line in order, numbered globally from 1, lazily (stdin streams)."""
    number = 0
    for item in items:
        if item.text is not None:
            number += 1
            yield _plain(number, item.text)
            continue
        with _open(item.path, stdin) as stream:
            for raw in stream:
                number += 1
                # A text stream stands in for stdin when sys.stdin is replaced (tests, notebooks).
                yield _parse(number, raw if isinstance(raw, bytes) else raw.encode("utf-8"), item.jsonl)


def count_lines(items: list[Source]) -> int | None:
    """Total number of lines, when known without consuming stdin (for the progress display)."""
    total = 0
    for item in items:
        if item.text is not None:
            total += 1
        elif item.path == STDIN:
            return None
        else:
            with open(item.path, "rb") as handle:
                last, count = b"", 0
                for block in iter(lambda: handle.read(1 << 20), b""):
                    count += block.count(b"\n")
                    last = block[-1:]
                total += count + (1 if last not in (b"", b"\n") else 0)
    return total


def chunks(lines: Iterable[Line], size: int) -> Iterator[list[Line]]:
    """Groups lines by ``size``: one model call per group, output streamed after each."""
    chunk: list[Line] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Borrowed:
    """Context manager around stdin that does not close it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream

    def __enter__(self) -> IO[bytes]:
        return self.stream

    def __exit__(self, *exc) -> None:
        return None


def _open(path: str, stdin: IO[bytes]):
    # Bytes, not text: lines split on "\n" only (text mode would also split on "\r", "\x85", ...,
    # shifting line numbers), and a line that is not UTF-8 becomes that line's error.
    return _Borrowed(stdin) if path == STDIN else open(path, "rb")


def _plain(number: int, text: str) -> Line:
    return Line(number, text, error=blank(number, text))


def _parse(number: int, raw: bytes, jsonl: bool) -> Line:
    record = read_line(number, raw, jsonl)
    values = record.values or {}
    return Line(number, record.text, values.get("id"), "id" in values, record.error)
