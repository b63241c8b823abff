"""int8 activation schemes side by side: per-row (the default) vs per-tensor, accuracy and speed.

One run, on this CPU (the table names its model, ISA class and flags; JSON adds the versions):

* **Demo model, held-out masks** (the demo corpus, ``python -m recipes.demo_model.corpus
  --download``; else UDHR lines): the shipped per-row directory and its per-tensor twin (the same
  int8 weights, ``DynamicQuantizeMatMul`` activations), each against the same weights with float
  activations (the float checkpoint is not kept): top-1 agreement, max / mean |Δp| over the
  vocabulary, batch drift (alone vs in batches of 32). Plus the golden probes (torch fp32).
* **Peaked tiny fixtures** (``export/testing.py``, seeds 0 and 1): fp32 export as reference, int8
  exported with per-tensor activations and converted to per-row (same weights); the same figures
  on masked lines, and the golden probes.
* **Full size** (16 x 1280, vocab 200k, HF's random init; latency does not depend on the values):
  per-tensor export converted to per-row, ``xlm-onnx check`` here (and with ``--emulate-avx2``
  under ``qemu-x86_64 -cpu EPYC-Rome``), model-only p50 at 1x16 / 1x128 / 32x128 with the two
  schemes' runs alternating (a busy machine slows both alike), embeddings/s at 32x128.

    python benchmarks/int8_schemes.py --json bench_out/int8_schemes.json [--skip-full-size]

Full-size exports take ~6 min and ~6 GB; they are cached under ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # recipes.demo_model.corpus
sys.path.insert(0, str(Path(__file__).resolve().parent))  # int8_accuracy, accuracy
SCHEMES = ("per-row", "per-tensor")
SHAPES = ((1, 16), (1, 128), (32, 128))


def _export_pair(checkpoint: Path, out: Path) -> dict[str, Path]:
    """int8 with per-tensor activations and its per-row conversion (the same weights). The
    accuracy gate is opened for both: the figures are what this benchmark measures and prints
    (batch invariance stays required of the per-row directory)."""
    from xlm_onnx import check
    from xlm_onnx_export import Exporter, Int8Options
    from xlm_onnx_export.convert import convert_to_per_row

    dirs = {"per-tensor": out / "int8-per-tensor", "per-row": out / "int8-per-row"}
    gate, check.GATES["int8"] = check.GATES["int8"], check.Gate(float("inf"), 0.0, 0.0)
    try:
        if not (dirs["per-tensor"] / "xlm_onnx.json").is_file():
            Exporter(checkpoint, dirs["per-tensor"], precision="int8", int8=Int8Options(activations="per-tensor"),
                     force=True, progress=False).run()
        if not (dirs["per-row"] / "xlm_onnx.json").is_file():
            convert_to_per_row(dirs["per-tensor"], dirs["per-row"], force=True)
    finally:
        check.GATES["int8"] = gate
    return dirs


def _golden(model_dir: Path) -> dict:
    from xlm_onnx import format as fmt
    from xlm_onnx.golden import Golden, run_golden
    from xlm_onnx.session import create_session

    report = run_golden(create_session(model_dir / fmt.MODEL_FILE, "cpu", 2), Golden.read(model_dir), "int8")
    return {k: getattr(report, k) for k in ("top1_agreement", "max_abs_score_delta", "max_abs_label_log_prob_delta",
                                            "min_embedding_cosine", "max_abs_batch_drift")}


def _texts() -> list[str]:
    udhr = REPO.parent / "shared" / "data" / "udhr_xlm_dev.jsonl"
    if udhr.is_file():
        return [json.loads(line)["text"] for line in udhr.open(encoding="utf-8")][::5]
    from xlm_onnx_export.fixtures.bpe_vocab import SAMPLE_TEXTS

    return list(SAMPLE_TEXTS)


def demo_accuracy(cache: Path, max_lines: int) -> dict:
    """The shipped per-row demo model vs its per-tensor twin, on held-out masks."""
    import int8_accuracy as ia

    from xlm_onnx import default_model_dir
    from xlm_onnx import format as fmt
    from xlm_onnx.tokenization import XLMTokenizer

    demo = default_model_dir()
    manifest = fmt.read_manifest(demo)
    tok = XLMTokenizer.from_pretrained(demo)
    twins = {"per-row": demo, "per-tensor": ia.per_tensor_twin(demo, cache / "demo-per-tensor")}
    reference = ia.float_twin(demo, cache / "demo-float-activations")
    try:
        from accuracy import make_cases
        from recipes.demo_model.corpus import CACHE, load_corpus

        if not (CACHE / "corpus.jsonl").is_file():
            raise FileNotFoundError(CACHE / "corpus.jsonl")
        cases = make_cases(load_corpus(), tok, manifest.max_positions, max_lines, 0)
        rows = [c[0] for lang in cases for c in cases[lang]]
        truth = [t for lang in cases for c in cases[lang] for t in c[2]]
        source = f"demo corpus held-out split, <= {max_lines} lines per language, 15% masked, seed 0"
    except (FileNotFoundError, ImportError):
        rows, truth = ia.masked_rows(tok, _texts(), manifest.mask_token_id, manifest.max_positions), None
        source = "UDHR lines (demo corpus not built), 15% masked, seed 0"
    out = ia.compare(reference, twins, rows, truth)
    out["masks"] = source
    out["reference"] = "the same int8 weights with float activations"
    out["golden"] = {name: _golden(path) for name, path in twins.items()}
    return out


def tiny_accuracy(cache: Path, seed: int) -> dict:
    """A peaked tiny checkpoint: fp32 export as reference, both int8 schemes on the same weights."""
    import int8_accuracy as ia

    from xlm_onnx import format as fmt
    from xlm_onnx.tokenization import XLMTokenizer
    from xlm_onnx_export import Exporter
    from xlm_onnx_export.fixtures.checkpoints import TINY, make_checkpoint

    root = cache / f"tiny-seed{seed}"
    if not (root / "ckpt" / "config.json").is_file():
        make_checkpoint(root / "ckpt", TINY, seed=seed)
    if not (root / "fp32" / "xlm_onnx.json").is_file():
        Exporter(root / "ckpt", root / "fp32", force=True, progress=False).run()
    dirs = _export_pair(root / "ckpt", root)
    manifest = fmt.read_manifest(root / "fp32")
    rows = ia.masked_rows(XLMTokenizer.from_pretrained(root / "fp32"), _texts(), manifest.mask_token_id, 128)
    out = ia.compare(root / "fp32", dirs, rows)
    out["reference"] = "fp32 export of the same checkpoint"
    out["golden"] = {name: _golden(path) for name, path in dirs.items()}
    return out


def _check(model_dir: Path, emulate: bool) -> dict:
    cmd = [sys.executable, "-m", "xlm_onnx", "check", str(model_dir), "--json", "--threads", "2"]
    env = dict(os.environ)
    if emulate:
        cmd = ["qemu-x86_64", "-cpu", "EPYC-Rome", *cmd]
        env["XLM_ONNX_CPU_FLAGS"] = "avx avx2 fma f16c"
    report = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout)
    return {k: report[k] for k in ("passed", "max_abs_score_delta", "top1_agreement", "max_abs_batch_drift")}


def latency(dirs: dict[str, Path], threads: int, repeat: int) -> dict:
    """Model-only p50 (ms) per scheme and shape, the schemes' runs alternating."""
    from xlm_onnx import format as fmt
    from xlm_onnx.session import create_session

    sessions = {name: create_session(d / fmt.MODEL_FILE, "cpu", threads) for name, d in dirs.items()}
    manifest = fmt.read_manifest(next(iter(dirs.values())))
    out: dict = {name: {} for name in dirs}
    for batch, length in SHAPES:
        ids = np.random.default_rng(0).integers(14, manifest.vocab_size, (batch, length))
        ids[:, 0], ids[:, -1], ids[:, length // 2] = 0, 1, manifest.mask_token_id
        feed = {fmt.INPUT_IDS: ids, fmt.ATTENTION_MASK: np.ones_like(ids), fmt.TOP_K: np.array([5]),
                fmt.TARGET_IDS: np.zeros(0, np.int64), fmt.LABEL_IDS: np.zeros(0, np.int64)}
        runs = repeat if batch == 1 else max(3, repeat // 4)
        times: dict = {name: [] for name in sessions}
        for i in range(runs + 2):
            for name, session in sessions.items():
                start = time.perf_counter()
                session.run([fmt.SCORES, fmt.LAST_HIDDEN_STATE], feed)
                if i >= 2:  # warm-up
                    times[name].append((time.perf_counter() - start) * 1000)
        for name in sessions:
            out[name][f"{batch}x{length}"] = round(float(np.median(times[name])), 1)
    for name in out:
        out[name]["embeddings_per_s_32x128"] = round(32 / (out[name]["32x128"] / 1000), 1)
    return out


def full_size(cache: Path, threads: int, repeat: int, emulate: bool) -> dict:
    from xlm_onnx_export.fixtures.checkpoints import XLM_100, make_checkpoint

    checkpoint = cache / "ckpt"
    if not (checkpoint / "config.json").is_file():
        make_checkpoint(checkpoint, XLM_100, peaked=False)
    dirs = _export_pair(checkpoint, cache)
    out: dict = {"check_here": {n: _check(d, False) for n, d in dirs.items()}}
    if emulate:
        out["check_avx2_emulated"] = {n: _check(d, True) for n, d in dirs.items()}
    out["model_only_p50_ms"] = latency(dirs, threads, repeat)
    return out


def _accuracy_table(name: str, result: dict) -> list[str]:
    lines = [f"{name}: {result['n_masks']} masks in {result['n_lines']} lines, vs {result['reference']}"]
    for scheme in SCHEMES:
        r, g = result[scheme], result["golden"][scheme]
        lines.append(f"| {name} | {scheme} | {100 * r['top1_agreement']:.2f}% | {r['max_abs_score']:.4f} | "
                     f"{r['mean_max_abs_score']:.5f} | {r['batch_drift']:.2g} | {100 * g['top1_agreement']:.0f}% / "
                     f"{g['max_abs_score_delta']:.4f} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "int8_schemes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--demo-lines", type=int, default=20, help="held-out lines per language (demo model)")
    parser.add_argument("--skip-full-size", action="store_true")
    parser.add_argument("--emulate-avx2", action="store_true", help="also `xlm-onnx check` under qemu (AVX2)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import onnx
    import onnxruntime

    import xlm_onnx
    from xlm_onnx.cpu import cpu_info

    args.cache.mkdir(parents=True, exist_ok=True)
    result: dict = {"cpu": cpu_info().as_dict(), "threads": args.threads, "load_avg_at_start": os.getloadavg(),
                    "versions": {"xlm_onnx": xlm_onnx.__version__, "onnxruntime": onnxruntime.__version__,
                                 "onnx": onnx.__version__, "numpy": np.__version__,
                                 "python": platform.python_version()},
                    "accuracy": {"demo": demo_accuracy(args.cache, args.demo_lines)}}
    for seed in (0, 1):
        result["accuracy"][f"tiny peaked, seed {seed}"] = tiny_accuracy(args.cache, seed)
    if not args.skip_full_size:
        result["full_size"] = full_size(args.cache, args.threads, args.repeat, args.emulate_avx2)
    cpu = result["cpu"]
    print(f"CPU: {cpu['model']} (class {cpu['isa_class']}; flags {' '.join(cpu['flags'])}), {args.threads} threads, "
          f"load average at start {result['load_avg_at_start'][0]:.2f}\n")
    print("| model | activations | top-1 agreement | max |Δp| | mean max |Δp| | batch drift | golden: top-1 / max |Δ| |\n"
          "|---|---|---:|---:|---:|---:|---:|")
    notes = []
    for name, acc in result["accuracy"].items():
        table = _accuracy_table(name, acc)
        notes.append(table[0])
        print("\n".join(table[1:]))
    print("\n" + "\n".join(notes))
    if "full_size" in result:
        full = result["full_size"]
        print("\n| full size | 1x16 p50 | 1x128 p50 | 32x128 p50 | embeddings/s | check here (max Δ, drift) |\n"
              "|---|---:|---:|---:|---:|---|")
        for scheme in SCHEMES:
            p50, here = full["model_only_p50_ms"][scheme], full["check_here"][scheme]
            print(f"| {scheme} | {p50['1x16']} ms | {p50['1x128']} ms | {p50['32x128']} ms | "
                  f"{p50['embeddings_per_s_32x128']} | {'pass' if here['passed'] else 'FAIL'} "
                  f"({here['max_abs_score_delta']:.2e}, {here['max_abs_batch_drift']:.2g}) |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
