"""Load benchmark of ``xlm-onnx serve``: dynamic batching vs ``--max-batch-size 1``, same run.

Per model: real servers on loopback ports, one at a time (a full-size int8 server holds ~1.3 GB:
never two at once), driven by the lean keep-alive client of ``_load_client`` (httpx cost more CPU
per request than the server it measured). Throughput cells: closed-loop clients (each sends its
next request when answered) for a fixed time, dynamic and batch-1 alternating cell by cell and
repeated, so load drifts on a shared machine hit both alike; the load average is recorded per
cell. Per cell: throughput, p50/p90/p99, requests and rows per batch (the server's /metrics),
server and client CPU per request, errors. Overload cell: open-loop arrivals at twice the
dynamic server's measured throughput against ``--max-queue 8``: the 429s' latency as the client
sees it and inside the server (``xlm_onnx_refusal_seconds``), and any 5xx. Prints a Markdown
table and writes JSON with versions and the CPU class. Loopback only; every cell stops by itself.

    python benchmarks/serve_load.py --json benchmarks/results/serve_demo.json
    flock /tmp/xlm-bench.lock python benchmarks/serve_load.py --model .cache/bench/full/int8 \\
        --clients 1,32 --seconds 15 --json benchmarks/results/serve_full_int8.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _load_client as lc  # noqa: E402

from xlm_onnx import __version__, cpu_info  # noqa: E402
from xlm_onnx.model import default_model_dir  # noqa: E402
from xlm_onnx.serve.process import ServerProcess  # noqa: E402
from xlm_onnx.tokenization import XLMTokenizer  # noqa: E402

WORDS = ("Toute personne a droit à la liberté de pensée , de conscience et de religion ; ce droit implique "
         "la liberté de changer de religion ou de conviction ainsi que la liberté de manifester sa religion "
         "seule ou en commun , tant en public qu' en privé , par l' enseignement , les pratiques , le culte "
         "et l' accomplissement des rites").split()
OVERLOAD_QUEUE = 8


def texts_of(model_dir: Path, tokens: int, count: int = 32) -> list[str]:
    """``count`` different fill-mask texts of exactly ``tokens`` ids (specials included)."""
    tok = XLMTokenizer.from_pretrained(model_dir)
    out = []
    for start in range(count):
        words = ["<special1>"]
        i = start
        while len(tok.encode(" ".join(words))) < tokens:
            words.insert(len(words) // 2, WORDS[i % len(WORDS)])
            i += 1
        while len(tok.encode(" ".join(words))) > tokens:  # a word of several pieces overshot
            words.pop(0)
        out.append(" ".join(words))
    return out


def _metrics(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
        return response.read().decode()


def _metric(text: str, name: str, label: str = "") -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name + " ") or (line.startswith(name + "{") and label in line))


def _bucket_quantile(text: str, name: str, label: str, q: float) -> float | None:
    """The upper bound (s) of the histogram bucket holding quantile ``q``."""
    buckets = sorted((float(line.split('le="')[1].split('"')[0]), float(line.split()[-1]))
                     for line in text.splitlines() if line.startswith(name + "_bucket") and label in line)
    total = buckets[-1][1] if buckets else 0
    return next((le for le, count in buckets if count >= q * total), None) if total else None


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its children (``--workers``), from /proc (no psutil needed)."""
    import subprocess

    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                    text=True).stdout.split()]
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total


def _percentiles(values: list[float]) -> dict:
    arr = np.array(values) if values else np.array([np.nan])
    return {f"p{q}_ms": round(float(np.percentile(arr, q)), 1) for q in (50, 90, 99)}


def closed_cell(server: ServerProcess, bodies: list[bytes], clients: int, seconds: float) -> dict:
    before, cpu0, me0, load = _metrics(server.url), _cpu_seconds(server.proc.pid), time.process_time(), _loadavg()
    tally, elapsed = lc.run(lc.closed_loop(server.url, "/fill-mask", bodies, clients, seconds))
    after, cpu1, me1 = _metrics(server.url), _cpu_seconds(server.proc.pid), time.process_time()
    n = max(1, len(tally.ok_ms))
    diff = {k: _metric(after, k) - _metric(before, k) for k in (
        "xlm_onnx_batch_requests_count", "xlm_onnx_batch_requests_sum", "xlm_onnx_batch_rows_count",
        "xlm_onnx_batch_rows_sum")}
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": len(tally.ok_ms),
            "throughput_rps": round(len(tally.ok_ms) / elapsed, 1), **_percentiles(tally.ok_ms),
            "mean_batch_requests": round(diff["xlm_onnx_batch_requests_sum"] / max(1, diff[
                "xlm_onnx_batch_requests_count"]), 2),
            "mean_rows_per_run": round(diff["xlm_onnx_batch_rows_sum"] / max(1, diff["xlm_onnx_batch_rows_count"]), 2),
            "server_cpu_ms_per_request": round((cpu1 - cpu0) / n * 1000, 2),
            "client_cpu_ms_per_request": round((me1 - me0) / n * 1000, 3),
            "errors": sum(tally.other.values()) + tally.transport_errors, "refused_429": len(tally.refused_ms),
            "load_average": load}


