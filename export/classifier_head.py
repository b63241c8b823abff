"""Heads of fine-tuned classifiers: ``XLMForSequenceClassification`` and ``XLMForMultipleChoice``.

Both end in XLM's sequence summary (``XLMSequenceSummary``) as the checkpoint's config sets it:
the first token's hidden state, a projection (``summary_use_proj``, to ``num_labels`` values),
an activation (``summary_activation``); dropouts are inactive at inference. Multiple choice adds
``logits_proj`` (``num_labels`` -> 1): one score per row, one row per choice, so the choices of
any number of questions batch like texts::

    last_hidden_state [b, s, d] ─Gather(0, axis=1)─► first [b, d]
        ─Gemm(summary.weight, summary.bias, transB=1)─► [b, num_labels]     (summary_use_proj)
        ─Tanh | Relu | Sigmoid | Gelu (erf) | SiLU─►                           (summary_activation)
        ─Gemm(logits_proj.weight, logits_proj.bias, transB=1)─► [b, 1]       (multiple choice)
        ─► logits

The head stays float32 in every precision: its weights are ``d x num_labels`` (a few KB), so int8
would save nothing and cost accuracy, and fp16 exports keep float32 graph outputs anyway. Each row
is computed from that row alone (a Gather and row-wise GEMMs), so per-row int8 exports stay
batch-invariant (checked by the golden gate). Scores (softmax, sigmoid) are applied by the tasks
in numpy, as transformers' pipelines do, so every ``function_to_apply`` reads the same logits.

Summary types other than ``first`` are refused: ``last`` and ``mean`` read padding positions in
transformers' own batched forward, and ``cls_index`` / ``attn`` need inputs no pipeline gives.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xlm_onnx import format as fmt
from xlm_onnx.golden import Golden
from xlm_onnx.cpu import cpu_info

from .errors import CheckpointError
from .heads import HeadBuilder

#: ``summary_activation`` values (transformers' ``get_activation`` names) the graph computes.
ACTIVATIONS = ("tanh", "relu", "sigmoid", "gelu", "silu", "swish", "linear")
#: Node count of each activation (checked after insertion).
_ACTIVATION_NODES = {"tanh": 1, "relu": 1, "sigmoid": 1, "gelu": 5, "silu": 2, "swish": 2, "linear": 0, None: 0}


class SequenceClassificationHead(HeadBuilder):
    """``XLMForSequenceClassification``: ``logits`` ``[batch, num_labels]`` (module docstring)."""

    graph_heads = (fmt.HEAD_SEQUENCE_CLASSIFICATION, fmt.HEAD_HIDDEN)
    kind = fmt.HEAD_KIND_SEQUENCE_CLASSIFICATION
    multiple_choice = False

    @classmethod
    def check_config(cls, config: dict[str, Any], where: str) -> None:
        summary = config.get("summary_type", "first")
        if summary != "first":
            raise CheckpointError(f"{where}: summary_type {summary!r} is not supported (only 'first': the "
                                  "first token's hidden state, XLM's default)")
        activation = config.get("summary_activation")
        if activation is not None and activation not in ACTIVATIONS:
            raise CheckpointError(f"{where}: summary_activation {activation!r} is not supported "
                                  f"(one of {', '.join(ACTIVATIONS)} or none)")
        problem = config.get("problem_type")
        if problem is not None and problem not in fmt.PROBLEM_TYPES:
            raise CheckpointError(f"{where}: problem_type {problem!r} is not one of {', '.join(fmt.PROBLEM_TYPES)}")

    def reference(self, model, tokenizer, checkpoint) -> Golden:
        config = model.config
        self.id2label = {str(int(i)): str(label) for i, label in config.id2label.items()}
        self.problem_type = config.problem_type
        self.activation = config.summary_activation
        summary = model.sequence_summary.summary  # nn.Linear, or nn.Identity without summary_use_proj
        self.proj = _weights(summary) if hasattr(summary, "weight") else None
        width = config.emb_dim if self.proj is None else self.proj[0].shape[0]
        if width != config.num_labels:
            raise CheckpointError(f"{checkpoint.path / 'config.json'}: the sequence summary gives {width} values "
                                  f"per text but the config has {config.num_labels} labels (summary_use_proj / "
                                  "summary_proj_to_labels)")
        self.logits_proj = _weights(model.logits_proj) if self.multiple_choice else None
        batch, texts, rows = probe_rows(tokenizer, checkpoint.uses_langs, min(64, config.max_position_embeddings))
        logits, embeddings = torch_answers(model, batch, self.multiple_choice)
        return logits_golden(batch, texts, rows, logits, embeddings)

    def append(self, graph: onnx.ModelProto, precision: str) -> None:
        """Adds the summary (and multiple choice's ``logits_proj``) in float32 whatever ``precision``."""
        g = graph.graph
        before = len(g.node)
        g.initializer.append(numpy_helper.from_array(np.array(0, dtype=np.int64), "head.first"))
        nodes = [helper.make_node("Gather", [fmt.LAST_HIDDEN_STATE, "head.first"], ["head.summary_in"], axis=1)]
        current = "head.summary_in"
        if self.proj is not None:
            current = _gemm(g, nodes, current, "head.summary", *self.proj)
        current = _activation(g, nodes, current, self.activation)
        if self.logits_proj is not None:
            current = _gemm(g, nodes, current, "head.logits_proj", *self.logits_proj)
        nodes.append(helper.make_node("Identity", [current], [fmt.LOGITS]))
        g.node.extend(nodes)
        expected = 2 + (self.proj is not None) + _ACTIVATION_NODES[self.activation] + (self.logits_proj is not None)
        if len(g.node) - before != expected:
            raise RuntimeError(f"classifier head: expected {expected} nodes, added {len(g.node) - before}")
        hidden = next(o for o in g.output if o.name == fmt.LAST_HIDDEN_STATE)
        del g.output[:]
        width = 1 if self.multiple_choice else len(self.id2label)
        g.output.extend([helper.make_tensor_value_info(fmt.LOGITS, TensorProto.FLOAT, ["batch", width]), hidden])

    def manifest_fields(self) -> dict[str, Any]:
        return {"head_kind": self.kind, "id2label": dict(self.id2label), "problem_type": self.problem_type}


class MultipleChoiceHead(SequenceClassificationHead):
    """``XLMForMultipleChoice``: ``logits`` ``[rows, 1]``, one row per choice (module docstring)."""

    graph_heads = (fmt.HEAD_MULTIPLE_CHOICE, fmt.HEAD_HIDDEN)
    kind = fmt.HEAD_KIND_MULTIPLE_CHOICE
    multiple_choice = True


def _weights(linear) -> tuple[np.ndarray, np.ndarray]:
    return (linear.weight.detach().float().numpy().copy(), linear.bias.detach().float().numpy().copy())


def _gemm(g, nodes: list, x: str, name: str, weight: np.ndarray, bias: np.ndarray) -> str:
    g.initializer.extend([numpy_helper.from_array(weight.astype(np.float32), f"{name}.weight"),
                          numpy_helper.from_array(bias.astype(np.float32), f"{name}.bias")])
    nodes.append(helper.make_node("Gemm", [x, f"{name}.weight", f"{name}.bias"], [f"{name}.out"], transB=1))
    return f"{name}.out"


def _activation(g, nodes: list, x: str, activation: str | None) -> str:
    """transformers' ``get_activation(name)`` as ONNX nodes (exact GELU: ``0.5 x (1 + erf(x / √2))``)."""
    if activation in (None, "linear"):
        return x
    out = "head.activation"
    if activation in ("tanh", "relu", "sigmoid"):
        nodes.append(helper.make_node(activation.capitalize(), [x], [out]))
    elif activation in ("silu", "swish"):
        nodes += [helper.make_node("Sigmoid", [x], ["head.sigmoid"]), helper.make_node("Mul", [x, "head.sigmoid"], [out])]
    else:  # gelu
        for name, value in (("head.sqrt2", math.sqrt(2.0)), ("head.one", 1.0), ("head.half", 0.5)):
            g.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), name))
        nodes += [helper.make_node("Div", [x, "head.sqrt2"], ["head.gelu_div"]),
                  helper.make_node("Erf", ["head.gelu_div"], ["head.gelu_erf"]),
                  helper.make_node("Add", ["head.gelu_erf", "head.one"], ["head.gelu_add"]),
                  helper.make_node("Mul", [x, "head.gelu_add"], ["head.gelu_mul"]),
                  helper.make_node("Mul", ["head.gelu_mul", "head.half"], [out])]
    return out


