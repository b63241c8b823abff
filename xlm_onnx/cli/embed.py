"""``xlm-onnx embed``: sentence embeddings on the shared line loop.

Input, error policy and records are :mod:`xlm_onnx.cli.lines`'s, as for ``fill-mask``: texts
from arguments, ``-`` (stdin) or ``--input FILE`` (text or JSON Lines with ``id``), one answer per
input line in input order; with ``--json`` a record carries ``embedding`` (a list of floats).
``embed --npy FILE`` writes a float32 ``[lines, dim]`` array instead (row i = input line i; a bad
line skipped with ``--on-error skip`` is a row of NaN), written whole or not at all.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..tasks.choices import POOLINGS
from . import arguments, lines

TASK = "embed"
#: The options ``xlm-onnx bulk embed`` shares (their ``dest``).
BULK_OPTIONS = ("pooling", "normalize")


def add_parser(sub) -> argparse.ArgumentParser:
    """Adds ``embed`` to ``xlm-onnx``'s sub-parsers."""
    embed = lines.add_task_parser(sub, TASK, "sentence embeddings (mean or <s> pooling of the last hidden state)",
                                  "texts", 32, add_options)
    embed.add_argument("--npy", metavar="FILE", help="write a float32 [n, dim] .npy array instead of printing")
    return embed


def add_options(parser, defaults: bool = True) -> None:
    """The task's options (``defaults=False``: unset is ``None``, for ``bulk``)."""
    parser.add_argument("--pooling", default="mean" if defaults else None, choices=POOLINGS,
                        help="mean of every token, or the <s> token's state (default mean)")
    parser.add_argument("--normalize", action="store_true", default=False if defaults else None,
                        help="unit-length vectors")


def options(args: argparse.Namespace) -> dict:
    """The API's task options from :func:`add_options`'s."""
    return {"pooling": args.pooling or "mean", "normalize": bool(args.normalize)}


def _embed_human(stream, line, vector) -> None:
    head = " ".join(f"{x:+.4f}" for x in vector[:4])
    stream.write(f"[{head} ...] dim {len(vector)}, norm {np.linalg.norm(vector):.4f}  {line.text}\n")


class _NpyRows:
    """Collects one row per input line and writes the ``.npy`` at the end, atomically."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"--npy {path}: directory {self.path.parent} does not exist")
        self.rows: list[np.ndarray | None] = []

    def __call__(self, line, vector, error) -> None:
        self.rows.append(None if error is not None else vector)

    def save(self) -> int:
        dim = next((len(r) for r in self.rows if r is not None), 0)
        array = np.full((len(self.rows), dim), np.nan, dtype=np.float32)
        for i, row in enumerate(self.rows):
            if row is not None:
                array[i] = row
        # Temporary file + rename: an interrupted run leaves no half-written array behind.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            # mkstemp creates 0600 whatever the umask; the file gets the mode open() would give it.
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                np.save(f, array)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(self.rows)


def run(args: argparse.Namespace, model_dir) -> int:
    """``xlm-onnx embed`` on ``model_dir`` (``None``: the demo model); the exit status."""
    from ..tasks.embed import Embedder

    rows = _NpyRows(args.npy) if args.npy else None  # a bad --npy path fails before the model loads
    embedder = Embedder.from_pretrained(model_dir, provider=args.provider, threads=args.threads)
    request = {**options(args), **arguments.text_options(args), "batch_size": args.batch_size}
    task = lines.LineTask(call=lambda texts: list(embedder.embed(texts, **request)), fields=embedder.fields,
                          human=_embed_human)
    if rows is None:
        return lines.run_lines(args, task)
    try:
        status = lines.run_lines(args, task, write=rows)
    except InputError as exc:  # the array is written whole or not at all: nothing was answered
        message = str(exc).split("; stopped there,", 1)[0]
        raise InputError(f"{message}; stopped there, nothing written to {args.npy} "
                         "(--on-error skip writes a row of NaN for it and goes on)") from None
    print(f"wrote {rows.save():,} embeddings to {args.npy}", file=sys.stderr)
    return status


def _umask() -> int:
    """The process umask (Linux: read, not set; elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
