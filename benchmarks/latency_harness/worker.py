"""One system in its own process: cold start, timed scenarios, peak RSS, optional ORT profile.

Run by path (``python worker.py SPEC.json``), not as ``-m latency_harness.worker``: the
exporter package imports torch, which would inflate the cold start and RSS of the xlm-onnx
systems. Protocol on stdout: ``READY`` once the first result exists (the parent times the cold
start from spawn to this line), then one ``RESULT <json>`` line; anything else is ignored.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import gc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402


def _load_systems():
    path = Path(__file__).with_name("systems.py")
    spec = importlib.util.spec_from_file_location("_xlm_onnx_bench_systems", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def peak_rss_mb() -> float:
    """This process's high-water RSS. ``VmHWM`` belongs to the address space made by ``exec``;
    ``ru_maxrss`` would be inherited from the parent (Linux keeps it across fork and execve)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def stats(times: list[float], batch: int) -> dict:
    import numpy as np

    t = np.asarray(times) * 1e3
    p50, p90, p99 = (float(np.percentile(t, q)) for q in (50, 90, 99))
    return {"p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": float(t.mean()), "min_ms": float(t.min()),
            "n": len(times), "throughput_sps": batch * len(times) / (t.sum() / 1e3)}


def timed(fn, warmup: int, repeat: int, budget_s: float) -> list[float]:
    """``warmup`` untimed calls, then up to ``repeat`` timed ones; stops early (after >= 2) once
    ``budget_s`` is spent, so slow baselines at large batches do not take hours."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) >= 2 and time.perf_counter() - start > budget_s:
            break
    return times


def check_e2e(result, batch: int) -> None:
    if len(result) != batch or any(len(r) != 5 or "token_str" not in r[0] for r in result):
        raise RuntimeError(f"unexpected end-to-end result shape for batch {batch}: {str(result)[:200]}")


def profile(sysmod, system, spec: dict) -> dict:
    """A second session with ORT profiling on, run over the scenarios; top 10 operators by time."""
    import numpy as np
    import onnxruntime as ort
    from xlm_onnx.session import resolve_providers

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(spec["profile_dir"]) / spec["system"])
    options.intra_op_num_threads, options.inter_op_num_threads = spec["threads"], 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(system.dir / "model.onnx"), options,
                                   providers=resolve_providers(system.providers))
    runs = max(1, min(spec["repeat"], 3))
    for sc in spec["scenarios"]:
        feed = system.feed(np.asarray(sc["ids"], dtype=np.int64))
        for _ in range(runs + 1):  # the first run of each shape is warm-up, left out below
            session.run(None, feed)
    path = session.end_profiling()
    events = json.loads(Path(path).read_text())
    model_runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                        if e.get("cat") == "Session" and e.get("name") == "model_run")
    warm = model_runs[::runs + 1]
    ops: dict[str, list] = {}
    for e in events:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") \
                and not any(a <= e["ts"] <= b for a, b in warm):
            op = e.get("args", {}).get("op_name", "?")
            entry = ops.setdefault(op, [0.0, 0])
            entry[0] += e.get("dur", 0) / 1e3
            entry[1] += 1
    total = sum(v[0] for v in ops.values()) or 1.0
    top = sorted(ops.items(), key=lambda kv: -kv[1][0])[:10]
    return {"file": str(path), "top_ops": [{"op": k, "total_ms": round(v[0], 3), "pct": round(100 * v[0] / total, 1),
                                            "calls": v[1]} for k, v in top]}


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    sysmod = _load_systems()
    out: dict = {"system": spec["system"]}
    try:
        t_imp = time.perf_counter()
        import numpy as np

        system = sysmod.load(spec["system"], spec)
        t_load = time.perf_counter()
        first = spec["scenarios"][0]
        text = first["texts"][0]
        try:
            check_e2e(system.e2e([text]), 1)
        except sysmod.NotApplicable:
            system.model_fn(np.asarray(first["ids"][:1], dtype=np.int64), spec["mask_id"])()
        t_first = time.perf_counter()
        print("READY", flush=True)
        out["cold_start_breakdown_s"] = {"python_to_worker": t_imp - T0, "import_and_load": t_load - t_imp,
                                         "first_result": t_first - t_load, "in_process_total": t_first - T0}
        out["rss_after_load_mb"] = rss_mb()
        out["providers"] = getattr(system, "active_providers", None)
        out["on_gpu"] = bool(getattr(system, "gpu", False))
        system.check_length(text, first["tokens"])
        results: dict = {"e2e": {}, "model": {}}
        for sc in spec["scenarios"]:
            ids = np.asarray(sc["ids"], dtype=np.int64)
            for mode in spec["modes"]:
                try:
                    if mode == "e2e":
                        texts = list(sc["texts"])
                        check_e2e(system.e2e(texts), len(texts))
                        fn = lambda texts=texts: system.e2e(texts)  # noqa: E731
                    else:
                        fn = system.model_fn(ids, spec["mask_id"])
                    times = timed(fn, spec["warmup"], spec["repeat"], spec["budget_s"])
                    results[mode][sc["name"]] = stats(times, sc["batch"])
                except sysmod.NotApplicable as exc:
                    results[mode][sc["name"]] = {"n/a": str(exc)}
                print(f"  {spec['system']} {mode} {sc['name']} done", file=sys.stderr, flush=True)
        out.update(status="ok", results=results, peak_rss_mb=peak_rss_mb(), weight_bytes=system.weight_bytes())
        if spec.get("profile") and hasattr(system, "feed"):
            system.fm = system.session = None  # one model in memory at a time
            gc.collect()
            out["profile"] = profile(sysmod, system, spec)
    except sysmod.Skip as exc:
        out.update(status="skipped", note=str(exc))
    except Exception as exc:  # reported in the table, the run goes on with the next system
        out.update(status="failed", note=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:400],
                   traceback=traceback.format_exc()[-2000:])
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
