"""Where a request's CPU time goes in ``xlm-onnx serve``: model, tokenizing, decoding, JSON, HTTP.

Runs one server under closed-loop load (``_load_client``) and splits its CPU time two ways at once:
per OS thread from /proc (exact: the event loop, the prepare pool, the inference thread, and
ORT's own pool threads, which are all model time), and within each Python thread by py-spy
samples of what it was running (its innermost known frame: ``Session.run`` is model,
``prepare``/``encode``/Moses/BPE tokenizing, ``_propositions``/``decode`` decoding,
``json``/``orjson``/``render`` JSON, the pools' queues and futures thread handoff,
uvicorn/Starlette/asyncio HTTP). Needs py-spy
(``pip install py-spy``; ray[serve] brings it) and permission to read the server's memory.

    python benchmarks/serve_profile.py --mode dynamic --mode batch-1 --json benchmarks/results/serve_profile.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _load_client as lc  # noqa: E402
from serve_load import _loadavg, texts_of  # noqa: E402

from xlm_onnx import cpu_info  # noqa: E402
from xlm_onnx.model import default_model_dir  # noqa: E402
from xlm_onnx.serve.process import ServerProcess  # noqa: E402

MODES = {"dynamic": [], "batch-1": ["--max-batch-size", "1"]}
#: (share, frame substrings), tried on a sample's frames from the innermost out.
CATEGORIES = [
    ("model", ("Session.run", "onnxruntime_pybind11_state")),
    ("decode", ("_propositions", "XLMTokenizer.decode", "convert_ids_to_tokens", "_id_to_token", "run_batch",
                "_finish", "finish")),
    ("tokenize", ("prepare", "encode", "_moses", "_bpe", "Trie.split", "tokenizer.py")),
    ("JSON", ("json/", "orjson", "render", "body.py", "task_routes.py", "params.py", "read_json")),
    # Passing work between threads: the pools' queues, futures, call_soon_threadsafe (and the GIL
    # they wait for): per request in a batch-1 server, per batch in a batching one.
    ("thread handoff", ("concurrent/futures", "threading.py", "queue.py", "_chain_future", "_call_set_state")),
    ("HTTP", ("uvicorn", "starlette", "asyncio", "httptools", "uvloop", "prometheus", "serve/app.py", "batcher.py",
              "timing.py", "responses.py", "runners.py")),
]


def _thread_cpu(pid: int) -> dict[int, float]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return out


def _category(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, keys in CATEGORIES:
            if any(k in frame for k in keys):
                return name
    return "other"


def profile(mode: str, args: argparse.Namespace, bodies: list[bytes]) -> dict:
    spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with ServerProcess(None, ["--max-queue", "1024", *MODES[mode]]) as server, \
            tempfile.NamedTemporaryFile("r", suffix=".txt") as raw:
        lc.run(lc.closed_loop(server.url, "/fill-mask", bodies, args.clients, 1.0))  # warm
        spy = subprocess.Popen([spy_bin, "record", "-p", str(server.proc.pid), "-d", str(int(args.seconds)),
                                "-r", "100", "-f", "raw", "-o", raw.name, "--threads", "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        before, load = _thread_cpu(server.proc.pid), _loadavg()
        tally, elapsed = lc.run(lc.closed_loop(server.url, "/fill-mask", bodies, args.clients, args.seconds))
        after = _thread_cpu(server.proc.pid)
        if spy.wait() != 0:
            raise SystemExit(f"py-spy failed: {spy.stderr.read().decode().strip()}")
        lines = raw.read().splitlines()
    names, samples, per_thread = {}, collections.Counter(), collections.Counter()
    for line in lines:
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        match = re.match(r"thread \((\d+)\)(?:: (.*))?", frames[0])
        if not match:
            continue
        tid, name = int(match.group(1)), re.sub(r"_\d+$", "", match.group(2) or "?")
        names[tid] = name
        samples[(name, _category(frames[1:]))] += int(count)
        per_thread[name] += int(count)
    threads, shares = collections.Counter(), collections.Counter()
    for tid, seconds in after.items():
        threads[names.get(tid, "ORT pool (native)")] += seconds - before.get(tid, 0.0)
    for thread, seconds in threads.items():
        if thread not in per_thread:  # a native thread: ORT's intra-op pool
            shares["model"] += seconds
            continue
        for (name, category), count in samples.items():
            if name == thread:
                shares[category] += seconds * count / per_thread[thread]
    n, total = max(1, len(tally.ok_ms)), sum(threads.values())
    return {"mode": mode, "clients": args.clients, "throughput_rps": round(len(tally.ok_ms) / elapsed, 1),
            "server_cpu_ms_per_request": round(total / n * 1000, 3), "load_average": load,
            "threads_ms_per_request": {k: round(v / n * 1000, 3) for k, v in threads.most_common()},
            "share_ms_per_request": {k: round(v / n * 1000, 3) for k, v in shares.most_common()},
            "share_percent": {k: round(100 * v / total, 1) for k, v in shares.most_common()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", action="append", choices=sorted(MODES))
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    bodies = [json.dumps({"inputs": t, "top_k": 5}).encode() for t in texts_of(default_model_dir(), args.tokens)]
    cpu = cpu_info()
    results = []
    for mode in args.mode or ["dynamic", "batch-1"]:
        results.append(profile(mode, args, bodies))
        print(json.dumps(results[-1]), flush=True)
    if args.json:
        report = {"benchmark": "serve_profile", "model": "demo", "tokens": args.tokens, "cpu": cpu.as_dict(),
                  "cores": os.cpu_count(),
                  "command": "python benchmarks/serve_profile.py " + " ".join(argv or sys.argv[1:]),
                  "results": results}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
