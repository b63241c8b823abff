"""Embeddings and pseudo-log-likelihood throughput: xlm-onnx against transformers + PyTorch.

Same token ids, same threads, same pooling / same scored positions on both sides; each
(system, task) runs in a fresh process so its peak RSS is its own::

    python benchmarks/tasks.py --onnx-int8 .cache/full/int8 --onnx-fp32 .cache/full/fp32 \\
        --checkpoint .cache/int8_schemes/ckpt --json .cache/tasks.json

Systems: ``onnx-int8`` / ``onnx-fp32`` (xlm-onnx ``Embedder.run_batch`` / ``Scorer.run_batch``),
``torch-fp32`` (``XLMModel`` / ``XLMWithLMHeadModel`` eager) and ``torch-int8`` (the same after
``torch.ao.quantization.quantize_dynamic(nn.Linear, qint8)``). Embeddings: batches of ``--batch``
sentences of exactly L tokens, mean pooling over every token. PLL: one masked copy per inner token,
batched as the runtime batches them (at most 64 copies per run); the torch side also gathers the
masked rows *before* the 200k-wide head, so neither side materialises ``[rows, seq, vocab]``.
Tokenization is left out on both sides (``benchmarks/tokenizer.py`` measures it): ids are drawn
at random from the non-special vocabulary, which latency does not depend on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SYSTEMS = ("onnx-int8", "onnx-fp32", "torch-fp32", "torch-int8")
TASKS = ("embed", "pll")


def _ids(vocab_size: int, rows: int, length: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(14, vocab_size, size=(rows, length), dtype=np.int64)  # 0..13: XLM's specials
    ids[:, 0], ids[:, -1] = 0, 1  # <s> ... </s>
    return ids


def _peak_rss_mb() -> float:
    # Not latency_harness.worker.peak_rss_mb: importing that package imports torch, which
    # would inflate the RSS of the onnx workers this is measuring.
    with open("/proc/self/status") as f:  # VmHWM: this exec's own high-water mark (ru_maxrss is inherited)
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def _timed(fn, budget_s: float, repeat: int):
    """Seconds per call after one warm-up call (first-run allocations, kernel choice), and the
    last answer; stops after ``repeat`` calls, or after 2 once ``budget_s`` is spent."""
    fn()
    times, start = [], time.perf_counter()
    while len(times) < repeat and (len(times) < 2 or time.perf_counter() - start < budget_s):
        t = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - t)
    return times, answer


class OnnxRunner:
    """xlm-onnx's own per-batch steps (what ``embed()`` / ``score()`` call after tokenizing)."""

    def __init__(self, model_dir: str, threads: int) -> None:
        from xlm_onnx import Embedder, Model, Scorer

        self.model = Model.load(model_dir, threads=threads, verify=False)
        self.embedder, self.scorer = Embedder(self.model), Scorer(self.model)
        self.vocab_size = self.model.manifest.vocab_size

    def embed(self, ids):
        from xlm_onnx.tasks import Unit

        return self.embedder.run_batch([Unit(row) for row in ids.tolist()],
                                       self.embedder.batch_key(self.embedder.options("mean")))

    def pll(self, ids):
        from xlm_onnx.batching import plan
        from xlm_onnx.tasks import Unit
        from xlm_onnx.tasks.score import DEFAULT_MAX_ROWS, LabelRun

        units = [Unit(row, range(p, p + 1)) for row in (r.tolist() for r in ids) for p in range(1, len(row) - 1)]
        total = 0.0
        for group in plan([len(u.ids) for u in units], DEFAULT_MAX_ROWS, None):
            total += float(self.scorer.run_batch([units[c] for c in group], LabelRun(-1)).sum())
        return total


class TorchRunner:
    """transformers + PyTorch eager, the reference implementation of both tasks."""

    def __init__(self, checkpoint: str, threads: int, int8: bool) -> None:
        import torch
        from transformers import XLMWithLMHeadModel

        torch.set_num_threads(threads)
        self.torch = torch
        model = XLMWithLMHeadModel.from_pretrained(checkpoint, dtype=torch.float32).eval()
        if int8:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model = model
        self.vocab_size = model.config.vocab_size

    def embed(self, ids):
        torch = self.torch
        with torch.inference_mode():
            x, mask = torch.from_numpy(ids), torch.ones(ids.shape, dtype=torch.long)
            hidden = self.model.transformer(input_ids=x, attention_mask=mask).last_hidden_state
            weights = mask[:, :, None].to(hidden.dtype)
            return ((hidden * weights).sum(1) / weights.sum(1)).numpy()

    def pll(self, ids):
        torch = self.torch
        total = 0.0
        with torch.inference_mode():
            for row in torch.from_numpy(ids):
                n = row.numel() - 2
                for start in range(0, n, 64):  # the runtime's 64 copies per run
                    pos = torch.arange(1 + start, 1 + min(start + 64, n))
                    batch = row.repeat(len(pos), 1)
                    batch[torch.arange(len(pos)), pos] = self.model.config.mask_token_id or 5
                    hidden = self.model.transformer(input_ids=batch, attention_mask=torch.ones_like(batch))[0]
                    picked = hidden[torch.arange(len(pos)), pos]  # masked rows only, then the head
                    logp = torch.log_softmax(self.model.pred_layer.proj(picked).float(), -1)
                    total += float(logp[torch.arange(len(pos)), row[pos]].sum())
        return total


