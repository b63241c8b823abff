"""``xlm-onnx serve [MODEL]``: the command, which checks its options and starts the server.

Imports nothing of the [serve] extra until the command runs, so ``xlm-onnx --help`` and the other
commands work without it; a missing extra is a one-line error (exit 2) naming the install command.
One process (:mod:`.server`), ``--workers`` processes (:mod:`.workers`) or Ray Serve replicas
(:mod:`.ray_serve`); the options live in :mod:`.options`.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import require_extra
from .options import API_KEY_ENV, SERVE_MODULES, add_parser, api_key, check_options
from .server import serve_on

__all__ = ["add_parser", "run"]


def _needs_extra() -> None:
    require_extra("serve", SERVE_MODULES)


def run(args: argparse.Namespace, model_dir) -> int:
    """Binds, prints ``serving ... on http://HOST:PORT``, serves until SIGTERM/SIGINT (then drains, exits 0)."""
    check_options(args)
    _needs_extra()
    if args.ray_address:
        from .ray_serve import run_on_ray

        return run_on_ray(args, model_dir)
    from . import listen

    _warn_if_open(args)
    if args.workers > 1:
        from .workers import supervise

        return supervise(args, model_dir)  # a listener per worker (see serve.workers)
    sock = listen.bind(args.host, args.port)  # before the model loads, so --port 0 can print the port
    return serve_on(args, model_dir, sock)


def _warn_if_open(args: argparse.Namespace) -> None:
    """One line on stderr when the server listens beyond this machine and takes requests from anyone."""
    from .guards import GuardSettings, host_allowed, split_host

    host = split_host(args.host)
    if host_allowed(host, GuardSettings(bound_host="127.0.0.1")) or api_key(args) is not None:
        return
    print(f"xlm-onnx: warning: listening on {args.host} (beyond this machine) without an API key: anyone "
          f"who can reach port {args.port or 'the port'} can use this server; set --api-key, --api-key-file "
          f"or {API_KEY_ENV}", file=sys.stderr, flush=True)
