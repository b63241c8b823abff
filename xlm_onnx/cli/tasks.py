"""``xlm-onnx TASK``: one command per registered task, generated from the task's parameters.

Nothing here knows a task: each name of :func:`~xlm_onnx.tasks.registry.names` (the built-in
tasks, and those of installed packages' ``xlm_onnx.tasks`` entry points) gets a command whose
options are its :attr:`~xlm_onnx.tasks.base.Task.params`, on the shared line loop
(:mod:`xlm_onnx.cli.lines`), and ``--npy`` where the task names an ``array_field``.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from ..front import arguments
from ..tasks import registry
from . import lines

#: ``--batch-size`` of a task that sets no rows per run (it batches by a token budget).
CHUNK_SIZE = 32


def add_parsers(sub) -> None:
    """Adds a command per registered task to ``xlm-onnx``'s sub-parsers."""
    for name in registry.names():
        cls = registry.task_class(name)
        rows = cls.batch_rows if isinstance(cls.batch_rows, int) else None
        summary = cls.summary or cls.purpose
        parser = sub.add_parser(name, aliases=list(cls.aliases), help=summary,
                                description=f"xlm-onnx {name}: {summary}, one answer per input line")
        parser.set_defaults(task_name=name)  # args.command is the alias when one is used
        lines.add_line_args(parser, rows or CHUNK_SIZE, "texts per model run" if rows else
                            "texts per call (their model rows are batched by a token budget)")
        arguments.add_params(parser, cls.params.on("cli"))
        if cls.array_field is not None:
            parser.add_argument("--npy", metavar="FILE",
                                help=f"write each line's {cls.array_field} into a float32 [lines, dim] .npy array "
                                     "instead of printing")
        arguments.add_runtime(parser)
        arguments.add_model(parser)


def run(args: argparse.Namespace, model_dir) -> int:
    """``xlm-onnx TASK`` on ``model_dir`` (``None``: the task's embedded model); the exit status."""
    from .npy import NpyRows

    cls = registry.task_class(args.task_name)
    field = cls.array_field
    rows = NpyRows(args.npy, field) if getattr(args, "npy", None) else None  # a bad path fails before the model loads
    task = cls.from_pretrained(model_dir, provider=args.provider, threads=args.threads)
    options = task.options(**arguments.param_values(args, cls.params))
    max_rows, max_tokens = task.run_size(task.batch_key(options))
    line_task = lines.LineTask(task, options, None if max_rows is None else args.batch_size, max_tokens)
    if rows is None:
        return lines.run_lines(args, line_task)
    try:
        status = lines.run_lines(args, line_task, write=lambda line, answer, error: rows(
            line, None if error is not None else task.fields(answer)[field], error))
    except InputError as exc:  # the array is written whole or not at all: nothing was answered
        message = str(exc).split("; stopped there,", 1)[0]
        raise InputError(f"{message}; stopped there, nothing written to {args.npy} "
                         "(--on-error skip writes a row of NaN for it and goes on)") from None
    print(f"wrote {rows.save():,} {field}s to {args.npy}", file=sys.stderr)
    return status
