"""The line loop every text task of the CLI shares: one reader, one bad-input policy, one record shape.

::

    TEXT... | - | --input FILE [--input-format text|jsonl]
      ─ line_reader.read_lines ─► Line(number, text | error, id)
      ─ chunks of N lines ─► run_each (xlm_onnx.tasks.base): each text validated on its own, the
                             good ones batched through run_all; a bad one answered with its error
      ─► writer(line, answer, error): the task's terminal lines (Task.show), or one JSON record per
         input line {"line": 3, "id": ..., "text": "...", <Task.fields> | "error": "..."}

``--on-error fail`` (default) stops at the first bad line with exit 2 naming it; ``skip`` answers
it with an error record and goes on, so every input line gets exactly one record.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..errors import Fix, InputError
from ..jsonl import JSONL_SUFFIXES
from ..tasks.base import Task, run_each
from . import line_reader as cin
from . import line_writer as cout

#: Batches of ``--batch-size`` lines per chunk read from a pipe or file; each chunk's records are
#: written and flushed as soon as it is answered (stdin streams with bounded memory).
CHUNK_BATCHES = 4


def add_line_args(parser: argparse.ArgumentParser, batch_size: int, batch_help: str) -> None:
    """The input, output and error-policy options of a line task, and ``--batch-size``."""
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to answer; '-' reads lines from stdin")
    parser.add_argument("--input", metavar="FILE", help="read one text per line (or JSON Lines: --input-format)")
    parser.add_argument("--input-format", choices=cin.INPUT_FORMATS, default="auto",
                        help="jsonl: one {\"text\": ..., \"id\": ...} object per line (auto: by the suffix, "
                             f"{'/'.join(JSONL_SUFFIXES)})")
    parser.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                        help="a bad line: stop with exit 2 (fail), or answer it with an error record and go on (skip)")
    parser.add_argument("--json", action="store_true", help="one JSON record per input line (JSON Lines)")
    parser.add_argument("--batch-size", type=int, default=batch_size, metavar="N", help=batch_help)


@dataclass(frozen=True)
class LineTask:
    """A loaded task and the options of every line.

    Attributes:
        task: The task (its :meth:`~xlm_onnx.tasks.base.Task.fields` and ``show`` write the answers).
        options: Its validated options (:meth:`~xlm_onnx.tasks.base.Task.options`).
        max_rows: Rows per model run.
        max_tokens: Padded tokens per model run.
    """

    task: Task
    options: Any
    max_rows: int | None
    max_tokens: int | None

    def answer(self, lines: list[cin.Line]) -> Iterator[tuple]:
        """Yields ``(line, answer, error)`` in order: every good line answered, each bad one with its error.

        Raises:
            InputError: One that concerns the whole request, not a line (a limit).
        """
        good = [line for line in lines if line.error is None]
        answers = iter(run_each(self.task, [line.text for line in good], self.options, self.max_rows,
                                self.max_tokens))
        for line in lines:
            if line.error is not None:
                yield line, None, line.error
                continue
            result = next(answers)
            if not isinstance(result, InputError):
                yield line, result, None
            elif result.index is None:
                raise result
            else:
                yield line, None, line_error(result, line.number, self.task)


def line_error(exc: InputError, number: int, task: Task) -> str:
    """The API's message in the command line's words: the input line, and the flag that fixes it."""
    def flag(fix: Fix) -> str | None:
        if fix.option not in task.params:
            return None
        param = task.params[fix.option]
        given = param.cli_flag if fix.value is True and param.type is bool else f"{param.cli_flag} {fix.value}"
        return f"pass {given} {fix.effect}"
    return exc.say(f"line {number}", flag)


def json_writer(task: LineTask) -> Callable:
    """Writes one JSON record per line: ``line``, ``id`` (when given), ``text``, then fields or error."""
    def write(line: cin.Line, result: Any, error: str | None) -> None:
        cout.write_json(sys.stdout, line, None if error is not None else task.task.fields(result), error)
    return write


def human_writer(task: LineTask) -> Callable:
    def write(line: cin.Line, result: Any, error: str | None) -> None:
        if error is not None:
            sys.stdout.write(f"{line.text if line.text is not None else ''}\n  error: {error}\n")
        else:
            sys.stdout.write(task.task.show(line.text, result))
    return write


def run_lines(args: argparse.Namespace, task: LineTask, write: Callable | None = None) -> int:
    """Reads every input line, answers it through ``task`` and writes it; the exit status.

    Args:
        args: Parsed options of :func:`add_line_args`.
        task: The task and its options.
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
        answers = task.answer(chunk)
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
