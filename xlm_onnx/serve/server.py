"""The server of ``xlm-onnx serve``: the app built from the options, and one process serving it.

:func:`build` is also what each Ray Serve replica runs (:mod:`.ray_serve`), and :func:`serve_on`
what each ``--workers`` process runs (:mod:`.workers`); both import this module, never the command.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from typing import Callable

from . import limit_options
from . import options as serve_options


def build(args: argparse.Namespace, model_dir, threads: int | None = None):
    """The model's Starlette app and its name, from the ``serve`` options (also a Ray Serve replica's)."""
    from ..model import Model
    from .app import ServeSettings, build_app
    from .batcher import BatchSettings
    from .body import BodyLimits
    from .guards import GuardSettings
    from .jobs import Tasks

    api_key = serve_options.api_key(args)
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


def serve_on(args: argparse.Namespace, model_dir, sock: socket.socket | Callable, worker: int | None = None,
             threads: int | None = None) -> int:
    """Serves on a bound socket until a signal (one process; a worker of several when ``worker`` is set)."""
    import uvicorn

    from .._log import install
    from . import access_log, listen
    from .protocol import guarded_protocol
    from .shutdown import DrainingServer

    app, name, available = build(args, model_dir, threads)
    sock = sock() if callable(sock) else sock  # a worker's own listener, bound now its model is loaded
    # uvicorn's own lines (an invalid HTTP request, an ASGI error) go through the same bounded
    # one-line handler as ours: a client sending garbage in a loop cannot flood the log.
    for logger_name in ("xlm_onnx", "uvicorn"):
        handler = install(logger_name)
        handler.count_repeats, handler.json = True, args.log_format == "json"
        logging.getLogger(logger_name).setLevel(args.log_level.upper())  # debug: tracebacks of server errors
    if worker is None:
        print(f"xlm-onnx: serving {name} ({', '.join(available)}) on {listen.url_of(sock)}", flush=True)
    config = uvicorn.Config(access_log.install(app, args.log_format, args.log_level),  # ids, access lines
                            log_config=None, access_log=False,
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
