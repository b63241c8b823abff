"""PEP 562 lazy attributes, shared by ``xlm_onnx`` and ``xlm_onnx_export``.

Both packages keep ``import <package>`` cheap (no onnxruntime, no torch) and import a public name's
module on first access.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, table: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """Returns a module ``__getattr__`` resolving ``table[name]`` (a module path) on first access.

    Args:
        package: The package's name, for the ``AttributeError`` message.
        table: Public name -> module that defines it.
        namespace: The package's ``globals()``; a resolved value is cached there, so
            ``__getattr__`` runs once per name.
    """

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
