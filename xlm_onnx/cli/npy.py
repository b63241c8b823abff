"""``--npy FILE``: a task's vector answers as one float32 ``[lines, dim]`` array, written whole or not at all.

Offered by every task that names an :attr:`~xlm_onnx.tasks.base.Task.array_field` (the field of
its answers that holds a vector). Row i is input line i; a bad line skipped with ``--on-error skip`` is a row of NaN.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


class NpyRows:
    """Collects one row per input line and writes the ``.npy`` at the end, atomically."""

    def __init__(self, path: str, field: str) -> None:
        self.path, self.field = Path(path), field
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"--npy {path}: directory {self.path.parent} does not exist")
        self.rows: list[np.ndarray | None] = []

    def __call__(self, line, vector, error) -> None:
        self.rows.append(None if error is not None else np.asarray(vector, dtype=np.float32))

    def save(self) -> int:
        dim = next((len(r) for r in self.rows if r is not None), 0)
        array = np.full((len(self.rows), dim), np.nan, dtype=np.float32)
        for i, row in enumerate(self.rows):
            if row is not None:
                array[i] = row
        # Temporary file + rename: an interrupted run leaves no half-written array behind.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            # mkstemp creates 0600 whatever the umask; the file gets the mode open() would give it.
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                np.save(f, array)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(self.rows)


def _umask() -> int:
    """The process umask (Linux: read, not set; elsewhere set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
