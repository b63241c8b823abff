"""``xlm-onnx`` command line: fill-mask, embed, score, info, check, export (with the [export] extra).

Errors the user can fix print one line (``xlm-onnx: error: ...``) and exit 2; no traceback
unless ``XLM_ONNX_DEBUG=1``. ``check`` exits 1 when a gate fails. Input reading, output records
and model lookup live in ``_cli_input``, ``_cli_output`` and ``lookup``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings

from . import __version__, _cli_bulk, _cli_fill, cli_tasks
from . import format as fmt
from .errors import ModelFormatError, XLMOnnxError
from .serve import cli as serve_cli

USER_ERRORS = (XLMOnnxError, ValueError, TypeError, OSError, NotImplementedError)
#: What the [export] extra brings; ``bench`` checks them before it starts subprocesses.
EXPORT_MODULES = ("torch", "transformers", "onnx", "onnxscript", "safetensors")


def _model_args(parser: argparse.ArgumentParser, *, flag: bool, required: bool = False) -> None:
    where = "directory, Hugging Face cache folder (models--org--name) or cached model id (org/name)"
    if flag:
        parser.add_argument("--model", metavar="MODEL", help=f"model {where} (default: the embedded demo model)")
    else:
        parser.add_argument("model", metavar="MODEL", nargs=None if required else "?", help=f"model {where}")
    parser.add_argument("--revision", help="branch, tag or commit of a cached model (default: main); never downloads")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xlm-onnx", description="XLM fill-mask with ONNX Runtime, no torch.")
    parser.add_argument("--version", action="version", version=f"xlm-onnx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    _model_args(_cli_fill.add_parser(sub), flag=True)
    for task in cli_tasks.add_parsers(sub):  # embed, score
        _model_args(task, flag=True)
    serve_cli.add_parser(sub)  # serve: its [serve] extra is imported only when it runs
    _cli_bulk.add_parser(sub)  # bulk (Ray is imported only when it runs)

    info = sub.add_parser("info", help="print a model directory's manifest")
    _model_args(info, flag=False, required=True)

    check = sub.add_parser("check", help="re-run the export's golden probes on this machine (exit 1 if a gate fails)")
    _model_args(check, flag=False)
    check.add_argument("--provider", default="cpu", help="cpu, cuda or tensorrt")
    check.add_argument("--threads", type=int, help="intra-op threads (default: ORT's choice)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    exp = sub.add_parser("export", help="export a local HF XLM checkpoint (needs the [export] extra)")
    exp.add_argument("checkpoint", metavar="CHECKPOINT",
                     help="checkpoint directory, HF cache folder (models--org--name) or cached model id (org/name)")
    exp.add_argument("out", metavar="OUT_DIR")
    exp.add_argument("--revision", help="branch, tag or commit of a cached checkpoint (default: main)")
    exp.add_argument("--precision", default="fp32", choices=fmt.PRECISIONS)
    exp.add_argument("--opset", type=int, default=18)
    exp.add_argument("--no-optimize", action="store_true", help="skip attention/LayerNorm/Gelu fusion")
    exp.add_argument("--per-tensor", action="store_true", help="int8: one weight scale per tensor, not per channel")
    exp.add_argument("--tied-embedding", choices=fmt.TIED_EMBEDDING_STORAGE,
                     help="int8: storage of the embedding / LM head table (default int8; fp16/fp32: fp32 LM head)")
    exp.add_argument("--weight-bits", type=int, choices=sorted(fmt.INT8_WEIGHT_MAX),
                     help="int8: 7 (default; exact on every CPU) or 8 (full range; exact on VNNI/AMX/ARM64 only)")
    exp.add_argument("--activations", choices=fmt.INT8_ACTIVATIONS,
                     help="int8: per-row (default; answers independent of the batch) or per-tensor (one scale per batch)")
    exp.add_argument("--force", action="store_true", help="replace OUT_DIR if it exists")
    exp.add_argument("--quiet", action="store_true", help="no progress lines")
    # Listed for --help; its own options are parsed by the benchmark (see main()).
    sub.add_parser("bench", help="latency benchmark vs transformers/torch (needs the [export] extra)")
    return parser


def _model_dir(spec, revision):
    """``--model`` / ``MODEL``: resolved offline; ``None`` is the embedded demo model."""
    if spec is None:
        if revision is not None:
            raise ValueError("--revision needs --model (the embedded demo model has no revisions)")
        return None
    from .lookup import resolve_model

    path = resolve_model(spec, revision)
    if not (path / fmt.MANIFEST_FILE).is_file() and (path / "config.json").is_file():
        raise ModelFormatError(f"{path}: a Hugging Face checkpoint, not an xlm-onnx model directory; "
                               f"convert it first: xlm-onnx export {spec} OUT_DIR")
    return path


def _fill_mask(args: argparse.Namespace) -> int:
    return _cli_fill.fill_mask(args, _model_dir(args.model, args.revision))


def _embed(args: argparse.Namespace) -> int:
    return cli_tasks.run_embed(args, _model_dir(args.model, args.revision))


def _score(args: argparse.Namespace) -> int:
    return cli_tasks.run_score(args, _model_dir(args.model, args.revision))


def _serve(args: argparse.Namespace) -> int:
    return serve_cli.run(args, _model_dir(args.model, args.revision))


def _bulk(args: argparse.Namespace) -> int:
    return _cli_bulk.run(args, _model_dir(args.model, args.revision))


def _info(args: argparse.Namespace) -> int:
    print(fmt.read_manifest(_model_dir(args.model, args.revision)).to_json())
    return 0


def _check(args: argparse.Namespace) -> int:
    from .check import check_model
    from .cpu import cpu_info

    report = check_model(_model_dir(args.model, args.revision), provider=args.provider, threads=args.threads)
    cpu = cpu_info()
    if args.json:
        print(json.dumps({**report.as_dict(), "passed": report.passed, "cpu": cpu.as_dict()}, ensure_ascii=False))
    else:
        gate = report.gate
        print(f"CPU: {cpu.model} ({cpu.isa_class}); {report.n_masks} masks in {report.n_sentences} probes")
        print(f"  top-1 agreement {report.top1_agreement:.3f} (gate >= {gate['min_top1']}), top-5 overlap "
              f"{report.top5_overlap:.3f} (>= {gate['min_top5_overlap']}), max |delta score| "
              f"{report.max_abs_score_delta:.2e} (<= {gate['max_abs_score']:g})")
        drift = report.max_abs_batch_drift
        if drift is not None:
            print("  batch invariance: " + ("bit-identical alone and batched" if drift == 0 else
                                            f"max |alone - batched| {drift:.2e}")
                  + (" (required: per-row int8)" if report.requires_batch_invariance else ""))
        print("passed" if report.passed else "FAILED: " + "; ".join(report.failures()))
    return 0 if report.passed else 1


def _needs_export_extra(missing: str) -> XLMOnnxError:
    return XLMOnnxError(f"this command needs the [export] extra ({missing} is not installed): "
                        "pip install 'xlm-onnx[export]'")


def _export_side(module: str, name: str):
    """Imports ``name`` from the exporter package, which needs the [export] extra (torch)."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise _needs_export_extra(exc.name or str(exc)) from None


