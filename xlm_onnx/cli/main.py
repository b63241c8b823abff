"""``xlm-onnx`` command line: the parser, the dispatch, and one error policy for every command.

Errors the user can fix print one line (``xlm-onnx: error: ...``) and exit 2; no traceback
unless ``XLM_ONNX_DEBUG=1``. ``check`` exits 1 when a gate fails. Each command lives in its own
module (see :mod:`xlm_onnx.cli`); input reading, output records and model lookup live in
``line_reader``, ``line_writer`` and :mod:`xlm_onnx.lookup`.
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
from .. import format as fmt
from .._log import OneLineLog
from ..bulk import command as bulk_command
from ..errors import ModelFormatError, XLMOnnxError
from ..serve import cli as serve_cli
from . import check as check_cli
from . import export as export_cli
from .task_commands import COMMANDS

USER_ERRORS = (XLMOnnxError, ValueError, TypeError, OSError, NotImplementedError)
#: Commands that run on one model (``--model`` / ``MODEL``): name -> run(args, model_dir).
MODEL_COMMANDS = {**{name: command.run for name, command in COMMANDS.items()}, "serve": serve_cli.run,
                  "bulk": bulk_command.run, "info": check_cli.info, "check": check_cli.check}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlm-onnx", description="XLM fill-mask with ONNX Runtime, no torch.")
    parser.add_argument("--version", action="version", version=f"xlm-onnx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():  # fill-mask, embed, score
        command.add_parser(sub)
    serve_cli.add_parser(sub)  # serve: its [serve] extra is imported only when it runs
    bulk_command.add_parser(sub)  # bulk (Ray is imported only when it runs)
    check_cli.add_parsers(sub)  # info, check
    export_cli.add_parsers(sub)  # export, bench
    return parser


def _model_dir(spec, revision):
    """``--model`` / ``MODEL``: resolved offline; ``None`` is the embedded demo model."""
    if spec is None:
        if revision is not None:
            raise ValueError("--revision needs --model (the embedded demo model has no revisions)")
        return None
    from ..lookup import resolve_model

    path = resolve_model(spec, revision)
    if not (path / fmt.MANIFEST_FILE).is_file() and (path / "config.json").is_file():
        raise ModelFormatError(f"{path}: a Hugging Face checkpoint, not an xlm-onnx model directory; "
                               f"convert it first: xlm-onnx export {spec} OUT_DIR")
    return path


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"xlm-onnx: warning: {' '.join(str(message).split())}", file=sys.stderr)


@contextlib.contextmanager
def _one_line_output():
    """Warnings and the package's log records as ``xlm-onnx: warning: ...`` lines while a command
    runs; the previous settings come back after it (``main`` may be called in-process)."""
    logger = logging.getLogger("xlm_onnx")
    # Once per message, bounded in lines and bytes (xlm_onnx._log): fill-mask calls the API once
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
    if argv[:1] == ["bench"]:  # the benchmark owns its options
        handler = functools.partial(export_cli.bench, argv[1:])
    else:
        args = _parser().parse_args(argv)
        if args.command == "export":
            handler = functools.partial(export_cli.export, args)
        else:  # every other command runs on one model: --model / MODEL, resolved offline
            handler = lambda: MODEL_COMMANDS[args.command](args, _model_dir(args.model, args.revision))  # noqa: E731
    try:
        return handler()
    except KeyboardInterrupt:
        print("xlm-onnx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; stop quietly (Python docs' recipe, so the
        devnull = os.open(os.devnull, os.O_WRONLY)  # flush at exit does not complain about the pipe again)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # one line, never a traceback (unless asked for)
        if os.environ.get("XLM_ONNX_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        kind = "error" if isinstance(exc, USER_ERRORS) else f"internal error ({type(exc).__name__})"
        print(f"xlm-onnx: {kind}: {message}", file=sys.stderr)
        return 2 if isinstance(exc, USER_ERRORS) else 1


if __name__ == "__main__":
    sys.exit(main())
