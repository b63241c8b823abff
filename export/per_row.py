"""Step 3c: per-row int8 activations, so a text's answer never depends on its batch.

onnxruntime's dynamic int8 (``quantize_dynamic``, ``QAttention``, ``DynamicQuantizeMatMul``)
quantizes each activation tensor with **one** scale and zero point: the whole batch's min and max.
A text's int8 inputs, and so its scores, embedding and PLL, then depend on what else is in the
batch and how long the padding is (on the demo model up to 0.26 in a hidden-state component). This
pass, run on the graph the quantizer produced (its int8 weights and per-channel scales are kept as
they are), gives every row (token) its own scale, computed from that row alone::

    x [.., K] ─ReduceMax, ReduceMin(-1)─max(|.|)─Max(tiny)─Div(127)──────────► s [.., 1]  row scale
    x ─Reshape[-1,K]─QuantizeLinear(s, zero point 128, axis=0)─Reshape(x)───► q [.., K]  uint8
    q ─MatMulIntegerToFloat(W int8, A scale s, w_scale, A zero point 128)───► y [.., N]

``MatMulIntegerToFloat`` is the MLAS u8s8 GEMM that ``DynamicQuantizeMatMul`` runs (on AMX CPUs
MLAS's AMX tile kernel, on VNNI CPUs ``vpdpbusd``: unsigned activations, signed weights; signed
activations would fall back to MLAS's portable s8s8 C++ loop, measured 100x slower on AMX), with
the per-column weight scale in its epilogue. Its A scale may be one value per row (``[.., 1]``):
the kernel multiplies each output row by it after the GEMM, bit-identical to a separate
broadcast ``Mul`` (measured) but without the extra node and ``[.., N]`` buffer (the ``Mul`` was
10% of the encoder's kernel time at 32x64 on AMX; end to end the change measured within noise,
0.85-1.11x, see ``benchmarks/RESULTS.md``). The one thing the kernel must not get with a per-row A
scale is a **bias**: it adds the bias *before* the non-scalar A scale (the int8 LM head's bias
came out multiplied by each row's scale: scores off by 0.058 on the tiny fixture), so biases stay
separate ``Add`` nodes here. Why not the all-standard ``MatMulInteger → Cast → Mul(Mul(s,
w_scale))``? ORT's ``MatMulIntegerToFloatFusion`` turns it into this node and swallows the
following bias ``Add`` into it, with that result. Written as ``MatMulIntegerToFloat`` directly,
nothing is left for the optimizer to re-fuse (checked on the optimized graph by
``tests/test_batch_invariance.py``).

Rows read by a MatMul after GELU are one-sided (GELU >= -0.17; most values about 0): they are
quantized asymmetrically, ``q = round(x / s) + z`` with ``s = (max - min) / 255`` and an integer
zero point ``z`` per row (0 stays exact). ORT's integer GEMMs take one zero point for all of A,
so the GEMM runs with zero point 0 and the term ``z * s * colsum(W)`` (a scalar per row times a
vector) is subtracted from its output, the narrow ``[.., 1280]`` side of that MatMul. Measured on
the demo model (210 masked UDHR lines, against its int8 weights with float activations), max /
mean |Δp|: symmetric everywhere 0.0056 / 0.0012, GELU outputs shifted by 0.17 (0 off the grid)
0.0039 / 0.0006, asymmetric GELU rows 0.0023 / 0.0006; per-tensor 0.0092 / 0.0013 batched.
Other inputs (LayerNorm and attention outputs) are about symmetric; asymmetric everywhere
measured no better (0.0025 / 0.0006).

Every int8 activation path is rewritten: ``DynamicQuantizeLinear → MatMulInteger → Cast → Mul``
(the encoder's MatMuls) as above; ``QAttention`` (per-tensor input) as the per-row QKV projection
feeding a float ``MultiHeadAttention`` (QKV bias and padding lengths as ``QAttention`` took them)::

    x ─per-row int8 MatMul(W_qkv)─► qkv [B, S, 3D] ─Split─► Q, K, V ─MultiHeadAttention(bias, lengths)─► out

and ``DynamicQuantizeMatMul`` (the int8 tied LM head of :mod:`.head`) as the per-row MatMul on the
transposed int8 table, then the bias ``Add``.

Why it is also more accurate: a row is quantized with its own range, so a short text beside a
long one, or a token beside an outlier token, keeps its precision (ZeroQuant's "token-wise"
activations). Speed: the GEMM is the same kernel; the row scales add passes over the input
(max, min, quantize; ``benchmarks/int8_schemes.py`` measures both schemes side by side).

Bit-identity needs every row's arithmetic to be independent of the others: the integer GEMM is
exact, the row scales are a function of the row, and the float ops after it (LayerNorm, GELU,
attention over the unpadded keys) are row-local in ORT's CPU kernels at a given thread count.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .external import working_dir

MS = "com.microsoft"
#: Symmetric rows are quantized to [-127, 127] around this uint8 zero point (u8s8 GEMM: with 7-bit
#: weights the AVX2 kernel's int16 pair sums stay exact, see ``INT8_SATURATION_SAFE_MAX``).
ZERO_POINT = 128
QMAX = 127
#: Producers of one-sided activations (GELU >= -0.17): their readers quantize them asymmetrically.
GELU_OPS = ("BiasGelu", "Gelu", "FastGelu")
#: Floor of a row's max |x|: an all-zero row gets a finite scale (and quantizes to zeros).
TINY = 1e-12
_CONSTANTS = {
    "per_row.zp": np.array(ZERO_POINT, np.uint8),
    "per_row.qmax": np.array(QMAX, np.float32),
    "per_row.tiny": np.array(TINY, np.float32),
    "per_row.last": np.array([-1], np.int64),
}


class _Graph:
    """Node/initializer indexes of a graph being rewritten, and a name factory."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.inits = {i.name: i for i in self.graph.initializer}
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.reduce_axes_input = opset >= 18  # ReduceMax takes axes as an input from opset 18
        self.producer = {out: n for n in self.graph.node for out in n.output}
        self.added: list[onnx.NodeProto] = []  # new nodes, inserted before the node they replace
        self.rows: dict[tuple[str, bool], tuple] = {}  # (activation, asymmetric) -> quantize_rows()

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        return [n for n in self.graph.node if name in n.input]

    def constant(self, name: str, value: np.ndarray) -> str:
        if name not in self.inits:
            init = numpy_helper.from_array(value, name)
            self.graph.initializer.append(init)
            self.inits[name] = init
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs) -> None:
        self.added.append(helper.make_node(op, inputs, outputs, name=outputs[0] + ".node", domain=domain, **attrs))

    def weight(self, name: str, base_dir) -> np.ndarray:
        with working_dir(base_dir):
            return numpy_helper.to_array(self.inits[name])

    def quantize_rows(self, x: str, k: int, asymmetric: bool = False) -> tuple[str, str, str | None]:
        """Per-row uint8 of ``x`` (last dimension ``k``), built once per activation however many
        MatMuls read it.

        Symmetric: ``q = round(x / s) + 128`` with ``s = max|x| / 127``. Asymmetric (for one-sided
        inputs such as GELU outputs, where symmetric would leave half the levels unused): ``q =
        round(x / s) + z`` with ``s = (max - min) / 255`` and an integer zero point ``z`` per row
        over ``[min(x, 0), max(x, 0)]``, so 0 stays exact (most GELU outputs are about 0).

        Returns:
            ``(q, s, z)``: ``q`` shaped like ``x``, ``s`` the row scales ``[.., 1]`` and, when
            asymmetric, the zero points as floats ``[.., 1]`` (``None`` when symmetric).
        """
        key = (x, asymmetric)
        if key in self.rows:
            return self.rows[key]
        c = {name: self.constant(name, v) for name, v in _CONSTANTS.items()}
        p = f"{x}.per_row" if not asymmetric else f"{x}.per_row_asym"

        def reduce(op: str, source: str, out: str) -> None:
            if self.reduce_axes_input:
                self.node(op, [source, c["per_row.last"]], [out], keepdims=1)
            else:
                self.node(op, [source], [out], axes=[-1], keepdims=1)

        # Two reductions of x rather than ReduceMax(Abs(x)): no [.., K] temporary (measured 7-30%
        # faster for this step at 512-4096 rows of 1280).
        reduce("ReduceMax", x, f"{p}.max")
        reduce("ReduceMin", x, f"{p}.min")
        if asymmetric:
            zero = self.constant("per_row.zero", np.array(0.0, np.float32))
            self.node("Max", [f"{p}.max", zero], [f"{p}.max0"])
            self.node("Min", [f"{p}.min", zero], [f"{p}.min0"])
            self.node("Sub", [f"{p}.max0", f"{p}.min0"], [f"{p}.range"])
            self.node("Max", [f"{p}.range", c["per_row.tiny"]], [f"{p}.range_floor"])
            self.node("Div", [f"{p}.range_floor", self.constant("per_row.levels", np.array(255, np.float32))],
                      [f"{p}.scale"])
            self.node("Div", [f"{p}.min0", f"{p}.scale"], [f"{p}.min_steps"])
            self.node("Neg", [f"{p}.min_steps"], [f"{p}.neg_min_steps"])
            self.node("Round", [f"{p}.neg_min_steps"], [f"{p}.zero_point"])  # in [0, 255]: min0 <= 0 <= max0
        else:
            self.node("Neg", [f"{p}.min"], [f"{p}.neg_min"])
            self.node("Max", [f"{p}.max", f"{p}.neg_min"], [f"{p}.amax"])
            self.node("Max", [f"{p}.amax", c["per_row.tiny"]], [f"{p}.amax_floor"])
            self.node("Div", [f"{p}.amax_floor", c["per_row.qmax"]], [f"{p}.scale"])
        # QuantizeLinear takes a per-axis scale only as a 1-D tensor along one axis: quantize the
        # [rows, K] reshape with one scale per row, then give q the shape of x back.
        self.node("Shape", [x], [f"{p}.shape"])
        self.node("Reshape", [x, self.constant(f"per_row.rows{k}", np.array([-1, k], np.int64))], [f"{p}.rows"])
        self.node("Reshape", [f"{p}.scale", c["per_row.last"]], [f"{p}.scale_1d"])
        if asymmetric:
            self.node("Reshape", [f"{p}.zero_point", c["per_row.last"]], [f"{p}.zero_point_1d"])
            self.node("Cast", [f"{p}.zero_point_1d"], [f"{p}.zero_points"], to=TensorProto.UINT8)
        else:
            self.node("Shape", [f"{p}.scale_1d"], [f"{p}.n_rows"])
            self.node("Expand", [c["per_row.zp"], f"{p}.n_rows"], [f"{p}.zero_points"])
        self.node("QuantizeLinear", [f"{p}.rows", f"{p}.scale_1d", f"{p}.zero_points"], [f"{p}.q_rows"], axis=0)
        self.node("Reshape", [f"{p}.q_rows", f"{p}.shape"], [f"{p}.q"])
        self.rows[key] = (f"{p}.q", f"{p}.scale", f"{p}.zero_point" if asymmetric else None)
        return self.rows[key]

    def matmul(self, x: str, weight: str, w_scale: str, out: str, asymmetric: bool = False,
               base_dir=".") -> None:
        """``out = x @ dequant(weight)`` with per-row int8 ``x``; ``weight`` is symmetric int8 (zero
        points dropped), ``w_scale`` its per-column (or scalar) scale.

        Symmetric rows share the zero point 128, which the GEMM takes. Asymmetric rows have their
        own, which ORT's integer GEMMs do not take (a scalar only): the GEMM runs with zero point
        0 and ``z * s * colsum(dequant(weight))``, one scalar per row times one vector, is
        subtracted after it (on the output, the narrow side of the MatMul that reads GELU)."""
        q, s, zero_point = self.quantize_rows(x, int(self.inits[weight].dims[0]), asymmetric)
        # The row scale is the GEMM's A scale ([.., 1]); never a bias input with it (module docstring).
        inputs = [q, weight, s, w_scale] + ([] if asymmetric else [self.constant("per_row.zp", _CONSTANTS["per_row.zp"])])
        self.node("MatMulIntegerToFloat", inputs, [out if not asymmetric else f"{out}.scaled"], domain=MS)
        if not asymmetric:
            return
        sums = (self.weight(weight, base_dir).astype(np.float64).sum(axis=0)
                * self.weight(w_scale, base_dir).astype(np.float64))
        column_sums = self.constant(f"{weight}.dequantized_column_sums", sums.astype(np.float32))
        self.node("Mul", [s, zero_point], [f"{out}.row_offset"])
        self.node("Mul", [f"{out}.row_offset", column_sums], [f"{out}.offset"])
        self.node("Sub", [f"{out}.scaled", f"{out}.offset"], [out])


