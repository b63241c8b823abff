"""``xlm-onnx`` command line: the parser, the dispatch, and one error policy for every command.

Errors the user can fix print one line (``xlm-onnx: error: ...``) and exit 2; no traceback
unless ``XLM_ONNX_DEBUG=1``; the exit status of each exception type is the one error table's
(:data:`xlm_onnx.errors.ERRORS`). ``check`` exits 1 when a gate fails. The task commands are
generated from the registry (:mod:`xlm_onnx.cli.tasks`); input reading, output records and model
lookup live in ``line_reader``, ``line_writer`` and :mod:`xlm_onnx.lookup`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import sys
import warnings

from .. import __version__
from .._log import OneLineLog
from ..bulk import command as bulk_command
from ..errors import one_line, outcome
from ..front.arguments import Parser
from ..lookup import model_dir
from ..serve import cli as serve_cli
from . import model as model_cli
from . import export as export_cli
from . import tasks as task_cli

#: Commands that run on one model (``--model`` / ``MODEL``) besides the tasks': name -> run(args, model_dir).
MODEL_COMMANDS = {"serve": serve_cli.run, "bulk": bulk_command.run, "info": model_cli.info, "check": model_cli.check}


def parser() -> argparse.ArgumentParser:
    """The ``xlm-onnx`` parser: a command per registered task, then serve, bulk, info, check, export."""
    top = Parser(prog="xlm-onnx", description="XLM models with ONNX Runtime, no torch: a command per task, a server, bulk jobs.")
    top.add_argument("--version", action="version", version=f"xlm-onnx {__version__}")
    sub = top.add_subparsers(dest="command", required=True, parser_class=Parser)
    task_cli.add_parsers(sub)  # one per registered task (entry points of installed packages included)
    serve_cli.add_parser(sub)  # serve: its [serve] extra is imported only when it runs
    bulk_command.add_parser(sub)  # bulk TASK (Ray is imported only when it runs)
    model_cli.add_parsers(sub)  # info, check
    export_cli.add_parsers(sub)  # export
    return top


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"xlm-onnx: warning: {' '.join(str(message).split())}", file=sys.stderr)


@contextlib.contextmanager
def _one_line_output():
    """Warnings and the package's log records as ``xlm-onnx: warning: ...`` lines while a command
    runs; the previous settings come back after it (``main`` may be called in-process)."""
    logger = logging.getLogger("xlm_onnx")
    # Once per message, bounded in lines and bytes (xlm_onnx._log): a task command calls the API once
    # per chunk, and its warnings (a target outside the vocabulary) would repeat for every chunk.
    handler, propagate, showwarning = OneLineLog(), logger.propagate, warnings.showwarning
    warnings.showwarning = _one_line_warning  # a command line prints one line, not a source excerpt
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        handler.flush()  # the counts of lines held back
        logger.removeHandler(handler)
        logger.propagate = propagate
        warnings.showwarning = showwarning


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xlm-onnx`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    with _one_line_output():
        return _run(argv)


def _run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.command == "export":
        handler = functools.partial(export_cli.export, args)
    else:  # every other command runs on one model: --model / MODEL, resolved offline
        run = MODEL_COMMANDS.get(args.command, task_cli.run)
        handler = lambda: run(args, model_dir(args.model, args.revision))  # noqa: E731
    try:
        return handler()
    except BrokenPipeError:  # `... | head`: the reader left; stop quietly (Python docs' recipe, so the
        devnull = os.open(os.devnull, os.O_WRONLY)  # flush at exit does not complain about the pipe again)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (Exception, KeyboardInterrupt) as exc:  # one line, never a traceback (unless asked for)
        if os.environ.get("XLM_ONNX_DEBUG") and not isinstance(exc, KeyboardInterrupt):
            raise
        result = outcome(exc)  # the one error table (xlm_onnx.errors.ERRORS)
        if isinstance(exc, KeyboardInterrupt):
            print("xlm-onnx: interrupted", file=sys.stderr)
        else:
            kind = f"internal error ({type(exc).__name__})" if result.internal else "error"
            print(f"xlm-onnx: {kind}: {one_line(exc)}", file=sys.stderr)
        return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
