"""Why did 429s look slow? The same overloaded server, timed by two clients and by itself.

One demo-model server with ``--max-queue 8`` and 64 closed-loop clients (each waits
``Retry-After`` after a 429, as the earlier measurement did), driven first by ``httpx.AsyncClient``
and then by the lean client of ``_load_client``, alternating. Per cell: the 429s' latency as the
client measured it, the server's own timing of them (``xlm_onnx_refusal_seconds``, bucket bounds),
the client process's CPU, and the load average. If the server's time stays small while the
client's is large, the client's own scheduling on the shared cores is the cause, not the server.

    python benchmarks/serve_refusal_cause.py --json benchmarks/results/serve_refusal_cause.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402

import _load_client as lc  # noqa: E402
from serve_load import _bucket_quantile, _loadavg, _metric, _metrics, _percentiles, texts_of  # noqa: E402

from xlm_onnx import cpu_info  # noqa: E402
from xlm_onnx.model import default_model_dir  # noqa: E402
from xlm_onnx.serve.process import ServerProcess  # noqa: E402


async def _httpx_closed(url: str, bodies: list[bytes], clients: int, seconds: float) -> lc.Tally:
    tally, stop = lc.Tally(), time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def one(k: int) -> None:
            n = k
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = await client.post("/fill-mask", content=bodies[n % len(bodies)],
                                             headers={"content-type": "application/json"})
                n += clients
                tally.add(response.status_code, (time.perf_counter() - started) * 1000)
                if response.status_code == 429:
                    await asyncio.sleep(max(0.0, min(1.0, stop - time.perf_counter())))
        await asyncio.gather(*(one(k) for k in range(clients)))
    return tally


def cell(server: ServerProcess, client: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    before, load, cpu0 = _metrics(server.url), _loadavg(), time.process_time()
    if client == "httpx":
        tally = asyncio.run(_httpx_closed(server.url, bodies, clients, seconds))
    else:
        tally, _ = lc.run(lc.closed_loop(server.url, "/fill-mask", bodies, clients, seconds))
    after, cpu = _metrics(server.url), time.process_time() - cpu0
    name, label = "xlm_onnx_refusal_seconds", 'status="429"'
    counts = {le: _metric(after, f"{name}_bucket", f'le="{le}",{label}') - _metric(before, f"{name}_bucket",
                                                                                     f'le="{le}",{label}')
              for le in ("0.001", "0.005")}
    total = _metric(after, f"{name}_count", label) - _metric(before, f"{name}_count", label)
    return {"client": client, "clients": clients, "answered": len(tally.ok_ms), "refused_429": len(tally.refused_ms),
            **{f"client_429_{k}": v for k, v in _percentiles(tally.refused_ms).items()},
            "server_429_within_1ms": round(counts["0.001"] / total, 4) if total else None,
            "server_429_within_5ms": round(counts["0.005"] / total, 4) if total else None,
            "server_429_p99_le_ms_since_start": (lambda v: v and v * 1000)(_bucket_quantile(after, name, label, .99)),
            "client_cpu_ms_per_request": round(cpu / max(1, len(tally.ok_ms) + len(tally.refused_ms)) * 1000, 3),
            "errors": sum(tally.other.values()) + tally.transport_errors, "load_average": load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    bodies = [json.dumps({"inputs": t, "top_k": 5}).encode() for t in texts_of(default_model_dir(), 16)]
    results = []
    with ServerProcess(None, ["--max-queue", "8"]) as server:
        for _ in range(args.repeats):
            for client in ("httpx", "lean"):
                results.append(cell(server, client, bodies, args.clients, args.seconds))
                print(json.dumps(results[-1]), flush=True)
    if args.json:
        report = {"benchmark": "serve_refusal_cause", "cpu": cpu_info().as_dict(), "cores": os.cpu_count(),
                  "command": "python benchmarks/serve_refusal_cause.py " + " ".join(argv or sys.argv[1:]),
                  "httpx": httpx.__version__, "results": results}
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