def overload_cell(server: ServerProcess, bodies: list[bytes], rate: float, seconds: float) -> dict:
    before, load = _metrics(server.url), _loadavg()
    tally, elapsed = lc.run(lc.open_loop(server.url, "/fill-mask", bodies, rate, seconds))
    after = _metrics(server.url)
    name, label = "xlm_onnx_refusal_seconds", 'status="429"'
    within = 'le="0.005",' + label  # prometheus_client writes le first
    fast = _metric(after, name + "_bucket", within) - _metric(before, name + "_bucket", within)
    counted = _metric(after, name + "_count", label) - _metric(before, name + "_count", label)
    refused, p99 = _percentiles(tally.refused_ms), _bucket_quantile(after, name, label, 0.99)
    return {"rate_rps": round(rate, 1), "seconds": round(elapsed, 2),
            "answered_rps": round(len(tally.ok_ms) / elapsed, 1),
            **{f"ok_{k}": v for k, v in _percentiles(tally.ok_ms).items()},
            "refused_429": len(tally.refused_ms), **{f"refused_{k}": v for k, v in refused.items()},
            "server_429_p99_le_ms": None if p99 is None else p99 * 1000,
            "server_429_share_within_5ms": round(fast / counted, 4) if counted else None,
            "status_5xx": sum(v for k, v in tally.other.items() if k >= 500),
            "other_status": tally.other, "client_limited": tally.transport_errors, "load_average": load}


def bench_model(name: str, model_dir: Path, args: argparse.Namespace) -> list[dict]:
    common = ["--max-wait-ms", str(args.max_wait_ms), "--max-queue", "1024", *args.server_option]
    modes = {"dynamic": common, "batch-1": common + ["--max-batch-size", "1"]}
    rows = []
    for tokens in args.tokens:
        bodies = [json.dumps({"inputs": t, "top_k": 5}).encode() for t in texts_of(model_dir, tokens)]
        for clients in args.clients:
            for repeat in range(args.repeats):
                for mode, options in modes.items():  # alternate: drifting load hits both alike
                    with ServerProcess(model_dir, options, timeout=600) as server:
                        lc.run(lc.closed_loop(server.url, "/fill-mask", bodies, clients, min(2.0, args.seconds)))
                        cell = closed_cell(server, bodies, clients, args.seconds)
                    rows.append({"model": name, "tokens": tokens, "mode": mode, "repeat": repeat, **cell})
                    _print_row(rows[-1])
        if args.overload:
            capacity = max(r["throughput_rps"] for r in rows if r["mode"] == "dynamic" and r["tokens"] == tokens)
            options = [*common[:2], "--max-queue", str(OVERLOAD_QUEUE), *args.server_option]
            with ServerProcess(model_dir, options, timeout=600) as server:
                cell = overload_cell(server, bodies, 2 * capacity, args.seconds)
            rows.append({"model": name, "tokens": tokens, "mode": f"overload 2x ({OVERLOAD_QUEUE} queued)", **cell})
            print(json.dumps(rows[-1]), flush=True)
    return rows


HEADER = ("model", "tokens", "mode", "clients", "throughput_rps", "p50_ms", "p99_ms", "mean_batch_requests",
          "server_cpu_ms_per_request", "errors", "load_average")


def _print_row(row: dict) -> None:
    print(" | ".join(str(row.get(k, "")) for k in HEADER), flush=True)


def _loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", metavar="DIR",
                        help="model directory ('demo': the embedded model); repeat for several (default: demo)")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 32])
    parser.add_argument("--tokens", type=lambda s: [int(x) for x in s.split(",")], default=[16])
    parser.add_argument("--seconds", type=float, default=8.0, help="per cell")
    parser.add_argument("--repeats", type=int, default=2, help="alternating dynamic / batch-1 pairs per cell")
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--server-option", action="append", default=[], metavar="OPT",
                        help="passed to both servers, e.g. --server-option=--workers --server-option=2")
    parser.add_argument("--no-overload", dest="overload", action="store_false")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    import onnxruntime

    cpu = cpu_info()
    print(f"CPU: {cpu.model} ({cpu.isa_class}), {os.cpu_count()} cores; load average before: {_loadavg()}")
    print(" | ".join(HEADER))
    results = []
    for spec in args.model or ["demo"]:
        path = default_model_dir() if spec == "demo" else Path(spec)
        results += bench_model("demo" if spec == "demo" else path.name, path, args)
    report = {"benchmark": "serve_load", "command": "python benchmarks/serve_load.py " + " ".join(argv or sys.argv[1:]),
              "cpu": cpu.as_dict(), "cores": os.cpu_count(), "load_average_after": _loadavg(),
              "versions": {"xlm_onnx": __version__, "onnxruntime": onnxruntime.__version__,
                           "python": platform.python_version()},
              "settings": {"seconds": args.seconds, "max_wait_ms": args.max_wait_ms, "repeats": args.repeats,
                           "server_options": args.server_option, "overload_queue": OVERLOAD_QUEUE},
              "results": results}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
