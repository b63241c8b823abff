"""``xlm-onnx check`` (the export's golden probes, re-run on this machine) and ``xlm-onnx info``."""

from __future__ import annotations

import argparse
import json

from .. import format as fmt
from ..front import arguments


def add_parsers(sub) -> None:
    """Adds ``info`` and ``check`` to ``xlm-onnx``'s sub-parsers."""
    info = sub.add_parser("info", help="print a model directory's manifest")
    arguments.add_model(info, flag=False)
    check = sub.add_parser("check", help="re-run the export's golden probes on this machine (exit 1 if a gate fails)")
    arguments.add_model(check, flag=False)
    arguments.add_runtime(check)
    check.add_argument("--json", action="store_true", help="print the report as JSON")


def info(args: argparse.Namespace, model_dir) -> int:
    from ..model import default_model_dir

    print(fmt.read_manifest(default_model_dir() if model_dir is None else model_dir).to_json())
    return 0


def check(args: argparse.Namespace, model_dir) -> int:
    """Prints the report; the exit status is 1 when a gate fails."""
    from ..golden import check_model
    from ..cpu import cpu_info

    report = check_model(model_dir, provider=args.provider, threads=args.threads)
    cpu = cpu_info()
    if args.json:
        print(json.dumps({**report.as_dict(), "passed": report.passed, "cpu": cpu.as_dict()}, ensure_ascii=False))
    else:
        gate = report.gate
        if report.max_abs_logit_delta is not None:  # a fine-tuned head: its logits are gated
            print(f"CPU: {cpu.model} ({cpu.isa_class}); {report.n_sentences} probes")
            print(f"  top-1 label agreement {report.top1_agreement:.3f} (gate >= {gate['min_top1']}), max |delta "
                  f"logit| {report.max_abs_logit_delta:.2e} (<= {gate['max_abs_logit']:g})")
        else:
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
