"""xlm-onnx against what a user would pick instead, in one run: optimum-onnx (ORT), OpenVINO, the HF pipeline.

Every system loads the same checkpoint (the peers export/convert it themselves) or an xlm-onnx
directory built from it, runs in a fresh process with ``--threads`` threads, and is timed on the
same texts (``--tokens``, counted by the XLM tokenizer with ``<s>``/``</s>``): its pipeline end
to end (text -> top-5), its forward call, its encoder alone, and its encoder on batches
(``--batched``, e.g. 32 texts of 64 tokens: sentences/s, what embedding a corpus runs). Systems run one at a time
(a full-size model takes up to 6 GB), ``--rounds`` times each, the order reversed every other
round so a load change on a shared machine hits all alike; p50 is over every round's samples.

``--task text-classification`` benchmarks a fine-tuned ``XLMForSequenceClassification`` checkpoint
instead: each system's ``pipeline("text-classification")`` (or :class:`xlm_onnx.TextClassifier`) end
to end, tokenize + model + head + softmax, on each text alone and on each ``--batched`` batch of
texts as one call (the peers export ``ORTModelForSequenceClassification`` /
``OVModelForSequenceClassification``)::

    python benchmarks/peers/bench.py --task text-classification --checkpoint CLASSIFIER \
        --onnx int8=CLASSIFIER_INT8_EXPORT --systems optimum-ort-int8,openvino-int8-nncf --batched 32x64

The peers need transformers 4.57 (the project pins 5.x), so they run in their own venvs
(``benchmarks/peers/envs.py``). A peer whose venv is missing, or that fails to install, export
or run, is a row with the reason. Writes a markdown table (``--markdown``) and JSON (``--json``)
with versions per system, the CPU model and class, and the load average before and after::

    python benchmarks/peers/envs.py            # once: the peers' venvs, ~/.cache/xlm-onnx-peers
    python benchmarks/peers/bench.py --checkpoint .cache/bench/full/checkpoint \\
        --onnx int8=.cache/bench/full/int8 --onnx fp32=.cache/bench/full/fp32 \\
        --json benchmarks/results/peers.json --markdown benchmarks/results/peers.md
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import envs  # noqa: E402
import report  # noqa: E402

WORKER = HERE / "worker.py"
#: name -> (family, venv or None for the project's interpreter, description).
PEERS = {
    "hf-fp32": ("hf", None, "transformers pipeline('fill-mask'), torch eager fp32"),
    "hf-int8": ("hf", None, "same pipeline after torch.ao quantize_dynamic(nn.Linear, qint8)"),
    "optimum-ort-fp32": ("optimum-ort", "optimum-ort", "optimum-onnx ORTModelForMaskedLM export, onnxruntime fp32"),
    "optimum-ort-int8": ("optimum-ort", "optimum-ort", "the same export + ORTQuantizer dynamic int8 for this CPU"),
    "optimum-ort-int8-opt": ("optimum-ort", "optimum-ort",
                             "ORT's transformer optimizer as model_type='bert' (optimum's ORTOptimizer refuses "
                             "model type xlm), then the same int8"),
    "openvino-fp32": ("openvino", "openvino", "optimum-intel OVModelForMaskedLM, inference precision f32"),
    "openvino-default": ("openvino", "openvino", "the same IR, OpenVINO's default precision for this CPU"),
    "openvino-int8-weights": ("openvino", "openvino", "optimum-intel int8 weight-only (OVWeightQuantizationConfig)"),
    "openvino-int8-nncf": ("openvino", "openvino", "optimum-intel OVQuantizer full int8 (nncf), calibrated on 12 texts"),
}

#: ``--task``: what the compared pipelines do (``spec["task"]`` and the exports ``prepare`` builds).
TASKS = {"fill-mask": ("mlm", ("mlm", "encoder")), "text-classification": ("cls", ("cls",))}

CLASSIFY_DESC = {
    "optimum-ort-int8": "optimum-onnx ORTModelForSequenceClassification export + ORTQuantizer dynamic int8 for this "
                        "CPU, optimum's pipeline('text-classification')",
    "openvino-int8-nncf": "optimum-intel OVModelForSequenceClassification + OVQuantizer full int8 (nncf), calibrated "
                          "on 12 texts, optimum-intel's pipeline('text-classification')",
}

#: Opt-in: at full size ORT's python optimizer peaked above 21 GB and was killed on a 24 GB machine.
DEFAULT = [name for name in PEERS if name != "optimum-ort-int8-opt"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="HF XLM checkpoint every system starts from")
    p.add_argument("--task", choices=list(TASKS), default="fill-mask",
                   help="fill-mask (a masked-LM checkpoint) or text-classification (a sequence classifier)")
    p.add_argument("--onnx", action="append", default=[], metavar="LABEL=DIR",
                   help="an xlm-onnx export of that checkpoint (repeat: int8 schemes, fp32)")
    p.add_argument("--systems", default=",".join(DEFAULT), help="peers to run, comma list from: " + ", ".join(PEERS))
    p.add_argument("--tokens", default="14,125", help="text lengths in tokens (with <s> and </s>)")
    p.add_argument("--batched", default="32x64,32x128",
                   help="encoder batches BATCHxTOKENS, comma list (each row a different text of TOKENS tokens); "
                        "'' for none")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=10, help="timed calls per cell and round")
    p.add_argument("--budget-s", type=float, default=30.0, help="stop a cell after this long (>= 3 calls)")
    p.add_argument("--rounds", type=int, default=2, help="fresh process per system and round")
    p.add_argument("--peers-root", type=Path, default=envs.default_root(), help="where envs.py put the venvs")
    p.add_argument("--work-dir", type=Path, help="the peers' exports (default: PEERS_ROOT/exports/<checkpoint>)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per worker process")
    p.add_argument("--note", default="", help="a line for the table's header (e.g. what else ran on the machine)")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    return p


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_worker(python: str, spec: dict, timeout: float) -> dict:
    """One worker process; its ``RESULT`` line, or why there is none."""
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1",
               PYTHONWARNINGS="ignore", **{k: str(spec["threads"]) for k in
                                           ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    env.pop("PYTHONPATH", None)  # a peer venv must see its own packages only
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    proc = subprocess.Popen([python, str(WORKER), f.name], stdout=subprocess.PIPE, text=True, env=env)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    result = None
    try:
        for line in proc.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT "):])
        proc.wait()
    finally:
        timed_out = timer.finished.is_set()  # set once the timer has fired (checked before cancel)
        timer.cancel()
        os.unlink(f.name)
    if result is None:
        why = f"worker exited with status {proc.returncode} and no result"
        if proc.returncode == -9:
            why += f" (killed after the {timeout:g} s timeout)" if timed_out else \
                " (SIGKILL from outside: the kernel's OOM killer, unless someone sent it)"
        return {"status": "failed", "note": why}
    return result


def parse_batched(text: str) -> list[tuple[int, int]]:
    """``"32x64,32x128"`` -> ``[(32, 64), (32, 128)]``."""
    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        batch, sep, tokens = item.partition("x")
        if not sep or not batch.isdigit() or not tokens.isdigit() or int(batch) < 1 or int(tokens) < 3:
            raise SystemExit(f"bench.py: --batched {item!r}: expected BATCHxTOKENS, e.g. 32x64")
        out.append((int(batch), int(tokens)))
    return out


def build_batches(checkpoint: Path, shapes: list[tuple[int, int]]) -> list[dict]:
    """Per shape, ``batch`` different texts of exactly ``tokens`` tokens, as ids (no mask: the
    encoder alone; every row the same length, so no system pays for padding)."""
    import random

    from xlm_onnx import XLMTokenizer
    sys.path.insert(0, str(HERE.parent))
    from latency_harness.inputs import sentence

    tok = XLMTokenizer.from_pretrained(checkpoint)
    out = []
    for batch, n in shapes:
        rng = random.Random(f"peers-batched-{batch}x{n}")
        texts = [sentence(tok, n, rng) for _ in range(batch)]
        ids = [[i if i != tok.mask_token_id else tok.encode("the")[1] for i in tok.encode(t)] for t in texts]
        out.append({"name": f"{batch}x{n}", "batch": batch, "tokens": n, "ids": ids, "texts": texts})
    return out


def build_inputs(checkpoint: Path, lengths: list[int]) -> tuple[list[dict], list[str], dict]:
    """Texts of exactly N tokens (one mask each), calibration texts, and tokenizer facts."""
    import random

    from xlm_onnx import XLMTokenizer
    sys.path.insert(0, str(HERE.parent))  # benchmarks/: the latency harness's inputs
    from latency_harness.inputs import sentence

    tok = XLMTokenizer.from_pretrained(checkpoint)
    inputs = []
    for n in lengths:
        text = sentence(tok, n, random.Random(f"peers-{n}"))
        inputs.append({"name": str(n), "tokens": n, "text": text, "ids": tok.encode(text)})
    rng = random.Random("peers-calibration")
    calib = [sentence(tok, n, rng) for n in (8, 12, 16, 24, 32, 48, 64, 96, 125, 20, 40, 80)]
    filler = tok.encode("the")[1]
    return inputs, calib, {"mask_id": tok.mask_token_id, "filler_id": filler}


def systems_to_run(args) -> dict[str, tuple]:
    out = {}
    for item in args.onnx:
        label, sep, path = item.partition("=")
        if not sep or not label or not Path(path, "xlm_onnx.json").is_file():
            raise SystemExit(f"bench.py: --onnx {item!r}: expected LABEL=DIR with an xlm-onnx export in DIR")
        what = "TextClassifier" if args.task == "text-classification" else "FillMask"
        out[f"xlm-onnx-{label}"] = ("xlm-onnx", None, f"xlm-onnx {what} on {path}", path)
    for name in (s.strip() for s in args.systems.split(",") if s.strip()):
        if name not in PEERS:
            raise SystemExit(f"bench.py: unknown system {name!r}; known: {', '.join(PEERS)}")
        family, venv, desc = PEERS[name]
        if args.task == "text-classification":
            desc = CLASSIFY_DESC.get(name, desc.replace("fill-mask", "text-classification")
                                     .replace("MaskedLM", "SequenceClassification"))
        out[name] = (family, venv, desc, "")
    return out


def header(args, lengths: list[int]) -> dict:
    from xlm_onnx.cpu import cpu_info

    info = cpu_info()
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cpu": info.model, "cpu_isa": info.as_dict(), "isa_class": info.isa_class, "cores": os.cpu_count(),
            "threads": args.threads, "tokens": lengths, "warmup": args.warmup, "repeat": args.repeat,
            "task": args.task, "batched": args.batched, "rounds": args.rounds, "budget_s": args.budget_s, "checkpoint": str(args.checkpoint),
            "load_avg_before": os.getloadavg(), "note": args.note}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    lengths = [int(x) for x in args.tokens.split(",")]
    todo = systems_to_run(args)
    config = json.loads((args.checkpoint / "config.json").read_text())
    key = hashlib.sha1(f"{args.checkpoint.resolve()}:{(args.checkpoint / 'config.json').stat().st_mtime}"
                       .encode()).hexdigest()[:12]
    work = args.work_dir or args.peers_root / "exports" / key
    data = {"header": header(args, lengths), "systems": {}}
    inputs, calib, tok = build_inputs(args.checkpoint, lengths)
    data["inputs"] = [{k: v for k, v in i.items() if k != "ids"} for i in inputs]
    batches = build_batches(args.checkpoint, parse_batched(args.batched))
    data["batched"] = [{k: v for k, v in b.items() if k not in ("ids", "texts")} for b in batches]
    task, tasks = TASKS[args.task]
    base = {"checkpoint": str(args.checkpoint.resolve()), "work_dir": str(work), "threads": args.threads,
            "isa_class": data["header"]["isa_class"], "heads": config["n_heads"], "dim": config["emb_dim"],
            "inputs": inputs, "batches": batches, "calibration_texts": calib, "warmup": args.warmup, "repeat": args.repeat,
            "budget_s": args.budget_s, "task": task, "tasks": tasks, **tok}
    ready: dict[str, tuple[str, dict]] = {}
    for name, (family, venv, desc, model_dir) in todo.items():
        row = data["systems"][name] = {"family": family, "description": desc, "venv": venv}
        python = sys.executable
        if venv:
            status, why = envs.state(args.peers_root, venv)
            if status != "ready":
                row.update(status="not installed", note=why)
                log(f"peers: {name}: not installed ({why})")
                continue
            python = why
        spec = dict(base, system=name, family=family, model_dir=model_dir)
        if venv:
            log(f"peers: {name}: preparing (export/convert, cached in {work}) ...")
            res = run_worker(python, dict(spec, mode="prepare"), args.timeout)
            row["prepare"] = {k: res.get(k) for k in ("status", "prepare_s", "peak_rss_mb", "note")}
            if res["status"] != "ok":
                row.update(status="failed", note=f"prepare: {res.get('note')}", traceback=res.get("traceback"))
                log(f"peers: {name}: prepare failed: {res.get('note')}\n{res.get('traceback', '')}")
                continue
        ready[name] = (python, spec)
    order = list(ready)
    for r in range(args.rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            python, spec = ready[name]
            log(f"peers: {name}: round {r + 1}/{args.rounds} ...")
            res = run_worker(python, dict(spec, mode="measure"), args.timeout)
            data["systems"][name].setdefault("rounds", []).append(res)
            if res["status"] != "ok":
                log(f"peers: {name}: {res.get('note')}\n{res.get('traceback', '')}")
    data["header"]["load_avg_after"] = os.getloadavg()
    report.summarize(data)
    text = report.markdown(data)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n", encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return 0 if any(s.get("status") == "ok" for s in data["systems"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
