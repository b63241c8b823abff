"""The same server as a Ray Serve application: replicas on a Ray cluster, autoscaled on queue length.

Each replica builds the very Starlette app ``xlm-onnx serve`` runs (``serve.server.build``: the
model, the dynamic batcher, every route, the same answers and errors), and Ray Serve's HTTP
proxy routes requests to the replicas::

    xlm-onnx serve [MODEL] --ray-address ADDR --replicas N [--max-replicas M] --port P
    serve run xlm_onnx.serve.ray_serve:app_builder replicas=2 max_batch_size=32   # Ray's own CLI

What maps to what: ``--max-queue`` is a replica's bound (``max_ongoing_requests``: Ray's router
sends no more to it) and the deployment's waiting room (``max_queued_requests``): beyond it,
429 with ``Retry-After: 1`` (``BackpressureConfig``), as the single server answers. With
``--max-replicas`` above ``--replicas``, Ray Serve adds replicas while the requests per replica
(queued and running: its queue length) stay above half a batch (``--max-batch-size`` / 2, so a
replica still fills its batches) and removes them when the load falls. ``--graceful-timeout``
is ``graceful_shutdown_timeout_s``: a stopping replica answers what it holds first. ``--threads``
is both the CPUs Ray reserves per replica and its ORT threads (default 1).

The model path must be readable at the same path on every node. Ray's usage statistics are off
unless ``RAY_USAGE_STATS_ENABLED`` says otherwise (on an existing cluster they are the cluster's
setting: ``ray start --disable-usage-stats``).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from typing import Any

APP_NAME = "xlm-onnx"


def _options(args: argparse.Namespace) -> dict:
    """The deployment's Ray Serve options from the ``serve`` arguments."""
    from ray.serve.config import BackpressureConfig

    cpus = args.threads or 1
    options: dict[str, Any] = {
        "name": "XlmOnnxServer",
        "ray_actor_options": {"num_cpus": cpus},
        "max_ongoing_requests": args.max_queue,
        "max_queued_requests": args.max_queue,
        "backpressure_config": BackpressureConfig(status_code=429, retry_after_s=1),
        "graceful_shutdown_timeout_s": args.graceful_timeout,
    }
    if args.max_replicas and args.max_replicas > args.replicas:
        options["autoscaling_config"] = {
            "min_replicas": args.replicas, "initial_replicas": args.replicas, "max_replicas": args.max_replicas,
            "target_ongoing_requests": max(1, min(args.max_batch_size, args.max_queue) // 2)}
    else:
        options["num_replicas"] = args.replicas
    return options


def application(args: argparse.Namespace, model_dir):
    """The Ray Serve application (``Deployment.bind(...)``) serving ``model_dir`` with ``args``."""
    from ray import serve

    @serve.ingress()
    class XlmOnnxServer:
        """One replica: the ``xlm-onnx serve`` app on its own model and batcher."""

        def __init__(self, options: dict, model: str | None) -> None:
            from xlm_onnx.serve.server import build  # absolute: the class travels to the replica by value

            self._app, _, _ = build(argparse.Namespace(**options), model, threads=options.get("threads") or 1)

        def __serve_build_asgi_app__(self):
            return self._app

    deployment = serve.deployment(**_options(args))(XlmOnnxServer)
    model = None if model_dir is None else os.path.abspath(model_dir)
    return deployment.bind(vars(args), model)


def app_builder(config: dict):
    """For ``serve run xlm_onnx.serve.ray_serve:app_builder key=value ...`` and Serve config files:
    the keys are ``xlm-onnx serve``'s options with underscores (``model``, ``replicas``,
    ``max_batch_size``, ``task``, ...); the defaults are the command's."""
    from ..front.arguments import Parser
    from ..lookup import model_dir
    from .options import add_parser

    argv = ["serve", *([str(config["model"])] if config.get("model") else [])]
    for key, value in config.items():
        if key in ("model",):
            continue
        flag = "--" + key.replace("_", "-")
        if value is True or value in ("true", "True"):
            argv.append(flag)
        elif value not in (False, None, "false", "False"):
            argv += [flag, str(value)]
    parser = Parser(prog="xlm-onnx")
    add_parser(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    args = parser.parse_args(argv)
    return application(args, model_dir(args.model, args.revision))


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def run_on_ray(args: argparse.Namespace, model_dir) -> int:
    """``xlm-onnx serve --ray-address``: deploys, prints the URL, serves until SIGTERM/SIGINT,
    then removes the application (Ray Serve drains each replica) and exits 0."""
    from .._ray_env import filtered_output, ray_defaults
    from ..errors import XLMOnnxError

    try:
        import ray
        from ray import serve
    except ImportError:
        raise XLMOnnxError("--ray-address needs the [ray] extra (ray[serve] is not installed): "
                           "pip install '.[ray]' in the xlm-onnx repository") from None
    import logging

    from .. import format as fmt
    from ..model import default_model_dir

    fmt.read_manifest(model_dir or default_model_dir())  # a bad model is one line here, not a replica's traceback
    ray_defaults()
    quiet = logging.DEBUG if os.environ.get("XLM_ONNX_DEBUG") else logging.ERROR
    port = args.port or _free_port(args.host)
    stop = threading.Event()
    with filtered_output():
        if args.ray_address == "local":  # a cluster for this server only, on loopback
            ray.init(include_dashboard=False, logging_level=quiet, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=args.ray_address, logging_level=quiet)
        logging.getLogger("ray.serve").setLevel(logging.DEBUG if quiet == logging.DEBUG else logging.WARNING)
        # After ray.init, which installs its own SIGTERM handler (a stack dump, then exit).
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            serve.start(http_options={"host": args.host, "port": port},
                        logging_config={"log_level": "WARNING", "enable_access_log": False})
            serve.run(application(args, model_dir), name=APP_NAME, route_prefix="/",
                      logging_config={"log_level": "WARNING", "enable_access_log": False})
            replicas = f"{args.replicas}-{args.max_replicas} replicas" if args.max_replicas and \
                args.max_replicas > args.replicas else f"{args.replicas} replica(s)"
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(f"xlm-onnx: serving on Ray Serve ({replicas}) on http://{host}:{port}", flush=True)
            while not stop.wait(1.0):  # the signal handlers set it
                pass
            serve.delete(APP_NAME)  # replicas answer what they hold (graceful_shutdown_timeout_s)
            serve.shutdown()
        finally:
            ray.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    print("xlm-onnx: stopped (Ray Serve application removed)", file=sys.stderr, flush=True)
    return 0
