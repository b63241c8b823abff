"""What a request must be before any route sees it: for this server, from the right place, in JSON,
with its body in time. An ASGI middleware (pure ASGI: no per-request objects for what passes).

* **Host** must be a loopback name (``localhost``, ``*.localhost``, ``127.0.0.0/8``, ``::1``), the
  address the server is bound to, any IP address when it is bound to all of them (``0.0.0.0``,
  ``::``), or one of ``--allowed-hosts`` (``*.example.org`` patterns, ``*`` for any): else 421.
  A web page that rebinds its own DNS name to 127.0.0.1 sends its own name as Host, so this
  stops DNS rebinding.
* **Origin** (what browsers add to cross-site requests): refused (403) unless it is the server's
  own origin, one of ``--cors-origins`` (which also turns CORS on, with Starlette's
  CORSMiddleware), or the server requires an API key (a page that has the key is the user's own).
  Without it, any page the user opens could call a local server with no key.
* **Content-Type** of a POST to a route that takes one must be ``application/json`` (415): a
  browser sends ``text/plain`` cross-site without a CORS preflight, ``application/json`` only
  after one. A POST no route takes is left to the router (404, or 405 with ``Allow``).
* **Body deadline**: the body must arrive within ``body_timeout`` seconds of the headers, else
  408 and the connection is closed (a body that never ends would hold the connection, and the
  request's memory, for ever). Header timeouts are the protocol's (:mod:`.protocol`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import HTTPError

LOOPBACK_NAMES = ("localhost",)


@dataclass(frozen=True)
class GuardSettings:
    """Access and time limits of every request (see the module docstring).

    Attributes:
        bound_host: The address the server listens on.
        allowed_hosts: More Host names to serve (``*.example.org``, ``*``: any).
        cors_origins: Origins allowed to call from a browser (``*``: any); turns CORS on.
        api_key_set: The server requires an API key (a request with an Origin then goes on to the
            key check instead of being refused).
        header_timeout: Seconds for a request's headers to arrive (protocol).
        body_timeout: Seconds for a request's body to arrive after its headers.
        max_header_bytes: Bytes of a request's start line and headers (protocol: 431 beyond).
    """

    bound_host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    api_key_set: bool = False
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 64 << 10


def split_host(value: str) -> str:
    """The host name of a Host header or an origin's authority, lower case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _ip(name: str):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def host_allowed(name: str, settings: GuardSettings) -> bool:
    """Whether a request whose Host names ``name`` (see :func:`split_host`) is for this server."""
    ip, bound = _ip(name), _ip(split_host(settings.bound_host))
    if name in LOOPBACK_NAMES or name.endswith(".localhost") or (ip is not None and ip.is_loopback):
        return True
    if name == split_host(settings.bound_host) or (ip is not None and bound is not None and bound.is_unspecified):
        return True
    for pattern in settings.allowed_hosts:
        pattern = pattern.lower().rstrip(".")
        if pattern == "*" or pattern == name or (pattern.startswith("*.") and name.endswith(pattern[1:])):
            return True
    return False


class Guards:
    """The ASGI middleware (see the module docstring).

    Args:
        app: The app it guards.
        settings: Its :class:`GuardSettings`.
        on_refuse: Called with a reason (``host``, ``origin``, ``content_type``, ``body_timeout``)
            for each refusal (metrics).
        on_body: Called with +1 when a request body starts to arrive, -1 when it is complete or
            abandoned (a gauge of the bodies on their way).
        routed: Whether a route takes the request (its ASGI scope): the Content-Type is checked
            only then.
    """

    def __init__(self, app, settings: GuardSettings, on_refuse: Callable[[str], None] = lambda reason: None,
                 on_body: Callable[[int], None] = lambda delta: None,
                 routed: Callable[[dict], bool] = lambda scope: True) -> None:
        self.settings, self.on_refuse, self.on_body, self.routed = settings, on_refuse, on_body, routed
        if settings.cors_origins:
            from starlette.middleware.cors import CORSMiddleware

            # A page reads a response header only if the server exposes it: the request's warnings.
            app = CORSMiddleware(app, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                                 allow_headers=["Authorization", "Content-Type"], expose_headers=["X-Warnings"],
                                 max_age=600)
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            reason, status, message = refusal
            self.on_refuse(reason)
            await _answer(send, status, message, scope["path"])
            return
        receiving = [scope["method"] == "POST"]  # a body to wait for, still on its way
        if receiving[0]:
            self.on_body(1)
        try:
            await self.app(scope, self._deadline(receive, receiving), send)
        finally:
            if receiving[0]:
                self.on_body(-1)

    def _refusal(self, scope: dict, headers: dict) -> tuple[str, int, str] | None:
        s = self.settings
        host = headers.get(b"host", b"").decode("latin-1")
        if host and not host_allowed(split_host(host), s):
            return ("host", 421, f"Host {host!r} is not this server's address; serve it with "
                                 f"--allowed-hosts {split_host(host)}")
        origin = headers.get(b"origin")
        if origin is not None and not s.api_key_set:
            text = origin.decode("latin-1")
            own = bool(host) and text.lower().rstrip("/") == f"{scope.get('scheme', 'http')}://{host.lower()}"
            if not own and "*" not in s.cors_origins and text not in s.cors_origins:
                return ("origin", 403, f"cross-origin request from {text!r} refused: this server has no API key; "
                                       "allow the origin with --cors-origins, or require a key")
        if scope["method"] == "POST" and self.routed(scope):
            media = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
            if media != "application/json":
                what = repr(media) if media else "no Content-Type"
                return ("content_type", 415, f"the body must be JSON sent with Content-Type: application/json, "
                                             f"not {what}")
        return None

    def _deadline(self, receive: Callable, receiving: list) -> Callable:
        """``receive`` that raises a 408 :class:`HTTPError` when the body is not complete in time."""
        loop = asyncio.get_running_loop()
        deadline, done = loop.time() + self.settings.body_timeout, False

        async def receive_in_time() -> dict:
            nonlocal done
            if done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                self.on_refuse("body_timeout")
                raise HTTPError(408, f"the body did not arrive within {self.settings.body_timeout:g} s",
                                {"Connection": "close"}) from None
            done = message["type"] != "http.request" or not message.get("more_body", False)
            if done and receiving[0]:
                receiving[0] = False
                self.on_body(-1)
            return message
        return receive_in_time


def guard_metrics(registry) -> tuple:
    """``(disconnects, refused, receiving)``: Prometheus metrics of what is neither an answer nor a
    server failure (a client that leaves, a request refused here), on the app's registry."""
    from prometheus_client import Counter, Gauge

    return (Counter("xlm_onnx_client_disconnects", "Clients gone before their answer, by route", ["route"],
                    registry=registry),
            Counter("xlm_onnx_refused_requests", "Requests refused before any route: foreign Host or Origin, not "
                    "JSON, headers or body too slow or too large", ["reason"], registry=registry),
            Gauge("xlm_onnx_receiving_bodies", "Requests whose body is still arriving (they hold no queue slot)",
                  registry=registry))


async def _answer(send: Callable, status: int, message: str, path: str) -> None:
    """A JSON error like the routes' (OpenAI's shape on ``/v1/``), closing the connection."""
    kind = {408: "Timeout", 415: "Validation"}.get(status, "Forbidden")
    body: Any = {"error": {"message": message, "type": kind}} if path.startswith("/v1/") else \
        {"error": message, "error_type": kind}
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})
