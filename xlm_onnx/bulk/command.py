"""``xlm-onnx bulk TASK --input PATH --output DIR``: a corpus through Ray Data (``[ray]`` extra).

One code path for a local Ray started for the job (``--num-cpus``) and an existing cluster
(``--address``)::

    chunks of the parts to answer (a rerun skips written files) ─from_items─► read_chunk (tasks)
      ─map_batches(the task's callable (xlm_onnx.ray.callables), actor pool: one model per actor)
      ─iter_batches in input order (preserve_order)─► PartWriter: part-000000.parquet, ...

Ray Data restarts a killed actor and retries its batches (``max_restarts`` / ``max_task_retries``
are -1 for actor pools in Ray 2.60); rows come back in input order, so a file is written once
its rows are all there. Ray itself is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from .._ray_env import StderrFilter, ray_defaults
from ..errors import missing_extra
from ..front import arguments
from ..tasks import registry

_HELP = "answer a JSON Lines / Parquet corpus on Ray (needs the [ray] extra)"


def add_parser(sub) -> None:
    """Adds ``bulk TASK`` to ``xlm-onnx``'s sub-parsers, a command per registered task (no Ray import)."""
    bulk = sub.add_parser("bulk", help=_HELP, description=f"xlm-onnx bulk: {_HELP}; "
                          "`xlm-onnx bulk TASK --help` lists a task's options")
    tasks = bulk.add_subparsers(dest="task", required=True, metavar="TASK", parser_class=type(bulk))
    for name in registry.names():
        cls = registry.task_class(name)
        parser = tasks.add_parser(name, help=cls.summary or cls.purpose,
                                  description=f"xlm-onnx bulk {name}: {cls.summary or cls.purpose}, one answer per row")
        _add_job_options(parser)
        arguments.add_params(parser.add_argument_group(f"{name} options"), cls.params.on("bulk"))


def _add_job_options(bulk) -> None:
    bulk.add_argument("--input", required=True, metavar="PATH", help="a .jsonl or .parquet file (reachable by every node)")
    bulk.add_argument("--output", required=True, metavar="DIR",
                      help="directory of part-NNNNNN.parquet files; a rerun of the same job skips the written ones")
    bulk.add_argument("--input-format", choices=("auto", "jsonl", "parquet"), default="auto", help="by the suffix if auto")
    bulk.add_argument("--text-column", default="text", metavar="NAME", help="the column of texts")
    arguments.add_model(bulk, where="directory, readable at this path on every node")
    where = bulk.add_mutually_exclusive_group()
    where.add_argument("--num-cpus", type=int, metavar="N", help="start a local Ray with N CPUs (default: all)")
    where.add_argument("--address", metavar="ADDR",
                       help="run on an existing Ray cluster (e.g. auto, HOST:6379; default: a local Ray)")
    bulk.add_argument("--cpus-per-actor", type=int, default=1, metavar="N",
                      help="CPUs reserved per model actor = its ORT intra-op threads")
    bulk.add_argument("--actors", type=int, metavar="N", help="model actors (default: cluster CPUs / --cpus-per-actor)")
    bulk.add_argument("--batch-size", type=int, default=256, metavar="N", help="rows per actor call")
    bulk.add_argument("--rows-per-file", type=int, default=100_000, metavar="N", help="rows per output file")
    bulk.add_argument("--fail-fast", action="store_true",
                      help="stop at the first bad row (default: answer it with an error column and go on)")


def task_options(args: argparse.Namespace) -> dict:
    """The callable's options from ``args``: the task's parameters, as the schema declares them."""
    return arguments.param_values(args, registry.task_class(args.task).params, "bulk")


