"""Input parts and output files of ``xlm-onnx bulk``: fixed parts, each one file, that a rerun skips.

The input (one JSON Lines or Parquet file) is cut, in input order, into parts of ``rows_per_file``
rows; part ``k`` is answered into ``OUT/part-{k:06d}.parquet``, written under a temporary name and
renamed once complete, so a file that exists is whole. ``OUT/_job.json`` records what was asked
(task, options, model, input size and mtime, rows per file): a rerun of the same job skips the
parts whose file exists, and a different job is refused instead of mixing answers::

    input ─plan_input─► InputPlan(parts of chunks) ─read_chunk(i)─► Table(+_xlm_part, +_xlm_input_error)
    answered rows (in input order) ─PartWriter─► part-000000.parquet, part-000001.parquet, ...

JSON Lines are read line by line (bytes, ``\\n``) by :func:`xlm_onnx.jsonl.read_line`, as the command
line reads them: a line that is not UTF-8, not JSON or not an object, or whose ``text`` is missing,
not a string or blank, becomes a row with a null ``text`` and its error, so every input line gives
exactly one output row.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InputError
from ..jsonl import is_jsonl, read_line

PART_COLUMN = "_xlm_part"
INPUT_ERROR_COLUMN = "_xlm_input_error"
JOB_FILE = "_job.json"


def part_name(k: int) -> str:
    return f"part-{k:06d}.parquet"


@dataclass(frozen=True)
class InputPlan:
    """An input file cut into parts (one output file each) and parts into chunks (one Ray block each).

    Attributes:
        path: Absolute path of the input (workers read it: shared storage on a cluster).
        format: ``jsonl`` or ``parquet``.
        rows: Input rows (JSON Lines: lines).
        rows_per_file: Rows per part (the last part may be shorter).
        chunk_rows: Rows per chunk; chunks never straddle two parts.
        offsets: JSON Lines: byte offset of each chunk's first line, plus the file size.
        schema: Arrow schema of every chunk (JSON Lines: inferred from the first part).
        text_column: The column holding the texts.
    """

    path: str
    format: str
    rows: int
    rows_per_file: int
    chunk_rows: int
    offsets: tuple[int, ...]
    schema: pa.Schema
    text_column: str

    @property
    def parts(self) -> int:
        return -(-self.rows // self.rows_per_file)

    def part_rows(self, k: int) -> int:
        return min(self.rows_per_file, self.rows - k * self.rows_per_file)

    def chunks(self, k: int) -> range:
        """Indices of part ``k``'s chunks."""
        per_part = -(-self.rows_per_file // self.chunk_rows)
        return range(k * per_part, k * per_part + -(-self.part_rows(k) // self.chunk_rows))

    def chunk_span(self, i: int) -> tuple[int, int, int]:
        """Part, first row and row count of chunk ``i``."""
        per_part = -(-self.rows_per_file // self.chunk_rows)
        k, j = divmod(i, per_part)
        first = k * self.rows_per_file + j * self.chunk_rows
        return k, first, min(self.chunk_rows, k * self.rows_per_file + self.part_rows(k) - first)

    def describe(self, row: int) -> str:
        """``line N`` (JSON Lines) or ``row N`` (Parquet), 1-based, for a 0-based input row."""
        return f"{'line' if self.format == 'jsonl' else 'row'} {row + 1}"


def plan_input(path: str, rows_per_file: int, chunk_rows: int, input_format: str = "auto",
               text_column: str = "text") -> InputPlan:
    """Counts rows, finds where each chunk starts and fixes the schema.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Unknown format, no text column, or a size < 1.
        InputError: A JSON Lines field changes type within the first part.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--input {path}: no such file")
    if rows_per_file < 1 or chunk_rows < 1:
        raise ValueError(f"--rows-per-file and --batch-size must be at least 1, not {rows_per_file} / {chunk_rows}")
    path = os.path.abspath(path)
    fmt = input_format
    if fmt == "auto":
        fmt = "parquet" if path.lower().endswith(".parquet") else "jsonl" if is_jsonl(path) else ""
        if not fmt:
            raise ValueError(f"--input {path}: cannot tell the format from the name; pass --input-format jsonl|parquet")
    if fmt == "parquet":
        schema = pq.ParquetFile(path).schema_arrow
        if text_column not in schema.names:
            raise ValueError(f"--input {path} has no {text_column!r} column (columns: {', '.join(schema.names)}); "
                             "pass --text-column")
        rows = pq.ParquetFile(path).metadata.num_rows
        return InputPlan(path, fmt, rows, rows_per_file, chunk_rows, (), schema, text_column)
    offsets, rows, size = [0], 0, 0
    with open(path, "rb") as handle:  # one pass: where every chunk starts
        for line in handle:
            rows, size = rows + 1, size + len(line)
            if rows % rows_per_file == 0 or rows % rows_per_file % chunk_rows == 0:
                offsets.append(size)
    if offsets[-1] != size:
        offsets.append(size)
    with open(path, "rb") as handle:  # the first part's records fix the columns and their types
        sample = _records(handle.read(offsets[len(range(0, min(rows, rows_per_file), chunk_rows))]), 1, text_column)
    keys = list(dict.fromkeys([key for record in sample for key in record if key != INPUT_ERROR_COLUMN] + [text_column]))
    try:
        inferred = pa.Table.from_pydict({key: [record.get(key) for record in sample] for key in keys}).schema
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"--input {path}: a field changes type between records ({exc}); give every record the "
                         "same field types") from None
    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) or f.name == text_column else f
                        for f in inferred])
    return InputPlan(path, "jsonl", rows, rows_per_file, chunk_rows, tuple(offsets), schema, text_column)


def read_chunk(plan: InputPlan, i: int) -> pa.Table:
    """Chunk ``i`` as an Arrow table in the plan's schema, plus its part number and input errors."""
    k, first, count = plan.chunk_span(i)
    if plan.format == "parquet":
        table = _parquet_rows(plan.path, first, count)
        errors = pa.nulls(len(table), pa.string())
    else:
        table = _jsonl_table(plan.path, plan.offsets[i], plan.offsets[i + 1], first + 1, plan.text_column, plan.schema)
        errors = table.column(INPUT_ERROR_COLUMN)
        table = table.drop_columns([INPUT_ERROR_COLUMN])
    if len(table) != count:
        raise RuntimeError(f"{plan.path}: read {len(table)} rows for chunk {i}, expected {count} (file changed?)")
    table = table.append_column(PART_COLUMN, pa.array([k] * len(table), pa.int64()))
    return table.append_column(INPUT_ERROR_COLUMN, errors)


def _parquet_rows(path: str, start: int, count: int) -> pa.Table:
    handle = pq.ParquetFile(path)
    groups, first, seen = [], None, 0
    for g in range(handle.num_row_groups):
        n = handle.metadata.row_group(g).num_rows
        if seen + n > start and seen < start + count:
            groups.append(g)
            first = seen if first is None else first
        seen += n
    return handle.read_row_groups(groups).slice(start - first, count)


def _jsonl_table(path: str, begin: int, end: int, first_line: int, text_column: str, schema: pa.Schema
                 ) -> pa.Table:
    with open(path, "rb") as handle:
        handle.seek(begin)
        records = _records(handle.read(end - begin), first_line, text_column)
    try:
        return pa.Table.from_pylist(records, schema=schema.append(pa.field(INPUT_ERROR_COLUMN, pa.string())))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"{path}: lines {first_line}-{first_line + len(records) - 1} do not fit the columns of "
                         f"the first lines ({schema}): {exc}; give every record the same field types") from None


def _records(data: bytes, first_line: int, text_column: str) -> list[dict[str, Any]]:
    lines = data.split(b"\n")
    if lines[-1] == b"":  # the piece after the last newline
        lines.pop()
    return [_record(number, raw, text_column) for number, raw in enumerate(lines, start=first_line)]


def _record(number: int, raw: bytes, text_column: str) -> dict[str, Any]:
    """One JSON Lines line as a row (:func:`xlm_onnx.jsonl.read_line`); a line that is no request
    gets a null text (nothing to answer; Arrow could not hold a non-str one) and its error."""
    record = read_line(number, raw, True, text_column)
    row = dict(record.values) if record.values is not None else {}
    if record.error is not None:
        if record.values is not None:
            row[text_column] = None
        row[INPUT_ERROR_COLUMN] = record.error
    return row


def prepare_output(out_dir: str, job: dict, parts: int) -> list[int]:
    """Creates ``out_dir`` (or reopens it for the same ``job``) and returns the parts still to answer.

    Raises:
        ValueError: ``out_dir`` holds other files, or the output of a different job.
    """
    out = Path(out_dir)
    recorded = out / JOB_FILE
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out}: exists and is not a directory")
    # Files being written when the last driver died (temporary names: never read as answers).
    stale = [*out.glob(".part-*.tmp*"), *out.glob(f".{JOB_FILE}.tmp")] if out.is_dir() else []
    if out.is_dir() and any(p not in stale for p in out.iterdir()):
        if not recorded.is_file():
            raise ValueError(f"--output {out}: not empty and not the output of an xlm-onnx bulk job; give a new directory")
        previous = json.loads(recorded.read_text())
        if previous != job:
            changed = sorted(k for k in set(job) | set(previous) if job.get(k) != previous.get(k))
            raise ValueError(f"--output {out}: holds a different job ({', '.join(changed)} changed); give a new "
                             "directory, or delete it to start over")
        for path in stale:
            path.unlink()
    else:  # new, or only the temporary files of a job that died before its record was complete
        for path in stale:
            path.unlink()
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{JOB_FILE}.tmp"
        tmp.write_text(json.dumps(job, indent=2) + "\n")
        os.replace(tmp, recorded)
    return [k for k in range(parts) if not (out / part_name(k)).is_file()]


class PartWriter:
    """Collects answered rows, which arrive in input order, and writes each part once it is whole.

    Args:
        out_dir: The output directory.
        plan: The input plan (part sizes, how to name a row).
        fail_fast: Raise on the first row with an error instead of writing it.
    """

    def __init__(self, out_dir: str, plan: InputPlan, fail_fast: bool = False) -> None:
        self.out, self.plan, self.fail_fast = Path(out_dir), plan, fail_fast
        self.pending: list[pa.Table] = []
        self.part: int | None = None
        self.rows = self.errors = self.files = 0

    def add(self, table: pa.Table) -> None:
        """Takes one answered batch (with the part and input-error columns)."""
        parts = table.column(PART_COLUMN).to_numpy()
        start = 0
        while start < len(table):  # a batch may end one part and start the next
            stop = start + int((parts[start:] != parts[start]).argmax() or len(parts) - start)
            self._take(int(parts[start]), table.slice(start, stop - start))
            start = stop

    def _take(self, k: int, table: pa.Table) -> None:
        if k != self.part:
            if self.pending:
                raise RuntimeError(f"part {self.part} ended after {self._buffered()} of {self.plan.part_rows(self.part)} "
                                   "rows: rows arrived out of order")
            self.part = k
        error = pc.coalesce(table.column(INPUT_ERROR_COLUMN), table.column("error"))
        table = table.drop_columns([PART_COLUMN, INPUT_ERROR_COLUMN, "error"]).append_column("error", error)
        if self.fail_fast and error.null_count < len(error):
            row = next(i for i, e in enumerate(error.to_pylist()) if e is not None)
            where = self.plan.describe(k * self.plan.rows_per_file + self._buffered() + row)
            raise InputError(f"{where}: {error[row].as_py()}; stopped there (--fail-fast), {self.files} file(s) "
                             f"written before it")
        self.pending.append(table)
        self.rows += len(table)
        self.errors += len(error) - error.null_count
        if self._buffered() == self.plan.part_rows(k):
            self._write(k)
        elif self._buffered() > self.plan.part_rows(k):
            raise RuntimeError(f"part {k} got {self._buffered()} rows, expected {self.plan.part_rows(k)}")

    def _buffered(self) -> int:
        return sum(len(t) for t in self.pending)

    def _write(self, k: int) -> None:
        table = pa.concat_tables(self.pending, promote_options="default")
        tmp = self.out / f".{part_name(k)}.tmp{os.getpid()}"
        pq.write_table(table, tmp)
        os.replace(tmp, self.out / part_name(k))  # whole or absent: a rerun skips it only when complete
        self.pending, self.part = [], None
        self.files += 1
