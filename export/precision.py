"""Step 3b: fp16 and int8 versions of the fused encoder, with the tied embedding stored once.

fp16 uses onnxruntime's ``convert_float_to_float16`` (graph I/O stay fp32). int8 uses
onnxruntime's ``quantize_dynamic`` for the MatMuls and fused Attention, with **signed** int8
weights (``QuantType.QInt8``): on an AMX/VNNI CPU ORT's int8 GEMM ran 3.0 TOPS with QInt8
weights but 0.39 TOPS with QUInt8 (fp32: 0.37 TFLOPS).

By default the weights are **7-bit** (``reduce_range``, |q| <= 64), because ORT's u8s8 kernel on
AVX2 and on AVX-512 without VNNI saturates full-range weights (``xlm_onnx.format.
INT8_SATURATION_SAFE_MAX``): an export made on a VNNI machine was silently worse on AVX2 servers.
Measured on one 1280x5120 MatMul (AVX2, random weights, outlier activations): max error / max
0.201 per channel at 8 bits, 0.045 at 7 bits, same speed. ``weight_bits=8`` keeps full range for
deployments known to run on VNNI/AMX/ARM64 only; the runtime warns when it loads one elsewhere.

The quantizer cannot share one int8 tensor between the embedding ``Gather`` and the LM head
(it would keep the fp32 table and add an int8 copy: 828 MB instead of <= 600 MB), so the tied
table is quantised here, per row, stored transposed ``[dim, vocab]`` once::

    ids ─Gather(table_q8ᵀ, axis=1)─Transpose─Cast(float)─Mul(Gather(row_scale, ids))─► embedding
    rows ─DynamicQuantizeMatMul(table_q8ᵀ, row_scale)─Add(bias)────────────────────► logits

Row ``v`` of the table is ``table_q8ᵀ[:, v] * row_scale[v]`` in both uses.

Activations are quantized at run time. By default :mod:`.per_row` then rewrites the quantizer's
graph so every token row gets its own scale (a text's answers no longer depend on its batch, and
are closer to fp32); ``activations="per-tensor"`` keeps onnxruntime's one-scale-per-batch scheme.

That table is where int8 loses most top-1 agreement on a trained model (the head's logits of
near-tied words), so :class:`Int8Options` can keep it in floating point instead: stored fp16
(half the bytes of fp32) and widened once when the session starts, because ORT folds a ``Cast``
of an initializer into a new fp32 initializer::

    table_fp16 ─Cast(float)─► table ─┬─Gather(ids)─────────► embedding
                                     └─Gemm(rows, transB=1)─► logits
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from xlm_onnx import format as fmt

from .external import working_dir
from .progress import muted_library_warnings

TABLE_Q8 = "tied_embedding.int8_t"
ROW_SCALE = "tied_embedding.row_scale"


@dataclass(frozen=True)
class Int8Options:
    """How an int8 export quantizes (recorded in the manifest's ``quantization`` field).

    Attributes:
        per_channel: One weight scale per output channel of each MatMul (else per tensor).
        tied_embedding: Storage of the tied embedding / LM head table: ``int8`` (per-row
            scales, smallest and fastest head), ``fp16`` or ``fp32`` (the head is then an fp32
            Gemm: closer to fp32 top-1, but at full size it reads 1 GB per batch instead of
            256 MB, and fp16 storage adds 0.26 GB, fp32 0.77 GB, to the directory).
        weight_bits: 7 (|q| <= 64: exact on every CPU class) or 8 (full range: exact only on
            VNNI/AMX/ARM64; AVX2 and AVX-512 without VNNI saturate it).
        activations: ``per-row`` (one scale per token row: answers bit-identical alone or in any
            batch, and closer to fp32; see :mod:`.per_row`) or ``per-tensor`` (onnxruntime's
            dynamic quantization: one scale per batch, so answers depend on the neighbours and
            the padding; 0-15% faster at full size, see ``benchmarks/int8_schemes.py``).
    """

    per_channel: bool = True
    tied_embedding: str = "int8"
    weight_bits: int = 7
    activations: str = fmt.INT8_PER_ROW

    def __post_init__(self) -> None:
        if not isinstance(self.per_channel, bool):
            raise TypeError(f"per_channel must be a bool, not {type(self.per_channel).__name__}")
        if self.weight_bits not in fmt.INT8_WEIGHT_MAX or isinstance(self.weight_bits, bool):
            raise ValueError(f"weight_bits must be one of {tuple(fmt.INT8_WEIGHT_MAX)}, not {self.weight_bits!r}")
        if self.activations not in fmt.INT8_ACTIVATIONS:
            raise ValueError(f"activations must be one of {fmt.INT8_ACTIVATIONS}, not {self.activations!r}")
        if self.tied_embedding not in fmt.TIED_EMBEDDING_STORAGE:
            raise ValueError(f"tied_embedding must be one of {fmt.TIED_EMBEDDING_STORAGE}, "
                             f"not {self.tied_embedding!r}")

    @property
    def weight_max(self) -> int:
        """The largest |q| of any int8 weight this export writes."""
        return fmt.INT8_WEIGHT_MAX[self.weight_bits]

    @property
    def head_precision(self) -> str:
        """Precision of the LM head's matmul (see :mod:`.head`)."""
        return "int8" if self.tied_embedding == "int8" else "fp32"

    def as_manifest(self) -> dict:
        """The manifest's ``quantization`` field."""
        return {"weights": "int8 (signed, dynamic activations)", **asdict(self), "weight_max": self.weight_max}


def to_fp16(model: onnx.ModelProto, base_dir: Path) -> onnx.ModelProto:
    """fp16 weights and compute; fp32 graph inputs/outputs (ORT's converter decides which ops
    stay fp32 for safety, from its default block list).

    Same steps as ``OnnxModel.convert_float_to_float16``, reordered for memory: symbolic shape
    inference runs while the weights are still on disk (it copies the whole model), then the
    weights are loaded once and converted in place. The stock order peaked at 8.6 GB for the
    full-size model.
    """
    from onnx.external_data_helper import load_external_data_for_model
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with working_dir(base_dir):
        inferred = SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=False)
    del model
    load_external_data_for_model(inferred, str(base_dir))
    return convert_float_to_float16(inferred, keep_io_types=True, disable_shape_infer=True)


