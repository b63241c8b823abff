"""Shared by the ``xlm-onnx serve`` tests: the extra's presence, a client, metric reading."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest

SERVE_MODULES = ("starlette", "uvicorn", "prometheus_client", "orjson", "httpx")


def require_serve_extra() -> None:
    """Skips the module without the [serve] extra; under ``CI=true`` (``.ci/run`` installs it) fails."""
    missing = [m for m in SERVE_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return
    message = f"the [serve] extra is not installed ({', '.join(missing)}): pip install '.[test]'"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


def metric(text: str, name: str) -> float:
    """Sum of the samples named ``name`` (any labels) in Prometheus text."""
    total = 0.0
    for match in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE):
        total += float(match.group(1))
    return total
