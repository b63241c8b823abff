"""``xlm-onnx serve [MODEL]``: options, and the start of the server.

Imports nothing of the [serve] extra until the command runs, so ``xlm-onnx --help`` and the other
commands work without it; a missing extra is a one-line error (exit 2) naming the install command.
"""

from __future__ import annotations

import argparse
import os
import socket

from ..cli.arguments import add_model, add_runtime
from ..errors import require_extra
from ..tasks.choices import POOLINGS

#: The API key may come from the environment instead of the command line (where ``ps`` shows it).
API_KEY_ENV = "XLM_ONNX_API_KEY"
SERVE_MODULES = ("starlette", "uvicorn", "prometheus_client")


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
    p.add_argument("--pooling", default="mean", choices=POOLINGS, help="embedding pooling of /embed")
    p.add_argument("--model-name", help="name in /info and /v1/embeddings answers (default: the directory's)")
    add_runtime(p)
    # Off by default here: the event loop, tokenization and decoding share the cores with ORT's
    # threads, and spinning workers starve them (see xlm_onnx.session.create_session).
    p.add_argument("--spin", action="store_true", help="let ORT's idle threads spin-wait (lower latency on idle cores)")
    p.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))


def _positive(args: argparse.Namespace) -> None:
    for name in ("max_batch_tokens", "max_batch_size", "max_queue", "payload_limit", "max_inputs", "max_chars"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    if args.max_wait_ms < 0:
        raise ValueError(f"--max-wait-ms must be >= 0, not {args.max_wait_ms}")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be between 0 and 65535, not {args.port}")


def _needs_extra() -> None:
    require_extra("serve", SERVE_MODULES)


def run(args: argparse.Namespace, model_dir) -> int:
    """Loads the model, binds, prints ``serving ... on http://HOST:PORT``, serves until SIGTERM/SIGINT."""
    _positive(args)
    _needs_extra()
    import uvicorn

    from ..model import Model
    from .app import ServeSettings, build_app
    from .batcher import BatchSettings
    from .schemas import Limits
    from .jobs import Tasks

    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    model = Model.load(model_dir, provider=args.provider, threads=args.threads, spinning=args.spin)
    name = args.model_name or (model.model_dir.name if model.model_dir is not None else "xlm-onnx")
    settings = ServeSettings(
        batch=BatchSettings(args.max_batch_tokens, args.max_batch_size, args.max_wait_ms, args.max_queue),
        limits=Limits(args.payload_limit, args.max_inputs, args.max_chars), api_key=api_key, model_name=name)
    tasks = Tasks(model, args.pooling)
    app = build_app(tasks, settings)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))  # here, so --port 0 can print the port it got
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"xlm-onnx: serving {name} ({', '.join(tasks.available)}) on http://{url_host}:{port}", flush=True)
    config = uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=None, access_log=False)
    # On SIGTERM/SIGINT uvicorn stops accepting, finishes the accepted requests, runs the lifespan
    # shutdown (the batcher drains), then re-raises the signal: the exit status says how it ended.
    uvicorn.Server(config).run(sockets=[sock])
    return 0