def _require_zero(g: _Graph, name: str, base_dir) -> None:
    """Per-row MatMuls assume symmetric weights: the quantizer's weight zero points are all 0."""
    if name and np.any(g.weight(name, base_dir)):
        raise ValueError(f"{name}: non-zero int8 weight zero points (expected symmetric QInt8 weights)")


def _dql(g: _Graph, dql_output: str) -> onnx.NodeProto:
    """The ``DynamicQuantizeLinear`` producing ``dql_output`` (its input is the float activation)."""
    dql = g.producer.get(dql_output)
    if dql is None or dql.op_type != "DynamicQuantizeLinear":
        raise ValueError(f"{dql_output}: expected a DynamicQuantizeLinear output")
    return dql


def _rewrite_matmul_integer(g: _Graph, mmi: onnx.NodeProto, base_dir) -> list[onnx.NodeProto]:
    """``DynamicQuantizeLinear → MatMulInteger → Cast → Mul(Mul(a_scale, w_scale))`` → per row."""
    cast = g.consumers(mmi.output[0])
    mul = g.consumers(cast[0].output[0]) if len(cast) == 1 and cast[0].op_type == "Cast" else []
    if len(mul) != 1 or mul[0].op_type != "Mul":
        raise ValueError(f"{mmi.name}: expected MatMulInteger → Cast → Mul (onnxruntime's dynamic quantization)")
    mul = mul[0]
    scales = g.producer.get(next(i for i in mul.input if i != cast[0].output[0]))
    if scales is None or scales.op_type != "Mul":
        raise ValueError(f"{mul.name}: expected its scale to be a Mul of the activation and weight scales")
    dql = _dql(g, mmi.input[0])
    others = [i for i in scales.input if i != dql.output[1]]
    if len(others) != 1 or others[0] not in g.inits:
        raise ValueError(f"{scales.name}: expected the activation scale times a weight-scale initializer")
    if len(mmi.input) > 3:
        _require_zero(g, mmi.input[3], base_dir)
    x, out = dql.input[0], mul.output[0]
    source = g.producer.get(x)
    g.matmul(x, mmi.input[1], others[0], out, source is not None and source.op_type in GELU_OPS, base_dir)
    return [mmi, cast[0], mul, scales]


