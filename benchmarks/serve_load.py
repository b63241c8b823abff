"""Load benchmark of ``xlm-onnx serve``: dynamic batching vs ``--max-batch-size 1``, same run.

For each model it starts two real servers on loopback ports (dynamic batching, and batch 1),
then runs closed-loop clients (each sends its next request when the last is answered) at each
concurrency for a fixed time, alternating the two servers cell by cell so machine load drifts
hit both alike. Per cell: throughput, p50/p90/p99 latency, mean requests and rows per batch
(from the server's /metrics), errors. An overload cell (a small ``--max-queue``, more clients
than it admits) times the 429s. Prints a table and writes JSON with versions and the CPU class.
Loopback only; every cell stops by itself.

    python benchmarks/serve_load.py --json bench_out/serve.json                       # demo model
    flock /tmp/xlm-bench.lock python benchmarks/serve_load.py --model demo \\
        --model /path/int8 --json bench_out/serve.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from xlm_onnx import __version__, cpu_info
from xlm_onnx.model import default_model_dir
from xlm_onnx.serve.process import ServerProcess
from xlm_onnx.tokenization import XLMTokenizer

WORDS = ("Toute personne a droit à la liberté de pensée , de conscience et de religion ; ce droit implique "
         "la liberté de changer de religion ou de conviction ainsi que la liberté de manifester sa religion "
         "seule ou en commun , tant en public qu' en privé , par l' enseignement , les pratiques , le culte "
         "et l' accomplissement des rites").split()


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


def _metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def _cell(url: str, texts: list[str], clients: int, seconds: float) -> dict:
    """Closed-loop clients for ``seconds``; latencies of the requests that finished in time."""
    ok, errors, refused, refused_ms = [], 0, 0, []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        before = (await client.get("/metrics")).text
        stop = time.perf_counter() + seconds

        async def loop(k: int) -> None:
            nonlocal errors, refused
            n = k
            while time.perf_counter() < stop:
                body = {"inputs": texts[n % len(texts)], "top_k": 5}
                n += clients
                started = time.perf_counter()
                try:
                    response = await client.post("/fill-mask", json=body)
                except httpx.HTTPError:
                    errors += 1
                    continue
                ms = (time.perf_counter() - started) * 1000
                if response.status_code == 200:
                    ok.append(ms)
                elif response.status_code == 429:  # a well-behaved client waits Retry-After
                    refused += 1
                    refused_ms.append(ms)
                    retry = float(response.headers.get("retry-after", "1"))
                    await asyncio.sleep(max(0.0, min(retry, stop - time.perf_counter())))
                else:
                    errors += 1
        began = time.perf_counter()
        await asyncio.gather(*(loop(k) for k in range(clients)))
        elapsed = time.perf_counter() - began
        after = (await client.get("/metrics")).text
    batches = _metric(after, "xlm_onnx_batch_requests_count") - _metric(before, "xlm_onnx_batch_requests_count")
    served = _metric(after, "xlm_onnx_batch_requests_sum") - _metric(before, "xlm_onnx_batch_requests_sum")
    runs = _metric(after, "xlm_onnx_batch_rows_count") - _metric(before, "xlm_onnx_batch_rows_count")
    rows = _metric(after, "xlm_onnx_batch_rows_sum") - _metric(before, "xlm_onnx_batch_rows_sum")
    lat = np.array(ok) if ok else np.array([np.nan])
    return {"clients": clients, "seconds": round(elapsed, 2), "requests": len(ok),
            "throughput_rps": round(len(ok) / elapsed, 2),
            "p50_ms": round(float(np.percentile(lat, 50)), 1), "p90_ms": round(float(np.percentile(lat, 90)), 1),
            "p99_ms": round(float(np.percentile(lat, 99)), 1),
            "mean_batch_requests": round(served / batches, 2) if batches else None,
            "mean_rows_per_run": round(rows / runs, 2) if runs else None, "errors": errors, "refused_429": refused,
            "p99_429_ms": round(float(np.percentile(refused_ms, 99)), 2) if refused_ms else None}


def bench_model(name: str, model_dir: Path, args: argparse.Namespace) -> list[dict]:
    common = ["--max-wait-ms", str(args.max_wait_ms), "--max-queue", "1024"] + (
        ["--threads", str(args.threads)] if args.threads else [])
    modes = {"dynamic": common, "batch-1": common + ["--max-batch-size", "1"]}
    rows = []
    servers = {mode: ServerProcess(model_dir, opts, timeout=600) for mode, opts in modes.items()}
    try:
        for server in servers.values():
            server.start()
        for tokens in args.tokens:
            texts = texts_of(model_dir, tokens)
            for clients in args.clients:
                for mode, server in servers.items():  # alternate: drifting load hits both alike
                    cell = asyncio.run(_cell(server.url, texts, clients, args.seconds))
                    rows.append({"model": name, "tokens": tokens, "mode": mode, **cell})
                    _print_row(rows[-1])
    finally:
        for server in servers.values():
            server.stop()
    if args.overload:
        opts = common[:2] + ["--max-queue", "8"] + common[4:]
        with ServerProcess(model_dir, opts, timeout=600) as server:
            cell = asyncio.run(_cell(server.url, texts_of(model_dir, args.tokens[0]), 64, args.seconds))
        rows.append({"model": name, "tokens": args.tokens[0], "mode": "overload (--max-queue 8)", **cell})
        _print_row(rows[-1])
    return rows


HEADER = ("model", "tokens", "mode", "clients", "throughput_rps", "p50_ms", "p90_ms", "p99_ms",
          "mean_batch_requests", "mean_rows_per_run", "errors", "refused_429", "p99_429_ms")


def _print_row(row: dict) -> None:
    print(" | ".join(str(row.get(k, "")) for k in HEADER), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", metavar="DIR",
                        help="model directory ('demo': the embedded model); repeat for several (default: demo)")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32, 64])
    parser.add_argument("--tokens", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64])
    parser.add_argument("--seconds", type=float, default=8.0, help="per cell")
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-overload", dest="overload", action="store_false")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    import onnxruntime

    cpu = cpu_info()
    print(f"CPU: {cpu.model} ({cpu.isa_class}); load average before: {_loadavg()}")
    print(" | ".join(HEADER))
    results = []
    for spec in args.model or ["demo"]:
        path = default_model_dir() if spec == "demo" else Path(spec)
        results += bench_model("demo" if spec == "demo" else path.name, path, args)
    report = {"benchmark": "serve_load", "cpu": cpu.as_dict(), "load_average_after": _loadavg(),
              "versions": {"xlm_onnx": __version__, "onnxruntime": onnxruntime.__version__,
                           "python": platform.python_version(), "httpx": httpx.__version__},
              "settings": {"seconds": args.seconds, "max_wait_ms": args.max_wait_ms, "threads": args.threads},
              "results": results}
    print(json.dumps(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0:3].__str__()
    except OSError:
        return "n/a"


if __name__ == "__main__":
    sys.exit(main())
