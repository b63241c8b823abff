"""Bounded-memory handling of ONNX external data.

The full-size graph holds 2.3 GB of fp32 weights. Loading them into a ``ModelProto`` for ORT's
fusion and saving them back peaked at 19.5 GB (the weights, the optimizer's copies, and
protobuf serialisation). Here graphs are loaded with ``load_external_data=False``; fusions read
the few tensors they need from disk on demand (``numpy_helper.to_array`` resolves external data
relative to the working directory, see :func:`working_dir`); and :func:`save_repacked` streams
every tensor, one at a time, into a fresh data file. onnx has no streaming re-pack, hence this.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import onnx
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

#: Tensors at least this large go to the data file (smaller ones stay inline in model.onnx).
SIZE_THRESHOLD = 1024
#: Large tensors start on a page boundary, so onnxruntime may memory-map them.
ALIGN = 4096
_CHUNK = 1 << 24


@contextlib.contextmanager
def working_dir(path: Path):
    """Temporarily ``chdir`` (process-wide: the exporter is single-threaded by design)."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def load_lazy(path: Path) -> onnx.ModelProto:
    """Loads the graph only; external tensors stay on disk."""
    return onnx.load(str(path), load_external_data=False)


def _tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t


def save_repacked(model: onnx.ModelProto, src_dir: Path, dst: Path) -> None:
    """Saves ``model`` to ``dst`` with all large tensors in ``<dst>.data``, streamed one by one.

    Tensors may be in memory (``raw_data``) or external, relative to ``src_dir``; ``dst``'s data
    file may be the one they are read from (a new file is written, then swapped in).
    """
    data_name = dst.name + ".data"
    partial = dst.with_name(data_name + ".partial")
    with open(partial, "wb") as out:
        for tensor in _tensors(model):
            external = uses_external_data(tensor)
            if not external and (not tensor.HasField("raw_data") or len(tensor.raw_data) < SIZE_THRESHOLD):
                continue
            if out.tell() % ALIGN:
                out.write(b"\0" * (ALIGN - out.tell() % ALIGN))
            offset = out.tell()
            if external:
                info = ExternalDataInfo(tensor)
                _copy_range(src_dir / info.location, info.offset or 0, info.length, out)
            else:
                out.write(tensor.raw_data)
                tensor.ClearField("raw_data")
            _point_to(tensor, data_name, offset, out.tell() - offset)
    onnx.save(model, str(dst))
    os.replace(partial, dst.with_name(data_name))


def _point_to(tensor: onnx.TensorProto, location: str, offset: int, length: int) -> None:
    # onnx's set_external_data insists on raw_data being present, which a tensor that is
    # already external (and never loaded) does not have.
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tensor.data_location = onnx.TensorProto.EXTERNAL


def _copy_range(path: Path, offset: int, length: int | None, out) -> None:
    with open(path, "rb") as src:
        src.seek(offset)
        remaining = length if length is not None else os.path.getsize(path) - offset
        while remaining > 0:
            block = src.read(min(_CHUNK, remaining))
            if not block:
                raise EOFError(f"{path}: external data ends before offset {offset} + {length}")
            out.write(block)
            remaining -= len(block)
