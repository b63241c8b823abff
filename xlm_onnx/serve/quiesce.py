"""Closing a listener without resetting a connection the kernel already accepted.

A listening socket's kernel queue fills without the server's help: the handshake completes,
and the connection waits for ``accept()``. Closing the socket resets whatever waits there, and
closing an idle keep-alive connection resets a request the client sent an instant before. A
server that clients keep calling through its stop (a load balancer that has not yet noticed)
loses requests both ways, each a ``Connection reset by peer`` after the request was sent: the
client cannot know whether it was handled. uvicorn closes its listeners and idle connections as
soon as it stops. Before it does, :class:`~xlm_onnx.serve.shutdown.DrainingServer`:

1. answers every request of the drain with ``Connection: close`` (:class:`CloseWhileDraining`):
   a client's next request opens a new connection instead of racing the close of an idle one;
2. drops new handshakes on its listeners (:func:`stop_new_connections`, Linux): a client's SYN
   goes unanswered, and its retransmission a second later meets a closed port (refused: nothing
   was sent, the client may retry elsewhere) or, with ``--workers``, another worker's socket;
3. keeps accepting until the kernel queue is empty (:func:`accept_queue`) and every connection
   has had its answer (:func:`waiting`), for at most part of the close reserve; then uvicorn
   closes the rest. What is left open then is only connections idle through the whole drain (a
   request sent on one at the instant it closes is the race HTTP/1.1 leaves to clients' retries).

Written here because neither uvicorn nor asyncio offers a "stop the handshakes, then drain the
queue" close; the socket filter is five classic-BPF instructions.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import sys

#: ``SO_ATTACH_FILTER`` (Linux, asm-generic/socket.h); Python's socket module does not name it.
SO_ATTACH_FILTER = 26
_TCP_INFO_UNACKED = 24  # offset of tcpi_unacked in struct tcp_info: a listener's accept queue length
#: Classic BPF on the TCP header (a filter on a TCP socket sees the segment from its TCP header):
#: a segment whose flags are SYN without ACK (a new handshake) is dropped, every other one kept.
_DROP_SYN = ((0x30, 0, 0, 13),          # load the byte at offset 13: the flags
             (0x54, 0, 0, 0x12),        # AND SYN|ACK
             (0x15, 0, 1, 0x02),        # equal to SYN alone? next instruction, else skip it
             (0x06, 0, 0, 0),           # return 0: drop the segment
             (0x06, 0, 0, 0xFFFFFFFF))  # return all of it: keep the segment


def stop_new_connections(sock: socket.socket) -> bool:
    """Makes a listening socket ignore new handshakes (it keeps completing those under way);
    ``False`` where that is not possible (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in _DROP_SYN)
    program = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(_DROP_SYN), ctypes.addressof(program))  # struct sock_fprog
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)  # the kernel copies the program
    except OSError:
        return False
    return True


def accept_queue(sock: socket.socket) -> int:
    """Connections waiting for ``accept()`` on a listening socket (0 where unknown)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    except (OSError, AttributeError):
        return 0
    return struct.unpack_from("I", info, _TCP_INFO_UNACKED)[0]


def waiting(connection) -> bool:
    """Whether a uvicorn connection has a request coming or unanswered (a new connection: its
    request is on its way), rather than being idle between requests."""
    cycle = getattr(connection, "cycle", None)
    return cycle is None or not cycle.response_complete


class CloseWhileDraining:
    """ASGI middleware: ``Connection: close`` on every answer once ``draining()`` is true.

    Args:
        app: The ASGI app.
        draining: ``() -> bool``.
    """

    def __init__(self, app, draining) -> None:
        self.app, self.draining = app, draining

    def __getattr__(self, name):  # app.state and the like, as the wrapped app has them
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_closing(message) -> None:
            if message["type"] == "http.response.start" and self.draining():
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
