"""The benchmark cache: a random-weight checkpoint and its exports, built once, reused after.

Layout: ``<cache>/<size>/checkpoint`` and ``<cache>/<size>/<variant>`` per export variant
(``fp32-unfused``, ``fp32``, ``int8``, ``int8-fp16-table``, ``fp16``). Each is built in a subprocess (bounded memory
in the parent, which later spawns the timed workers) and moved into place only when complete:
a checkpoint has a ``.complete`` marker, an export its manifest (the exporter renames atomically).
Run by path as ``python cache.py {checkpoint,export} ...`` by :class:`Cache`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

#: variant -> Exporter keyword arguments (``int8``: the fields of ``Int8Options``).
VARIANTS = {
    "fp32-unfused": dict(precision="fp32", optimize=False),
    "fp32": dict(precision="fp32", optimize=True),
    "int8": dict(precision="int8", optimize=True),
    "int8-fp16-table": dict(precision="int8", optimize=True, int8=dict(tied_embedding="fp16")),
    "fp16": dict(precision="fp16", optimize=True),
}
NOT_IMPLEMENTED_EXIT = 3
MANIFEST = "xlm_onnx.json"


def default_cache() -> Path:
    """``<repo>/.cache/bench`` for a source checkout, else ``./.cache/bench``."""
    repo = Path(__file__).resolve().parents[2]
    base = repo if (repo / "pyproject.toml").is_file() else Path.cwd()
    return base / ".cache" / "bench"


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


class Cache:
    def __init__(self, root, size: str, log=print) -> None:
        self.root = Path(root) / size
        self.size = size
        self.log = log
        self.notes: dict[str, str] = {}  # variant -> why it is missing

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoint"

    def checkpoint(self, rebuild: bool = False) -> Path:
        ckpt = self.checkpoint_dir
        if rebuild and self.root.exists():
            shutil.rmtree(self.root)
        if (ckpt / ".complete").is_file():
            self.log(f"cache: reusing {ckpt}")
            return ckpt
        for stale in [ckpt, *(self.root / v for v in VARIANTS)]:  # exports of an older checkpoint
            shutil.rmtree(stale, ignore_errors=True)
        self.log(f"cache: building the {self.size} random-weight checkpoint in {ckpt} ...")
        self._run("checkpoint", self.size, str(ckpt))
        return ckpt

    def export(self, variant: str) -> Path | None:
        """The export directory, built if missing; ``None`` (reason in :attr:`notes`) if it cannot be."""
        out = self.root / variant
        if (out / MANIFEST).is_file():
            self.log(f"cache: reusing {out}")
            return out
        if variant in self.notes:
            return None
        self.log(f"cache: exporting {variant} to {out} ...")
        proc = self._run("export", str(self.checkpoint_dir), str(out), variant, check=False)
        if proc.returncode == 0 and (out / MANIFEST).is_file():
            return out
        tail = (proc.stderr or "").strip().splitlines()
        last = tail[-1] if tail else f"exit status {proc.returncode}"
        kind = "export not implemented" if proc.returncode == NOT_IMPLEMENTED_EXIT else "export failed"
        self.notes[variant] = f"{kind}: {last}"
        self.log(f"cache: {variant}: {self.notes[variant]}")
        return None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(Path(__file__).resolve()), *args]
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.stderr:
            sys.stderr.write(proc.stderr[-4000:])
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode})")
        return proc


def _build_checkpoint(size: str, out: Path) -> None:
    """``make_checkpoint`` at the requested size (full size keeps HF's init: see ``peaked``)."""
    from xlm_onnx_export.fixtures.checkpoints import TINY, XLM_100, make_checkpoint

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    arch = TINY if size == "tiny" else XLM_100
    make_checkpoint(tmp, arch, peaked=size == "tiny")
    (tmp / ".complete").write_text(json.dumps({"size": size, **dataclasses.asdict(arch)}))
    tmp.rename(out)


def _export(checkpoint: Path, out: Path, variant: str) -> int:
    from xlm_onnx_export import Exporter, Int8Options

    kwargs = dict(VARIANTS[variant])
    if "int8" in kwargs:
        kwargs["int8"] = Int8Options(**kwargs["int8"])
    try:
        Exporter(checkpoint, out, force=True, progress=True, **kwargs).run()
    except NotImplementedError as exc:
        print(f"NotImplementedError: {exc}", file=sys.stderr)
        return NOT_IMPLEMENTED_EXIT
    return 0


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "checkpoint":
        _build_checkpoint(sys.argv[2], Path(sys.argv[3]))
    elif what == "export":
        sys.exit(_export(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]))
    else:
        sys.exit(f"unknown command {what!r}")
