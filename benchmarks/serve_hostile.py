"""Hostile-load benchmark of ``xlm-onnx serve``: how fast abuse is refused, what it does to a normal
client meanwhile, and whether memory stays flat. Loopback only; every phase is bounded and stops
by itself.

One server (the demo model unless ``--model``, every default limit). A background client sends a
normal ``/fill-mask`` request back to back the whole time, so each phase reports the latency a
normal client sees while the hostile requests are held. Phases:

* ``refused``: the amplification bodies (20 and 254 masks with ``top_k`` = the vocabulary, 200
  masks x 500 whole-word targets, ``/score`` of 64 texts of 254 tokens, ...): status, the limit
  named, latency of each refusal;
* ``served``: the largest requests the limits allow (two 640 kB ``/tokenize`` bodies of 10,000-
  letter words, ``/score`` of one 254-token text, ``/embed`` of 64 x 10,000 characters);
* ``stalled``: 256 bodies that never end;
* ``memory``: 20 requests with 50,000 distinct targets, then 1,000 with distinct long words
  (the server's RSS before and after, and its peak);
* ``sigterm``: seconds from SIGTERM to exit with the 256 stalled bodies held.

    python benchmarks/serve_hostile.py --out benchmarks/results/serve_hostile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from xlm_onnx import __version__, cpu_info
from xlm_onnx.serve.process import ServerProcess

M = "<mask>"
LONG = " ".join(["Toute personne a droit à la liberté de pensée."] * 40)
NORMAL = {"inputs": "Toute personne a droit à la <mask>."}


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":")) / 1024


class NormalClient:
    """Sends NORMAL back to back on its own connection; records (finish time, ms, status)."""

    def __init__(self, url: str) -> None:
        self.records: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(url,), daemon=True)
        self._thread.start()

    def _loop(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                status = client.post("/fill-mask", json=NORMAL).status_code
                self.records.append((time.perf_counter(), (time.perf_counter() - started) * 1000, status))

    def between(self, start: float, end: float) -> dict:
        """Latency of the normal requests that finished in [start, end], and of the one in flight at end."""
        records = list(self.records)
        inside = [r for r in records if start <= r[0] <= end]
        spanning = next((r for r in records if r[0] > end), None)
        ms = [r[1] for r in inside + ([spanning] if spanning else [])] or [float("nan")]
        bad = sum(1 for r in self.records if start <= r[0] <= end and r[2] != 200)
        return {"normal_n": len(ms), "normal_p50_ms": round(float(np.median(ms)), 1),
                "normal_max_ms": round(float(np.max(ms)), 1), "normal_non_200": bad}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=130)


def _long_words(n: int, letters: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(letters)) for _ in range(n)]


def phase_refused(client: httpx.Client, normal: NormalClient, vocab: int) -> list[dict]:
    cases = [
        ("20 masks, top_k = vocab", "/fill-mask", {"inputs": " ".join([M] * 20), "top_k": vocab}),
        ("254 masks, top_k = vocab", "/fill-mask", {"inputs": " ".join([M] * 254), "top_k": vocab}),
        ("200 masks x 500 whole-word targets", "/fill-mask",
         {"inputs": " ".join([M] * 200), "targets": [f"mot{i}" for i in range(500)], "whole_word_targets": True}),
        ("/score 64 texts x 254 tokens", "/score", {"inputs": [LONG] * 64, "truncation": True}),
        ("/score 2 texts x 254 tokens", "/score", {"inputs": [LONG] * 2, "truncation": True}),
    ]
    rows = []
    for name, route, body in cases:
        ms, statuses, start = [], set(), time.perf_counter()
        for _ in range(5):
            t = time.perf_counter()
            response = client.post(route, json=body)
            ms.append((time.perf_counter() - t) * 1000)
            statuses.add(response.status_code)
            limit = response.json().get("error", "").rsplit("(", 1)[-1].rstrip(")") if response.status_code != 200 else ""
        rows.append({"phase": "refused", "case": name, "body_bytes": len(json.dumps(body)),
                     "status": sorted(statuses), "limit": limit, "p50_ms": round(float(np.median(ms)), 1),
                     "max_ms": round(max(ms), 1), **normal.between(start, time.perf_counter())})
    return rows


def phase_served(url: str, normal: NormalClient) -> list[dict]:
    words = _long_words(128, 10_000, 0)
    cases = [
        ("2 x /tokenize 64 words of 10,000 letters", "/tokenize",
         [{"inputs": words[:64], "truncation": True}, {"inputs": words[64:], "truncation": True}]),
        ("/score 1 text x 254 tokens", "/score", [{"inputs": LONG, "truncation": True}]),
        ("/embed 64 x 9,800 characters", "/embed", [{"inputs": [LONG * 5] * 64, "truncate": True}]),
    ]
    rows = []
    for name, route, bodies in cases:
        results: list = [None] * len(bodies)

        def send(i: int) -> None:
            with httpx.Client(base_url=url, timeout=300) as c:
                t = time.perf_counter()
                status = c.post(route, json=bodies[i]).status_code
                results[i] = (status, (time.perf_counter() - t) * 1000)
        start = time.perf_counter()
        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        rows.append({"phase": "served", "case": name, "body_bytes": sum(len(json.dumps(b)) for b in bodies),
                     "status": sorted({r[0] for r in results}), "p50_ms": round(float(np.median([r[1] for r in results])), 1),
                     "max_ms": round(max(r[1] for r in results), 1), **normal.between(start, time.perf_counter())})
    return rows


def stall(port: int, n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /fill-mask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{")
        out.append(sock)
    return out


def phase_memory(client: httpx.Client, pid: int, normal: NormalClient) -> dict:
    before, start = rss_mb(pid), time.perf_counter()
    for r in range(20):
        targets = [f"q{r:02d}{i:05d}zx" for i in range(50_000)]
        assert client.post("/fill-mask", json={**NORMAL, "targets": targets}).status_code == 200
    mid = rss_mb(pid)
    for w in _long_words(1000, 300, 1):
        assert client.post("/tokenize", json={"inputs": f"le {w} ."}).status_code == 200
    return {"phase": "memory", "case": "20 x 50,000 distinct targets, then 1,000 distinct 300-letter words",
            "rss_before_mb": round(before), "rss_after_targets_mb": round(mid), "rss_after_mb": round(rss_mb(pid)),
            "growth_mb": round(rss_mb(pid) - before, 1), "peak_rss_mb": round(rss_mb(pid, "VmHWM")),
            "seconds": round(time.perf_counter() - start, 1), **normal.between(start, time.perf_counter())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model directory (default: the embedded demo model)")
    parser.add_argument("--out", metavar="PREFIX", help="write PREFIX.json and PREFIX.md")
    args = parser.parse_args(argv)
    import onnxruntime

    cpu = cpu_info()
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"CPU: {cpu.model} ({cpu.isa_class}), {os.cpu_count()} logical cores; "
          f"load average before: {' '.join(load)}", flush=True)
    rows: list[dict] = []
    with ServerProcess(args.model, timeout=600) as server, httpx.Client(base_url=server.url, timeout=300) as client:
        vocab = client.get("/info").json()["manifest"]["vocab_size"]
        pid = server.proc.pid
        normal = NormalClient(server.url)
        time.sleep(3)  # the baseline: normal requests alone
        rows.append({"phase": "baseline", "case": "normal /fill-mask alone", **normal.between(0, time.perf_counter())})
        rows += phase_refused(client, normal, vocab)
        rows += phase_served(server.url, normal)
        start = time.perf_counter()
        held = stall(server.port, 256)
        time.sleep(3)
        rows.append({"phase": "stalled", "case": "256 bodies that never end",
                     **normal.between(start, time.perf_counter())})
        rows.append(phase_memory(client, pid, normal))
        normal.stop()
        started = time.perf_counter()
        server.terminate()
        code = server.proc.wait(timeout=300)
        rows.append({"phase": "sigterm", "case": "SIGTERM with 256 stalled bodies held",
                     "seconds": round(time.perf_counter() - started, 2), "exit_status": code})
        for sock in held:
            sock.close()
    for row in rows:
        print(json.dumps(row, ensure_ascii=False), flush=True)
    report = {"benchmark": "serve_hostile", "cpu": cpu.as_dict(), "load_average_before": load,
              "load_average_after": Path("/proc/loadavg").read_text().split()[:3],
              "versions": {"xlm_onnx": __version__, "onnxruntime": onnxruntime.__version__,
                           "python": platform.python_version(), "httpx": httpx.__version__},
              "model": args.model or "demo", "results": rows}
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        out.with_suffix(".md").write_text(markdown(report))
    return 0


def markdown(report: dict) -> str:
    cpu = report["cpu"]
    lines = [f"# serve_hostile: {report['model']} model", "",
             f"CPU {cpu.get('model')} ({cpu.get('isa_class')}); load average before "
             f"{' '.join(report['load_average_before'])}, after {' '.join(report['load_average_after'])}; "
             f"xlm-onnx {report['versions']['xlm_onnx']}, onnxruntime {report['versions']['onnxruntime']}.", "",
             "| phase | case | status | limit | hostile p50 / max ms | normal p50 / max ms (n, non-200) | other |",
             "|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        other = ", ".join(f"{k} {v}" for k, v in r.items() if k in (
            "rss_before_mb", "rss_after_mb", "growth_mb", "peak_rss_mb", "seconds", "exit_status", "body_bytes"))
        hostile = f"{r['p50_ms']} / {r['max_ms']}" if "p50_ms" in r else ""
        normal = f"{r['normal_p50_ms']} / {r['normal_max_ms']} ({r['normal_n']}, {r['normal_non_200']})" \
            if "normal_n" in r else ""
        lines.append(f"| {r['phase']} | {r['case']} | {r.get('status', '')} | {r.get('limit', '')} | {hostile} | "
                     f"{normal} | {other} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
