"""One access line per request, and a request id that ties a client's answer to it.

:class:`AccessLog` wraps the app (ASGI middleware, outermost, so it times and sees every answer,
refusals by the guards included):

* **Request id**: a client's ``X-Request-Id`` is kept when it is 1-128 characters of
  ``A-Z a-z 0-9 . _ ~ : / + = @ -`` (what load balancers and tracing send); anything else, or
  none, is replaced by a fresh one (32 hex digits), so a hostile header can neither grow a log
  line nor inject one. The id is answered in ``X-Request-Id``, set in ``scope["state"]`` (a
  route's ``request.state.request_id``), and added as ``request_id`` to every JSON error body
  (status >= 400), where a client that logs only the body still has it.
* **Access line** (with ``--log-level info`` or ``debug``), on stderr, after the answer::

      xlm-onnx: access: POST /v1/embeddings 200 4.1 ms id=0af7651916cd43dd8448eb211c80319c client=127.0.0.1:53114

  or, with ``--log-format json``, one JSON object a line (``time``, ``method``, ``route``,
  ``status``, ``ms``, ``request_id``, ``client``). ``route`` is the matched route's path; an
  unrouted path is shown cut to 64 characters with its unprintable characters escaped.
  ``status`` is 0 when the client left before any answer.

Written here, not taken from uvicorn's access log: uvicorn's has no request id, no duration and
no JSON, and logs through ``logging`` line by line where ours is one write per request.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid

from .._log import utc_now

HEADER = b"x-request-id"
_ID = re.compile(rb"[A-Za-z0-9._~:/+=@-]{1,128}")
_ERROR_BODY_LIMIT = 64 << 10  # error bodies are a line; a larger one passes unchanged


def request_id(scope) -> str:
    """The client's ``X-Request-Id`` when it is well-formed, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return value.decode("ascii") if _ID.fullmatch(value) else uuid.uuid4().hex
    return uuid.uuid4().hex


def _route(scope) -> str:
    route = getattr(scope.get("route"), "path", None)
    if route:
        return route
    path = scope.get("path", "")
    shown = "".join(c if c.isprintable() and not c.isspace() else f"\\x{ord(c):02x}" for c in path[:64])
    return shown + ("..." if len(path) > 64 else "")


def _with_id(body: bytes, rid: str) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    data["request_id"] = rid
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class AccessLog:
    """ASGI middleware: request ids, ids in error bodies, and the access line (see the module).

    Args:
        app: The ASGI app (its attributes, ``state`` included, stay reachable through this one).
        log_format: ``text`` or ``json``.
        enabled: Whether to write access lines (request ids are handled either way).
        stream: Where lines go (default: ``sys.stderr`` at the time of each line).
    """

    def __init__(self, app, log_format: str = "text", enabled: bool = True, stream=None) -> None:
        self.app, self.json, self.enabled, self.stream = app, log_format == "json", enabled, stream

    def __getattr__(self, name):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, rid = time.perf_counter(), request_id(scope)
        scope.setdefault("state", {})["request_id"] = rid
        answer = {"status": 0}
        held: dict = {}  # an error's start message and body, until the body is whole

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode("ascii"))]}
                if message["status"] >= 400 and any(k.lower() == b"content-type" and v.startswith(b"application/json")
                                                    for k, v in headers):
                    held.update(start=message, body=b"")
                    return
            elif message["type"] == "http.response.body" and held:
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    if len(held["body"]) <= _ERROR_BODY_LIMIT:
                        return
                    body = held["body"]  # not an error line: it passes as it is
                    await send(held["start"])
                else:
                    body = _with_id(held["body"], rid)
                    await send({**held["start"], "headers": [
                        (k, str(len(body)).encode() if k.lower() == b"content-length" else v)
                        for k, v in held["start"]["headers"]]})
                held.clear()
                message = {**message, "body": body}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            answer["status"] = answer["status"] or 500  # uvicorn answers 500
            raise
        finally:
            if self.enabled:
                self._write(scope, answer["status"], (time.perf_counter() - start) * 1000, rid)

    def _write(self, scope, status: int, ms: float, rid: str) -> None:
        client = scope.get("client")
        client = f"{client[0]}:{client[1]}" if client else "-"
        if self.json:
            line = json.dumps({"time": utc_now(), "method": scope.get("method"), "route": _route(scope),
                               "status": status, "ms": round(ms, 2), "request_id": rid, "client": client},
                              ensure_ascii=False)
        else:
            line = (f"xlm-onnx: access: {scope.get('method')} {_route(scope)} {status} {ms:.1f} ms "
                    f"id={rid} client={client}")
        try:
            print(line, file=self.stream or sys.stderr, flush=True)
        except (OSError, ValueError):  # a closed or full stderr must not fail the request
            pass


def install(app, log_format: str = "text", log_level: str = "warning") -> AccessLog:
    """``app`` with request ids, and access lines at log level ``info`` or ``debug``."""
    return AccessLog(app, log_format, enabled=log_level in ("debug", "info"))