def _pop_initializer(model: onnx.ModelProto, name: str, base_dir: Path) -> np.ndarray:
    """Removes initializer ``name`` from the graph and returns its values (external data read
    relative to ``base_dir``)."""
    init = next(i for i in model.graph.initializer if i.name == name)
    with working_dir(base_dir):
        values = numpy_helper.to_array(init)
    model.graph.initializer.remove(init)
    return values


def quantize_tied_embedding(model: onnx.ModelProto, name: str, base_dir: Path, qmax: int) -> None:
    """Replaces the fp32 table ``name`` by a per-row symmetric int8 table (transposed, |q| <=
    ``qmax``) and its scales, and rewrites every ``Gather`` reading it. The head reads
    :data:`TABLE_Q8` / :data:`ROW_SCALE`."""
    table = _pop_initializer(model, name, base_dir)
    scale = np.maximum(np.abs(table).max(axis=1), 1e-12) / float(qmax)
    q8 = np.clip(np.rint(table / scale[:, None]), -qmax, qmax).astype(np.int8)
    del table
    model.graph.initializer.extend([
        numpy_helper.from_array(np.ascontiguousarray(q8.T), TABLE_Q8),
        numpy_helper.from_array(scale.astype(np.float32), ROW_SCALE),
    ])
    nodes = list(model.graph.node)
    gathers = [n for n in nodes if n.op_type == "Gather" and n.input[0] == name]
    if len(gathers) != 1 or any(name in n.input for n in nodes if n not in gathers):
        raise ValueError(f"expected {name!r} to be read by exactly one Gather before the head is added")
    gather = gathers[0]
    ids, out, p = gather.input[1], gather.output[0], f"{gather.name or 'embedding'}.q8"
    replacement = [
        helper.make_node("Gather", [TABLE_Q8, ids], [f"{p}.cols"], axis=1, name=f"{p}.gather"),
        helper.make_node("Transpose", [f"{p}.cols"], [f"{p}.rows"], perm=[1, 2, 0], name=f"{p}.transpose"),
        helper.make_node("Cast", [f"{p}.rows"], [f"{p}.float"], to=TensorProto.FLOAT, name=f"{p}.cast"),
        helper.make_node("Gather", [ROW_SCALE, ids], [f"{p}.scale"], axis=0, name=f"{p}.gather_scale"),
        helper.make_node("Unsqueeze", [f"{p}.scale", f"{p}.axes"], [f"{p}.scale3"], name=f"{p}.unsqueeze"),
        helper.make_node("Mul", [f"{p}.float", f"{p}.scale3"], [out], name=f"{p}.dequantize"),
    ]
    model.graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), f"{p}.axes"))
    index = nodes.index(gather)
    model.graph.node.remove(gather)
    for offset, node in enumerate(replacement):
        model.graph.node.insert(index + offset, node)


