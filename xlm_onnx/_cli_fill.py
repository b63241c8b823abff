"""``xlm-onnx fill-mask``: read lines, answer them chunk by chunk, write one record per line."""

from __future__ import annotations

import argparse
import re
import sys
import warnings

from . import _cli_input as cin
from . import _cli_output as cout
from .errors import InputError

#: Lines per model call (in batches of --batch-size) when reading a pipe or file; the records of
#: each chunk are written and flushed as soon as it is answered.
CHUNK_BATCHES = 4


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


def _line_error(exc: InputError, number: int) -> str:
    """The API's message, naming the input line instead of the index inside a chunk (and the option)."""
    message = re.sub(r"^inputs\[\d+\]", f"line {number}", " ".join(str(exc).split()))
    return message.replace("pass truncation=True", "pass --truncation")


def _answer(fm, lines: list, request: dict):
    """Yields ``(line, result, error)`` in order: good lines batched, each bad line answered alone."""
    start = 0
    while start < len(lines):
        stop = next((i for i in range(start, len(lines)) if lines[i].error is not None), len(lines))
        try:
            results = fm([line.text for line in lines[start:stop]], **request) if stop > start else []
        except InputError as exc:
            if exc.index is None:  # top_k, targets, lang: the whole request is wrong, not a line
                raise
            stop = start + exc.index  # the lines before it are valid: answer them, then the error
            results = fm([line.text for line in lines[start:stop]], **request) if stop > start else []
            error = _line_error(exc, lines[stop].number)
        else:
            error = lines[stop].error if stop < len(lines) else None
        yield from ((line, result, None) for line, result in zip(lines[start:stop], results))
        if stop < len(lines):
            yield lines[stop], None, error
        start = stop + 1


def fill_mask(args: argparse.Namespace, model_dir) -> int:
    """Runs ``fill-mask`` with parsed ``args`` on ``model_dir`` (``None``: the demo model); exit status.

    Raises:
        InputError: A bad line (``--on-error fail``), naming its line and how many were answered.
    """
    from .fill_mask import FillMask

    items = cin.sources(args.texts, args.input, args.input_format)
    request = dict(top_k=args.top_k, targets=_targets(args), lang=args.lang, truncation=args.truncation)
    fm = FillMask.from_pretrained(model_dir, provider=args.provider, threads=args.threads,
                                  batch_size=args.batch_size)
    interactive = any(i.path == cin.STDIN for i in items) and sys.stdin.isatty()
    progress = cout.Progress(None)
    if progress.enabled:
        progress.total = cin.count_lines(items)
    write = cout.write_json if args.json else cout.write_human
    done = failed = 0
    stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
    for chunk in cin.chunks(cin.read_lines(items, stdin), 1 if interactive else CHUNK_BATCHES * args.batch_size):
        answers = list(_answer(fm, chunk, request)) if args.on_error == "skip" else _answer(fm, chunk, request)
        progress.clear()
        for line, result, error in answers:
            if error is not None and args.on_error == "fail":
                sys.stdout.flush()
                raise InputError(f"{error}; stopped there, {done:,} line{'s'[:done != 1]} before it answered "
                                 "(--on-error skip answers the rest)")
            write(sys.stdout, line, result, error)
            done, failed = done + 1, failed + (error is not None)
        sys.stdout.flush()  # stream: each chunk's records as soon as they are ready
        progress.update(done)
    progress.close(done)
    if failed:
        print(f"xlm-onnx: warning: {failed:,} of {done:,} lines answered with an error record", file=sys.stderr)
    return 0




def _texts(args_texts: list[str]) -> Iterator[str]:
    for text in args_texts:
        if text == "-":
            for line in sys.stdin:
                line = line.rstrip("\n")
                if line.strip():
                    yield line
        else:
            yield text


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _print_human(text: str, result: list) -> None:
    print(text)
    per_mask = result if result and isinstance(result[0], list) else [result]
    for index, props in enumerate(per_mask):
        if len(per_mask) > 1:
            print(f"  mask {index + 1}:")
        for p in props:
            print(f"  {p['score']:.4f}  {p['token_str']!s:<16} {p['sequence']}")


def _fill_mask(args: argparse.Namespace) -> int:
    from .fill_mask import FillMask

    fm = FillMask.from_pretrained(args.model, provider=args.provider, threads=args.threads)
    for chunk in _chunks(_texts(args.texts), STDIN_CHUNK):
        results = fm(chunk, top_k=args.top_k, targets=args.targets, lang=args.lang, truncation=args.truncation)
        for text, result in zip(chunk, results):
            if args.json:
                print(json.dumps(result, ensure_ascii=False))
            else:
                _print_human(text, result)
    return 0
