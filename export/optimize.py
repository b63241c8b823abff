"""Step 3: fuse every encoder layer into onnxruntime contrib ops, and prove it happened.

Uses onnxruntime's own transformer optimizer (``optimize_model(model_type="bert")``) on the
BERT-shaped graph that :mod:`.modeling` produces; nothing is pattern-matched by hand here.
Python fusions only (``opt_level=0``): the result stays portable across execution providers,
and ORT's own session-level optimisations still run when a session loads it.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from .errors import ExportError
from .external import load_lazy, working_dir
from .progress import muted_library_warnings

#: Contrib ops expected per encoder layer after fusion.
PER_LAYER = {"Attention": 1, "SkipLayerNormalization": 2, "Gelu-like": 1}
GELU_OPS = ("BiasGelu", "FastGelu", "Gelu")


def expected_counts(n_layers: int) -> dict[str, int]:
    """Fused-node counts a fully fused ``n_layers`` encoder must have (at least)."""
    return {name: per * n_layers for name, per in PER_LAYER.items()}


def count_fused(model: onnx.ModelProto) -> dict[str, int]:
    """Counts fused contrib ops in ``model`` (Gelu variants summed as ``Gelu-like``)."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.domain == "com.microsoft":
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    counts["Gelu-like"] = sum(counts.get(op, 0) for op in GELU_OPS)
    return counts


def tensorize_constants(model: onnx.ModelProto) -> int:
    """Rewrites ``Constant(value_int(s)/value_float(s))`` nodes as ``Constant(value=tensor)``.

    Why by hand: torch's dynamo exporter emits ``value_ints`` constants, and ORT's symbolic
    shape inference (which SkipLayerNormalization fusion relies on) reads only ``value`` and
    crashes on the others. Returns the number of nodes rewritten.
    """
    kinds = {"value_int": (TensorProto.INT64, False), "value_ints": (TensorProto.INT64, True),
             "value_float": (TensorProto.FLOAT, False), "value_floats": (TensorProto.FLOAT, True)}
    rewritten = 0
    for node in model.graph.node:
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.attribute) != 1:
            continue
        attr = node.attribute[0]
        if attr.name not in kinds:
            continue
        dtype, is_list = kinds[attr.name]
        value = helper.get_attribute_value(attr)
        tensor = helper.make_tensor("value", dtype, [len(value)] if is_list else [], list(value) if is_list else [value])
        del node.attribute[:]
        node.attribute.append(helper.make_attribute("value", tensor))
        rewritten += 1
    return rewritten


def optimize_encoder(path: Path, config, optimize: bool, embed_layer_norm: bool = True
                     ) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Loads the traced encoder (weights left on disk) and, if ``optimize``, fuses it.

    ``embed_layer_norm=False`` keeps the embedding a plain ``Gather`` (int8 re-stores the tied
    table, which ``EmbedLayerNormalization`` would need in fp32).

    Returns:
        The graph, whose external tensors are relative to ``path.parent``, and the fused-op
        counts (empty without fusion).

    Raises:
        ExportError: A layer did not fuse (counts below :func:`expected_counts`).
    """
    model = load_lazy(path)
    if not optimize:
        return model, {}
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = embed_layer_norm
    tensorize_constants(model)
    # The optimizer logs heuristics warnings (e.g. "word_embedding_table size <= position table"
    # for tiny vocabularies) that are not actionable; the fusion counts below are the real check.
    with muted_library_warnings(), working_dir(path.parent):  # fusions read the weights they pack from disk
        optimized = optimize_model(
            model, model_type="bert", num_heads=config.n_heads, hidden_size=config.emb_dim,
            optimization_options=options, opt_level=0,
        )
    if not any(op.domain == "com.microsoft" for op in optimized.model.opset_import):
        # ORT runs contrib ops without it, but onnx's shape inference (used by the quantizer) needs it.
        optimized.model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    counts = count_fused(optimized.model)
    want = expected_counts(config.n_layers)
    # ">=": with language embeddings the embedding sum also fuses into a SkipLayerNormalization.
    missing = {name: (counts.get(name, 0), n) for name, n in want.items() if counts.get(name, 0) < n}
    if missing:
        detail = ", ".join(f"{name} {got}/{n}" for name, (got, n) in missing.items())
        raise ExportError(f"fusion incomplete: {detail} (expected every one of {config.n_layers} layers fused)")
    return optimized.model, counts
