"""What every writer of a model directory shares: the atomic publish, the golden gate, the int8
weight check and the record of the versions that wrote the graph.

Both the exporter (:class:`~.exporter.Exporter`) and the per-row conversion (:mod:`.convert`)
write through these, so a directory is published, gated and described one way::

    staged(out_dir, force) ─► a temporary sibling ─(the writer fills it)─ gate ─► readable ─► rename
    any error ─► the sibling removed: nothing half-written is ever visible at out_dir
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import ExportError


@contextlib.contextmanager
def staged(out_dir: Path, force: bool) -> Iterator[Path]:
    """A temporary sibling of ``out_dir`` to write into, renamed to ``out_dir`` (world-readable,
    as a shared model directory should be) when the block ends, removed if it raises.

    Raises:
        FileExistsError: ``out_dir`` exists and ``force`` is false (before anything is written).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise FileExistsError(f"{out_dir}: exists; pass force=True (--force) to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield tmp
        make_readable(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def make_readable(directory: Path) -> None:
    """``mkdtemp`` and onnx create owner-only files; a model directory is meant to be shared."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for path in directory.iterdir():
        path.chmod(0o666 & ~umask)


def gate(model_path: Path, golden, precision: str, tokenizer, activations: str | None):
    """The golden gate: ``golden``'s probes through the graph at ``model_path``, against the
    precision's thresholds (:func:`xlm_onnx.golden.run_golden`, batch invariance for per-row int8).

    Returns:
        The report (its :meth:`as_dict` is the manifest's ``validation``).

    Raises:
        ExportError: A threshold is not met, naming each failure.
    """
    from xlm_onnx.golden import run_golden
    from xlm_onnx.session import create_session

    report = run_golden(create_session(model_path), golden, precision, tokenizer, activations=activations)
    if report.failures():
        scheme = f"{precision}, {activations}" if activations and precision == "int8" else precision
        raise ExportError(f"validation failed ({scheme}): " + "; ".join(report.failures()))
    return report


def check_weight_range(graph, directory: Path, int8) -> None:
    """The manifest's ``weight_max`` is what the file holds, whatever the quantizer did.

    Args:
        graph: The int8 graph (its external data in ``directory``).
        directory: Where its data file is.
        int8: Its :class:`~.precision.Int8Options` (``None``: not int8, nothing to check).

    Raises:
        ExportError: A weight is above the limit.
    """
    from .precision import largest_int8_weight

    if int8 is None:
        return
    largest = largest_int8_weight(graph, directory)
    if largest > int8.weight_max:
        raise ExportError(f"int8 weights reach |q| = {largest}, above the {int8.weight_bits}-bit "
                          f"limit {int8.weight_max} (onnxruntime's quantizer ignored reduce_range?)")


def runtime_versions() -> dict[str, str]:
    """The versions that wrote a graph and that a manifest records: xlm-onnx, onnx, onnxruntime."""
    import onnx
    import onnxruntime

    import xlm_onnx

    return {"xlm_onnx": xlm_onnx.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}

