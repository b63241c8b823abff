"""Latency benchmarks: xlm-onnx against the transformers pipeline and friends.

``latency_harness.main(argv)`` is ``benchmarks/latency.py``. Each
system runs in its own process (cold start and peak RSS are its own) on the same inputs and
threads; results go to stdout as markdown, and to ``--json`` / ``--plot``.
"""

from __future__ import annotations


def main(argv=None) -> int:
    """Runs the benchmark with command-line ``argv`` (``None``: ``sys.argv[1:]``); returns the exit status."""
    from .run import main as _main

    return _main(argv)


__all__ = ["main"]
