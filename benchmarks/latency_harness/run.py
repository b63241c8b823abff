"""``python benchmarks/latency.py``: build/reuse the cache, make the inputs, run each system in its own process."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import report
from .cache import Cache, default_cache, dir_bytes
from .inputs import DEFAULT_SCENARIOS, build, parse_scenarios
from .systems import CPU_DEFAULT, GPU_DEFAULT, SYSTEMS

WORKER = Path(__file__).with_name("worker.py")
ORT_PROVIDER = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
SYSTEM_NOTES = {
    "hf-int8": "quantized at load from the fp32 checkpoint (disk = the fp32 file)",
    "onnx-fp16": "fp16 is meant for GPUs; on the CPU provider ORT runs few fp16 kernels and inserts casts",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmarks/latency.py", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", choices=("full", "tiny"), default="full",
                   help="full = XLM-100 16 x 1280, vocab 200000; tiny = 2 x 64 (harness tests)")
    p.add_argument("--cache", type=Path, default=default_cache(), help="checkpoint/export cache")
    p.add_argument("--rebuild", action="store_true", help="rebuild the checkpoint and exports")
    p.add_argument("--systems", help="comma list from: " + ", ".join(SYSTEMS)
                   + " (default: the CPU set, or the GPU set with --provider cuda/tensorrt)")
    p.add_argument("--scenarios", default=",".join(s.name for s in DEFAULT_SCENARIOS),
                   help="BATCHxTOKENS list, tokens counted with <s> and </s>")
    p.add_argument("--modes", default="e2e,model", help="e2e (text -> top-5) and/or model (ids -> top-5)")
    p.add_argument("--provider", choices=("cpu", "cuda", "tensorrt"), default="cpu",
                   help="ORT provider of the xlm-onnx systems")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads, every system")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--budget-s", type=float, default=60.0,
                   help="stop repeating a cell after this many seconds (at least 2 timed runs)")
    p.add_argument("--bandwidth-mb", type=int, default=1024, help="array size of the bandwidth copy")
    p.add_argument("--json", type=Path, help="write all results as JSON")
    p.add_argument("--plot", type=Path, help="write a PNG plot (needs matplotlib: the [bench] extra)")
    p.add_argument("--markdown", type=Path, help="also write the markdown tables to this file")
    p.add_argument("--profile", action="store_true", help="ORT profile of the xlm-onnx systems; top 10 operators")
    p.add_argument("--profile-dir", type=Path, help="where profiles go (default: CACHE/profiles)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per system process")
    p.add_argument("--seed", type=int, default=0)
    return p


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pick_systems(args) -> list[str]:
    if not args.systems:
        return list(CPU_DEFAULT if args.provider == "cpu" else GPU_DEFAULT)
    names = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown systems {unknown}; known: {', '.join(SYSTEMS)}")
    return names


def precheck(name: str, provider: str) -> str | None:
    """Why ``name`` cannot run with ``provider`` here, or ``None``."""
    info = SYSTEMS[name]
    if info.device == "gpu" and provider == "cpu":
        return "GPU system: run with --provider cuda"
    wanted = info.provider or (provider if info.family == "onnx" else "cpu")
    if wanted != "cpu":
        import onnxruntime as ort

        if ORT_PROVIDER[wanted] not in ort.get_available_providers():
            return (f"onnxruntime {ort.__version__} has no {ORT_PROVIDER[wanted]} (available: "
                    f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu (the [gpu] extra)")
    return None


def run_worker(spec: dict, timeout: float) -> dict:
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1",
               PYTHONWARNINGS="ignore", **{k: str(spec["threads"]) for k in
                                           ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(WORKER), f.name], stdout=subprocess.PIPE, text=True, env=env)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    cold, result = None, None
    try:
        for line in proc.stdout:
            if line.startswith("READY") and cold is None:
                cold = time.perf_counter() - start
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
        proc.wait()
    finally:
        timer.cancel()
        os.unlink(f.name)
    if result is None:
        return {"status": "failed", "note": f"worker exited with status {proc.returncode} and no result"
                + (f" (killed after {timeout:g} s)" if proc.returncode == -9 else "")}
    if cold is not None:
        result["cold_start_s"] = cold
    return result


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    names, scenarios = pick_systems(args), parse_scenarios(args.scenarios)
    modes = [m.strip() for m in args.modes.split(",")]
    if not set(modes) <= {"e2e", "model"} or not modes:
        raise ValueError(f"--modes: use e2e and/or model, not {args.modes!r}")
    if args.threads < 1 or args.repeat < 1 or args.warmup < 0:
        raise ValueError("--threads and --repeat must be >= 1, --warmup >= 0")
    data: dict = {"header": report.header(args), "notes": []}
    systems: dict[str, dict] = {}
    todo = []
    for name in names:
        why = precheck(name, args.provider)
        if why:
            systems[name] = {"status": "skipped", "note": why}
        else:
            todo.append(name)
    cache = Cache(args.cache, args.size, log=log)
    ckpt = cache.checkpoint(rebuild=args.rebuild)
    dirs = {}
    for name in todo:
        variant = SYSTEMS[name].variant
        if variant and variant not in dirs:
            dirs[variant] = cache.export(variant)

    from xlm_onnx import XLMTokenizer

    tokenizer = XLMTokenizer.from_pretrained(ckpt)
    inputs = build(tokenizer, scenarios, args.seed)
    data["scenarios"] = [{k: sc[k] for k in ("name", "batch", "tokens")} | {"example": sc["texts"][0]}
                         for sc in inputs]
    log(f"bench: memory bandwidth ({args.bandwidth_mb} MiB copy, {args.threads} threads) ...")
    data["bandwidth"] = report.bandwidth(args.bandwidth_mb, args.threads, gpu_too=args.provider != "cpu")
    profile_dir = args.profile_dir or args.cache / "profiles"
    if args.profile:
        profile_dir.mkdir(parents=True, exist_ok=True)
    for name in todo:
        info = SYSTEMS[name]
        if info.variant and dirs.get(info.variant) is None:
            systems[name] = {"status": "skipped", "note": cache.notes.get(info.variant, "no export")}
            continue
        log(f"bench: {name} ...")
        spec = {"system": name, "checkpoint": str(ckpt), "cache_root": str(cache.root),
                "model_dir": str(dirs.get(info.variant) or ""), "provider": args.provider, "threads": args.threads,
                "max_batch": max(s.batch for s in scenarios), "mask_id": tokenizer.mask_token_id,
                "scenarios": inputs, "modes": modes, "warmup": args.warmup, "repeat": args.repeat,
                "budget_s": args.budget_s, "profile": args.profile, "profile_dir": str(profile_dir)}
        res = run_worker(spec, args.timeout)
        if res.get("status") == "ok":
            files = [dirs[info.variant] / n for n in ("model.onnx", "model.onnx.data")] if info.variant else \
                [ckpt / "model.safetensors"] if info.family == "hf" else [cache.root / "optimum-fp32"]
            res["model_bytes"] = sum(dir_bytes(p) if p.is_dir() else p.stat().st_size for p in files if p.exists())
            if name in SYSTEM_NOTES:
                res["note"] = SYSTEM_NOTES[name]
        elif res.get("traceback"):
            log(res["traceback"])
        res["description"] = info.desc
        systems[name] = res
        log(f"bench: {name}: {res['status']}" + (f" ({res['note']})" if res.get("note") else ""))
    data["systems"] = systems
    data["notes"].append("cold start: page cache warm (files read before); batch-1 floor counts every weight "
                         "read once per inference (embedding rows that are only gathered excluded)")
    report.add_roofline(systems, data["scenarios"], data["bandwidth"])
    text = report.markdown(data)
    print(text)
    if args.profile:
        print(report.profile_text(data))
    if args.markdown:
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.plot:
        try:
            report.plot(data, args.plot)
            data["plot"] = str(args.plot)
        except ImportError as exc:
            log(f"bench: no plot ({exc}); install the [bench] extra")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1), encoding="utf-8")
    statuses = {r.get("status") for r in systems.values()}
    return 1 if "failed" in statuses and "ok" not in statuses else 0  # all skipped (no GPU here) is fine
