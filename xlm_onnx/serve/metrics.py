"""Prometheus metrics of the server (``GET /metrics``), with prometheus_client.

One registry per app (not the library's global one), so several apps in one process, as in
tests, do not collide.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_TOKENS = (16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True)
class Metrics:
    """The server's metrics (names prefixed ``xlm_onnx_``)."""

    registry: CollectorRegistry
    requests: Counter
    queue_size: Gauge
    dropped: Counter
    batch_requests: Histogram
    batch_rows: Histogram
    batch_padded_tokens: Histogram
    queue_seconds: Histogram
    tokenize_seconds: Histogram
    inference_seconds: Histogram

    @classmethod
    def create(cls) -> "Metrics":
        r = CollectorRegistry()
        return cls(
            registry=r,
            requests=Counter("xlm_onnx_requests", "HTTP requests answered, by route and status",
                             ["route", "status"], registry=r),
            queue_size=Gauge("xlm_onnx_queue_size", "Requests admitted and not yet answered", registry=r),
            dropped=Counter("xlm_onnx_dropped_requests", "Queued requests dropped unrun: their client left",
                            registry=r),
            batch_requests=Histogram("xlm_onnx_batch_requests", "Requests per batch", buckets=_ROWS, registry=r),
            batch_rows=Histogram("xlm_onnx_batch_rows", "Rows per model run", buckets=_ROWS, registry=r),
            batch_padded_tokens=Histogram("xlm_onnx_batch_padded_tokens", "Padded tokens (rows x longest) per run",
                                          buckets=_TOKENS, registry=r),
            queue_seconds=Histogram("xlm_onnx_queue_seconds", "Time from queued to batch start",
                                    buckets=_SECONDS, registry=r),
            tokenize_seconds=Histogram("xlm_onnx_tokenize_seconds", "Validation and tokenisation per request",
                                       buckets=_SECONDS, registry=r),
            inference_seconds=Histogram("xlm_onnx_inference_seconds", "Run and decode per batch",
                                        buckets=_SECONDS, registry=r),
        )

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