def worker(spec: dict) -> dict:
    system, task = spec["system"], spec["task"]
    if system.startswith("onnx"):
        runner = OnnxRunner(spec["onnx_dirs"][system], spec["threads"])
    else:
        runner = TorchRunner(spec["checkpoint"], spec["threads"], int8=system == "torch-int8")
    loaded_mb = _peak_rss_mb()
    cells = []
    for length in spec["lengths"][task]:
        rows = spec["batch"] if task == "embed" else spec["pll_sentences"]
        ids = _ids(runner.vocab_size, rows, length, seed=length)
        fn = (lambda: runner.embed(ids)) if task == "embed" else (lambda: runner.pll(ids))
        times, answer = _timed(fn, spec["budget_s"], spec["repeat"])
        median = sorted(times)[len(times) // 2]
        # The answer, so systems can be checked against each other (PLL sum; first embedding's norm).
        value = answer if task == "pll" else float((answer[0] ** 2).sum() ** 0.5)
        cells.append({"length": length, "rows": rows, "times_s": times, "sentences_per_s": rows / median,
                      "value": float(value)})
    return {"system": system, "task": task, "cells": cells, "rss_after_load_mb": loaded_mb,
            "peak_rss_mb": _peak_rss_mb()}


def _header(args) -> dict:
    import importlib.metadata
    import platform

    from xlm_onnx.cpu import cpu_info

    versions = {"python": platform.python_version()}
    for name in ("xlm-onnx", "onnxruntime", "torch", "transformers", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    cpu = cpu_info()
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions, "cpu": cpu.model,
            "cpu_isa": cpu.as_dict(), "cores": os.cpu_count(), "threads": args.threads, "batch": args.batch,
            "pll_sentences": args.pll_sentences, "load_avg_start": os.getloadavg()}


def table(data: dict) -> str:
    """Markdown: sentences/s per system and length, the speed-up over torch int8, peak RSS."""
    out = []
    for task in TASKS:
        runs = {r["system"]: r for r in data["runs"] if r["task"] == task and "cells" in r}
        if not runs:
            continue
        lengths = [c["length"] for c in next(iter(runs.values()))["cells"]]
        out += [f"\n{'Embeddings' if task == 'embed' else 'PLL'} (sentences/s; x = vs torch-int8)\n",
                "| system | " + " | ".join(f"{n} tok" for n in lengths) + " | peak RSS |",
                "|---" * (len(lengths) + 2) + "|"]
        base = runs.get("torch-int8")
        for name, run in runs.items():
            cells = []
            for i, c in enumerate(run["cells"]):
                ratio = c["sentences_per_s"] / base["cells"][i]["sentences_per_s"] if base else None
                cells.append(f"{c['sentences_per_s']:.2f}" + (f" ({ratio:.1f}x)" if ratio and name != "torch-int8" else ""))
            out.append(f"| {name} | " + " | ".join(cells) + f" | {run['peak_rss_mb'] / 1024:.2f} GB |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx-int8", help="int8 export directory (format 2)")
    p.add_argument("--onnx-fp32", help="fp32 export directory (format 2)")
    p.add_argument("--checkpoint", help="the HF checkpoint both were exported from (torch systems)")
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--embed-lengths", nargs="+", type=int, default=[16, 64, 128])
    p.add_argument("--pll-lengths", nargs="+", type=int, default=[16, 64])
    p.add_argument("--batch", type=int, default=32, help="sentences per embedding batch")
    p.add_argument("--pll-sentences", type=int, default=2, help="sentences scored per timed PLL call")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--budget-s", type=float, default=30.0, help="stop timing a cell after this (>= 2 runs)")
    p.add_argument("--json", type=Path)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    dirs = {"onnx-int8": args.onnx_int8, "onnx-fp32": args.onnx_fp32}
    data = {"header": _header(args), "runs": []}
    for task in args.tasks:
        for system in args.systems:
            if (system.startswith("onnx") and not dirs[system]) or (system.startswith("torch") and not args.checkpoint):
                continue
            spec = {"system": system, "task": task, "onnx_dirs": dirs, "checkpoint": args.checkpoint,
                    "threads": args.threads, "batch": args.batch, "pll_sentences": args.pll_sentences,
                    "lengths": {"embed": args.embed_lengths, "pll": args.pll_lengths},
                    "repeat": args.repeat, "budget_s": args.budget_s}
            proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
            if proc.returncode:
                run = {"system": system, "task": task, "error": proc.stderr.strip().splitlines()[-1:]}
            else:
                run = json.loads(proc.stdout.strip().splitlines()[-1])
            data["runs"].append(run)
            print(f"{task} {system}: " + json.dumps({k: v for k, v in run.items() if k != "cells"}), file=sys.stderr)
    data["header"]["load_avg_end"] = os.getloadavg()
    print(f"{data['header']['cpu']} ({data['header']['cpu_isa'].get('isa_class')}), {args.threads} threads, "
          f"load avg {data['header']['load_avg_start'][0]:.1f} -> {data['header']['load_avg_end'][0]:.1f}")
    print(table(data))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
