"""Tokenizer benchmark: xlm_onnx.XLMTokenizer vs transformers.XLMTokenizer on one CPU core.

Measures, on the UDHR dev lines (``../shared/data/udhr_xlm_dev.jsonl``, or ``--data``) with a BPE
vocabulary learnt from them (>= 20k merges, cached under ``.cache/``):

* cold import time of each package's tokenizer, in fresh interpreters (median of ``--import-repeats``);
* cold first pass: a fresh process loads the tokenizer and encodes every line once (lazy tables,
  regex compilation and the per-word BPE caches all start empty), median of ``--cold-repeats``;
* warm throughput: the same tokenizer object encoding all lines again, median of ``--repeats``.
  Both tokenizers cache BPE per word; neither caches whole lines.

Prints a markdown table and writes JSON with ``--json PATH``. Run: ``python benchmarks/tokenizer.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from latency_harness.report import cpu_header, cpu_model

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XLM_ONNX_SHARED", REPO.parent / "shared"))
DEFAULT_DATA = SHARED / "data" / "udhr_xlm_dev.jsonl"
NUM_MERGES = 24000
IMPORTS = {
    "xlm_onnx": "import xlm_onnx; from xlm_onnx import XLMTokenizer",
    "transformers": "import transformers; from transformers import XLMTokenizer",
}
SINGLE_THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "NUMEXPR_NUM_THREADS", "RAYON_NUM_THREADS")}


def pin_one_core() -> str:
    os.environ.update(SINGLE_THREAD_ENV)
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})  # inherited by the child processes below
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def load_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def ensure_vocab(data: Path, lines: list[str]) -> Path:
    h = hashlib.sha256(data.read_bytes())
    for mod in ("export/fixtures/bpe_vocab.py", "xlm_onnx/tokenization/moses.py", "xlm_onnx/tokenization/moses_data.py",
                "xlm_onnx/tokenization/moses_port.py"):
        h.update((REPO / mod).read_bytes())
    out = REPO / ".cache" / f"bench-vocab-udhr-{h.hexdigest()[:16]}"
    if not (out / "merges.txt").is_file():
        from xlm_onnx_export.fixtures.bpe_vocab import write_xlm_vocab

        write_xlm_vocab(lines, out, NUM_MERGES, min_frequency=1)
    return out


def make_tokenizer(impl: str, vocab_dir: Path):
    if impl == "xlm_onnx":
        from xlm_onnx import XLMTokenizer
    else:
        from transformers import XLMTokenizer
    return XLMTokenizer.from_pretrained(str(vocab_dir))


def one_pass(tok, lines: list[str]) -> float:
    t0 = time.perf_counter()
    for line in lines:
        tok.encode(line)
    return time.perf_counter() - t0


def child(impl: str, vocab_dir: Path, data: Path) -> None:
    """Fresh-process measurement: import, load, first pass."""
    t0 = time.perf_counter()
    exec(IMPORTS[impl])
    t1 = time.perf_counter()
    tok = make_tokenizer(impl, vocab_dir)
    t2 = time.perf_counter()
    lines = load_lines(data)
    first = one_pass(tok, lines)
    print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_pass_s": first, "n": len(lines)}))


def run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_time(impl: str) -> float:
    code = f"import time; t = time.perf_counter(); {IMPORTS[impl]}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return float(out.stdout.strip().splitlines()[-1])


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    got = {"python": platform.python_version()}
    for pkg in ("sacremoses", "transformers", "numpy"):
        try:
            got[pkg] = version(pkg)
        except PackageNotFoundError:
            got[pkg] = "not installed"
    return got


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument("--repeats", type=int, default=5, help="warm passes per tokenizer (median)")
    ap.add_argument("--cold-repeats", type=int, default=3, help="fresh-process first passes (median)")
    ap.add_argument("--import-repeats", type=int, default=7, help="fresh-interpreter imports (median)")
    ap.add_argument("--child", choices=sorted(IMPORTS), help=argparse.SUPPRESS)
    ap.add_argument("--vocab-dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.vocab_dir, args.data)
        return 0
    if not args.data.is_file():
        print(f"SKIP: benchmark data not found at {args.data} (set XLM_ONNX_SHARED or pass --data)")
        return 0

    pinning = pin_one_core()
    lines = load_lines(args.data)
    vocab_dir = ensure_vocab(args.data, lines)
    res: dict = {"n_sentences": len(lines), "pinning": pinning, "cpu": cpu_model(), "cpu_isa": cpu_header(), "versions": versions(),
                 "vocab_dir": str(vocab_dir), "impls": {}}
    for impl in ("xlm_onnx", "transformers"):
        imports = [import_time(impl) for _ in range(args.import_repeats)]
        cold = [run_child([__file__, "--child", impl, "--vocab-dir", str(vocab_dir), "--data", str(args.data)])
                for _ in range(args.cold_repeats)]
        tok = make_tokenizer(impl, vocab_dir)
        one_pass(tok, lines)  # warm-up
        warm = [one_pass(tok, lines) for _ in range(args.repeats)]
        res["impls"][impl] = {
            "import_s_median": statistics.median(imports), "import_s": imports,
            "load_s_median": statistics.median(c["load_s"] for c in cold),
            "cold_first_pass_s_median": statistics.median(c["first_pass_s"] for c in cold),
            "cold_first_pass_sent_per_s": len(lines) / statistics.median(c["first_pass_s"] for c in cold),
            "warm_pass_s": warm, "warm_sent_per_s": len(lines) / statistics.median(warm),
        }
    ours, ref = res["impls"]["xlm_onnx"], res["impls"]["transformers"]
    res["speedup_warm"] = ours["warm_sent_per_s"] / ref["warm_sent_per_s"]
    res["speedup_cold"] = ours["cold_first_pass_sent_per_s"] / ref["cold_first_pass_sent_per_s"]

    v = res["versions"]
    print(f"Tokenizer benchmark: {len(lines)} UDHR sentences, encode() to ids, one core ({pinning})  ")
    print(f"CPU: {res['cpu']}; Python {v['python']}, sacremoses {v['sacremoses']}, transformers "
          f"{v['transformers']}; vocab: {NUM_MERGES} merges learnt from the same lines\n")
    print("| metric | xlm_onnx | transformers | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| cold import, median of {args.import_repeats} (s) | {ours['import_s_median']:.3f} | "
          f"{ref['import_s_median']:.3f} | {ref['import_s_median'] / ours['import_s_median']:.1f}x faster |")
    print(f"| from_pretrained, fresh process (s) | {ours['load_s_median']:.3f} | {ref['load_s_median']:.3f} | "
          f"{ref['load_s_median'] / ours['load_s_median']:.1f}x faster |")
    print(f"| cold first pass, median of {args.cold_repeats} (sent/s) | {ours['cold_first_pass_sent_per_s']:,.0f} | "
          f"{ref['cold_first_pass_sent_per_s']:,.0f} | {res['speedup_cold']:.1f}x |")
    print(f"| warm, median of {args.repeats} (sent/s) | {ours['warm_sent_per_s']:,.0f} | "
          f"{ref['warm_sent_per_s']:,.0f} | {res['speedup_warm']:.1f}x |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
