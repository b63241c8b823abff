"""JSON Schema pieces (OpenAPI 3.1 uses JSON Schema 2020-12) for the routes' bodies and answers."""

from __future__ import annotations

from typing import Iterable

TEXT = {"type": "string"}
TEXTS = {"oneOf": [TEXT, {"type": "array", "items": TEXT, "minItems": 1}],
         "description": "a text, or a list of texts (one answer per text)"}
BOOL = {"type": "boolean"}
NUMBER = {"type": "number"}
VECTOR = {"type": "array", "items": NUMBER}
ANY = {}


def obj(properties: dict, required: Iterable[str] = (), extra: bool = False, **more) -> dict:
    """An object schema; unknown fields are refused unless ``extra``."""
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if not extra:
        schema["additionalProperties"] = False
    schema.update(more)
    return schema


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def one_or_many(schema: dict) -> dict:
    """An answer for one text (``schema``) or, for a list of texts, a list of them."""
    return {"oneOf": [schema, array(schema)]}