def _rewrite_qattention(g: _Graph, node: onnx.NodeProto, base_dir) -> list[onnx.NodeProto]:
    """``QAttention`` → per-row int8 QKV projection + float ``MultiHeadAttention``."""
    inputs = list(node.input) + [""] * (9 - len(node.input))
    x_q, weight, bias, _, w_scale, mask, _, w_zero, past = inputs
    if past:
        raise ValueError(f"{node.name}: QAttention with past state is not supported")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("unidirectional", 0) or set(attrs) - {"num_heads", "unidirectional"}:
        raise ValueError(f"{node.name}: only bidirectional QAttention with num_heads is supported, got {attrs}")
    _require_zero(g, w_zero, base_dir)
    hidden = int(g.inits[weight].dims[1]) // 3
    out = node.output[0]
    g.matmul(_dql(g, x_q).input[0], weight, w_scale, f"{out}.qkv")
    split = g.constant(f"per_row.split{hidden}", np.array([hidden] * 3, np.int64))
    g.node("Split", [f"{out}.qkv", split], [f"{out}.q", f"{out}.k", f"{out}.v"], axis=-1)
    g.node("MultiHeadAttention", [f"{out}.q", f"{out}.k", f"{out}.v", bias, mask], [out], domain=MS,
           num_heads=attrs["num_heads"])
    g.added[-1].name = f"{node.name}.per_row"
    return [node]


