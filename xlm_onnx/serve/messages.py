"""The Python API's messages in the words of the HTTP request that caused them.

The routes pass a request's fields to the API under the API's argument names (``texts``,
``truncation=True``); a client that sent ``{"inputs": null}`` should read about ``inputs``, the
field it sent, and be told the JSON to send, not a Python keyword argument.
"""

from __future__ import annotations

import re

#: route -> (the field that holds the texts, the field that turns truncation on or None).
_FIELDS = {"/embed": ("inputs", "truncate"), "/v1/embeddings": ("input", None), "/similarity": ("inputs", None)}
_DEFAULT = ("inputs", "truncation")
_TEXTS = re.compile(r"^(?:inputs|texts)\b")
_TRUNCATION = re.compile(r"\(?pass truncation=True to cut it\)?")


def http_message(message: str, route: str) -> str:
    """``message`` (one line) naming ``route``'s own request fields."""
    field, truncation = _FIELDS.get(route, _DEFAULT)
    message = _TEXTS.sub(field, " ".join(str(message).split()))
    hint = f'(send "{truncation}": true to cut it)' if truncation else "(shorten it)"
    return _TRUNCATION.sub(hint, message)