def _bench(argv: list[str]) -> int:
    import importlib.util

    # The benchmark imports torch only in the processes it starts, so a missing extra would
    # surface as a traceback from a child minutes later: check before anything starts.
    for name in EXPORT_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:
            found = False
        if not found:
            raise _needs_export_extra(name)
    return _export_side("xlm_onnx_export.bench", "main")(argv)


def _export(args: argparse.Namespace) -> int:
    Exporter = _export_side("xlm_onnx_export", "Exporter")
    int8 = None
    if args.per_tensor or args.tied_embedding or args.weight_bits or args.activations:
        if args.precision != "int8":
            raise ValueError("--per-tensor, --tied-embedding, --weight-bits and --activations apply to "
                             "--precision int8 only")
        int8 = _export_side("xlm_onnx_export", "Int8Options")(per_channel=not args.per_tensor,
                                                               tied_embedding=args.tied_embedding or "int8",
                                                               weight_bits=args.weight_bits or 7,
                                                               activations=args.activations or fmt.INT8_PER_ROW)
    from .lookup import resolve_model

    exporter = Exporter(resolve_model(args.checkpoint, args.revision), args.out, precision=args.precision, opset=args.opset,
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


class _OneLineOnce(logging.Handler):
    """``xlm-onnx: warning: ...`` once per message: fill-mask calls the API once per chunk, and
    its warnings (a target outside the vocabulary) would otherwise repeat for every chunk."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(record.getMessage().split())
        if message not in self.seen:
            self.seen.add(message)
            print(f"xlm-onnx: {record.levelname.lower()}: {message}", file=sys.stderr)


def _one_line_logging() -> None:
    logger = logging.getLogger("xlm_onnx")
    if not any(isinstance(h, _OneLineOnce) for h in logger.handlers):
        logger.addHandler(_OneLineOnce())
        logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xlm-onnx`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    warnings.showwarning = _one_line_warning  # a command line prints one line, not a source excerpt
    _one_line_logging()
    if argv[:1] == ["bench"]:  # the benchmark owns its options
        handler, args = _bench, argv[1:]
    else:
        args = _parser().parse_args(argv)
        handler = {"fill-mask": _fill_mask, "embed": _embed, "score": _score, "bulk": _bulk,
                   "info": _info, "check": _check, "serve": _serve, "export": _export}[args.command]
    try:
        return handler(args)
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