def logits_golden(batch: dict, texts, rows, logits: np.ndarray, embeddings: np.ndarray) -> Golden:
    """The golden record of a head whose answer is ``logits`` (no masks: no top ids or scores)."""
    langs = batch.get(fmt.LANGS)
    return Golden(texts=list(texts), token_ids=rows, input_ids=batch[fmt.INPUT_IDS].tolist(),
                  attention_mask=batch[fmt.ATTENTION_MASK].tolist(),
                  langs=None if langs is None else langs.tolist(), top_ids=[], top_scores=[],
                  made_on=cpu_info().as_dict(), embeddings=embeddings.astype(float).tolist(),
                  logits=logits.astype(float).tolist())


def probe_rows(tokenizer, uses_langs: bool, max_length: int = 64):
    """The exporter's probe sentences, unmasked, as one right-padded batch (langs 0, 1, ... in turn)."""
    from xlm_onnx.batching import pad

    from .validate import PROBE_TEXTS

    rows = [tokenizer.encode(t) for t in PROBE_TEXTS]
    cut = [r if len(r) <= max_length else r[: max_length - 1] + r[-1:] for r in rows]
    ids, mask = pad(cut, tokenizer.pad_token_id)
    batch = {fmt.INPUT_IDS: ids, fmt.ATTENTION_MASK: mask}
    if uses_langs:
        batch[fmt.LANGS] = np.repeat((np.arange(ids.shape[0]) % 2)[:, None], ids.shape[1], axis=1).astype(np.int64)
    return batch, PROBE_TEXTS, rows


def torch_answers(model, batch: dict[str, np.ndarray], multiple_choice: bool) -> tuple[np.ndarray, np.ndarray]:
    """The unmodified transformers model's logits per row and mean-pooled last hidden states.

    Multiple choice runs the rows as the choices of one question (``[1, rows, seq]``, as the
    model's own input) and returns one logit per row (``[rows, 1]``)."""
    import torch

    tensors = {name: torch.from_numpy(batch[name]) for name in (fmt.INPUT_IDS, fmt.ATTENTION_MASK, fmt.LANGS)
               if name in batch}
    if multiple_choice:
        tensors = {name: t.unsqueeze(0) for name, t in tensors.items()}
    with torch.no_grad():
        out = model(**tensors, output_hidden_states=True)
    mask = torch.from_numpy(batch[fmt.ATTENTION_MASK]).unsqueeze(-1).float()
    hidden = out.hidden_states[-1].float().reshape(mask.shape[0], mask.shape[1], -1)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    logits = out.logits.float().reshape(mask.shape[0], -1)
    return logits.numpy(), pooled.numpy()
