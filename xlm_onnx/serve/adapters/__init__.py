"""Foreign protocols, one module each: they translate another server's payloads to and from a
task's own request and answer, and are the only part of the server that names a task.

``tei`` (Text Embeddings Inference and the HF Inference API: ``POST /embed``, ``/similarity`` and
the root URL), ``openai`` (``/v1/embeddings``, ``/v1/models``). Each module's
``endpoints(available, root_task)`` gives its routes; a path an adapter holds is not given to the
task of the same name (``/embed`` is TEI's; the embed task's own request is ``/tasks/embed``).

This module imports nothing of the ``[serve]`` extra: the command line reads :data:`ROOT_TASK`
for its ``--help``.
"""

from __future__ import annotations

import importlib

#: The task ``POST /`` answers when ``--task`` is not given and the model has it (else its first
#: task): fill-mask, what an XLM masked language model is for, and the task the Hub lists for
#: ``xlm-mlm-100-1280``.
ROOT_TASK = "fill-mask"
MODULES = ("tei", "openai")


def endpoints(available: list[str], root_task: str) -> list:
    """Every adapter's routes (:class:`~xlm_onnx.serve.endpoints.Endpoint`)."""
    return [e for name in MODULES
            for e in importlib.import_module(f"{__name__}.{name}").endpoints(available, root_task)]


def default_root_task(available: list[str]) -> str:
    """The task ``POST /`` answers when ``--task`` is not given."""
    return ROOT_TASK if ROOT_TASK in available else available[0]
