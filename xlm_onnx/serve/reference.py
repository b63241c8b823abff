"""The HTTP reference page of the docs, written from the server's own route table, OpenAPI document
and metrics registry (the docs' build calls :func:`markdown`), so the page cannot omit a route,
a request field, a status or a metric the server has.
"""

from __future__ import annotations

import json

from ..tasks import registry
from .adapters import default_root_task
from .app import endpoints
from .endpoints import STATUSES
from .openapi import document

_GROUPS = (("task", "Task routes (one per registered task)"),
           ("protocol", "Foreign protocols (TEI, the HF Inference API, OpenAI)"),
           ("server", "The server"))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _type(schema: dict) -> str:
    if "oneOf" in schema:
        return " or ".join(_type(s) for s in schema["oneOf"])
    if "enum" in schema:
        return " / ".join(f"`{v}`" for v in schema["enum"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if "const" in schema:
        return f"`{schema['const']}`"
    return schema.get("type", "any")


def _fields(schema: dict | None) -> str:
    if not schema or "properties" not in schema:
        return "the named task's own fields (as on its route)" if schema else ""
    required = set(schema.get("required", ()))
    out = []
    for name, field in schema["properties"].items():
        default = f" = `{json.dumps(field['default'])}`" if "default" in field else ""
        out.append(f"`{name}`{' (required)' if name in required else ''}: {_type(field)}{default}")
    return "; ".join(out)


def _routes(doc: dict) -> list[str]:
    lines = []
    for group, title in _GROUPS:
        lines += ["", f"### {title}", "", "| route | what | request fields | statuses |", "|---|---|---|---|"]
        for path, operations in doc["paths"].items():
            for method, op in operations.items():
                if op["tags"] != [group]:
                    continue
                body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                statuses = ", ".join(op["responses"])
                lines.append(f"| `{method.upper()} {path}` | {_cell(op['summary'])} | {_cell(_fields(body))} "
                             f"| {statuses} |")
    return lines


def _metrics() -> list[str]:
    from .guards import guard_metrics
    from .metrics import Metrics
    from .timing import refusal_histogram

    metrics = Metrics.create()
    guard_metrics(metrics.registry)
    refusal_histogram(metrics.registry)
    lines = ["| metric | type | what |", "|---|---|---|"]
    for family in metrics.registry.collect():
        lines.append(f"| `{family.name}` | {family.type} | {_cell(family.documentation)} |")
    return lines


def markdown() -> str:
    """The reference page's generated part: routes, statuses, metrics."""
    tasks = registry.names()
    doc = document(endpoints(tasks, default_root_task(tasks)), tasks)
    statuses = sorted({int(s) for ops in doc["paths"].values() for op in ops.values() for s in op["responses"]})
    lines = ["## Routes", *_routes(doc), "", "## Status codes", "", "| status | when |", "|---|---|"]
    lines += [f"| {s} | {_cell(STATUSES[s])} |" for s in statuses]
    lines += ["", "## Metrics", "", "`GET /metrics` (Prometheus text; counters end in `_total`, histograms "
              "add `_bucket`, `_sum` and `_count`, and both have a `_created` timestamp):", "", *_metrics()]
    return "\n".join(lines) + "\n"
