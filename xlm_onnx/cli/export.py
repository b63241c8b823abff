"""``xlm-onnx export`` (the exporter, ``[export]`` extra): it imports the exporter and torch only
when it runs. (The latency benchmark is ``benchmarks/latency.py`` of a source checkout.)"""

from __future__ import annotations

import argparse
import importlib

from .. import format as fmt
from ..errors import missing_extra



def add_parsers(sub) -> None:
    """Adds ``export`` to ``xlm-onnx``'s sub-parsers."""
    exp = sub.add_parser("export", help="export a local HF XLM checkpoint (needs the [export] extra)")
    exp.add_argument("checkpoint", metavar="CHECKPOINT",
                     help="checkpoint directory, HF cache folder (models--org--name) or cached model id (org/name)")
    exp.add_argument("out", metavar="OUT_DIR")
    exp.add_argument("--revision", help="branch, tag or commit of a cached checkpoint (default: main)")
    exp.add_argument("--precision", default="fp32", choices=fmt.PRECISIONS,
                     help="fp32; fp16 for GPUs; int8 (dynamic) for CPUs")
    exp.add_argument("--opset", type=int, default=18, help="ONNX opset (at least 17)")
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


def _export_side(module: str, name: str):
    """Imports ``name`` from the exporter package, which needs the [export] extra (torch)."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise missing_extra("export", exc.name or str(exc)) from None


def export(args: argparse.Namespace) -> int:
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
    from ..lookup import resolve_model

    exporter = Exporter(resolve_model(args.checkpoint, args.revision), args.out, precision=args.precision, opset=args.opset,
                        optimize=not args.no_optimize, int8=int8, force=args.force,
                        progress=False if args.quiet else None)
    result = exporter.run()
    v = result.manifest.validation
    gated = (f"max |delta logit| {v['max_abs_logit_delta']:.2e}" if v.get("max_abs_logit_delta") is not None
             else f"max |delta score| {v['max_abs_score_delta']:.2e}")  # a fine-tuned head: its logits
    print(f"wrote {result.out_dir} ({result.manifest.precision}) in "
          f"{result.seconds:.1f} s, peak RSS {result.peak_rss_mb:.0f} MB; validation: {gated}, "
          f"top-1 {v['top1_agreement']:.3f}, fused {result.manifest.fusion or 'none'}")
    return 0
