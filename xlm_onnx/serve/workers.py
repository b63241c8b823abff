"""``xlm-onnx serve --workers N``: N server processes on one port, each with its own listener.

One process is one GIL: HTTP parsing, JSON, tokenizing and decoding of every request take turns
on it, and on a small model they cost more than the model run (see benchmarks/results/), so one
process cannot keep the cores busy however well it batches. N processes, each with its own model,
batcher and ORT threads (cores / N unless ``--threads``), listen on the same port.

Each worker has its own ``SO_REUSEPORT`` socket (Linux; :mod:`.listen`), rather than all sharing
the parent's socket: a shared socket's queue outlives the workers as long as any process holds it,
so connections the kernel accepted after the last worker stopped accepting (the parent still held
the socket) waited there and were reset when the parent exited, seconds later: with 8 clients
sending through SIGTERM, several requests were lost each time. With a socket per worker, a
worker drains, answers and closes exactly like a single server (``serve.shutdown``), the kernel
stops queueing on a socket once it is closed, and a client that comes after the last one closed
is refused at once (nothing was sent: it can retry elsewhere). The kernel also spreads new
connections by hash, evenly, where a shared socket favours whichever worker waits longest in
``accept``. The parent holds the port with a socket that never listens, forwards SIGTERM/SIGINT,
waits, and exits 0 when every worker did. Elsewhere than Linux the workers share one socket,
which the parent closes once they have it.

Why not uvicorn's ``--workers``: it needs the app as an import string and re-reads the options
from there; here the parent already has them parsed and checked, and the model directory
resolved, so the workers get them as they are (``spawn``: no ORT session crosses a fork).
A worker that dies on its own stops the others and the parent exits 1, for the orchestrator to
restart the whole server, instead of serving on with fewer workers than configured.
"""

from __future__ import annotations

import argparse
import functools
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


def _worker(args: argparse.Namespace, model_dir, where: socket.socket | tuple[str, int], index: int,
            threads: int) -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent turns it into one SIGTERM
    # per worker, so a worker ignores SIGINT and never sees a Ctrl-C as a "second signal".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .server import serve_on
    from .listen import bind_worker

    # Its own socket is bound once its model is loaded: until then the kernel gives every new
    # connection to the workers that can answer it.
    sock = where if isinstance(where, socket.socket) else functools.partial(bind_worker, *where)
    sys.exit(serve_on(args, model_dir, sock, worker=index, threads=threads))


def supervise(args: argparse.Namespace, model_dir) -> int:
    """Starts ``args.workers`` workers on ``--host``/``--port``; returns the exit status once all
    have stopped.

    Raises:
        OSError: The port cannot be bound (see :mod:`.listen`).
    """
    from .. import format as fmt
    from ..model import default_model_dir
    from . import listen

    fmt.read_manifest(model_dir or default_model_dir())  # a bad model is one line here, not N tracebacks
    sock = listen.reserve(args.host, args.port) if listen.REUSEPORT else listen.bind(args.host, args.port)
    where = sock.getsockname()[:2] if listen.REUSEPORT else sock
    threads = threads_per_worker(args.workers, args.threads)
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_worker, args=(args, model_dir, where, i, threads), name=f"xlm-onnx-worker-{i}")
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

    url = listen.url_of(sock)
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for proc in procs:
            proc.start()
        if not listen.REUSEPORT:
            sock.close()  # the workers have their copies: the last to stop ends the queue, not this process
        if stopping:  # a signal came while they started: they must hear it too
            for proc in procs:
                os.kill(proc.pid, signal.SIGTERM)
        print(f"xlm-onnx: serving {args.workers} workers ({threads} ORT thread(s) each) on {url}",
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
