"""``xlm-onnx fill-mask``: the fill-mask task on the shared line loop (:mod:`xlm_onnx.cli.lines`)."""

from __future__ import annotations

import argparse
import warnings

from . import line_writer as cout
from . import lines


def add_parser(sub) -> argparse.ArgumentParser:
    """Adds ``fill-mask`` to ``xlm-onnx``'s sub-parsers; the caller adds ``--model``/``--revision``."""
    fill = sub.add_parser("fill-mask", help="predict <special1> / <mask> / [MASK] tokens")
    lines.add_line_args(fill, "texts with a mask token", batch_size=8)
    fill.add_argument("--top-k", type=int, default=5, metavar="K")
    fill.add_argument("--target", action="append", metavar="WORD",
                      help="score only this word; repeat for several (outside the vocabulary: its first BPE piece)")
    fill.add_argument("--targets", metavar="W1,W2", help="deprecated: comma-separated words; use --target")
    fill.add_argument("--whole-word", action="store_true",
                      help="score each --target as the whole word (all its pieces, by PLL), not one piece")
    return fill



def _targets(args: argparse.Namespace) -> list[str] | None:
    words = list(args.target or [])
    if args.targets is not None:  # one value now: with nargs="+" it swallowed the texts after it
        warnings.warn("--targets is deprecated; it takes one comma-separated value (--targets la,de); "
                      "use --target WORD once per word", FutureWarning, stacklevel=2)
        listed = [w for w in args.targets.split(",") if w]
        if not listed:
            raise ValueError(f"--targets {args.targets!r} names no word")
        words += listed
    return words or None


def fill_mask(args: argparse.Namespace, model_dir) -> int:
    """Runs ``fill-mask`` with parsed ``args`` on ``model_dir`` (``None``: the demo model); exit status.

    Raises:
        InputError: A bad line (``--on-error fail``), naming its line and how many were answered.
    """
    from ..tasks.fill_mask import FillMask

    request = dict(top_k=args.top_k, targets=_targets(args), lang=args.lang, truncation=args.truncation,
                   whole_word_targets=args.whole_word)
    fm = FillMask.from_pretrained(model_dir, provider=args.provider, threads=args.threads,
                                  batch_size=args.batch_size)
    task = lines.LineTask(call=lambda texts: fm(texts, **request), fields=lambda result: {"result": result},
                          human=cout.write_fill_mask)
    return lines.run_lines(args, task)
