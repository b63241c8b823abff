"""``xlm-onnx serve [MODEL]``: options, and the start of the server.

Imports nothing of the [serve] extra until the command runs, so ``xlm-onnx --help`` and the other
commands work without it; a missing extra is a one-line error (exit 2) naming the install command.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys

from ..errors import require_extra
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
                   help="the server's log lines at this level and above")
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


def _positive(args: argparse.Namespace) -> None:
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


def _needs_extra() -> None:
    require_extra("serve", SERVE_MODULES)


def run(args: argparse.Namespace, model_dir) -> int:
    """Binds, prints ``serving ... on http://HOST:PORT``, serves until SIGTERM/SIGINT (then drains, exits 0)."""
    _positive(args)
    _needs_extra()
    if args.ray_address:
        from .ray_serve import run_on_ray

        return run_on_ray(args, model_dir)
    from . import listen

    sock = listen.bind(args.host, args.port)  # before the model loads, so --port 0 can print the port
    _warn_if_open(args)
    if args.workers > 1:
        from .workers import supervise

        return supervise(args, model_dir, sock)
    return serve_on(args, model_dir, sock)


def _api_key(args: argparse.Namespace) -> str | None:
    key_file = limit_options.api_key_from_file(args.api_key_file) if args.api_key_file else None
    return args.api_key or key_file or os.environ.get(API_KEY_ENV) or None


def _warn_if_open(args: argparse.Namespace) -> None:
    """One line on stderr when the server listens beyond this machine and takes requests from anyone."""
    from .guards import GuardSettings, host_allowed, split_host

    host = split_host(args.host)
    if host_allowed(host, GuardSettings(bound_host="127.0.0.1")) or _api_key(args) is not None:
        return
    print(f"xlm-onnx: warning: listening on {args.host} (beyond this machine) without an API key: anyone "
          f"who can reach port {args.port or 'the port'} can use this server; set --api-key, --api-key-file "
          f"or {API_KEY_ENV}", file=sys.stderr, flush=True)


def build(args: argparse.Namespace, model_dir, threads: int | None = None):
    """The model's Starlette app and its name, from the ``serve`` options (also a Ray Serve replica's)."""
    from ..model import Model
    from .app import ServeSettings, build_app
    from .batcher import BatchSettings
    from .body import BodyLimits
    from .guards import GuardSettings
    from .jobs import Tasks

    api_key = _api_key(args)
    model = Model.load(model_dir, provider=args.provider, threads=threads or args.threads, spinning=args.spin)
    name = args.model_name or (model.model_dir.name if model.model_dir is not None else "xlm-onnx")
    guards = GuardSettings(args.host, limit_options.names(args.allowed_hosts), limit_options.names(args.cors_origins),
                           api_key is not None, args.header_timeout, args.body_timeout, args.max_header_bytes)
    settings = ServeSettings(
        batch=BatchSettings(args.max_batch_tokens, args.max_batch_size, args.max_wait_ms, args.max_queue,
                            args.max_queue_tokens),
        limits=BodyLimits(args.payload_limit, args.max_inputs, args.max_chars), api_key=api_key, model_name=name,
        request_limits=limit_options.request_limits(args), guards=guards, root_task=args.task)
    settable = {"pooling": args.pooling}  # server settings that are task options, when given
    tasks = Tasks(model, {k: v for k, v in settable.items() if v is not None}, settings.request_limits)
    if args.task is not None and args.task not in tasks.available:
        raise ValueError(f"--task {args.task}: this model has no {args.task} head (its tasks: "
                         f"{', '.join(tasks.available)})")
    return build_app(tasks, settings), name, tasks.available


def serve_on(args: argparse.Namespace, model_dir, sock: socket.socket, worker: int | None = None,
             threads: int | None = None) -> int:
    """Serves on a bound socket until a signal (one process; a worker of several when ``worker`` is set)."""
    import uvicorn

    from .._log import install
    from . import listen
    from .protocol import guarded_protocol
    from .shutdown import DrainingServer

    app, name, available = build(args, model_dir, threads)
    # uvicorn's own lines (an invalid HTTP request, an ASGI error) go through the same bounded
    # one-line handler as ours: a client sending garbage in a loop cannot flood the log.
    for logger_name in ("xlm_onnx", "uvicorn"):
        install(logger_name).count_repeats = True
        logging.getLogger(logger_name).setLevel(args.log_level.upper())  # debug: tracebacks of server errors
    if worker is None:
        print(f"xlm-onnx: serving {name} ({', '.join(available)}) on {listen.url_of(sock)}", flush=True)
    config = uvicorn.Config(app, log_config=None, access_log=False,
                            http=guarded_protocol(args.header_timeout, args.max_header_bytes,
                                                  lambda reason: app.state.refused.labels(reason).inc()))
    server = DrainingServer(config, app.state.drain, args.graceful_timeout,
                            (signal.SIGINT, signal.SIGTERM) if worker is None else (signal.SIGTERM,))
    server.run(sockets=[sock])
    if server.force_exit:  # a second signal: stopped without finishing the drain
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    if app.state.abandoned():
        # A batch still runs on the inference thread (the deadline passed): its answers have been
        # replaced by 503s, and waiting for it would break the bound, so leave without joining it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
