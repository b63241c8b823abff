"""A body meant for another task, posted to the root URL: say which task the root answers and
where the body should go.

``InferenceClient(model=URL).feature_extraction(...)`` against a server whose root answers
fill-mask would otherwise read ``inputs[0] has no mask token``, and ``sentence_similarity``
``inputs must be a str or a list of str, not dict``: true, and no help. The routes that fit
are found from the tasks' own parameter schemas (a field that only one task takes names it).
"""

from __future__ import annotations

from typing import Any

from ...errors import HTTPError, InputError, outcome
from ...tasks import registry
from ...tasks.params import JSON
from ..failures import Words
from ..state import ServerState


def message(state: ServerState, what: str, route: str) -> str:
    """``what`` (a body's guessed purpose) belongs on ``route``, not on this server's root."""
    return (f"this is {what}, and POST / on this server answers {state.root_task} (xlm-onnx serve --task): "
            f"post it to {route}")


def _fields(body: Any) -> set[str]:
    if not isinstance(body, dict):
        return set()
    params = body.get("parameters")
    return (set(body) | (set(params) if isinstance(params, dict) else set())) - {"inputs", "parameters"}


def fitting_routes(body: Any, state: ServerState, also: dict[str, set[str]]) -> list[str]:
    """The routes of this server whose request takes every field of ``body`` that the root
    task's does not: the task routes (``/<task>``), and ``also`` (route → its fields)."""
    root = set(registry.task_class(state.root_task).params.names())
    foreign = _fields(body) - root
    if not foreign:
        return []
    fields = {f"/{task}": {p.name for p in registry.task_class(task).params.on(JSON)}
              for task in state.tasks.available if task != state.root_task}
    return [route for route, known in {**fields, **also}.items() if foreign <= known]


def explain(exc: Exception, body: Any, state: ServerState, words: Words,
            also: dict[str, set[str]] | None = None) -> Exception:
    """``exc`` (raised answering ``POST /``), with where the body should have gone when it looks
    like another task's: a field the root task lacks, or ``inputs`` it refuses."""
    if outcome(exc).status != 422:
        return exc
    routes = fitting_routes(body, state, also or {})
    about_inputs = isinstance(exc, InputError) and exc.field == "inputs"
    if not routes and not about_inputs:
        return exc
    others = routes or [f"/{t}" for t in state.tasks.available if t != state.root_task]
    if not others:
        return exc
    hint = (f"POST / on this server answers {state.root_task} (xlm-onnx serve --task); "
            f"{'this body fits' if routes else 'the other tasks answer on'} {', '.join(others)}")
    return HTTPError(422, f"{words.say(exc)}. {hint}")
