"""``xlm-onnx embed`` and ``xlm-onnx score``: the sentence-level tasks on the shared line loop.

Input, error policy and records are :mod:`xlm_onnx.cli.lines`'s, as for ``fill-mask``: texts
from arguments, ``-`` (stdin) or ``--input FILE`` (text or JSON Lines with ``id``), one answer per
input line in input order. With ``--json`` a record carries ``embedding`` (list of floats) or
``score`` (the PLL sum; ``--per-token`` adds ``tokens`` and ``token_log_probs``).
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

from . import lines


def add_parsers(sub) -> list[argparse.ArgumentParser]:
    """Adds ``embed`` and ``score``; returns their parsers (the caller adds ``--model``/``--revision``)."""
    embed = sub.add_parser("embed", help="sentence embeddings (mean or <s> pooling of the last hidden state)")
    lines.add_line_args(embed, "texts", batch_size=32)
    embed.add_argument("--pooling", default="mean", choices=("mean", "cls"))
    embed.add_argument("--normalize", action="store_true", help="unit-length vectors")
    embed.add_argument("--npy", metavar="FILE", help="write a float32 [n, dim] .npy array instead of printing")

    score = sub.add_parser("score", help="pseudo-log-likelihood of each sentence (higher: more likely)")
    lines.add_line_args(score, "texts", batch_size=32,
                        batch_help="sentences per call (their masked copies are batched by a token budget)")
    score.add_argument("--metric", default="original", choices=("original", "word_l2r"),
                       help="word_l2r also masks the later pieces of the scored piece's word (Kauf & Ivanova)")
    score.add_argument("--per-token", action="store_true", help="with --json: add tokens and token_log_probs")
    return [embed, score]


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
            with os.fdopen(fd, "wb") as f:
                np.save(f, array)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(self.rows)


def run_embed(args: argparse.Namespace, model_dir) -> int:
    """``xlm-onnx embed`` on ``model_dir`` (``None``: the demo model); the exit status."""
    from ..tasks.embed import Embedder

    rows = _NpyRows(args.npy) if args.npy else None  # a bad --npy path fails before the model loads
    embedder = Embedder.from_pretrained(model_dir, provider=args.provider, threads=args.threads)
    options = dict(pooling=args.pooling, normalize=args.normalize, batch_size=args.batch_size, lang=args.lang,
                   truncation=args.truncation)
    task = lines.LineTask(call=lambda texts: list(embedder.embed(texts, **options)),
                          fields=lambda vector: {"embedding": vector.tolist()}, human=_embed_human)
    if rows is None:
        return lines.run_lines(args, task)
    status = lines.run_lines(args, task, write=rows)
    print(f"wrote {rows.save():,} embeddings to {args.npy}", file=sys.stderr)
    return status


def run_score(args: argparse.Namespace, model_dir) -> int:
    """``xlm-onnx score`` on ``model_dir`` (``None``: the demo model); the exit status."""
    from ..tasks.score import Scorer

    scorer = Scorer.from_pretrained(model_dir, provider=args.provider, threads=args.threads)

    def fields(result) -> dict:
        out = {"score": result.score}
        if args.per_token:
            out.update(tokens=list(result.tokens), token_log_probs=list(result.token_log_probs))
        return out

    task = lines.LineTask(
        call=lambda texts: scorer.score(texts, metric=args.metric, per_token=True, lang=args.lang,
                                        truncation=args.truncation),
        fields=fields, human=lambda stream, line, result: stream.write(f"{result.score:12.4f}  {line.text}\n"))
    return lines.run_lines(args, task)
