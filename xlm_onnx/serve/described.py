"""``GET /openapi.json`` (the OpenAPI 3.1 document) and ``GET /docs`` (a page that renders it).

The page is self-contained (a little HTML and JavaScript in this module) rather than Swagger UI
or Redoc: those load their scripts from a CDN or need a 1-2 MB asset shipped in the package, and
a server on a machine without internet access (or a test, which has none) must still show its
documentation. It lists every route with its fields and statuses; any OpenAPI tool reads the
document itself for more. Both routes are public, as the probes are: they describe the server,
they run nothing.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from .endpoints import Endpoint
from .openapi import document
from .state import ServerState


async def openapi_json(request: Request, state: ServerState) -> Any:
    return document(request.app.state.endpoints, state.tasks.available,
                    f"xlm-onnx serve ({state.settings.model_name})")


async def docs(request: Request, state: ServerState) -> Any:
    return HTMLResponse(PAGE)


def endpoints() -> list[Endpoint]:
    return [
        Endpoint("/openapi.json", openapi_json, "GET", "This server's OpenAPI 3.1 document", public=True,
                 answer={"type": "object"}),
        Endpoint("/docs", docs, "GET", "This server's routes, fields and statuses, as a page (from /openapi.json)",
                 public=True, answer={"type": "string"}, media_type="text/html"),
    ]


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>xlm-onnx serve</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{margin-top:2rem;border-top:1px solid #ddd;padding-top:1rem;font-size:1.1rem}
code,.m{font-family:ui-monospace,monospace}.m{font-weight:bold;margin-right:.5rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;
vertical-align:top}th{background:#f5f5f5}
</style></head><body>
<h1 id="title">xlm-onnx serve</h1>
<p id="about"></p><p>The whole description: <a href="openapi.json">openapi.json</a> (OpenAPI 3.1).</p>
<div id="routes">Loading…</div>
<script>
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[c]);
const type = s => !s ? "" : s.type ? (s.type === "array" ? type(s.items) + "[]" : s.type)
  : s.oneOf ? s.oneOf.map(type).join(" | ") : s.enum ? s.enum.map(v => JSON.stringify(v)).join(" | ")
  : s.const !== undefined ? JSON.stringify(s.const) : "any";
function fields(schema) {
  const props = schema && schema.properties;
  if (!props) return "";
  const need = new Set(schema.required || []);
  const rows = Object.entries(props).map(([k, s]) => `<tr><td><code>${esc(k)}</code>${need.has(k) ? " *" : ""}</td>
    <td>${esc(type(s))}</td><td>${s.default === undefined ? "" : esc(JSON.stringify(s.default))}</td>
    <td>${esc(s.description)}</td></tr>`);
  return `<table><tr><th>field</th><th>type</th><th>default</th><th></th></tr>${rows.join("")}</table>`;
}
fetch("openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("title").textContent = doc.info.title;
  document.getElementById("about").textContent = doc.info.description;
  let html = "";
  for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) {
    const body = op.requestBody ? op.requestBody.content["application/json"].schema : null;
    const statuses = Object.entries(op.responses)
      .map(([s, r]) => `<tr><td>${s}</td><td>${esc(r.description)}</td></tr>`);
    html += `<h2><span class="m">${method.toUpperCase()}</span><code>${esc(path)}</code></h2><p>${esc(op.summary)}</p>
      ${fields(body)}<table><tr><th>status</th><th>when</th></tr>${statuses.join("")}</table>`;
  }
  document.getElementById("routes").innerHTML = html;
}).catch(e => { document.getElementById("routes").textContent = "openapi.json could not be read: " + e; });
</script></body></html>
"""
