"""Full-size int8: 7-bit (default) vs full-range 8-bit weights, on this CPU and under AVX2 emulation.

Builds a random-weight XLM-100 checkpoint (16 x 1280, vocab 200k; latency does not depend on
weight values) under ``--cache``, exports it in int8 with ``weight_bits`` 7 and 8, then for each:
model-only p50 latency at 1x16 and 1x128 (``--threads``; the two schemes' runs alternate), and
``xlm-onnx check`` here. With
qemu-user installed, ``--emulate-avx2`` also runs ``check`` under ``qemu-x86_64 -cpu EPYC-Rome``
(AVX2 kernels; slow, accuracy only — emulated timings mean nothing). Prints a table and JSON with
the CPU model, class and ISA flags::

    python benchmarks/int8_schemes.py --json bench_out/int8_schemes.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _export(checkpoint: Path, out: Path, bits: int) -> dict:
    from xlm_onnx_export import Exporter, Int8Options

    if not (out / "xlm_onnx.json").is_file():
        Exporter(checkpoint, out, precision="int8", int8=Int8Options(weight_bits=bits), force=True, progress=False).run()
    from xlm_onnx import format as fmt

    return fmt.read_manifest(out).validation


def _latency(model_dirs: dict[str, Path], threads: int, repeat: int) -> dict:
    """Model-only p50 per scheme and scenario. The schemes' runs alternate, so a busy machine
    slows both alike and the ratio stays meaningful."""
    from xlm_onnx import format as fmt
    from xlm_onnx.session import create_session

    sessions = {name: create_session(d / fmt.MODEL_FILE, "cpu", threads) for name, d in model_dirs.items()}
    manifest = fmt.read_manifest(next(iter(model_dirs.values())))
    out: dict = {name: {} for name in model_dirs}
    for batch, length in ((1, 16), (1, 128)):
        ids = np.random.default_rng(0).integers(10, manifest.vocab_size, (batch, length))
        ids[:, 0], ids[:, -1], ids[:, length // 2] = 0, 1, manifest.mask_token_id
        feed = {fmt.INPUT_IDS: ids, fmt.ATTENTION_MASK: np.ones_like(ids), fmt.TOP_K: np.array([5]),
                fmt.TARGET_IDS: np.zeros(0, np.int64)}
        if fmt.LABEL_IDS in manifest.inputs:  # format 2
            feed[fmt.LABEL_IDS] = np.zeros(0, np.int64)
        times: dict = {name: [] for name in sessions}
        for i in range(repeat + 3):
            for name, session in sessions.items():
                start = time.perf_counter()
                session.run(None, feed)
                if i >= 3:  # warm-up
                    times[name].append((time.perf_counter() - start) * 1000)
        for name in sessions:
            out[name][f"{batch}x{length}"] = round(float(np.median(times[name])), 1)
    return out


def _check(model_dir: Path, emulate: bool) -> dict:
    cmd = [sys.executable, "-m", "xlm_onnx", "check", str(model_dir), "--json"]
    env = dict(os.environ)
    if emulate:
        cmd = ["qemu-x86_64", "-cpu", "EPYC-Rome", *cmd]
        env["XLM_ONNX_CPU_FLAGS"] = "avx avx2 fma f16c"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    report = json.loads(proc.stdout)
    return {k: report[k] for k in ("passed", "max_abs_score_delta", "top1_agreement", "top5_overlap")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "int8_schemes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--emulate-avx2", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from xlm_onnx.cpu import cpu_info
    from xlm_onnx_export.fixtures.checkpoints import XLM_100, make_checkpoint

    checkpoint = args.cache / "ckpt"
    if not (checkpoint / "config.json").is_file():
        make_checkpoint(checkpoint, XLM_100, peaked=False)
    result = {"cpu": cpu_info().as_dict(), "threads": args.threads, "load_avg_at_start": os.getloadavg(),
              "schemes": {}}
    dirs = {f"{bits}-bit": args.cache / f"int8-{bits}bit" for bits in (7, 8)}
    for bits, (name, model_dir) in zip((7, 8), dirs.items()):
        row = {"export_validation": _export(checkpoint, model_dir, bits), "check_here": _check(model_dir, False)}
        if args.emulate_avx2:
            row["check_avx2_emulated"] = _check(model_dir, True)
        result["schemes"][name] = row
    for name, p50 in _latency(dirs, args.threads, args.repeat).items():
        result["schemes"][name]["model_only_p50_ms"] = p50
    cpu = result["cpu"]
    print(f"CPU: {cpu['model']} (class {cpu['isa_class']}; flags {' '.join(cpu['flags'])}), {args.threads} threads, "
          f"load average at start {result['load_avg_at_start'][0]:.2f}")
    print("| weights | 1x16 p50 | 1x128 p50 | check here (max Δ, top-1) | check on AVX2 (emulated) |\n|---|---:|---:|---|---|")
    for name, row in result["schemes"].items():
        here, emu = row["check_here"], row.get("check_avx2_emulated")
        emu_cell = f"{'pass' if emu['passed'] else 'FAIL'} ({emu['max_abs_score_delta']:.2e}, {emu['top1_agreement']:.2f})" if emu else "-"
        print(f"| {name} | {row['model_only_p50_ms']['1x16']} ms | {row['model_only_p50_ms']['1x128']} ms | "
              f"{'pass' if here['passed'] else 'FAIL'} ({here['max_abs_score_delta']:.2e}, {here['top1_agreement']:.2f}) | {emu_cell} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
