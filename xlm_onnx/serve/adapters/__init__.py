"""Foreign protocols, one module each: they translate another server's payloads to and from a
task's own request and answer, and are the only part of the server that names a task.

``tei`` (Text Embeddings Inference and the HF Inference API: ``POST /embed``, ``/similarity`` and
the root URL), ``openai`` (``/v1/embeddings``, ``/v1/models``). Each module's
``endpoints(available, root_task)`` gives its routes; a path an adapter holds is not given to the
task of the same name (``/embed`` is TEI's; the embed task's own request is ``/tasks/embed``).
"""

from __future__ import annotations

from ..endpoints import Endpoint
from . import openai, tei

ADAPTERS = (tei, openai)


def endpoints(available: list[str], root_task: str) -> list[Endpoint]:
    """Every adapter's routes."""
    return [e for adapter in ADAPTERS for e in adapter.endpoints(available, root_task)]


def default_root_task(available: list[str]) -> str:
    """The task ``POST /`` answers when ``--task`` is not given."""
    return tei.default_root_task(available)
