"""Soak test (not CI): 10k fill-mask calls of mixed sizes; resident memory must stay flat.

    python benchmarks/soak.py [--model DIR] [--calls 10000] [--json out.json]

Without ``--model`` it uses the embedded demo model, or builds a tiny random export in
``.cache/soak`` (needs the [export] extra). Prints RSS after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

from xlm_onnx.cpu import cpu_info

REPO = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def model_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    import xlm_onnx

    try:
        return xlm_onnx.default_model_dir()
    except xlm_onnx.ModelFormatError:
        from xlm_onnx_export import Exporter
        from xlm_onnx_export.fixtures.checkpoints import make_checkpoint

        out = REPO / ".cache" / "soak" / "export"
        if not out.exists():
            Exporter(make_checkpoint(REPO / ".cache" / "soak" / "ckpt"), out, precision="int8", force=True).run()
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    from xlm_onnx import FillMask

    fm = FillMask.from_pretrained(model_dir(args.model), threads=args.threads)
    rng = random.Random(0)
    words = "Toute personne a droit à la liberté de pensée de conscience et de religion".split()

    def request():
        n = rng.choice([4, 8, 16, 32, 64])  # < 256 tokens: the demo model's maximum
        text = [rng.choice(words) for _ in range(n)]
        for _ in range(rng.choice([1, 1, 1, 2])):
            text[rng.randrange(n)] = "<special1>"
        batch = rng.choice([1, 1, 1, 4, 8])
        return [" ".join(text)] * batch if batch > 1 else " ".join(text)

    for _ in range(args.warmup):
        fm(request())
    after_warmup, start = rss_mb(), time.perf_counter()
    samples = []
    for i in range(args.calls):
        fm(request(), top_k=rng.choice([1, 5, 10]))
        if i % 1000 == 999:
            samples.append(round(rss_mb(), 1))
    end, seconds = rss_mb(), time.perf_counter() - start
    growth = (end - after_warmup) / after_warmup * 100
    result = {"calls": args.calls, "seconds": round(seconds, 1), "rss_after_warmup_mb": round(after_warmup, 1),
              "rss_end_mb": round(end, 1), "growth_pct": round(growth, 2), "rss_every_1000_mb": samples,
              "python": platform.python_version(), "model": str(fm.manifest.precision), "cpu": cpu_info().as_dict()}
    print(f"CPU: {result['cpu']['model']} (class {result['cpu']['isa_class']}; flags {' '.join(result['cpu']['flags'])})")
    print(f"| calls | seconds | RSS after warm-up | RSS at end | growth |\n|---:|---:|---:|---:|---:|\n"
          f"| {args.calls} | {seconds:.1f} | {after_warmup:.1f} MB | {end:.1f} MB | {growth:+.2f}% |")
    print("RSS every 1000 calls (MB):", samples)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if growth < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
