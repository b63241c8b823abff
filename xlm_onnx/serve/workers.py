"""``xlm-onnx serve --workers N``: N server processes accepting on one listening socket.

One process is one GIL: HTTP parsing, JSON, tokenizing and decoding of every request take turns
on it, and on a small model they cost more than the model run (see benchmarks/results/), so one
process cannot keep the cores busy however well it batches. N processes, each with its own model,
batcher and ORT threads (cores / N unless ``--threads``), share the socket the parent bound; the
kernel hands each new connection to one of them. Each worker drains on SIGTERM by itself
(``serve.shutdown``): the parent forwards the signal, waits, and exits 0 when every worker did.

Why not uvicorn's ``--workers``: it needs the app as an import string and re-reads the options
from there; here the parent already has them parsed and checked, and the model directory
resolved, so the workers get them as they are (``spawn``: no ORT session crosses a fork).
A worker that dies on its own stops the others and the parent exits 1, for the orchestrator to
restart the whole server, instead of serving on with fewer workers than configured.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import sys
from multiprocessing.connection import wait


def threads_per_worker(workers: int, threads: int | None) -> int:
    """``--threads``, or the CPUs this process may use divided among the workers (at least 1)."""
    if threads:
        return threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // workers)


def _worker(args: argparse.Namespace, model_dir, sock: socket.socket, index: int, threads: int) -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent turns it into one SIGTERM
    # per worker, so a worker ignores SIGINT and never sees a Ctrl-C as a "second signal".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .cli import serve_on

    sys.exit(serve_on(args, model_dir, sock, worker=index, threads=threads))


def supervise(args: argparse.Namespace, model_dir, sock: socket.socket) -> int:
    """Starts ``args.workers`` workers on ``sock``; returns the exit status once all have stopped."""
    from .. import format as fmt
    from ..model import default_model_dir
    from .listen import url_of

    fmt.read_manifest(model_dir or default_model_dir())  # a bad model is one line here, not N tracebacks
    threads = threads_per_worker(args.workers, args.threads)
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_worker, args=(args, model_dir, sock, i, threads), name=f"xlm-onnx-worker-{i}")
             for i in range(args.workers)]
    stopping = []

    def forward(sig, frame) -> None:
        # The first signal drains every worker; a second Ctrl-C stops them now.
        now = bool(stopping) and sig == signal.SIGINT
        if stopping and not now:
            return
        stopping.append(sig)
        for proc in procs:
            if proc.is_alive():
                os.kill(proc.pid, signal.SIGKILL if now else signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for proc in procs:
            proc.start()
        if stopping:  # a signal came while they started: they must hear it too
            for proc in procs:
                os.kill(proc.pid, signal.SIGTERM)
        print(f"xlm-onnx: serving {args.workers} workers ({threads} ORT thread(s) each) on {url_of(sock)}",
              flush=True)
        status = 0
        running = {proc.sentinel: proc for proc in procs}
        while running:
            for sentinel in wait(list(running)):
                proc = running.pop(sentinel)
                proc.join()
                if proc.exitcode != 0 and not stopping:
                    print(f"xlm-onnx: {proc.name} exited with status {proc.exitcode}; stopping the others",
                          file=sys.stderr, flush=True)
                    forward(signal.SIGTERM, None)
                if proc.exitcode != 0:
                    status = 1
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
