"""uvicorn's httptools protocol with what it lacks for slow or huge headers, and a shutdown that
does not wait for bodies that never come.

uvicorn (0.30-0.55) has a keep-alive timeout between requests, but none for a request's headers
(a client may send one byte a minute and hold the connection), no size limit on them with
httptools (a 64 MB header value is read in full; h11's ``h11_max_incomplete_event_size`` exists
only for h11, the slower pure-Python parser), and its graceful shutdown closes idle connections
but waits for every request in progress, including one whose body is stalled. This subclass adds:

* a header deadline: from a connection's start, or a request's first byte, to the end of its
  headers, ``header_timeout`` seconds; past it, 408 and close;
* a header size limit: ``max_header_bytes`` of start line and headers; past it, 431 and close;
* on shutdown (SIGTERM), a connection still receiving a request body before any answer is
  closed at once: its handler sees a disconnect and stops.

Bodies have their own deadline in the ASGI app (:mod:`.guards`), where the route can answer.
"""

from __future__ import annotations

import json
from typing import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and size limit (see the module docstring);
    :func:`guarded_protocol` makes a subclass with the limits set."""

    header_timeout: float = 10.0
    max_header_bytes: int = 64 << 10

    @staticmethod
    def on_refuse(reason: str) -> None:
        """Called with ``header_timeout`` or ``header_size`` for each refusal (metrics)."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._in_headers, self._header_bytes, self._header_timer = True, 0, None
        self._arm()

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_deadline)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            self._arm()
            self._header_bytes += len(data)
        super().data_received(data)
        if self._in_headers and self._header_bytes > self.max_header_bytes and not self.transport.is_closing():
            self._refuse(431, "header_size", f"the request's headers are over {self.max_header_bytes} bytes")

    def on_headers_complete(self) -> None:
        self._in_headers, self._header_bytes = False, 0
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_headers = True  # what comes next is the next request's headers

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            if self._header_bytes:  # an idle keep-alive connection just closes (uvicorn's own timeout)
                self._refuse(408, "header_timeout", f"the request's headers did not arrive within "
                                                    f"{self.header_timeout:g} s")
            else:
                self.transport.close()

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self.on_refuse(reason)
        if self.cycle is None or self.cycle.response_complete:  # no answer in progress to interleave with
            body = json.dumps({"error": message, "error_type": "Timeout" if status == 408 else "Validation"})
            phrase = {408: "Request Timeout", 431: "Request Header Fields Too Large"}[status]
            self.transport.write(f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
                                 f"content-length: {len(body)}\r\nconnection: close\r\n\r\n{body}".encode())
        self.transport.close()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not cycle.response_started and not cycle.response_complete:
            self.transport.close()  # a body still on its way: nobody will answer it now
            return
        super().shutdown()


def guarded_protocol(header_timeout: float, max_header_bytes: int,
                     on_refuse: Callable[[str], None] = lambda reason: None) -> type:
    """The protocol class to pass as uvicorn's ``http=``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes,
                 "on_refuse": staticmethod(on_refuse)})
