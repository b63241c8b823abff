"""Which head a checkpoint has, and how it is exported: one table, like optimum's ``TasksManager``.

A checkpoint's ``config.json`` names its head in ``architectures`` (transformers writes the class
it saved). :data:`ARCHITECTURES` maps each supported class to a :class:`HeadSpec`: the manifest's
``head_kind``, the transformers class to load, and the :class:`HeadBuilder` that adds the head to
the shared encoder graph. Everything else in an export (trace, fusion, fp16 / int8, publish) is
the same for every head::

    config.json architectures[0] ─ARCHITECTURES─► HeadSpec ─► load model_class
        builder = spec.builder(model, tokenizer, checkpoint)   golden answers + head weights (torch)
        trace encoder ─ fuse ─ fp16 / int8 ─ builder.append(graph, precision)   (ONNX nodes + outputs)
        validate (golden) ─ manifest (builder.manifest_fields()) ─ model card

A class not in the table is refused before anything is loaded, with one line naming the ones that
are (a fine-tuned head must never be exported silently as something else). A config without
``architectures`` (older checkpoints) is a masked LM, as ``XLMWithLMHeadModel`` is.

To add a head: write a :class:`HeadBuilder` (its torch reference on the probes, its ONNX nodes, its
manifest fields), add its ``fmt.HEAD_KIND_*`` and graph head to :mod:`xlm_onnx.format`, and one row
here; a task file in ``xlm_onnx/tasks/`` then reads its outputs (see ``docs/guides/fine-tuned.md``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import onnx

from xlm_onnx import format as fmt
from xlm_onnx.golden import Golden

from .errors import CheckpointError


class HeadBuilder(ABC):
    """One head's part of an export: the steps around the shared encoder.

    Built from the loaded, intact torch model (before tracing consumes it): the constructor runs
    the torch reference on the probes (:attr:`golden`) and keeps the head's weights as numpy.

    Args:
        model: The loaded transformers model (eval mode, fp32).
        tokenizer: The runtime's tokenizer of the checkpoint.
        checkpoint: The :class:`~.checkpoint.Checkpoint`.
    """

    #: What the graph answers (manifest ``heads``), each a key of ``fmt.HEAD_OUTPUTS``.
    graph_heads: tuple[str, ...]

    def __init__(self, model, tokenizer, checkpoint) -> None:
        self.golden: Golden = self.reference(model, tokenizer, checkpoint)

    @classmethod
    def check_config(cls, config: dict[str, Any], where: str) -> None:
        """Refuses, before loading, a config this builder cannot export (one line naming why).

        Raises:
            CheckpointError: The config asks for something the head's graph does not compute.
        """

    @abstractmethod
    def reference(self, model, tokenizer, checkpoint) -> Golden:
        """The probes and the torch fp32 answers on them (also keeps the head's weights)."""

    @abstractmethod
    def append(self, graph: onnx.ModelProto, precision: str) -> None:
        """Adds the head to the encoder graph (output ``last_hidden_state``); sets the outputs.

        ``precision`` is the head's own (an int8 export may keep its LM head in fp32)."""

    def manifest_fields(self) -> dict[str, Any]:
        """``head_kind``, ``id2label``, ``problem_type`` for the manifest (masked LM: none)."""
        return {}


@dataclass(frozen=True)
class HeadSpec:
    """A row of :data:`ARCHITECTURES`.

    Attributes:
        kind: The manifest's ``head_kind`` (``fmt.HEAD_KIND_*``).
        model_class: The transformers class that loads the checkpoint.
        builder: ``"module:Class"`` of its :class:`HeadBuilder` in this package (imported when used).
    """

    kind: str
    model_class: str
    builder: str

    def builder_class(self) -> type[HeadBuilder]:
        import importlib

        module, _, name = self.builder.partition(":")
        return getattr(importlib.import_module(module, __package__), name)


#: ``architectures[0]`` of a checkpoint's config -> how it is exported.
ARCHITECTURES: dict[str, HeadSpec] = {
    "XLMWithLMHeadModel": HeadSpec(fmt.HEAD_KIND_MASKED_LM, "XLMWithLMHeadModel", ".head:MaskedLMHead"),
    "XLMForSequenceClassification": HeadSpec(fmt.HEAD_KIND_SEQUENCE_CLASSIFICATION, "XLMForSequenceClassification",
                                             ".classifier_head:SequenceClassificationHead"),
    "XLMForMultipleChoice": HeadSpec(fmt.HEAD_KIND_MULTIPLE_CHOICE, "XLMForMultipleChoice",
                                     ".classifier_head:MultipleChoiceHead"),
    "XLMForTokenClassification": HeadSpec(fmt.HEAD_KIND_TOKEN_CLASSIFICATION, "XLMForTokenClassification",
                                          ".token_heads:TokenClassificationHead"),
    "XLMForQuestionAnsweringSimple": HeadSpec(fmt.HEAD_KIND_QUESTION_ANSWERING, "XLMForQuestionAnsweringSimple",
                                              ".token_heads:QuestionAnsweringHead"),
}
#: What a config without ``architectures`` is (XLM's pretrained checkpoints predate the field).
DEFAULT_ARCHITECTURE = "XLMWithLMHeadModel"


def head_spec(config: dict[str, Any], where: str) -> HeadSpec:
    """The :class:`HeadSpec` of a checkpoint's config, after its builder's config check.

    Args:
        config: ``config.json`` as a dict.
        where: The config's path, for the message.

    Raises:
        CheckpointError: The head is not supported (one line naming those that are), or its
            config is (e.g. a ``summary_type`` other than ``first``).
    """
    architectures = config.get("architectures") or [DEFAULT_ARCHITECTURE]
    if not isinstance(architectures, list) or not all(isinstance(a, str) for a in architectures):
        raise CheckpointError(f"{where}: architectures must be a list of class names, not {architectures!r}")
    kinds = {ARCHITECTURES[a].kind if a in ARCHITECTURES else a for a in architectures}
    name = architectures[0]
    if name not in ARCHITECTURES or len(kinds) > 1:
        raise CheckpointError(
            f"{where}: architectures {architectures}: xlm-onnx exports the heads "
            f"{', '.join(ARCHITECTURES)}; this checkpoint's head is not one of them, so it is not exported "
            "(a fill-mask graph would drop the fine-tuned head)")
    spec = ARCHITECTURES[name]
    spec.builder_class().check_config(config, where)
    return spec
