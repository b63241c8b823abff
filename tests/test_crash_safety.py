"""Nothing half-written is ever visible: ``embed --npy``, bulk output parts and the bulk job record
are written under a temporary name and renamed whole. Each test injects a failure between the
write's steps (mid-write, or before the rename) and checks what a reader, or a rerun, finds."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from xlm_onnx.cli import main

ENOSPC = OSError(28, "No space left on device")


def _half_then_fail(real, target_first: bool = True):
    """``real`` (a writer of a value to a target file, in either order) writing half its bytes,
    then failing, as a full disk or a killed process leaves a file."""
    def write(*args, **kwargs):
        target, value = args[:2] if target_first else args[1::-1]
        buffer = io.BytesIO()
        real(buffer, value, **kwargs) if target_first else real(value, buffer, **kwargs)
        data = buffer.getvalue()[: len(buffer.getvalue()) // 2]
        if isinstance(target, (str, os.PathLike)):
            Path(target).write_bytes(data)
        else:
            target.write(data)
        raise ENOSPC
    return write


def _fail(*args, **kwargs):
    raise ENOSPC


def test_embed_npy_is_whole_or_absent(fp32_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "e.npy"
    old = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(out, old)
    monkeypatch.setattr(np, "save", _half_then_fail(np.save))
    assert main(["embed", "a b", "c", "--model", str(fp32_dir), "--npy", str(out)]) == 2
    assert capsys.readouterr().err == "xlm-onnx: error: [Errno 28] No space left on device\n"
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(out), old)  # the file that was there, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["e.npy"]  # no temporary file left behind
    assert main(["embed", "a b", "c", "--model", str(fp32_dir), "--npy", str(out)]) == 0
    assert np.load(out).shape == (2, 64)


pa = pytest.importorskip("pyarrow")  # the bulk parts need the [ray] extra's pyarrow
pq = pytest.importorskip("pyarrow.parquet")


def _plan(tmp_path: Path):
    from xlm_onnx.bulk import parts

    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"text {i}"}) + "\n" for i in range(10)))
    return parts.plan_input(str(src), rows_per_file=4, chunk_rows=2)


def _answered(plan, i: int):
    """Chunk ``i`` as a callable answers it (an ``error`` column; the task's columns do not matter here)."""
    from xlm_onnx.bulk import parts

    table = parts.read_chunk(plan, i)
    return table.append_column("error", pa.nulls(len(table), pa.string()))


def test_a_bulk_part_is_whole_or_absent(tmp_path, monkeypatch):
    from xlm_onnx.bulk import parts

    plan, out, job = _plan(tmp_path), tmp_path / "out", {"task": "embed"}
    assert parts.prepare_output(str(out), job, plan.parts) == [0, 1, 2]
    writer = parts.PartWriter(str(out), plan)
    writer.add(_answered(plan, 0))  # half of part 0: nothing to write yet
    monkeypatch.setattr(pq, "write_table", _half_then_fail(pq.write_table, target_first=False))
    with pytest.raises(OSError, match="No space left"):
        writer.add(_answered(plan, 1))  # part 0 complete: its write fails halfway
    monkeypatch.undo()
    assert not list(out.glob("part-*"))  # no half-written part where a rerun would take it as done
    assert parts.prepare_output(str(out), job, plan.parts) == [0, 1, 2]  # the rerun answers it again
    assert [p.name for p in out.iterdir()] == [parts.JOB_FILE]  # and the dead write's file is gone
    writer = parts.PartWriter(str(out), plan)
    for i in range(sum(len(plan.chunks(k)) for k in range(plan.parts))):
        writer.add(_answered(plan, i))
    assert pq.read_table(sorted(out.glob("part-*.parquet"))).column("id").to_pylist() == list(range(10))


@pytest.mark.parametrize("step", ["mid-write", "before the rename"])
def test_the_bulk_job_record_is_whole_or_absent(tmp_path, monkeypatch, step):
    from xlm_onnx.bulk import parts

    out, job = tmp_path / "out", {"task": "embed", "options": {"pooling": "mean"}}
    if step == "mid-write":
        real = Path.write_text

        def half(self, text, *args, **kwargs):
            real(self, text[: len(text) // 2], *args, **kwargs)
            raise ENOSPC
        monkeypatch.setattr(Path, "write_text", half)
    else:
        real_replace = os.replace
        monkeypatch.setattr(os, "replace", lambda src, dst: _fail() if str(dst).endswith(parts.JOB_FILE)
                            else real_replace(src, dst))
    with pytest.raises(OSError, match="No space left"):
        parts.prepare_output(str(out), job, 2)
    monkeypatch.undo()
    assert not (out / parts.JOB_FILE).exists()  # no record that a rerun would read half of
    assert parts.prepare_output(str(out), job, 2) == [0, 1]  # the rerun starts the job over
    assert [p.name for p in out.iterdir()] == [parts.JOB_FILE]
    assert json.loads((out / parts.JOB_FILE).read_text()) == job
