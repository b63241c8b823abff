"""Header (versions, CPU), memory bandwidth and roofline, markdown tables and the PNG plot."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PACKAGES = ("torch", "transformers", "onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "xlm-onnx", "optimum")


def cpu_model() -> str:
    """The CPU's name and the class that selects ORT's int8 kernels, e.g. ``AMD EPYC (avx512-vnni)``."""
    from xlm_onnx.cpu import cpu_info

    info = cpu_info()
    return f"{info.model} ({info.isa_class})"


def cpu_header() -> dict:
    """CPU model, ISA class and flags (int8 results and speed depend on them: ``xlm_onnx.cpu``)."""
    from xlm_onnx.cpu import cpu_info

    return cpu_info().as_dict()


def gpu_model() -> str | None:
    try:
        import subprocess

        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def header(args) -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "versions": versions,
            "cpu": cpu_model(), "cpu_isa": cpu_header(), "cores": os.cpu_count(), "gpu": gpu_model() if args.provider != "cpu" else None,
            "threads": args.threads, "provider": args.provider, "size": args.size, "warmup": args.warmup,
            "repeat": args.repeat, "budget_s": args.budget_s, "load_avg": os.getloadavg()}


def bandwidth(mb: int, threads: int, repeats: int = 5, gpu_too: bool = False) -> dict:
    """Streaming copy of ``mb`` MiB with ``threads`` threads (numpy releases the GIL), best of
    ``repeats``; GB/s counts bytes read + written, as STREAM's Copy does."""
    import numpy as np

    n = mb * 2**20 // 8
    src, dst = np.ones(n), np.zeros(n)
    parts = [slice(i * n // threads, (i + 1) * n // threads) for i in range(threads)]
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            t = time.perf_counter()
            list(pool.map(lambda s: np.copyto(dst[s], src[s]), parts))  # noqa: F821  (runs before the del below)
            best = min(best, time.perf_counter() - t)
    out = {"copy_gb_s": 2 * src.nbytes / best / 1e9, "array_mb": mb, "threads": threads, "repeats": repeats,
           "method": "numpy copyto, read+write bytes / best time"}
    del src, dst
    gpu = gpu_bandwidth(mb) if gpu_too else None
    if gpu:
        out["gpu_copy_gb_s"] = gpu
    return out


def gpu_bandwidth(mb: int, repeats: int = 10) -> float | None:
    """Device-to-device copy through torch (read+write bytes / best time), if torch sees a GPU."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    src = torch.ones(mb * 2**20 // 4, device="cuda")
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        t = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    size = src.numel() * 4
    del src, dst
    torch.cuda.empty_cache()
    return 2 * size / best / 1e9


def add_roofline(systems: dict, scenarios: list[dict], bw: dict) -> None:
    """For batch-1 scenarios: floor = weight bytes read per inference / bandwidth; % = floor / p50."""
    for res in systems.values():
        if res.get("status") != "ok" or not res.get("weight_bytes"):
            continue
        gbs = bw.get("gpu_copy_gb_s") if res.get("on_gpu") else bw["copy_gb_s"]
        if not gbs:
            continue
        floor_ms = res["weight_bytes"] / (gbs * 1e9) * 1e3
        roof = {"floor_ms": floor_ms}
        for sc in scenarios:
            if sc["batch"] != 1:
                continue
            for mode in ("e2e", "model"):
                cell = res["results"].get(mode, {}).get(sc["name"], {})
                if "p50_ms" in cell:
                    roof[f"{mode}_{sc['name']}_pct"] = 100 * floor_ms / cell["p50_ms"]
        res["roofline"] = roof


def _mb(n) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f} MB"


def _cell(cell: dict | None) -> str:
    if not cell:
        return "-"
    if "p50_ms" not in cell:
        return "n/a"
    return f"{cell['p50_ms']:.1f} / {cell['p90_ms']:.1f} / {cell['p99_ms']:.1f}"


def markdown(data: dict, baseline: str = "hf-fp32") -> str:
    h, systems = data["header"], data["systems"]
    bw = data["bandwidth"]
    lines = [f"Measured {h['date']} on {h['cpu']} ({h['cores']} cores{', ' + h['gpu'] if h.get('gpu') else ''}), "
             f"{h['threads']} threads, provider {h['provider']}, model size {h['size']}; warm-up {h['warmup']}, "
             f"repeat {h['repeat']} (at most {h['budget_s']:g} s per cell), load average at start "
             f"{h['load_avg'][0]:.2f}.",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in h["versions"].items()) + ".",
             "CPU ISA flags: " + " ".join(h.get("cpu_isa", {}).get("flags", ["(not recorded)"])) + ".",
             f"Memory bandwidth: {bw['copy_gb_s']:.1f} GB/s (numpy copy, {bw['threads']} threads, read+write)"
             + (f"; GPU {bw['gpu_copy_gb_s']:.0f} GB/s (torch device copy)" if bw.get("gpu_copy_gb_s") else "")
             + ".", ""]
    ok = {k: v for k, v in systems.items() if v.get("status") == "ok"}
    if ok:
        lines += _latency_tables(data["scenarios"], ok, baseline) + _system_table(data["scenarios"], ok)
    else:
        lines += ["No system ran here (see the notes).", ""]
    notes = [f"- {name}: {res['status']}: {res['note']}" if res.get("status") != "ok" else f"- {name}: {res['note']}"
             for name, res in systems.items() if res.get("note")]
    notes += [f"- {n}" for n in data.get("notes", [])]
    if notes:
        lines += ["Notes:", *notes, ""]
    return "\n".join(lines)


def _latency_tables(scen: list[dict], ok: dict, baseline: str) -> list[str]:
    names = [s["name"] for s in scen]
    speed = [n for n, s in zip(names, scen) if s["batch"] == 1][-1:]  # largest batch-1 scenario
    ref = ok.get(baseline, {}).get("results", {})
    lines = []
    for mode, title in (("e2e", "End-to-end: text -> top-5 results (tokenize, run, decode)"),
                        ("model", "Model only: token ids -> top-5 ids and scores")):
        lines += [f"**{title}** - latency ms, p50 / p90 / p99; throughput in sentences/s", "",
                  "| system | " + " | ".join(names) + f" | sent/s @{names[-1]}"
                  + "".join(f" | x {baseline} @{s}" for s in speed) + " |",
                  "|---" * (len(names) + 2 + len(speed)) + "|"]
        for name, res in ok.items():
            cells = res["results"].get(mode, {})
            last = cells.get(names[-1], {})
            row = [name] + [_cell(cells.get(n)) for n in names]
            row.append(f"{last['throughput_sps']:.1f}" if "throughput_sps" in last else "-")
            for s in speed:
                mine, base = cells.get(s, {}), ref.get(mode, {}).get(s, {})
                row.append(f"{base['p50_ms'] / mine['p50_ms']:.2f}x" if "p50_ms" in mine and "p50_ms" in base else "-")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return lines


def _system_table(scen: list[dict], ok: dict) -> list[str]:
    b1 = [s["name"] for s in scen if s["batch"] == 1]
    lines = ["**Per system** - size on disk, peak RSS (own process), cold start (fresh process: import + load "
             "+ first result, wall), weights read per inference, batch-1 floor = weights / bandwidth, and "
             "% of that floor reached (floor / p50, end-to-end / model-only)", "",
             "| " + " | ".join(["system", "disk", "peak RSS", "cold start", "weights read", "floor"]
                              + [f"% floor {n}" for n in b1]) + " |", "|---" * (6 + len(b1)) + "|"]
    for name, res in ok.items():
        roof = res.get("roofline", {})
        pct = [" / ".join("-" if x is None else f"{x:.0f}%" for x in (roof.get(f"e2e_{n}_pct"), roof.get(f"model_{n}_pct")))
               for n in b1]
        cold, floor = res.get("cold_start_s"), roof.get("floor_ms")
        row = [name, _mb(res.get("model_bytes")), f"{res['peak_rss_mb']:,.0f} MB",
               "-" if cold is None else f"{cold:.2f} s", _mb(res.get("weight_bytes")),
               "-" if floor is None else f"{floor:.1f} ms"]
        lines.append("| " + " | ".join(row + pct) + " |")
    return lines + [""]


def profile_text(data: dict) -> str:
    out = []
    for name, res in data["systems"].items():
        prof = res.get("profile")
        if prof:
            out.append(f"ORT profile of {name} ({prof['file']}), top operators by total time:")
            out += [f"  {p['op']:<28} {p['total_ms']:>10.1f} ms {p['pct']:>5.1f}%  {p['calls']} calls"
                    for p in prof["top_ops"]]
    return "\n".join(out)


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s["name"] for s in data["scenarios"]]
    ok = {k: v for k, v in data["systems"].items() if v.get("status") == "ok"}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    width = 0.8 / max(1, len(ok))
    for ax, (mode, title) in zip(axes, (("e2e", "end-to-end"), ("model", "model only"))):
        for i, (sys_name, res) in enumerate(ok.items()):
            cells = res["results"].get(mode, {})
            ys = [cells.get(n, {}).get("p50_ms", float("nan")) for n in names]
            ax.bar([j + i * width for j in range(len(names))], ys, width, label=sys_name)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names)
        ax.set_yscale("log")
        ax.set_title(f"{title}: p50 latency (ms, log)")
        ax.set_xlabel("batch x tokens")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    h = data["header"]
    fig.suptitle(f"XLM-100 fill-mask ({h['size']}), {h['cpu']}, {h['threads']} threads, {h['provider']}", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
