"""Per-token heads: ``XLMForTokenClassification`` and ``XLMForQuestionAnsweringSimple``.

Both are one linear layer on every position of the last hidden state (dropout is inactive at
inference): ``classifier`` to ``num_labels`` tags, or ``qa_outputs`` to 2 values, the start and
end logits of extractive QA (transformers splits them; here they stay one output, which keeps
one golden gate and one output name for every fine-tuned head)::

    last_hidden_state [b, s, d] ─MatMul(Wᵀ)─Add(b)─► logits [b, s, n]    n = num_labels | 2 (start, end)

The head stays float32 in every precision (``d x n`` weights: int8 would save nothing and cost
accuracy), and each position is computed from its own row, so per-row int8 exports stay
batch-invariant. Scores are computed by the tasks in numpy (softmax per token; the QA span search).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xlm_onnx import format as fmt
from xlm_onnx.golden import Golden

from .classifier_head import logits_golden, probe_rows
from .errors import CheckpointError
from .heads import HeadBuilder


class TokenClassificationHead(HeadBuilder):
    """``XLMForTokenClassification``: ``logits`` ``[batch, seq, num_labels]`` (module docstring)."""

    graph_heads = (fmt.HEAD_TOKEN_CLASSIFICATION, fmt.HEAD_HIDDEN)
    kind = fmt.HEAD_KIND_TOKEN_CLASSIFICATION
    attribute = "classifier"

    def reference(self, model, tokenizer, checkpoint) -> Golden:
        config = model.config
        linear = getattr(model, self.attribute)
        self.weight = linear.weight.detach().float().numpy().copy()
        self.bias = linear.bias.detach().float().numpy().copy()
        self.id2label = {str(int(i)): str(label) for i, label in config.id2label.items()}
        if self.weight.shape[0] != self.width(config):
            raise CheckpointError(f"{checkpoint.path / 'config.json'}: {self.attribute} gives "
                                  f"{self.weight.shape[0]} values per token, expected {self.width(config)}")
        batch, texts, rows = probe_rows(tokenizer, checkpoint.uses_langs)
        logits, embeddings = token_answers(model, batch)
        return logits_golden(batch, texts, rows, logits, embeddings)

    def width(self, config) -> int:
        return int(config.num_labels)

    def append(self, graph: onnx.ModelProto, precision: str) -> None:
        """Adds the linear layer in float32 whatever ``precision``; outputs ``logits`` and the hidden state."""
        g = graph.graph
        before = len(g.node)
        g.initializer.extend([numpy_helper.from_array(self.weight.T.astype(np.float32).copy(), "head.weight_t"),
                              numpy_helper.from_array(self.bias.astype(np.float32), "head.bias")])
        g.node.extend([helper.make_node("MatMul", [fmt.LAST_HIDDEN_STATE, "head.weight_t"], ["head.matmul"]),
                       helper.make_node("Add", ["head.matmul", "head.bias"], [fmt.LOGITS])])
        if len(g.node) - before != 2:
            raise RuntimeError(f"token head: expected 2 nodes, added {len(g.node) - before}")
        hidden = next(o for o in g.output if o.name == fmt.LAST_HIDDEN_STATE)
        del g.output[:]
        out = helper.make_tensor_value_info(fmt.LOGITS, TensorProto.FLOAT, ["batch", "seq", self.weight.shape[0]])
        g.output.extend([out, hidden])

    def manifest_fields(self) -> dict[str, Any]:
        return {"head_kind": self.kind, "id2label": dict(self.id2label)}


class QuestionAnsweringHead(TokenClassificationHead):
    """``XLMForQuestionAnsweringSimple``: ``logits`` ``[batch, seq, 2]`` = (start, end) per position."""

    graph_heads = (fmt.HEAD_QUESTION_ANSWERING, fmt.HEAD_HIDDEN)
    kind = fmt.HEAD_KIND_QUESTION_ANSWERING
    attribute = "qa_outputs"

    def width(self, config) -> int:
        return 2

    def manifest_fields(self) -> dict[str, Any]:
        return {"head_kind": self.kind, "id2label": {"0": "start", "1": "end"}}


def token_answers(model, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The unmodified transformers model's per-token logits ``[b, s, n]`` (zero on padding; QA: start,
    end stacked) and mean-pooled last hidden states."""
    import torch

    tensors = {name: torch.from_numpy(batch[name]) for name in (fmt.INPUT_IDS, fmt.ATTENTION_MASK, fmt.LANGS)
               if name in batch}
    with torch.no_grad():
        out = model(**tensors, output_hidden_states=True)
    logits = out.logits if hasattr(out, "logits") else torch.stack([out.start_logits, out.end_logits], dim=-1)
    mask = torch.from_numpy(batch[fmt.ATTENTION_MASK]).unsqueeze(-1).float()
    hidden = out.hidden_states[-1].float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return (logits.float() * mask).numpy(), pooled.numpy()
