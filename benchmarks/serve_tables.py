"""Markdown tables from benchmarks/serve_load.py and serve_profile.py JSON results.

    python benchmarks/serve_tables.py benchmarks/results/serve_demo.json benchmarks/results/serve_full_int8.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load_table(report: dict) -> list[str]:
    rows = [r for r in report["results"] if r["mode"] in ("dynamic", "batch-1")]
    out = ["| model | tokens | clients | repeat | mode | req/s | p50 ms | p99 ms | requests / batch | server CPU ms / req "
           "| errors | load average |", "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['tokens']} | {r['clients']} | {r.get('repeat', 0)} | {r['mode']} | "
                   f"{r['throughput_rps']} | {r['p50_ms']} | {r['p99_ms']} | {r['mean_batch_requests']} | "
                   f"{r['server_cpu_ms_per_request']} | {r['errors']} | {r['load_average'][0]} |")
    out += ["", "| model | tokens | clients | repeat | dynamic / batch-1 req/s | ratio | p99 dynamic / batch-1 |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    pairs: dict[tuple, dict] = {}
    for r in rows:
        pairs.setdefault((r["model"], r["tokens"], r["clients"], r.get("repeat", 0)), {})[r["mode"]] = r
    for (model, tokens, clients, repeat), pair in pairs.items():
        if {"dynamic", "batch-1"} <= set(pair):
            d, b = pair["dynamic"], pair["batch-1"]
            out.append(f"| {model} | {tokens} | {clients} | {repeat} | {d['throughput_rps']} / {b['throughput_rps']} | "
                       f"**{d['throughput_rps'] / b['throughput_rps']:.2f}x** | "
                       f"{d['p99_ms'] / b['p99_ms']:.2f}x |")
    overload = [r for r in report["results"] if r["mode"].startswith("overload")]
    if overload:
        out += ["", "| model | arrivals req/s | answered req/s | 429s | 429 p50 / p99 ms (client) | 429 p99 in server "
                "(bucket, ms) | 429s within 5 ms in server | 5xx | load average |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in overload:
            out.append(f"| {r['model']} | {r['rate_rps']} | {r['answered_rps']} | {r['refused_429']} | "
                       f"{r['refused_p50_ms']} / {r['refused_p99_ms']} | <= {r['server_429_p99_le_ms']} | "
                       f"{100 * r['server_429_share_within_5ms']:.1f} % | {r['status_5xx']} | {r['load_average'][0]} |")
    return out


def profile_table(report: dict) -> list[str]:
    cats = ["model", "HTTP", "thread handoff", "decode", "tokenize", "JSON"]
    out = ["| mode | req/s | server CPU ms / req | " + " | ".join(cats) + " | load average |",
           "|---|---:|---:|" + "---:|" * len(cats) + "---|"]
    for r in report["results"]:
        cells = [f"{r['share_ms_per_request'].get(c, 0):.3f} ({r['share_percent'].get(c, 0):.1f} %)" for c in cats]
        out.append(f"| {r['mode']} | {r['throughput_rps']} | {r['server_cpu_ms_per_request']} | " + " | ".join(cells)
                   + f" | {r['load_average'][0]} |")
    return out


def main(paths: list[str]) -> int:
    for path in paths:
        report = json.loads(Path(path).read_text())
        cpu = report["cpu"]
        print(f"### {Path(path).name}\n\n`{report.get('command', '')}` — {cpu['model']} ({cpu['isa_class']}), "
              f"{report.get('cores', '?')} cores" + (f", onnxruntime {report['versions']['onnxruntime']}"
                                                     if "versions" in report else "") + "\n")
        table = profile_table(report) if report["benchmark"] == "serve_profile" else load_table(report)
        print("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
