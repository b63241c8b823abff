"""``xlm-onnx`` command line: fill-mask, embed, score, info, check, export (with the [export] extra).

Errors the user can fix print one line (``xlm-onnx: error: ...``) and exit 2; no traceback
unless ``XLM_ONNX_DEBUG=1``. ``check`` exits 1 when a gate fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterable, Iterator

from . import cli_tasks
from . import format as fmt
from .errors import XLMOnnxError

USER_ERRORS = (XLMOnnxError, ValueError, TypeError, OSError, NotImplementedError)
STDIN_CHUNK = 256


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlm-onnx", description="XLM fill-mask with ONNX Runtime, no torch.")
    sub = parser.add_subparsers(dest="command", required=True)

    fill = sub.add_parser("fill-mask", help="predict <special1> / <mask> / [MASK] tokens")
    fill.add_argument("texts", nargs="+", metavar="TEXT", help="texts with a mask token; '-' reads lines from stdin")
    fill.add_argument("--model", metavar="DIR", help="model directory (default: the embedded demo model)")
    fill.add_argument("--top-k", type=int, default=5, metavar="K")
    fill.add_argument("--targets", nargs="+", metavar="WORD", help="score only these words")
    fill.add_argument("--lang", help="language code, for models with language embeddings")
    fill.add_argument("--truncation", action="store_true", help="cut texts longer than the model maximum")
    fill.add_argument("--json", action="store_true", help="print one JSON result per input line (JSON Lines)")
    fill.add_argument("--provider", default="cpu", help="cpu, cuda or tensorrt")
    fill.add_argument("--threads", type=int, help="intra-op threads (default: ORT's choice)")

    cli_tasks.add_parsers(sub)  # embed, score

    info = sub.add_parser("info", help="print a model directory's manifest")
    info.add_argument("model", metavar="DIR")

    check = sub.add_parser("check", help="re-run the export's golden probes on this machine (exit 1 if a gate fails)")
    check.add_argument("model", metavar="DIR", nargs="?", help="model directory (default: the embedded demo model)")
    check.add_argument("--provider", default="cpu", help="cpu, cuda or tensorrt")
    check.add_argument("--threads", type=int, help="intra-op threads (default: ORT's choice)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    exp = sub.add_parser("export", help="export a local HF XLM checkpoint (needs the [export] extra)")
    exp.add_argument("checkpoint", metavar="CHECKPOINT_DIR")
    exp.add_argument("out", metavar="OUT_DIR")
    exp.add_argument("--precision", default="fp32", choices=fmt.PRECISIONS)
    exp.add_argument("--opset", type=int, default=18)
    exp.add_argument("--no-optimize", action="store_true", help="skip attention/LayerNorm/Gelu fusion")
    exp.add_argument("--per-tensor", action="store_true", help="int8: one weight scale per tensor, not per channel")
    exp.add_argument("--tied-embedding", choices=fmt.TIED_EMBEDDING_STORAGE,
                     help="int8: storage of the embedding / LM head table (default int8; fp16/fp32: fp32 LM head)")
    exp.add_argument("--weight-bits", type=int, choices=sorted(fmt.INT8_WEIGHT_MAX),
                     help="int8: 7 (default; exact on every CPU) or 8 (full range; exact on VNNI/AMX/ARM64 only)")
    exp.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists")
    exp.add_argument("--quiet", action="store_true", help="no progress lines")
    # Listed for --help; its own options are parsed by the benchmark (see main()).
    sub.add_parser("bench", help="latency benchmark vs transformers/torch (needs the [export] extra)")
    return parser


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


def _info(args: argparse.Namespace) -> int:
    print(fmt.read_manifest(args.model).to_json())
    return 0


def _check(args: argparse.Namespace) -> int:
    from .check import check_model
    from .cpu import cpu_info

    report = check_model(args.model, provider=args.provider, threads=args.threads)
    cpu = cpu_info()
    if args.json:
        print(json.dumps({**report.as_dict(), "passed": report.passed, "cpu": cpu.as_dict()}, ensure_ascii=False))
    else:
        gate = report.gate
        print(f"CPU: {cpu.model} ({cpu.isa_class}); {report.n_masks} masks in {report.n_sentences} probes")
        print(f"  top-1 agreement {report.top1_agreement:.3f} (gate >= {gate['min_top1']}), top-5 overlap "
              f"{report.top5_overlap:.3f} (>= {gate['min_top5_overlap']}), max |delta score| "
              f"{report.max_abs_score_delta:.2e} (<= {gate['max_abs_score']:g})")
        print("passed" if report.passed else "FAILED: " + "; ".join(report.failures()))
    return 0 if report.passed else 1


def _export_side(module: str, name: str):
    """Imports ``name`` from the exporter package, which needs the [export] extra (torch)."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise XLMOnnxError(f"this command needs the [export] extra: pip install 'xlm-onnx[export]' ({exc})") from None


def _bench(argv: list[str]) -> int:
    return _export_side("xlm_onnx_export.bench", "main")(argv)


def _export(args: argparse.Namespace) -> int:
    Exporter = _export_side("xlm_onnx_export", "Exporter")
    int8 = None
    if args.per_tensor or args.tied_embedding or args.weight_bits:
        if args.precision != "int8":
            raise ValueError("--per-tensor, --tied-embedding and --weight-bits apply to --precision int8 only")
        int8 = _export_side("xlm_onnx_export", "Int8Options")(per_channel=not args.per_tensor,
                                                               tied_embedding=args.tied_embedding or "int8",
                                                               weight_bits=args.weight_bits or 7)
    exporter = Exporter(args.checkpoint, args.out, precision=args.precision, opset=args.opset,
                        optimize=not args.no_optimize, int8=int8, force=args.force,
                        progress=False if args.quiet else None)
    result = exporter.run()
    v = result.manifest.validation
    print(f"wrote {result.out_dir} ({result.manifest.precision}) in {result.seconds:.1f} s, peak RSS "
          f"{result.peak_rss_mb:.0f} MB; validation: max |delta score| {v['max_abs_score_delta']:.2e}, "
          f"top-1 {v['top1_agreement']:.3f}, fused {result.manifest.fusion or 'none'}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"xlm-onnx: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xlm-onnx`` console script."""
    import warnings

    argv = sys.argv[1:] if argv is None else list(argv)
    warnings.showwarning = _one_line_warning  # a command line prints one line, not a source excerpt
    if argv[:1] == ["bench"]:  # the benchmark owns its options
        handler, args = _bench, argv[1:]
    else:
        args = _parser().parse_args(argv)
        handler = {"fill-mask": _fill_mask, "embed": cli_tasks.run_embed, "score": cli_tasks.run_score,
                   "info": _info, "check": _check, "export": _export}[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("xlm-onnx: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
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
