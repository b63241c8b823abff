"""Step 4: append the heads (fill-mask, hidden state, label log-probs) to the encoder graph.

The LM head runs only on masked rows, so full-vocabulary logits are never materialised for
the other positions (at 200k words x 128 tokens that would be 100 MB of logits per sentence)::

    input_ids ─Equal(mask_id)─NonZero─Transpose ─────────────────────────────► mask_positions [n, 2]
                                         │
    hidden [b, s, d] ────────────────GatherND─► rows [n, d]
                                                 │
              embedding [V, d] (tied, shared) ─Gemm(transB=1, + lm_bias)─► logits [n, V]
                                                 │
                                              Softmax ─┬─TopK(top_k)───► scores, token_ids [n, k]
                                              │        └─Gather(target_ids, axis=1)─► target_scores [n, t]
                                              │
                                           LogSoftmax─GatherElements(Unsqueeze(label_ids), axis=1)─Squeeze
                                                                                  ─► label_log_probs [n]
    hidden [b, s, d] ──────────────────────────────────────────────────────────► last_hidden_state

``label_ids`` holds one id per mask (row-major, as ``mask_positions``), or none (then
``label_log_probs`` is empty): pseudo-log-likelihood scoring reads log p(original token) at each
masked copy from rows gathered *before* the vocabulary-wide matmul, so no ``[b, s, V]`` tensor
exists. The encoder's output is exposed as it is (not pooled in-graph): mean and ``<s>`` pooling
are both a few numpy operations on it, and it costs no node (the tensor exists anyway).

``target_ids`` may be empty (then ``target_scores`` is ``[n, 0]``), which gives HF's
``targets=`` semantics from the same weights: no second copy of the embedding.

The logits node depends on the head's precision: fp16 wraps the Gemm in Casts (fp16 weights,
the softmax stays fp32); int8 uses ``DynamicQuantizeMatMul`` on the int8 tied table of
:mod:`.precision` followed by the bias ``Add``. An int8 export whose table is kept in floating
point (``Int8Options.tied_embedding``) gets the fp32 head.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xlm_onnx import format as fmt
from xlm_onnx.golden import Golden, make_golden

from .heads import HeadBuilder

HIDDEN = fmt.LAST_HIDDEN_STATE
LM_BIAS = "lm_head.bias"
#: Nodes of the label branch (LogSoftmax, Unsqueeze, GatherElements, Squeeze), every precision.
LABEL_NODE_COUNT = 4
#: Nodes this step adds per precision; checked after insertion so a silent change cannot slip by.
HEAD_NODE_COUNT = {"fp32": 8 + LABEL_NODE_COUNT, "fp16": 10 + LABEL_NODE_COUNT, "int8": 9 + LABEL_NODE_COUNT}


def check_embedding(model: onnx.ModelProto, name: str, vocab_size: int, dim: int) -> str:
    """Returns ``name`` after checking the graph holds it as a ``[vocab_size, dim]`` initializer.

    The tied embedding keeps its parameter name through tracing (``optimize=False``) and ORT's
    fusions, so it is found by name; the shape check catches a rename or a duplicate.
    """
    shapes = [tuple(init.dims) for init in model.graph.initializer if init.name == name]
    if shapes != [(vocab_size, dim)]:
        raise ValueError(f"expected one [{vocab_size}, {dim}] initializer named {name!r}, found shapes {shapes}")
    return name


def _logits_nodes(precision: str, embedding: str) -> list[onnx.NodeProto]:
    """rows [n, d] -> head.logits [n, V] (float32)."""
    if precision == "fp32":
        return [helper.make_node("Gemm", ["head.rows", embedding, LM_BIAS], ["head.logits"], transB=1)]
    if precision == "fp16":
        return [
            helper.make_node("Cast", ["head.rows"], ["head.rows16"], to=TensorProto.FLOAT16),
            helper.make_node("Gemm", ["head.rows16", embedding, LM_BIAS], ["head.logits16"], transB=1),
            helper.make_node("Cast", ["head.logits16"], ["head.logits"], to=TensorProto.FLOAT),
        ]
    from .precision import ROW_SCALE, TABLE_Q8

    return [  # symmetric per-row table: no zero point input
        helper.make_node("DynamicQuantizeMatMul", ["head.rows", TABLE_Q8, ROW_SCALE],
                         ["head.logits_nobias"], domain="com.microsoft"),
        helper.make_node("Add", ["head.logits_nobias", LM_BIAS], ["head.logits"]),
    ]


def append_heads(model: onnx.ModelProto, mask_token_id: int, lm_bias: np.ndarray, embedding: str,
                 precision: str = "fp32") -> None:
    """Adds the heads in place: graph outputs become :data:`xlm_onnx.format.OUTPUT_NAMES`.

    Args:
        model: Encoder graph whose single output is ``last_hidden_state``.
        mask_token_id: Id whose positions are decoded.
        lm_bias: LM-head bias ``[vocab]`` (float32).
        embedding: Name of the tied embedding table (an initializer, see :func:`check_embedding`,
            or the ``Cast`` widening its fp16 copy); unused by the int8 head, which reads the int8
            table of :mod:`.precision`.
        precision: Precision of the logits matmul: ``fp32``, ``fp16`` or ``int8`` (see the
            module docstring).
    """
    graph = model.graph
    before = len(graph.node)
    bias_dtype = np.float16 if precision == "fp16" else np.float32
    graph.initializer.append(numpy_helper.from_array(np.asarray(lm_bias, dtype=bias_dtype), LM_BIAS))
    graph.initializer.append(numpy_helper.from_array(np.array(mask_token_id, dtype=np.int64), "head.mask_id"))
    graph.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "head.axis1"))
    graph.node.extend(
        [
            helper.make_node("Equal", [fmt.INPUT_IDS, "head.mask_id"], ["head.is_mask"]),
            helper.make_node("NonZero", ["head.is_mask"], ["head.nonzero"]),
            helper.make_node("Transpose", ["head.nonzero"], [fmt.MASK_POSITIONS], perm=[1, 0]),
            helper.make_node("GatherND", [HIDDEN, fmt.MASK_POSITIONS], ["head.rows"]),
            *_logits_nodes(precision, embedding),
            helper.make_node("Softmax", ["head.logits"], ["head.probs"], axis=-1),
            helper.make_node("TopK", ["head.probs", fmt.TOP_K], [fmt.SCORES, fmt.TOKEN_IDS], axis=-1),
            helper.make_node("Gather", ["head.probs", fmt.TARGET_IDS], [fmt.TARGET_SCORES], axis=1),
            # The same fp32 logits, log-softmaxed (not Log(probs): exact for tiny probabilities).
            helper.make_node("LogSoftmax", ["head.logits"], ["head.log_probs"], axis=-1),
            helper.make_node("Unsqueeze", [fmt.LABEL_IDS, "head.axis1"], ["head.labels"]),
            helper.make_node("GatherElements", ["head.log_probs", "head.labels"], ["head.label_lp"], axis=1),
            helper.make_node("Squeeze", ["head.label_lp", "head.axis1"], [fmt.LABEL_LOG_PROBS]),
        ]
    )
    added = len(graph.node) - before
    if added != HEAD_NODE_COUNT[precision]:
        raise RuntimeError(f"heads: expected {HEAD_NODE_COUNT[precision]} nodes, added {added}")
    graph.input.extend(
        [
            helper.make_tensor_value_info(fmt.TOP_K, TensorProto.INT64, [1]),
            helper.make_tensor_value_info(fmt.TARGET_IDS, TensorProto.INT64, ["n_targets"]),
            helper.make_tensor_value_info(fmt.LABEL_IDS, TensorProto.INT64, ["n_labels"]),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(fmt.SCORES, TensorProto.FLOAT, ["n_masks", "k"]),
            helper.make_tensor_value_info(fmt.TOKEN_IDS, TensorProto.INT64, ["n_masks", "k"]),
            helper.make_tensor_value_info(fmt.MASK_POSITIONS, TensorProto.INT64, ["n_masks", 2]),
            helper.make_tensor_value_info(fmt.TARGET_SCORES, TensorProto.FLOAT, ["n_masks", "n_targets"]),
            helper.make_tensor_value_info(fmt.LAST_HIDDEN_STATE, TensorProto.FLOAT, ["batch", "sequence", "dim"]),
            helper.make_tensor_value_info(fmt.LABEL_LOG_PROBS, TensorProto.FLOAT, ["n_labels"]),
        ]
    )
    if tuple(o.name for o in graph.output) != fmt.OUTPUT_NAMES:
        raise RuntimeError(f"heads: graph outputs {[o.name for o in graph.output]} != {fmt.OUTPUT_NAMES}")


class MaskedLMHead(HeadBuilder):
    """``XLMWithLMHeadModel``: fill-mask, hidden state and label log-probs (the module docstring).

    Golden: the masked probes of :mod:`.validate` and the unmodified model's answers on them.
    """

    graph_heads = fmt.HEADS

    def reference(self, model, tokenizer, checkpoint) -> Golden:
        from . import validate

        self.mask_token_id = int(tokenizer.mask_token_id)
        self.bias = model.pred_layer.proj.bias.detach().numpy().copy()
        probes = validate.probe_batch(tokenizer, self.mask_token_id, uses_langs=checkpoint.uses_langs)
        reference = validate.torch_reference(model, probes, self.mask_token_id)
        return make_golden(validate.PROBE_TEXTS, [tokenizer.encode(t) for t in validate.PROBE_TEXTS],
                           probes, reference, probes[validate.LABELS])

    def append(self, graph: onnx.ModelProto, precision: str) -> None:
        from .modeling import EMBEDDING_NAME

        append_heads(graph, self.mask_token_id, self.bias, EMBEDDING_NAME, precision)
