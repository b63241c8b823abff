"""Step 4: append the fill-mask decoding head to the encoder graph.

The LM head runs only on masked rows, so full-vocabulary logits are never materialised for
the other positions (at 200k words x 128 tokens that would be 100 MB of logits per sentence)::

    input_ids ─Equal(mask_id)─NonZero─Transpose ─────────────────────────────► mask_positions [n, 2]
                                         │
    hidden [b, s, d] ────────────────GatherND─► rows [n, d]
                                                 │
              embedding [V, d] (tied, shared) ─Gemm(transB=1, + lm_bias)─► logits [n, V]
                                                 │
                                              Softmax ─┬─TopK(top_k)───► scores, token_ids [n, k]
                                                       └─Gather(target_ids, axis=1)─► target_scores [n, t]

``target_ids`` may be empty (then ``target_scores`` is ``[n, 0]``), which gives HF's
``targets=`` semantics from the same weights: no second copy of the embedding.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xlm_onnx import format as fmt

HIDDEN = "last_hidden_state"
LM_BIAS = "lm_head.bias"
#: Node count this step adds; checked after insertion so a silent change cannot slip by.
HEAD_NODE_COUNT = 8


def check_embedding(model: onnx.ModelProto, name: str, vocab_size: int, dim: int) -> str:
    """Returns ``name`` after checking the graph holds it as a ``[vocab_size, dim]`` initializer.

    The tied embedding keeps its parameter name through tracing (``optimize=False``) and ORT's
    fusions, so it is found by name; the shape check catches a rename or a duplicate.
    """
    shapes = [tuple(init.dims) for init in model.graph.initializer if init.name == name]
    if shapes != [(vocab_size, dim)]:
        raise ValueError(f"expected one [{vocab_size}, {dim}] initializer named {name!r}, found shapes {shapes}")
    return name


def append_fill_mask_head(model: onnx.ModelProto, mask_token_id: int, lm_bias: np.ndarray, embedding: str) -> None:
    """Adds the head in place: graph output becomes the four fill-mask outputs.

    Args:
        model: Encoder graph whose single output is ``last_hidden_state``.
        mask_token_id: Id whose positions are decoded.
        lm_bias: LM-head bias ``[vocab]`` (float32).
        embedding: Name of the tied embedding initializer (see :func:`check_embedding`).
    """
    graph = model.graph
    before = len(graph.node)
    graph.initializer.append(numpy_helper.from_array(np.asarray(lm_bias, dtype=np.float32), LM_BIAS))
    graph.initializer.append(numpy_helper.from_array(np.array(mask_token_id, dtype=np.int64), "head.mask_id"))
    graph.node.extend(
        [
            helper.make_node("Equal", [fmt.INPUT_IDS, "head.mask_id"], ["head.is_mask"]),
            helper.make_node("NonZero", ["head.is_mask"], ["head.nonzero"]),
            helper.make_node("Transpose", ["head.nonzero"], [fmt.MASK_POSITIONS], perm=[1, 0]),
            helper.make_node("GatherND", [HIDDEN, fmt.MASK_POSITIONS], ["head.rows"]),
            helper.make_node("Gemm", ["head.rows", embedding, LM_BIAS], ["head.logits"], transB=1),
            helper.make_node("Softmax", ["head.logits"], ["head.probs"], axis=-1),
            helper.make_node("TopK", ["head.probs", fmt.TOP_K], [fmt.SCORES, fmt.TOKEN_IDS], axis=-1),
            helper.make_node("Gather", ["head.probs", fmt.TARGET_IDS], [fmt.TARGET_SCORES], axis=1),
        ]
    )
    added = len(graph.node) - before
    if added != HEAD_NODE_COUNT:
        raise RuntimeError(f"fill-mask head: expected {HEAD_NODE_COUNT} nodes, added {added}")
    graph.input.extend(
        [
            helper.make_tensor_value_info(fmt.TOP_K, TensorProto.INT64, [1]),
            helper.make_tensor_value_info(fmt.TARGET_IDS, TensorProto.INT64, ["n_targets"]),
        ]
    )
    del graph.output[:]
    graph.output.extend(
        [
            helper.make_tensor_value_info(fmt.SCORES, TensorProto.FLOAT, ["n_masks", "k"]),
            helper.make_tensor_value_info(fmt.TOKEN_IDS, TensorProto.INT64, ["n_masks", "k"]),
            helper.make_tensor_value_info(fmt.MASK_POSITIONS, TensorProto.INT64, ["n_masks", 2]),
            helper.make_tensor_value_info(fmt.TARGET_SCORES, TensorProto.FLOAT, ["n_masks", "n_targets"]),
        ]
    )
