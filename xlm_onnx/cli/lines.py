"""The line loop every text task of the CLI shares (``fill-mask``, ``embed``, ``score``).

One reader, one error policy and one record shape for all three::

    TEXT... | - | --input FILE [--input-format text|jsonl]
      ─ line_reader.read_lines ─► Line(number, text | error, id)
      ─ chunks of N lines ─► answer(): good lines batched through the Python API;
                             a bad line (blank, not UTF-8, bad JSON, API InputError) answered alone
      ─► writer(line, answer, error): a human line, or one JSON record per input line
         {"line": 3, "id": ..., "text": "...", <task fields> | "error": "..."}

``--on-error fail`` (default) stops at the first bad line with exit 2 naming it; ``skip`` answers
it with an error record and goes on, so every input line gets exactly one record.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from ..errors import InputError, message_at
from ..jsonl import JSONL_SUFFIXES
from . import arguments
from . import line_reader as cin
from . import line_writer as cout

#: Batches of ``--batch-size`` lines per chunk read from a pipe or file; each chunk's records are
#: written and flushed as soon as it is answered (stdin streams with bounded memory).
CHUNK_BATCHES = 4


def add_line_args(parser: argparse.ArgumentParser, text_help: str, batch_size: int,
                  batch_help: str = "sentences per model run") -> None:
    """The input, error-policy and runtime options of a line task."""
    parser.add_argument("texts", nargs="*", metavar="TEXT", help=f"{text_help}; '-' reads lines from stdin")
    parser.add_argument("--input", metavar="FILE", help="read one text per line (or JSON Lines: --input-format)")
    parser.add_argument("--input-format", choices=cin.INPUT_FORMATS, default="auto",
                        help="jsonl: one {\"text\": ..., \"id\": ...} object per line (auto: by the suffix, "
                             f"{'/'.join(JSONL_SUFFIXES)})")
    parser.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                        help="a bad line: stop with exit 2 (fail), or answer it with an error record and go on (skip)")
    arguments.add_text(parser)
    parser.add_argument("--json", action="store_true", help="one JSON record per input line (JSON Lines)")
    arguments.add_runtime(parser)
    parser.add_argument("--batch-size", type=int, default=batch_size, metavar="N", help=batch_help)


def add_task_parser(sub, name: str, help: str, text_help: str, batch_size: int,
                    add_options: Callable[[argparse.ArgumentParser], None],
                    batch_help: str = "sentences per model run") -> argparse.ArgumentParser:
    """A text task's command: its line options (:func:`add_line_args`), its own options, the model."""
    parser = sub.add_parser(name, help=help)
    add_line_args(parser, text_help, batch_size, batch_help)
    add_options(parser)
    arguments.add_model(parser)
    return parser


@dataclass(frozen=True)
class LineTask:
    """What a task adds to the shared loop.

    Attributes:
        call: Answers a list of texts through the Python API (one answer per text, in order);
            raises :class:`~xlm_onnx.errors.InputError` with ``index`` for a bad text.
        fields: One answer as the JSON record's task fields (``{"result": ...}``,
            ``{"embedding": [...]}``, ``{"score": ...}``).
        human: Writes one answer for a terminal.
    """

    call: Callable[[list[str]], Sequence[Any]]
    fields: Callable[[Any], dict]
    human: Callable[[Any, cin.Line, Any], None]


def line_error(exc: InputError, number: int) -> str:
    """The API's message, naming the input line instead of the index inside a chunk (and the option)."""
    return message_at(exc, f"line {number}").replace("pass truncation=True", "pass --truncation")


def answer(call: Callable[[list[str]], Sequence[Any]], lines: list[cin.Line]) -> Iterator[tuple]:
    """Yields ``(line, answer, error)`` in order: good lines batched, each bad line answered alone."""
    start = 0
    while start < len(lines):
        stop = next((i for i in range(start, len(lines)) if lines[i].error is not None), len(lines))
        try:
            results = call([line.text for line in lines[start:stop]]) if stop > start else []
        except InputError as exc:
            if exc.index is None:  # top_k, targets, lang: the whole request is wrong, not a line
                raise
            stop = start + exc.index  # the lines before it are valid: answer them, then the error
            results = call([line.text for line in lines[start:stop]]) if stop > start else []
            error = line_error(exc, lines[stop].number)
        else:
            error = lines[stop].error if stop < len(lines) else None
        yield from ((line, result, None) for line, result in zip(lines[start:stop], results))
        if stop < len(lines):
            yield lines[stop], None, error
        start = stop + 1


def json_writer(task: LineTask) -> Callable:
    """Writes one JSON record per line: ``line``, ``id`` (when given), ``text``, then fields or error."""
    def write(line: cin.Line, result: Any, error: str | None) -> None:
        cout.write_json(sys.stdout, line, None if error is not None else task.fields(result), error)
    return write


def human_writer(task: LineTask) -> Callable:
    def write(line: cin.Line, result: Any, error: str | None) -> None:
        if error is not None:
            sys.stdout.write(f"{line.text if line.text is not None else ''}\n  error: {error}\n")
        else:
            task.human(sys.stdout, line, result)
    return write


def run_lines(args: argparse.Namespace, task: LineTask, write: Callable | None = None) -> int:
    """Reads every input line, answers it through ``task`` and writes it; the exit status.

    Args:
        args: Parsed options of :func:`add_line_args`.
        task: The task's call and output shapes.
        write: ``write(line, answer, error)``; default: JSON records with ``--json``, else human lines.

    Raises:
        InputError: A bad line with ``--on-error fail``, naming it and how many lines were answered.
    """
    if not isinstance(args.batch_size, int) or args.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, not {args.batch_size}")
    items = cin.sources(args.texts, args.input, args.input_format)
    write = write or (json_writer(task) if args.json else human_writer(task))
    interactive = any(i.path == cin.STDIN for i in items) and sys.stdin.isatty()
    progress = cout.Progress(None)
    if progress.enabled:
        progress.total = cin.count_lines(items)
    done = failed = 0
    stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
    for chunk in cin.chunks(cin.read_lines(items, stdin), 1 if interactive else CHUNK_BATCHES * args.batch_size):
        answers = answer(task.call, chunk)
        if args.on_error == "skip":
            answers = list(answers)  # answer the whole chunk before printing over the progress line
        progress.clear()
        for line, result, error in answers:
            if error is not None and args.on_error == "fail":
                sys.stdout.flush()
                raise InputError(f"{error}; stopped there, {done:,} line{'s'[:done != 1]} before it answered "
                                 "(--on-error skip answers the rest)")
            write(line, result, error)
            done, failed = done + 1, failed + (error is not None)
        sys.stdout.flush()  # stream: each chunk's records as soon as they are ready
        progress.update(done)
    progress.close(done)
    if failed:
        print(f"xlm-onnx: warning: {failed:,} of {done:,} lines answered with an error record", file=sys.stderr)
    return 0