def store_tied_embedding_fp16(model: onnx.ModelProto, name: str, base_dir: Path) -> None:
    """Stores the fp32 table ``name`` as fp16 and puts a ``Cast`` back to fp32 first in the
    graph, under the old name, so every reader is unchanged (see the module docstring)."""
    table = _pop_initializer(model, name, base_dir)
    if not np.isfinite(table).all() or np.abs(table).max() > np.finfo(np.float16).max:
        raise ValueError(f"{name}: values outside the fp16 range; use tied_embedding='fp32'")
    table = table.astype(np.float16)
    model.graph.initializer.append(numpy_helper.from_array(table, f"{name}.fp16"))
    model.graph.node.insert(0, helper.make_node("Cast", [f"{name}.fp16"], [name], to=TensorProto.FLOAT,
                                                name=f"{name}.widen"))


def quantize_encoder(src: Path, dst: Path, options: Int8Options) -> None:
    """``quantize_dynamic`` of MatMuls and fused Attention, weights signed int8, external data."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with muted_library_warnings():  # "consider pre-processing": advice for CNNs, not actionable here
        quantize_dynamic(
            str(src), str(dst), weight_type=QuantType.QInt8, per_channel=options.per_channel,
            reduce_range=options.weight_bits == 7,  # |q| <= 64 for MatMul and Attention weights
            op_types_to_quantize=["MatMul", "Attention"], use_external_data_format=True,
            # Needed for fused graphs: ORT's contrib ops have no onnx type inference, so the
            # quantizer must be told what an un-inferable tensor is (a known trap).
            extra_options={"DefaultTensorType": TensorProto.FLOAT, "MatMulConstBOnly": True},
        )


#: Ops whose input 1 is an int8 weight (``MatMulInteger`` becomes ``DynamicQuantizeMatMul`` in ORT;
#: the per-row pass writes ``MatMulIntegerToFloat``).
INT8_WEIGHT_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "MatMulIntegerToFloat")


def largest_int8_weight(model: onnx.ModelProto, base_dir: Path) -> int:
    """The largest |q| over every int8 weight operand of the graph (0 when there is none).

    Checked after quantization so the manifest's ``weight_max`` is a measured fact, not a
    promise of the quantizer's options.
    """
    inits = {i.name: i for i in model.graph.initializer}
    largest = 0
    with working_dir(base_dir):
        for node in model.graph.node:
            init = inits.get(node.input[1]) if node.op_type in INT8_WEIGHT_OPS else None
            if init is not None and init.data_type == TensorProto.INT8:
                largest = max(largest, int(np.abs(numpy_helper.to_array(init).astype(np.int16)).max()))
    return largest
