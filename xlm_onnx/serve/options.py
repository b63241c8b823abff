"""``xlm-onnx serve``'s options: the parser, their checks and the API key they name.

Imports nothing of the [serve] extra, so ``xlm-onnx --help`` works without it. Read by the
command (:mod:`.cli`), a Ray Serve application built from a config (:mod:`.ray_serve`) and the
server itself (:mod:`.server`).
"""

from __future__ import annotations

import argparse
import os

from ..front.arguments import add_model, add_runtime
from ..pooling import POOLINGS
from . import limit_options
from .adapters import ROOT_TASK

#: The API key may come from the environment instead of the command line (where ``ps`` shows it).
API_KEY_ENV = "XLM_ONNX_API_KEY"
SERVE_MODULES = ("starlette", "uvicorn", "prometheus_client", "orjson")


def add_parser(sub) -> None:
    """Adds ``serve`` to ``xlm-onnx``'s sub-parsers."""
    p = sub.add_parser("serve", help="HTTP inference server with dynamic batching (needs the [serve] extra)")
    add_model(p, flag=False)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (0: any free port, printed at start)")
    p.add_argument("--api-key", help=f"require 'Authorization: Bearer KEY' (or set {API_KEY_ENV})")
    p.add_argument("--max-batch-tokens", type=int, default=8192, metavar="N",
                   help="a batch closes at this padded cost (rows x longest row)")
    p.add_argument("--max-batch-size", type=int, default=64, metavar="N", help="... or at this many rows")
    p.add_argument("--max-wait-ms", type=float, default=2.0, metavar="MS",
                   help="... or when its oldest request has waited this long")
    p.add_argument("--max-queue", type=int, default=256, metavar="N",
                   help="requests admitted and unanswered; more get 429 with Retry-After at once")
    p.add_argument("--payload-limit", type=int, default=1 << 20, metavar="BYTES", help="largest request body (413)")
    p.add_argument("--max-inputs", type=int, default=64, metavar="N", help="most texts per request (413)")
    p.add_argument("--max-chars", type=int, default=10_000, metavar="N", help="most characters per text (413)")
    p.add_argument("--pooling", choices=POOLINGS,
                   help="this server's default for the pooling option of every task that has one (embeddings; "
                        "default: the task's own)")
    p.add_argument("--model-name", help="name in /info and /v1/embeddings answers (default: the directory's)")
    add_runtime(p)
    # Off by default here: the event loop, tokenization and decoding share the cores with ORT's
    # threads, and spinning workers starve them (see xlm_onnx.session.create_session).
    p.add_argument("--spin", action="store_true", help="let ORT's idle threads spin-wait (lower latency on idle cores)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"),
                   help="info: also one access line per request (default warning)")
    p.add_argument("--log-format", default="text", choices=("text", "json"),
                   help="json: log lines as JSON objects, one a line, for log collectors (default text)")
    limit_options.add_options(p)  # per-request limits, read timeouts, Host/Origin guards
    p.add_argument("--task", metavar="TASK",
                   help="the task POST / answers, as TEI and HF Inference Endpoints do: any task of the model "
                        f"(default: {ROOT_TASK} if it has it, else its first task)")
    p.add_argument("--graceful-timeout", type=float, default=30.0, metavar="S",
                   help="on SIGTERM: answer queued requests for up to S seconds, 503 the rest, exit 0 (default 30)")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="N server processes on one port, each with its own model and ORT threads "
                        "(default 1; threads per worker: cores / N unless --threads)")
    ray = p.add_argument_group("Ray Serve (needs the [ray] extra)")
    ray.add_argument("--ray-address", metavar="ADDR",
                     help="run as a Ray Serve application on this cluster (auto, HOST:6379, or 'local' to start one)")
    ray.add_argument("--replicas", type=int, default=1, metavar="N", help="Ray Serve replicas at start (default 1)")
    ray.add_argument("--max-replicas", type=int, metavar="N",
                     help="autoscale up to N replicas on queue length (default: --replicas, no autoscaling)")


def check_options(args: argparse.Namespace) -> None:
    """Refuses option values no server can run with (one line each, exit 2)."""
    for name in ("max_batch_tokens", "max_batch_size", "max_queue", "payload_limit", "max_inputs", "max_chars",
                 "workers", "replicas"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    if args.max_wait_ms < 0:
        raise ValueError(f"--max-wait-ms must be >= 0, not {args.max_wait_ms}")
    if not args.graceful_timeout > 0:
        raise ValueError(f"--graceful-timeout must be > 0 seconds, not {args.graceful_timeout}")
    if args.max_replicas is not None and args.max_replicas < args.replicas:
        raise ValueError(f"--max-replicas ({args.max_replicas}) must be at least --replicas ({args.replicas})")
    if (args.replicas != 1 or args.max_replicas is not None) and not args.ray_address:
        raise ValueError("--replicas and --max-replicas apply to Ray Serve: add --ray-address (or use --workers)")
    if args.workers > 1 and args.ray_address:
        raise ValueError("--workers and --ray-address do not combine: Ray Serve runs --replicas processes")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, not {args.port}")
    limit_options.check(args)


def api_key(args: argparse.Namespace) -> str | None:
    key_file = limit_options.api_key_from_file(args.api_key_file) if args.api_key_file else None
    return args.api_key or key_file or os.environ.get(API_KEY_ENV) or None