def run(args: argparse.Namespace, model_dir) -> int:
    """Runs ``bulk`` (``model_dir``: resolved ``--model``, ``None`` for the demo model); exit status."""
    try:
        import ray
        import ray.data

        from . import parts as bio
    except ImportError:
        raise missing_extra("ray", "ray[data]", "xlm-onnx bulk") from None
    for name in ("num_cpus", "actors", "cpus_per_actor", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
    options = task_options(args)
    model = None if model_dir is None else os.path.abspath(model_dir)
    plan = bio.plan_input(args.input, args.rows_per_file, args.batch_size, args.input_format, args.text_column)
    stat = os.stat(plan.path)
    job = {"task": args.task, "options": options, "model": model, "input": plan.path, "input_size": stat.st_size,
           "input_mtime_ns": stat.st_mtime_ns, "rows": plan.rows, "rows_per_file": plan.rows_per_file,
           "text_column": plan.text_column}
    pending = bio.prepare_output(args.output, job, plan.parts)
    skipped = plan.parts - len(pending)
    if not pending:
        print(f"xlm-onnx: nothing to do: all {plan.parts} file(s) of this job are in {args.output}", file=sys.stderr)
        return 0
    # Ray's own INFO/WARNING lines (token auth, progress bars off, execution finished) would bury
    # our one-line progress; its errors still print. XLM_ONNX_DEBUG=1 shows everything.
    quiet = logging.DEBUG if os.environ.get("XLM_ONNX_DEBUG") else logging.ERROR
    ray_defaults()  # usage statistics off unless the user turned them on
    with StderrFilter():
        return _run_on_ray(ray, args, plan, pending, skipped, options, model, quiet)


def _run_on_ray(ray, args, plan, pending, skipped, options, model, quiet) -> int:
    from . import parts as bio
    from ..ray.callables import TASKS, BulkTask

    if args.address:
        ray.init(address=args.address, logging_level=quiet)
    else:
        # A cluster for this job only: on loopback, reachable from nowhere else.
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level=quiet, _node_ip_address="127.0.0.1")
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(quiet)
    try:
        actors = args.actors or max(1, int(ray.cluster_resources().get("CPU", 1)) // args.cpus_per_actor)
        # No more actors than blocks: an idle actor costs a model load and Ray warns about it.
        actors = min(actors, sum(len(plan.chunks(k)) for k in pending))
        callable_class = TASKS.get(args.task, BulkTask)  # fixed column types where the class sets them
        ds = _dataset(ray, plan, pending, callable_class, {"task": args.task, **options}, model, actors, args)
        writer = bio.PartWriter(args.output, plan, args.fail_fast)
        started = time.monotonic()
        _drain(ds, writer, sum(plan.part_rows(k) for k in pending))
        seconds = time.monotonic() - started
    finally:
        ray.shutdown()
    print(f"xlm-onnx: wrote {writer.rows:,} rows ({writer.errors:,} with an error) to {writer.files} file(s) in "
          f"{args.output} in {seconds:.1f} s ({writer.rows / max(seconds, 1e-9):,.1f} rows/s on {actors} actor(s), "
          f"Ray start not counted)" + (f"; {skipped} file(s) were already there" if skipped else ""), file=sys.stderr)
    return 0


def _read_chunks(batch, plan):
    import pyarrow as pa

    from .parts import read_chunk

    return pa.concat_tables([read_chunk(plan, i) for i in batch.column("chunk").to_pylist()])


def _dataset(ray, plan, pending, task, options, model, actors, args):
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # rows come back in input order: files fill one by one
    context.enable_progress_bars = False  # one line of our own instead (see _drain)
    context.print_on_execution_start = False
    # One block per chunk of --batch-size rows: an actor pool gets as many inputs as there are
    # blocks, so one block per part would leave all actors but one idle.
    chunks = [i for k in pending for i in plan.chunks(k)]
    ds = ray.data.from_items([{"chunk": i} for i in chunks], override_num_blocks=len(chunks))
    # Reading is light (bytes -> Arrow): no CPU reserved, so the actors can hold every CPU; and one
    # read task at a time, or Ray starts a worker process (~200 MB) per chunk for 0-CPU tasks.
    ds = ds.map_batches(_read_chunks, fn_kwargs={"plan": plan}, batch_size=None, batch_format="pyarrow", num_cpus=0,
                        compute=ray.data.TaskPoolStrategy(size=1))
    return ds.map_batches(task, fn_constructor_kwargs={"model_dir": model, "text_column": plan.text_column, **options},
                          batch_size=args.batch_size, batch_format="pyarrow", num_cpus=args.cpus_per_actor,
                          compute=ray.data.ActorPoolStrategy(size=actors))


def _drain(ds, writer, total: int) -> None:
    """Feeds answered batches to the writer; a progress line on a terminal."""
    tty, start, last = sys.stderr.isatty(), time.monotonic(), 0.0
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        writer.add(batch)
        now = time.monotonic()
        if tty and (now - last > 0.5 or writer.rows == total):
            rate = writer.rows / max(now - start, 1e-9)
            print(f"\r{writer.rows:,}/{total:,} rows, {rate:,.1f} rows/s, {writer.files} file(s) written, "
                  f"{writer.errors:,} error row(s)", end="", file=sys.stderr, flush=True)
            last = now
    if tty:
        print(file=sys.stderr)
    if writer.rows != total:
        raise RuntimeError(f"Ray Data returned {writer.rows} rows for {total} input rows")
