"""mkdocs hook: ``<!-- http-reference -->`` becomes the HTTP routes, statuses and metrics, written
by the server's own code (:func:`xlm_onnx.serve.reference.markdown`, from the route table that
also makes ``/openapi.json``), so the page cannot omit a route, a status or a metric.
"""

from __future__ import annotations

import re

MARK = re.compile(r"^<!-- http-reference -->$", re.MULTILINE)


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    if not MARK.search(markdown):
        return markdown
    from xlm_onnx.serve.reference import markdown as reference

    return MARK.sub(lambda m: reference(), markdown)
