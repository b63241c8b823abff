"""A fourth task, written as a user would: one file, a Task subclass, a registration.

``HiddenMean`` answers, per text, the mean of the encoder's last hidden state over the text's
tokens and dimensions: the mean of ``Embedder``'s mean-pooled vector, which is its reference.
``GatedHiddenMean`` is the same task whose runs wait until the file named by ``XLM_TOY_GATE``
exists (a server's warm-up held open on an event), ``HeldHiddenMean`` one whose runs wait while
the file named by ``XLM_TOY_HOLD`` exists (requests held in a server's queue), ``FailingHiddenMean``
one whose runs fail (a warm-up that fails). Processes other than the test's (a server, Ray workers) find them through
the ``xlm_onnx.tasks`` entry points of :func:`write_distribution`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from xlm_onnx import format as fmt
from xlm_onnx.inputs import text_list
from xlm_onnx.tasks import Prepared, Task, Unit


@dataclass(frozen=True)
class HiddenMeanOptions:
    lang_id: int
    truncation: bool


class HiddenMean(Task):
    name = "hidden-mean"
    head = fmt.HEAD_HIDDEN
    purpose = "the mean hidden state"

    def options(self, lang: str | None = None, truncation: bool = False) -> HiddenMeanOptions:
        return HiddenMeanOptions(self.model.lang_id(lang), truncation)

    def encode(self, inputs, options: HiddenMeanOptions) -> Prepared:
        texts, single = text_list(inputs, "inputs")
        units = [Unit(ids) for ids in self.model.encode(texts, options.truncation)]
        return Prepared(self, units, self.batch_key(options), single)

    def batch_key(self, options: HiddenMeanOptions) -> int:
        return options.lang_id

    def run_batch(self, units: Sequence[Unit], key: int) -> list[float]:
        batch = self.pad([u.ids for u in units])
        (hidden,) = self.model.run([fmt.LAST_HIDDEN_STATE], batch, key)
        mask = batch.attention_mask[:, :, None].astype(np.float64)
        return ((hidden.astype(np.float64) * mask).sum(axis=(1, 2)) / (mask.sum(axis=(1, 2)) * hidden.shape[2])).tolist()

    def finish(self, prepared: Prepared, outputs: list) -> float | list[float]:
        return outputs[0] if prepared.single else list(outputs)

    def fields(self, answer: float) -> dict:
        return {"hidden_mean": answer}


class GatedHiddenMean(HiddenMean):
    name = "gated-hidden-mean"

    def run_batch(self, units, key):
        gate, deadline = Path(os.environ["XLM_TOY_GATE"]), time.monotonic() + 300
        while not gate.exists():  # the test opens the gate once it has seen the server not ready
            if time.monotonic() > deadline:
                raise TimeoutError(f"{gate} never appeared")
            time.sleep(0.01)
        return super().run_batch(units, key)


class HeldHiddenMean(HiddenMean):
    """Runs wait while the file named by ``XLM_TOY_HOLD`` exists: the server's inference thread is
    busy for as long as a test needs requests to stay queued."""

    name = "held-hidden-mean"

    def run_batch(self, units, key):
        hold, deadline = Path(os.environ["XLM_TOY_HOLD"]), time.monotonic() + 300
        while hold.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{hold} was never removed")
            time.sleep(0.01)
        return super().run_batch(units, key)


class FailingHiddenMean(HiddenMean):
    name = "failing-hidden-mean"

    def run_batch(self, units, key):
        raise RuntimeError("this task cannot run")


def write_distribution(site: Path, *tasks: type[Task]) -> Path:
    """A minimal installed distribution in ``site`` whose entry points register ``tasks``: put
    ``site`` and this file's folder on ``PYTHONPATH`` and any process finds them by name."""
    info = site / "xlm_toy_tasks-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xlm-toy-tasks\nVersion: 0.1\n")
    points = "".join(f"{t.name} = toy_tasks:{t.__name__}\n" for t in tasks)
    (info / "entry_points.txt").write_text(f"[xlm_onnx.tasks]\n{points}")
    return site


def pythonpath(site: Path) -> str:
    """``PYTHONPATH`` for a child process: the distribution, this file's folder, and what was there."""
    return os.pathsep.join(p for p in (str(site), str(Path(__file__).parent), os.environ.get("PYTHONPATH")) if p)
