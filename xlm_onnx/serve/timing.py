"""How long a refusal takes inside the server: ``xlm_onnx_refusal_seconds{status}``.

A 429 (or 401, 413, 422, 503) is decided before any model work, so its time in the server is
the event loop's responsiveness, which is what an overloaded server must keep: measured from the
ASGI call (uvicorn has parsed the request head) to the last byte of the answer handed to the
transport. The client-side time adds the kernel and the client's own scheduling
(benchmarks/serve_load.py reports both).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Histogram

REFUSALS = frozenset((401, 413, 422, 429, 503))
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def refusal_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("xlm_onnx_refusal_seconds", "Time in the server of a refused request (ASGI call to last byte)",
                     ["status"], buckets=_BUCKETS, registry=registry)


class RefusalTimer:
    """Pure ASGI middleware (no per-request objects beyond one closure) observing refusals."""

    def __init__(self, app, histogram: Histogram) -> None:
        self.app, self.histogram = app, histogram

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def timed(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if status in REFUSALS and message["type"] == "http.response.body" and not message.get("more_body"):
                self.histogram.labels(str(status)).observe(time.perf_counter() - started)

        await self.app(scope, receive, timed)
