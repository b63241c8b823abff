"""Give an existing per-tensor int8 directory per-row activations, without its checkpoint.

The per-row pass (:mod:`.per_row`) only rewrites how activations are quantized; the int8
weights and their scales stay as the quantizer wrote them. So a directory exported with
per-tensor activations (or before the scheme existed) can be converted in place of a re-export,
and re-validated against the torch fp32 answers its ``golden.json`` already holds::

    python -m xlm_onnx_export.convert OLD_DIR NEW_DIR [--force]

The manifest is the old one with what changed rewritten by the exporter's own code: the
``quantization`` field (:meth:`.precision.Int8Options.as_manifest`), the validation figures
(:func:`xlm_onnx.golden.run_golden`, batch invariance required), the fused-op counts, the file
sizes and hashes, and the xlm-onnx / onnx / onnxruntime versions that wrote the new graph. The
publish (a temporary sibling renamed into place), the gate, the int8 weight check and the version
record are the exporter's own (:mod:`.publish`).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

from xlm_onnx import format as fmt
from xlm_onnx.errors import ModelFormatError

from .errors import ExportError
from .external import load_lazy, save_repacked
from .optimize import count_fused
from .per_row import to_per_row
from .precision import Int8Options
from .publish import check_weight_range, gate, runtime_versions, staged

#: Files rewritten here; everything else in the directory is copied as it is.
REWRITTEN = (fmt.MODEL_FILE, fmt.MODEL_DATA_FILE, fmt.MANIFEST_FILE)


def convert_to_per_row(src, dst, *, force: bool = False) -> fmt.Manifest:
    """Writes ``dst``: ``src`` with per-row int8 activations, validated and with a new manifest.

    Args:
        src: An int8 model directory with per-tensor activations and a ``golden.json``.
        dst: Directory to create (may be ``src`` itself with ``force``).
        force: Replace an existing ``dst``.

    Raises:
        ExportError: ``src`` is not per-tensor int8, or the converted graph fails validation.
        FileExistsError: ``dst`` exists and ``force`` is false.
    """
    from xlm_onnx.golden import Golden

    src, dst = Path(src), Path(dst)
    manifest = fmt.read_manifest(src)
    if manifest.int8_activations != fmt.INT8_PER_TENSOR:
        raise ExportError(f"{src}: expected an int8 directory with per-tensor activations, found "
                          f"{manifest.precision} / {manifest.int8_activations}")
    fmt.verify_files(src, manifest)
    golden = Golden.read(src)
    with staged(dst, force) as tmp:  # the exporter's publish: nothing half-written at dst
        for path in src.iterdir():
            if path.is_file() and path.name not in REWRITTEN:
                shutil.copyfile(path, tmp / path.name)
        return _rewrite(src, tmp, manifest, golden)


def _rewrite(src: Path, tmp: Path, manifest: fmt.Manifest, golden) -> fmt.Manifest:
    """The per-row graph and its manifest in ``tmp``, through the exporter's gate and weight check."""
    from xlm_onnx.tokenization import XLMTokenizer

    graph = load_lazy(src / fmt.MODEL_FILE)
    to_per_row(graph, src)
    save_repacked(graph, src, tmp / fmt.MODEL_FILE)
    quant = manifest.quantization
    options = Int8Options(per_channel=quant.get("per_channel", True), tied_embedding=quant.get("tied_embedding", "int8"),
                          weight_bits=quant.get("weight_bits", 8), activations=fmt.INT8_PER_ROW)
    check_weight_range(graph, tmp, options)
    report = gate(tmp / fmt.MODEL_FILE, golden, manifest.precision, XLMTokenizer.from_pretrained(tmp),
                  fmt.INT8_PER_ROW)
    new = dataclasses.replace(
        manifest, quantization=options.as_manifest(), validation=report.as_dict(),
        fusion=count_fused(graph) if manifest.fusion else {}, versions={**manifest.versions, **runtime_versions()},
        files=fmt.describe_files(tmp, list(manifest.files)))
    fmt.write_manifest(tmp, new)
    return new


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", type=Path, help="int8 model directory with per-tensor activations")
    parser.add_argument("dst", type=Path, help="directory to write (may be SRC with --force)")
    parser.add_argument("--force", action="store_true", help="replace DST if it exists")
    args = parser.parse_args(argv)
    try:
        manifest = convert_to_per_row(args.src, args.dst, force=args.force)
    except (ExportError, FileExistsError, ModelFormatError) as exc:
        print(f"xlm-onnx: error: {exc}", file=sys.stderr)
        return 2
    v = manifest.validation
    print(f"wrote {args.dst} (int8, per-row activations); validation: max |delta score| "
          f"{v['max_abs_score_delta']:.2e}, top-1 {v['top1_agreement']:.3f}, batch drift {v['max_abs_batch_drift']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
