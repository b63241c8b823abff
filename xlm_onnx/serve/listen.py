"""The listening sockets of ``xlm-onnx serve``: bound before the model loads.

One server listens on one socket (:func:`bind`). ``--workers N`` on Linux gives each worker a
socket of its own on the same port (:func:`bind_worker`, ``SO_REUSEPORT``), which the kernel
balances by connection hash: each worker then drains and closes like a single server, and a
connection is only ever queued on a socket whose worker will accept it. The parent holds the
port with a bound socket that never listens (:func:`reserve`): nothing queues on it, and no other
program can take the port while the workers start.
"""

from __future__ import annotations

import errno
import socket
import sys

#: ``SO_REUSEPORT`` balances connections across sockets only on Linux (BSD and macOS give them
#: all to the last socket bound); elsewhere the workers share one socket.
REUSEPORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        hint = " (another process listens there: stop it or pick --port)" if exc.errno == errno.EADDRINUSE else ""
        raise OSError(f"cannot listen on {where}: {exc.strerror or exc}{hint}") from None
    return sock


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (``port`` 0: any free port), listening.

    Raises:
        OSError: The address cannot be bound, with the address in the message ("Address already
            in use" alone does not say which port another process holds).
    """
    sock = _socket(host, port, reuse_port=False)
    sock.listen(2048)  # uvicorn's default backlog
    sock.set_inheritable(True)
    return sock


def reserve(host: str, port: int) -> socket.socket:
    """The parent's hold on ``host:port`` for :func:`bind_worker` sockets: bound, never listening.

    A plain bind first, so a port another program holds is refused with :func:`bind`'s message,
    even one with ``SO_REUSEPORT`` (another ``--workers`` server of this user would otherwise share
    the port, and its connections, silently); then the ``SO_REUSEPORT`` hold on the same port.
    """
    probe = _socket(host, port, reuse_port=False)
    port = probe.getsockname()[1]
    probe.close()
    return _socket(host, port, reuse_port=True)


def bind_worker(host: str, port: int) -> socket.socket:
    """A worker's own listening socket on the port the parent :func:`reserve`\\ d."""
    sock = _socket(host, port, reuse_port=True)
    sock.listen(2048)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"
