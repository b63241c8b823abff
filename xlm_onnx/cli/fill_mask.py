"""``xlm-onnx fill-mask``: the fill-mask task on the shared line loop (:mod:`xlm_onnx.cli.lines`)."""

from __future__ import annotations

import argparse
import warnings

from . import arguments, lines
from . import line_writer as cout

TASK = "fill-mask"
#: The options ``xlm-onnx bulk fill-mask`` shares (their ``dest``).
BULK_OPTIONS = ("top_k", "target")


def add_parser(sub) -> argparse.ArgumentParser:
    """Adds ``fill-mask`` to ``xlm-onnx``'s sub-parsers."""
    fill = lines.add_task_parser(sub, TASK, "predict <special1> / <mask> / [MASK] tokens", "texts with a mask token",
                                 8, add_options)
    fill.add_argument("--targets", metavar="W1,W2", help="deprecated: comma-separated words; use --target")
    fill.add_argument("--whole-word", action="store_true",
                      help="score each --target as the whole word (all its pieces, by PLL), not one piece")
    return fill


def add_options(parser, defaults: bool = True) -> None:
    """The task's options (``defaults=False``: unset is ``None``, for ``bulk``)."""
    parser.add_argument("--top-k", type=int, default=5 if defaults else None, metavar="K",
                        help="predictions per mask (default 5)")
    parser.add_argument("--target", action="append", metavar="WORD",
                        help="score only this word; repeat for several (outside the vocabulary: its first BPE piece)")


def options(args: argparse.Namespace) -> dict:
    """The API's task options from :func:`add_options`'s (and the deprecated ``--targets``)."""
    return {"top_k": 5 if args.top_k is None else args.top_k, "targets": _targets(args)}


def _targets(args: argparse.Namespace) -> list[str] | None:
    words = list(args.target or [])
    deprecated = getattr(args, "targets", None)
    if deprecated is not None:  # one value now: with nargs="+" it swallowed the texts after it
        warnings.warn("--targets is deprecated; it takes one comma-separated value (--targets la,de); "
                      "use --target WORD once per word", FutureWarning, stacklevel=2)
        listed = [w for w in deprecated.split(",") if w]
        if not listed:
            raise ValueError(f"--targets {deprecated!r} names no word")
        words += listed
    return words or None


def run(args: argparse.Namespace, model_dir) -> int:
    """Runs ``fill-mask`` with parsed ``args`` on ``model_dir`` (``None``: the demo model); exit status.

    Raises:
        InputError: A bad line (``--on-error fail``), naming its line and how many were answered.
    """
    from ..tasks.fill_mask import FillMask

    request = {**options(args), **arguments.text_options(args), "whole_word_targets": args.whole_word}
    fm = FillMask.from_pretrained(model_dir, provider=args.provider, threads=args.threads,
                                  batch_size=args.batch_size)
    task = lines.LineTask(call=lambda texts: fm(texts, **request), fields=fm.fields, human=cout.write_fill_mask)
    return lines.run_lines(args, task)
