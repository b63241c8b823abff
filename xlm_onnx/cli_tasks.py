"""``xlm-onnx embed`` and ``xlm-onnx score``: the sentence-level tasks on the command line.

Kept apart from ``cli.py``'s fill-mask path. Texts come from arguments, ``-`` (stdin, one per
line) or ``--input FILE``; blank lines are skipped, as ``fill-mask`` does. Answers come in input
order, one per text: a human line, or with ``--json`` one JSON object per line (``embedding`` /
``score``, plus ``tokens`` and ``token_log_probs`` with ``--per-token``). ``embed --npy FILE``
writes a float32 ``[n, dim]`` array instead of printing vectors.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import islice
from typing import Iterator

import numpy as np

#: Texts read and answered at a time, so stdin streams with bounded memory (except --npy).
CHUNK = 256


def add_parsers(sub) -> None:
    """Adds the ``embed`` and ``score`` sub-commands to ``xlm-onnx``'s sub-parsers."""
    embed = sub.add_parser("embed", help="sentence embeddings (mean or <s> pooling of the last hidden state)")
    _common(embed)
    embed.add_argument("--pooling", default="mean", choices=("mean", "cls"))
    embed.add_argument("--normalize", action="store_true", help="unit-length vectors")
    embed.add_argument("--npy", metavar="FILE", help="write a float32 [n, dim] .npy array instead of printing")

    score = sub.add_parser("score", help="pseudo-log-likelihood of each sentence (higher: more likely)")
    _common(score)
    score.add_argument("--metric", default="original", choices=("original", "word_l2r"),
                       help="word_l2r also masks the later pieces of the scored piece's word (Kauf & Ivanova)")
    score.add_argument("--per-token", action="store_true", help="with --json: add tokens and token_log_probs")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts; '-' reads lines from stdin")
    parser.add_argument("--input", metavar="FILE", help="read texts from FILE, one per line")
    parser.add_argument("--model", metavar="DIR", help="model directory (default: the embedded demo model)")
    parser.add_argument("--lang", help="language code, for models with language embeddings")
    parser.add_argument("--truncation", action="store_true", help="cut texts longer than the model maximum")
    parser.add_argument("--json", action="store_true", help="print one JSON object per input line (JSON Lines)")
    parser.add_argument("--provider", default="cpu", help="cpu, cuda or tensorrt")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: ORT's choice)")


def _texts(args: argparse.Namespace) -> Iterator[str]:
    if not args.texts and not args.input:
        raise ValueError("no input: give TEXT arguments, '-' for stdin, or --input FILE")
    sources = [(t, None) for t in args.texts] + ([(None, args.input)] if args.input else [])
    for text, path in sources:
        if text is not None and text != "-":
            yield text
            continue
        handle = sys.stdin if path is None else open(path, encoding="utf-8")
        try:
            for line in handle:
                line = line.rstrip("\n")
                if line.strip():
                    yield line
        finally:
            if path is not None:
                handle.close()


def _chunks(args: argparse.Namespace) -> Iterator[list[str]]:
    texts = _texts(args)
    while chunk := list(islice(texts, CHUNK)):
        yield chunk


def run_embed(args: argparse.Namespace) -> int:
    """``xlm-onnx embed``."""
    from .embed import Embedder

    embedder = Embedder.from_pretrained(args.model, provider=args.provider, threads=args.threads)
    kwargs = {"pooling": args.pooling, "normalize": args.normalize, "lang": args.lang, "truncation": args.truncation}
    if args.npy:
        vectors = [embedder.embed(chunk, **kwargs) for chunk in _chunks(args)]
        np.save(args.npy, np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32))
        print(f"wrote {sum(len(v) for v in vectors)} embeddings to {args.npy}", file=sys.stderr)
        return 0
    for chunk in _chunks(args):
        for text, vector in zip(chunk, embedder.embed(chunk, **kwargs)):
            if args.json:
                print(json.dumps({"text": text, "embedding": vector.tolist()}, ensure_ascii=False))
            else:
                head = " ".join(f"{x:+.4f}" for x in vector[:4])
                print(f"[{head} ...] dim {len(vector)}, norm {np.linalg.norm(vector):.4f}  {text}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    """``xlm-onnx score``."""
    from .score import Scorer

    scorer = Scorer.from_pretrained(args.model, provider=args.provider, threads=args.threads)
    for chunk in _chunks(args):
        results = scorer.score(chunk, metric=args.metric, per_token=True, lang=args.lang, truncation=args.truncation)
        for text, result in zip(chunk, results):
            if args.json:
                record = {"text": text, "score": result.score}
                if args.per_token:
                    record.update(tokens=list(result.tokens), token_log_probs=list(result.token_log_probs))
                print(json.dumps(record, ensure_ascii=False))
            else:
                print(f"{result.score:12.4f}  {text}")
    return 0
