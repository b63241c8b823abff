"""``xlm-onnx score``: pseudo-log-likelihood of each sentence on the shared line loop.

Input, error policy and records are :mod:`xlm_onnx.cli.lines`'s, as for ``fill-mask``; with
``--json`` a record carries ``score`` (the PLL sum; ``--per-token`` adds ``tokens`` and
``token_log_probs``).
"""

from __future__ import annotations

import argparse

from ..tasks.choices import METRICS
from . import arguments, lines

TASK = "score"
#: The options ``xlm-onnx bulk score`` shares (their ``dest``).
BULK_OPTIONS = ("metric", "per_token")


def add_parser(sub) -> argparse.ArgumentParser:
    """Adds ``score`` to ``xlm-onnx``'s sub-parsers."""
    return lines.add_task_parser(sub, TASK, "pseudo-log-likelihood of each sentence (higher: more likely)",
                                 "texts", 32, add_options,
                                 batch_help="sentences per call (their masked copies are batched by a token budget)")


def add_options(parser, defaults: bool = True) -> None:
    """The task's options (``defaults=False``: unset is ``None``, for ``bulk``)."""
    parser.add_argument("--metric", default="original" if defaults else None, choices=METRICS,
                        help="word_l2r also masks the later pieces of the scored piece's word (Kauf & Ivanova)")
    parser.add_argument("--per-token", action="store_true", default=False if defaults else None,
                        help="add tokens and token_log_probs (JSON records)")


def options(args: argparse.Namespace) -> dict:
    """The API's task options from :func:`add_options`'s."""
    return {"metric": args.metric or "original", "per_token": bool(args.per_token)}


def run(args: argparse.Namespace, model_dir) -> int:
    """``xlm-onnx score`` on ``model_dir`` (``None``: the demo model); the exit status."""
    from ..tasks.score import Scorer

    scorer = Scorer.from_pretrained(model_dir, provider=args.provider, threads=args.threads)
    request = {**options(args), **arguments.text_options(args)}

    def human(stream, line, result) -> None:
        stream.write(f"{scorer.fields(result)['score']:12.4f}  {line.text}\n")

    task = lines.LineTask(call=lambda texts: list(scorer.score(texts, **request)), fields=scorer.fields, human=human)
    return lines.run_lines(args, task)
