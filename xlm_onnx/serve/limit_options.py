"""``xlm-onnx serve`` options of the per-request work limits, the read timeouts and the access
guards, and the settings they make (documented in ``docs/reference/limits.md``).

Imports nothing of the [serve] extra: ``xlm-onnx --help`` works without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..limits import RequestLimits

_LIMITS = RequestLimits()


def add_options(p: argparse.ArgumentParser) -> None:
    """Adds the options to the ``serve`` parser."""
    p.add_argument("--api-key-file", metavar="PATH",
                   help="read the API key from this file (first line), so it is not visible in ps")
    p.add_argument("--max-request-tokens", type=int, default=_LIMITS.max_request_tokens, metavar="N",
                   help="most padded tokens one request may run: model rows (masked copies included) x the "
                        "longest row (413)")
    p.add_argument("--max-copies", type=int, default=_LIMITS.max_copies, metavar="N",
                   help="most masked copies per request: one per token a PLL scores, one per target piece "
                        "per mask of whole-word targets (413)")
    p.add_argument("--max-predictions", type=int, default=_LIMITS.max_predictions, metavar="N",
                   help="most predictions per request: masks x top_k (413)")
    p.add_argument("--max-response-bytes", type=int, default=_LIMITS.max_response_bytes, metavar="BYTES",
                   help="largest estimated answer (413)")
    p.add_argument("--max-queue-tokens", type=int, default=262_144, metavar="N",
                   help="padded tokens of the requests queued and unanswered; more get 429")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                   help="seconds for a request's headers to arrive (408, connection closed)")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="S",
                   help="seconds for a request's body to arrive after its headers (408, connection closed)")
    p.add_argument("--max-header-bytes", type=int, default=64 << 10, metavar="BYTES",
                   help="largest start line and headers of a request (431)")
    p.add_argument("--allowed-hosts", default="", metavar="NAMES",
                   help="comma-separated Host names to serve besides loopback names and the bound address "
                        "(*.example.org patterns; * for any); others get 421")
    p.add_argument("--cors-origins", default="", metavar="ORIGINS",
                   help="comma-separated origins a browser may call from (CORS; * for any); without it, requests "
                        "with an Origin are refused (403) unless the server requires a key")


def check(args: argparse.Namespace) -> None:
    """Raises ValueError naming the first option out of range."""
    for name in ("max_request_tokens", "max_copies", "max_predictions", "max_response_bytes", "max_queue_tokens",
                 "max_header_bytes"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    for name in ("header_timeout", "body_timeout"):
        if not getattr(args, name) > 0:
            raise ValueError(f"--{name.replace('_', '-')} must be > 0, not {getattr(args, name)}")
    if args.max_queue_tokens < args.max_request_tokens:
        raise ValueError(f"--max-queue-tokens ({args.max_queue_tokens}) must be at least --max-request-tokens "
                         f"({args.max_request_tokens}): a request the queue can never hold would always get 429")
    if args.api_key and args.api_key_file:
        raise ValueError("give --api-key or --api-key-file, not both")


def api_key_from_file(path: str) -> str:
    """The first line of ``path``, stripped.

    Raises:
        ValueError: The file cannot be read or its first line is empty.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--api-key-file {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    key = text.splitlines()[0].strip() if text.strip() else ""
    if not key:
        raise ValueError(f"--api-key-file {path}: the first line is empty; write the key there")
    return key


def request_limits(args: argparse.Namespace) -> RequestLimits:
    return RequestLimits(args.max_request_tokens, args.max_copies, args.max_predictions, args.max_response_bytes)


def names(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())
