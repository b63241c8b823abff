"""One system in its own process, in its own interpreter: ``python worker.py SPEC.json``.

Run by path by ``bench.py`` with the project's python (xlm-onnx, the HF pipeline) or a peer
venv's (``envs.py``), so it needs only the standard library, numpy and the system's own
packages. Modes (``spec["mode"]``): ``prepare`` builds the system's exports (cached under
``spec["work_dir"]``); ``measure`` loads it, times its pipeline end to end, its forward call and
its encoder alone on each input and on each batch (``spec["task"] == "cls"``: text-classification end to
end on each input and each batch of texts), and reports versions, tokenization and peak RSS. One line
``RESULT <json>`` on stdout; failures are results too (status ``failed`` and the reason).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # systems.py and the peers' modules

#: Reported from whichever interpreter runs the worker (absent ones are left out).
PACKAGES = ("xlm-onnx", "torch", "transformers", "tokenizers", "onnxruntime", "onnx", "optimum", "optimum-onnx",
            "optimum-intel", "openvino", "nncf", "numpy")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def peak_rss_mb() -> float:
    """High-water RSS of this process (``VmHWM``: this exec's address space, not the parent's)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn, warmup: int, repeat: int, budget_s: float) -> list[float]:
    """Milliseconds of ``repeat`` calls after ``warmup``; stops after >= 3 once ``budget_s`` is spent."""
    for _ in range(warmup):
        fn()
    out: list[float] = []
    start = time.perf_counter()
    while len(out) < repeat:
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
        if len(out) >= 3 and time.perf_counter() - start > budget_s:
            break
    return out


def dir_bytes(path) -> int | None:
    if not path:
        return None
    files = [p for p in Path(path).rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files if not p.name.endswith((".json", ".txt")) or p.stat().st_size > 2**20)


def check_top5(result, name: str) -> None:
    if len(result) != 5 or "token_str" not in result[0]:
        raise RuntimeError(f"{name}: unexpected pipeline result {str(result)[:200]}")


def measure(system, spec: dict) -> dict:
    import numpy as np

    t = time.perf_counter()
    system.load_mlm()
    out: dict = {"load_s": time.perf_counter() - t, "tokenizer": {}, "e2e_ms": {}, "forward_ms": {},
                 "encoder_ms": {}, "top5": {}}
    args = (spec["warmup"], spec["repeat"], spec["budget_s"])
    for inp in spec["inputs"]:
        out["tokenizer"][inp["name"]] = system.tokenizer_info(inp["text"])
        first = system.e2e(inp["text"])
        check_top5(first, system.name)
        out["top5"][inp["name"]] = [r["token_str"] for r in first]
        out["e2e_ms"][inp["name"]] = timed(lambda: system.e2e(inp["text"]), *args)
        ids = np.asarray([inp["ids"]], dtype=np.int64)
        out["forward_ms"][inp["name"]] = timed(system.forward(ids, spec["mask_id"]), *args)
        print(f"  {system.name}: {inp['name']} tokens e2e/forward done", file=sys.stderr, flush=True)
    out["model_bytes"] = dir_bytes(getattr(system, "model_dir", None))
    t = time.perf_counter()
    system.load_encoder()
    out["encoder_load_s"] = time.perf_counter() - t
    for inp in spec["inputs"]:
        ids = np.asarray([inp["ids"]], dtype=np.int64)
        out["encoder_ms"][inp["name"]] = timed(system.encoder(ids), *args)
    out["encoder_batched_ms"] = {}
    for batch in spec.get("batches", []):
        ids = np.asarray(batch["ids"], dtype=np.int64)
        out["encoder_batched_ms"][batch["name"]] = timed(system.encoder(ids), *args)
    system.unload()
    return out


def best(answer) -> dict:
    """``{"label", "score"}`` of one text's answer (pipelines wrap a single text's in a list)."""
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if not isinstance(answer, dict) or "label" not in answer:
        raise RuntimeError(f"unexpected text-classification answer {str(answer)[:200]}")
    return {"label": answer["label"], "score": round(float(answer["score"]), 4)}


def measure_classify(system, spec: dict) -> dict:
    """Text-classification end to end: each input alone (batch 1), then each batch of texts as one call."""
    t = time.perf_counter()
    system.load_cls()
    out: dict = {"load_s": time.perf_counter() - t, "tokenizer": {}, "e2e_ms": {}, "e2e_batched_ms": {},
                 "answers": {}}
    args = (spec["warmup"], spec["repeat"], spec["budget_s"])
    for inp in spec["inputs"]:
        out["tokenizer"][inp["name"]] = system.tokenizer_info(inp["text"])
        out["answers"][inp["name"]] = best(system.classify(inp["text"]))
        out["e2e_ms"][inp["name"]] = timed(lambda: system.classify(inp["text"]), *args)
    for batch in spec.get("batches", []):
        answers = system.classify(batch["texts"])
        if len(answers) != batch["batch"]:
            raise RuntimeError(f"{system.name}: {len(answers)} answers for {batch['batch']} texts")
        out["answers"][batch["name"]] = [best(a) for a in answers[:4]]
        out["e2e_batched_ms"][batch["name"]] = timed(lambda: system.classify(batch["texts"]), *args)
        print(f"  {system.name}: batch {batch['name']} done", file=sys.stderr, flush=True)
    out["model_bytes"] = dir_bytes(getattr(system, "model_dir", None))
    system.unload()
    return out


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    out: dict = {"system": spec["system"], "mode": spec["mode"], "versions": versions(),
                 "python_executable": sys.executable}
    try:
        import systems

        system = systems.load(spec["system"], spec)
        t = time.perf_counter()
        if spec["mode"] == "prepare":
            system.prepare()
            out["prepare_s"] = time.perf_counter() - t
        else:
            out.update((measure_classify if spec.get("task") == "cls" else measure)(system, spec))
        out.update(status="ok", notes=system.notes)
    except Exception as exc:  # reported in the table: the run goes on with the next system
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        out.update(status="failed", note=f"{type(exc).__name__}: {first}"[:500],
                   traceback=traceback.format_exc()[-3000:])
    out["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(sys.argv[1])
