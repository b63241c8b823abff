"""What character offsets cost: ``encode_with_offsets`` vs ``encode`` on one CPU core.

On the UDHR dev lines (``../shared/data/udhr_xlm_dev.jsonl``) with the demo model's vocabulary:
CPU time (``time.process_time``, so a loaded machine does not inflate it) of ``encode`` and of
``encode_with_offsets`` over every line, warm (each run after one pass that fills the BPE caches),
median of ``--repeats``; then the same for a few hostile strings, the cases where the pipeline
inserts or reorders characters and the aligner must re-synchronise at every step.

Prints a markdown table and writes JSON with ``--json PATH``. Run: ``python benchmarks/offsets.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from latency_harness.report import cpu_header, cpu_model

import xlm_onnx
from xlm_onnx import XLMTokenizer
from xlm_onnx.model import default_model_dir

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("XLM_ONNX_SHARED", REPO.parent / "shared")) / "data" / "udhr_xlm_dev.jsonl"
HOSTILE = {
    "quote-comma x5000 (reordered)": '"a", ' * 5000,
    "digit-nbsp-digit x5000 (inserted .)": "1\u00a02 " * 5000,
    "word x20000 (no edit)": "word " * 20000,
    "``x'' x5000 (two-to-one quotes)": "``a'' " * 5000,
}


def _cpu(fn, texts, repeats: int) -> float:
    for text in texts:  # warm: BPE caches filled, as in a server
        fn(text)
    runs = []
    for _ in range(repeats):
        began = time.process_time()
        for text in texts:
            fn(text)
        runs.append(time.process_time() - began)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tok = XLMTokenizer.from_pretrained(default_model_dir())
    lines = [json.loads(line)["text"] for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [("UDHR dev, 2,513 lines", lines)] + [(name, [text]) for name, text in HOSTILE.items()]
    results = []
    for name, texts in rows:
        plain = _cpu(tok.encode, texts, args.repeats)
        offsets = _cpu(tok.encode_with_offsets, texts, args.repeats)
        results.append({"input": name, "chars": sum(map(len, texts)), "encode_s": round(plain, 4),
                        "encode_with_offsets_s": round(offsets, 4), "ratio": round(offsets / plain, 1)})
    print(f"CPU: {cpu_model()}; xlm_onnx {xlm_onnx.__version__}, Python {platform.python_version()}\n")
    print("| input | chars | encode (CPU s) | encode_with_offsets (CPU s) | ratio |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['input']} | {r['chars']:,} | {r['encode_s']:.3f} | {r['encode_with_offsets_s']:.3f} | "
              f"{r['ratio']}x |")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_header(), "xlm_onnx": xlm_onnx.__version__,
                                         "python": platform.python_version(), "repeats": args.repeats,
                                         "results": results}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