def _rewrite_dqmm(g: _Graph, node: onnx.NodeProto, base_dir) -> list[onnx.NodeProto]:
    """``DynamicQuantizeMatMul(A, B, b_scale[, b_zero, bias])`` → per-row MatMul (+ bias)."""
    inputs = list(node.input) + [""] * (5 - len(node.input))
    a, weight, w_scale, w_zero, bias = inputs
    _require_zero(g, w_zero, base_dir)
    out = node.output[0]
    g.matmul(a, weight, w_scale, f"{out}.nobias" if bias else out)
    if bias:
        g.node("Add", [f"{out}.nobias", bias], [out])
    return [node]


REWRITES = {"MatMulInteger": _rewrite_matmul_integer, "QAttention": _rewrite_qattention,
            "DynamicQuantizeMatMul": _rewrite_dqmm}
#: Ops that quantize activations per tensor; none may remain after :func:`to_per_row`.
PER_TENSOR_OPS = ("DynamicQuantizeLinear", "QAttention", "DynamicQuantizeMatMul", "QGemm", "QLinearMatMul")


def to_per_row(model: onnx.ModelProto, base_dir=".") -> dict[str, int]:
    """Rewrites every int8 activation path of ``model`` in place to per-row scales.

    Args:
        model: An int8 graph from onnxruntime's ``quantize_dynamic`` (and :mod:`.head`).
        base_dir: Where its external data lives (weight zero points are read to check they are 0).

    Returns:
        How many nodes of each kind were rewritten (``MatMulInteger``, ``QAttention``,
        ``DynamicQuantizeMatMul``).

    Raises:
        ValueError: A pattern this pass does not know, or a per-tensor op left over.
    """
    g = _Graph(model)
    counts: dict[str, int] = {}
    new_nodes: list[onnx.NodeProto] = []
    removed: set[int] = set()
    for node in list(g.graph.node):
        if id(node) in removed:
            continue
        rewrite = REWRITES.get(node.op_type)
        if rewrite is None or node.domain not in ("", "ai.onnx", MS):
            new_nodes.append(node)
            continue
        g.added = []
        old = rewrite(g, node, base_dir)
        removed.update(id(n) for n in old)
        new_nodes = [n for n in new_nodes if id(n) not in removed] + g.added
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    used = {i for n in new_nodes for i in n.input}
    new_nodes = [n for n in new_nodes if not (n.op_type == "DynamicQuantizeLinear" and not used & set(n.output))]
    left = sorted({n.op_type for n in new_nodes if n.op_type in PER_TENSOR_OPS})
    if left:
        raise ValueError(f"per-tensor int8 ops left after the per-row pass: {', '.join(left)}")
    del g.graph.node[:]
    g.graph.node.extend(_topological(new_nodes, g.graph))
    _drop_unused_initializers(g.graph)
    return counts


def _topological(nodes: list[onnx.NodeProto], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Orders ``nodes`` so each comes after the producers of its inputs (ONNX requires it)."""
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(nodes), []
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            missing = sorted({i for n in rest for i in n.input if i not in ready})[:5]
            raise ValueError(f"per-row pass left a graph with unproduced inputs: {missing}")
        pending = rest
    return ordered


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """The per-tensor activation scales' leftovers (e.g. QAttention's unused zero points)."""
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
