"""Bulk throughput (not CI): `xlm-onnx bulk` on a local Ray vs the single-process `xlm-onnx` CLI.

    flock /tmp/xlm-bench.lock python benchmarks/bulk.py [--model DIR] [--rows 10000] [--tasks fill-mask,embed]
        [--repeat 2] [--json out.json]

Rows are derived from the UDHR dev lines (``../shared/data/udhr_xlm_dev.jsonl``): for fill-mask
one word of a line is masked (each line several times, at different words, until ``--rows``);
embed and score take the lines as they are, cycled. Both sides get the same rows and the same
cores: the single process runs ``xlm-onnx TASK --input FILE --json --threads N --truncation`` (N = --cpus),
Ray runs ``xlm-onnx bulk TASK --num-cpus N`` (N actors x 1 intra-op thread). Each run is a fresh
process tree; the two alternate, so machine load hits both alike. Reported per run: wall time
from process start to exit, rows/s, Ray's own job time without cluster start (from its summary
line), and peak memory as the largest sum of RSS over the process tree (Ray: driver, GCS,
raylet, workers; shared pages counted once per process, so this overstates Ray). Needs psutil
(the [bench] extra) and the [ray] extra.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UDHR = Path(os.environ.get("XLM_ONNX_SHARED", REPO.parent / "shared")) / "data" / "udhr_xlm_dev.jsonl"
CLI = [sys.executable, "-m", "xlm_onnx"]


def make_rows(n: int, task: str) -> list[str]:
    lines = [json.loads(line)["text"] for line in UDHR.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows: list[str] = []
    position = 0
    while len(rows) < n:
        for text in lines:
            words = text.split()
            if task == "fill-mask":
                if len(words) < 2:
                    continue
                words[(position * 7 + 1) % len(words)] = "<mask>"
            rows.append(" ".join(words))
            if len(rows) == n:
                break
        position += 1
    return rows


def run_measured(cmd: list[str], stdout) -> tuple[float, float, str]:
    """Wall seconds, peak summed RSS (MB) of the process tree, stderr."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    parent, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        total = 0
        try:
            for p in [parent, *parent.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.2)
    err = proc.stderr.read()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    return seconds, peak / 2**20, err


def one_task(task: str, rows: list[str], model: str | None, cpus: int, work: Path) -> dict:
    jsonl, txt = work / f"{task}.jsonl", work / f"{task}.txt"
    jsonl.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(rows)))
    txt.write_text("".join(t + "\n" for t in rows))
    model_args = ["--model", model] if model else []
    single_input = ["--input", str(jsonl)] if task == "fill-mask" else ["--input", str(txt)]
    # --truncation on both sides: a few UDHR lines are longer than the demo model's 256 positions.
    single = CLI + [task, *single_input, "--json", "--threads", str(cpus), "--truncation", *model_args]
    out_dir = work / f"{task}-ray"
    bulk = CLI + ["bulk", task, "--input", str(jsonl), "--output", str(out_dir), "--num-cpus", str(cpus),
                  "--rows-per-file", str(max(len(rows), 1)), "--truncation", *model_args,
                  # a Ray block per --batch-size rows: few rows need small blocks or one actor gets them all
                  "--batch-size", str(max(1, min(256, len(rows) // (4 * cpus))))]
    with open(work / "single.out", "w") as sink:
        seconds, peak, _ = run_measured(single, sink)
    single_result = {"seconds": seconds, "rows_per_s": len(rows) / seconds, "peak_rss_mb": peak}
    subprocess.run(["rm", "-rf", str(out_dir)], check=True)
    seconds, peak, err = run_measured(bulk, subprocess.DEVNULL)
    job = re.search(r"in ([\d.]+) s \(([\d,.]+) rows/s", err)
    ray_result = {"seconds": seconds, "rows_per_s": len(rows) / seconds, "peak_rss_mb": peak,
                  "job_seconds": float(job.group(1)) if job else None,
                  "job_rows_per_s": float(job.group(2).replace(",", "")) if job else None}
    return {"single": single_result, "ray": ray_result}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: the embedded demo model)")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--score-rows", type=int, help="rows for score (default --rows / 10: one run per token)")
    parser.add_argument("--tasks", default="fill-mask,embed,score")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    import onnxruntime
    import ray

    from xlm_onnx import __version__
    from xlm_onnx.cpu import cpu_info

    results: dict = {"model": args.model or "demo (embedded)", "cpus": args.cpus, "tasks": {},
                     "versions": {"xlm_onnx": __version__, "ray": ray.__version__, "onnxruntime": onnxruntime.__version__,
                                  "python": platform.python_version()},
                     "cpu": cpu_info().as_dict(), "load_avg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks.split(","):
            n = (args.score_rows or max(args.rows // 10, 1)) if task == "score" else args.rows
            rows = make_rows(n, task)
            runs = [one_task(task, rows, args.model, args.cpus, Path(tmp)) for _ in range(args.repeat)]
            results["tasks"][task] = {"rows": n, "runs": runs}
    results["load_avg_after"] = os.getloadavg()
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def markdown(results: dict) -> str:
    cpu = results["cpu"]
    lines = [f"model: {results['model']}; {results['cpus']} CPUs; CPU {cpu.get('model')} ({cpu.get('isa_class')}); "
             f"load average before/after {results['load_avg_before'][0]:.1f} / {results['load_avg_after'][0]:.1f}", "",
             "| task | rows | single process rows/s | Ray rows/s (end to end) | Ray rows/s (job, no cluster start) "
             "| Ray / single | peak RSS single / Ray (MB) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for task, entry in results["tasks"].items():
        best = {side: max(r[side]["rows_per_s"] for r in entry["runs"]) for side in ("single", "ray")}
        job = max((r["ray"]["job_rows_per_s"] or 0) for r in entry["runs"])
        peaks = [max(r[side]["peak_rss_mb"] for r in entry["runs"]) for side in ("single", "ray")]
        lines.append(f"| {task} | {entry['rows']:,} | {best['single']:.1f} | {best['ray']:.1f} | {job:.1f} | "
                     f"{best['ray'] / best['single']:.2f}x (job: {job / best['single']:.2f}x) | "
                     f"{peaks[0]:,.0f} / {peaks[1]:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
