"""What every route of one server shares: its settings, its tasks, the batcher, readiness.

One :class:`ServerState` per app (``app.state.server``); the handlers are module-level functions
that read it from the request, so a route is a function and a table entry, not a closure inside
the app's constructor.
"""

from __future__ import annotations

import hmac
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from starlette.requests import Request

from ..limits import RequestLimits
from .batcher import Batcher, BatchSettings
from .body import BodyLimits
from .guards import GuardSettings, guard_metrics
from .jobs import Tasks
from .metrics import Metrics
from .shutdown import DrainState


@dataclass(frozen=True)
class ServeSettings:
    """Everything the app is configured with besides the model."""

    batch: BatchSettings = BatchSettings()
    limits: BodyLimits = BodyLimits()
    api_key: str | None = None
    model_name: str = "xlm-onnx"
    request_limits: RequestLimits = RequestLimits()  # the work one request may ask for (413)
    guards: GuardSettings = GuardSettings()  # Host, Origin, Content-Type, body deadline
    root_task: str | None = None  # the task of POST / (None: the first of the model's tasks a root adapter takes)


class ServerState:
    """The tasks, the batcher, the tokenizer pool, the metrics and readiness of one server.

    Args:
        tasks: The model's :class:`~xlm_onnx.serve.jobs.Tasks`.
        settings: Its :class:`ServeSettings`.
        root_task: The task ``POST /`` answers.
    """

    def __init__(self, tasks: Tasks, settings: ServeSettings, root_task: str) -> None:
        self.tasks, self.settings, self.root_task = tasks, settings, root_task
        self.metrics = Metrics.create()
        self.disconnects, self.refused, self.receiving = guard_metrics(self.metrics.registry)
        self.batcher: Batcher | None = None  # made in the lifespan: it needs the running loop
        # Tokenising is pure Python: a thread keeps it off the event loop (it shares the GIL, but
        # the loop stays responsive between its bytecodes), apart from the inference thread.
        # Four threads: two requests of 640 kB of long words must not leave a normal one waiting.
        self.prepare_pool = ThreadPoolExecutor(4, thread_name_prefix="xlm-onnx-prepare")
        self.ready = False
        self.drain = DrainState()
        self.warm_error: str | None = None  # why the warm-up failed (the server then stays not ready)
        self.loaded_at = int(time.time())  # for OpenAI's model list (``created``)

    def authorized(self, request: Request) -> bool:
        """Whether ``request`` carries the API key (always, when the server has none)."""
        key = self.settings.api_key
        if key is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        # Constant-time: the comparison must not tell how much of a guessed key was right.
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), key.encode())


def state_of(request: Request) -> ServerState:
    """The :class:`ServerState` of the app serving ``request``."""
    return request.app.state.server
