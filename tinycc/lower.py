"""Integer lowering: each TFLite operator becomes one fused integer kernel.

`LOWERINGS` maps an operator name to a function that checks the operator, computes
everything TFLite's `Prepare` would compute (multipliers, shifts, folded biases, padding,
activation bounds, lookup tables) and returns a `Kernel` whose PrimFunc does only the
arithmetic. Adding an operator is one entry here, a builder in kernels.py and a test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from . import kernels as K
from . import quant
from .errors import UnsupportedOpError
from .ir import Graph, Operator, Tensor

SAME, VALID = 0, 1


@dataclass
class Const:
    """A compile-time array the kernel reads (weights, folded bias, multipliers, tables)."""

    name: str
    array: np.ndarray


@dataclass
class Kernel:
    name: str  # C function name
    op: Operator
    func: object  # tvm.tirx.PrimFunc
    inputs: list  # tensor indices and Const objects, in parameter order
    output: int  # tensor index
    macs: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Alias:
    """An operator that only reinterprets its input (RESHAPE): no kernel, same bytes."""

    op: Operator
    source: int
    target: int


# How LiteRT 2.3's BUILTIN_REF kernels requantize, measured layer by layer against it: its
# convolutions round twice (gemmlowp), its fully-connected layer once (ruy's rounding), and
# its int8 softmax computes in float. "double" is TFLM and CMSIS-NN everywhere.
LITERT_ROUNDING = {"CONV_2D": "double", "DEPTHWISE_CONV_2D": "double",
                   "FULLY_CONNECTED": "single", "ADD": "double", "SOFTMAX": "float"}


@dataclass
class LoweringContext:
    graph: Graph
    prefix: str
    mode: str = "litert"

    def rounding(self, op: Operator) -> str:
        if self.mode == "litert":
            return LITERT_ROUNDING.get(op.kind, "double")
        return self.mode


def lower(graph: Graph, prefix: str, rounding: str = "litert") -> list:
    ctx = LoweringContext(graph, prefix, rounding)
    steps = []
    for op in graph.operators:
        fn = LOWERINGS.get(op.kind)
        if fn is None:
            raise UnsupportedOpError(op.kind, op.index, "tinycc has no lowering for it")
        steps.append(fn(ctx, op))
    return steps


# --- helpers --------------------------------------------------------------------------------

def _snake(kind: str) -> str:
    return {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d",
            "AVERAGE_POOL_2D": "average_pool2d"}.get(kind, kind.lower())


def kernel_name(ctx: LoweringContext, op: Operator) -> str:
    return f"{ctx.prefix}_{_snake(op.kind)}_{op.index}"


def _act(ctx, op, t: Tensor) -> Tensor:
    if t.dtype != "int8" or t.quant is None:
        raise UnsupportedOpError(op.kind, op.index,
                                 f"tensor '{t.name}' is {t.dtype}{'' if t.quant else ' without quantization'}; "
                                 "only int8 quantized activations are supported")
    if t.quant.per_channel:
        raise UnsupportedOpError(op.kind, op.index, f"activation '{t.name}' is quantized per channel")
    return t


def _const(ctx, op, index: int, what: str, dtype: str) -> Tensor:
    t = ctx.graph.tensor(index)
    if not t.is_const:
        raise UnsupportedOpError(op.kind, op.index, f"its {what} '{t.name}' is not a constant")
    if t.dtype != dtype:
        raise UnsupportedOpError(op.kind, op.index, f"its {what} is {t.dtype}, expected {dtype}")
    return t


def _activation_code(op) -> int:
    code = op.options.get("fused_activation_function", 0)
    if code not in (0, 1, 2, 3):
        raise UnsupportedOpError(op.kind, op.index, f"fused activation code {code}")
    return code


def _padding(kind: int, in_size: int, filt: int, stride: int, dilation: int, out_size: int) -> int:
    """TFLite's ComputePadding: the leading pad; the rest of any SAME pad goes at the end."""
    if kind == VALID:
        return 0
    effective = (filt - 1) * dilation + 1
    return max(((out_size - 1) * stride + effective - in_size) // 2, 0)


def _requant(ctx, op, in_t, w_t, out_t, channels: int) -> tuple[K.Requant, list[Const], str]:
    """Per-channel multipliers from input scale * filter scale / output scale (in double,
    as PopulateConvolutionQuantizationParams does); one pair of ints when all agree."""
    in_scale, _ = in_t.quant.scalar()
    out_scale, out_zp = out_t.quant.scalar()
    w_scales = w_t.quant.scale
    if np.any(w_t.quant.zero_point != 0):
        raise UnsupportedOpError(op.kind, op.index, "weights with a non-zero zero point")
    if w_scales.size not in (1, channels):
        raise UnsupportedOpError(op.kind, op.index, f"{w_scales.size} weight scales for {channels} channels")
    pairs = [quant.quantize_multiplier(float(in_scale) * float(s) / float(out_scale), ctx.rounding(op))
             for s in np.broadcast_to(w_scales, (channels,))]
    lo, hi = quant.activation_range(_activation_code(op), out_scale, out_zp)
    name = kernel_name(ctx, op)
    if len(set(pairs)) == 1:
        m, s = pairs[0]
        return K.Requant(False, m, s, out_zp, lo, hi, ctx.rounding(op)), [], f"multiplier {m}, shift {s}"
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    rq = K.Requant(True, 0, 0, out_zp, lo, hi, ctx.rounding(op))
    return rq, [Const(f"{name}_multiplier", mult), Const(f"{name}_shift", shift)], "per-channel multipliers"


def _folded_bias(ctx, op, bias_index: int, weights: np.ndarray, in_zp: int, channels: int) -> np.ndarray:
    """bias - input_zero_point * sum(weights) per output channel, checked to fit int32."""
    bias = np.zeros(channels, dtype=np.int64)
    if bias_index >= 0:
        bias += _const(ctx, op, bias_index, "bias", "int32").data.astype(np.int64).reshape(-1)
    folded = bias - in_zp * weights
    if np.any(folded > quant.INT32_MAX) or np.any(folded < quant.INT32_MIN):
        raise UnsupportedOpError(op.kind, op.index, "the folded bias overflows int32")
    return folded.astype(np.int32)


def _describe(graph: Graph, op: Operator) -> str:
    def t(i):
        ten = graph.tensor(i)
        name = ten.name.split(";")[0].replace("*/", "* /")  # TFLite joins fused names with ';'
        return f"{name} {'x'.join(map(str, ten.shape))}"
    ins = [i for i in op.inputs if i >= 0 and not graph.tensor(i).is_const]
    return f"{op.kind} #{op.index}: " + ", ".join(t(i) for i in ins) + " -> " + t(op.outputs[0])


# --- lowerings ------------------------------------------------------------------------------

def lower_conv(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    x = _act(ctx, op, g.tensor(op.inputs[0]))
    w = _const(ctx, op, op.inputs[1], "filter", "int8")
    out = _act(ctx, op, g.tensor(op.outputs[0]))
    if len(x.shape) != 4 or len(w.shape) != 4 or w.quant is None:
        raise UnsupportedOpError(op.kind, op.index, "expects 4-D NHWC input and a quantized 4-D filter")
    n, h, wd, c = x.shape
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[1], w.shape[2]
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    dh, dw = op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)
    pad = op.options.get("padding", SAME)
    pt = _padding(pad, h, kh, sh, dh, oh)
    pl = _padding(pad, wd, kw, sw, dw, ow)
    in_zp = x.quant.scalar()[1]
    rq, rq_consts, rq_note = _requant(ctx, op, x, w, out, oc)
    if depthwise:
        mult = oc // c
        if mult * c != oc or w.shape[3] != oc:
            raise UnsupportedOpError(op.kind, op.index, f"channels {c} -> {oc} with filter {w.shape}")
        wsum = w.data.astype(np.int64).sum(axis=(0, 1, 2))
        macs = oh * ow * oc * kh * kw
    else:
        if w.shape[3] != c or w.shape[0] != oc:
            raise UnsupportedOpError(op.kind, op.index, f"filter {w.shape} does not match input {x.shape}")
        mult = 0
        wsum = w.data.astype(np.int64).sum(axis=(1, 2, 3))
        macs = oh * ow * oc * kh * kw * c
    bias = _folded_bias(ctx, op, op.inputs[2] if len(op.inputs) > 2 else -1, wsum, in_zp, oc)
    name = kernel_name(ctx, op)
    func = K.conv2d(x.shape, w.shape, out.shape, (sh, sw), (dh, dw), (pt, pl), in_zp, rq, mult)
    consts = [Const(f"{name}_weights", w.data), Const(f"{name}_bias", bias), *rq_consts]
    notes = [_describe(g, op), f"kernel {kh}x{kw}, stride {sh}x{sw}, dilation {dh}x{dw}, "
             f"padding top {pt} left {pl}; input zero point {in_zp} folded into the bias; {rq_note}"]
    return Kernel(name, op, func, [x.index, *consts], out.index, macs, notes)


def lower_fully_connected(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = _act(ctx, op, g.tensor(op.inputs[0]))
    w = _const(ctx, op, op.inputs[1], "weights", "int8")
    out = _act(ctx, op, g.tensor(op.outputs[0]))
    if w.quant is None or len(w.shape) != 2:
        raise UnsupportedOpError(op.kind, op.index, "expects quantized 2-D int8 weights")
    if op.options.get("weights_format", 0) != 0:
        raise UnsupportedOpError(op.kind, op.index, "shuffled weights format")
    units, depth = w.shape
    if x.size % depth:
        raise UnsupportedOpError(op.kind, op.index, f"input of {x.size} values for depth {depth}")
    batch = x.size // depth
    in_zp = x.quant.scalar()[1]
    rq, rq_consts, rq_note = _requant(ctx, op, x, w, out, units)
    bias = _folded_bias(ctx, op, op.inputs[2] if len(op.inputs) > 2 else -1,
                        w.data.astype(np.int64).sum(axis=1), in_zp, units)
    name = kernel_name(ctx, op)
    func = K.fully_connected(batch, depth, units, rq)
    consts = [Const(f"{name}_weights", w.data), Const(f"{name}_bias", bias), *rq_consts]
    notes = [_describe(g, op), f"{batch} x {depth} -> {units}; input zero point {in_zp} folded "
             f"into the bias; {rq_note}"]
    return Kernel(name, op, func, [x.index, *consts], out.index, batch * depth * units, notes)


def lower_average_pool(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = _act(ctx, op, g.tensor(op.inputs[0]))
    out = _act(ctx, op, g.tensor(op.outputs[0]))
    if x.quant.scalar() != out.quant.scalar():
        raise UnsupportedOpError(op.kind, op.index, "input and output quantization differ")
    n, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    fh, fw = op.options["filter_height"], op.options["filter_width"]
    sh, sw = op.options["stride_h"], op.options["stride_w"]
    pad = op.options.get("padding", SAME)
    pt, pl = _padding(pad, h, fh, sh, 1, oh), _padding(pad, w, fw, sw, 1, ow)
    scale, zp = out.quant.scalar()
    lo, hi = quant.activation_range(_activation_code(op), scale, zp)
    func = K.average_pool(x.shape, out.shape, (fh, fw), (sh, sw), (pt, pl), lo, hi)
    notes = [_describe(g, op), f"window {fh}x{fw}, stride {sh}x{sw}, padding top {pt} left {pl}"]
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, oh * ow * c * fh * fw, notes)


def lower_add(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    a = _act(ctx, op, g.tensor(op.inputs[0]))
    b = _act(ctx, op, g.tensor(op.inputs[1]))
    out = _act(ctx, op, g.tensor(op.outputs[0]))
    if a.shape != b.shape or a.shape != out.shape:
        raise UnsupportedOpError(op.kind, op.index, f"broadcasting {a.shape} + {b.shape}")
    (sa, za), (sb, zb), (so, zo) = a.quant.scalar(), b.quant.scalar(), out.quant.scalar()
    twice_max = float(np.float32(2) * max(sa, sb))  # float, as in TFLite's Prepare
    r = ctx.rounding(op)
    m1, s1 = quant.quantize_multiplier(float(sa) / twice_max, r)
    m2, s2 = quant.quantize_multiplier(float(sb) / twice_max, r)
    mo, so_ = quant.quantize_multiplier(twice_max / ((1 << 20) * float(so)), r)
    lo, hi = quant.activation_range(_activation_code(op), so, zo)
    func = K.add(a.size, za, zb, m1, s1, m2, s2, mo, so_, zo, lo, hi, r)
    notes = [_describe(g, op), "inputs shifted left by 20, rescaled to twice the larger scale"]
    return Kernel(kernel_name(ctx, op), op, func, [a.index, b.index], out.index, 0, notes)


def lower_softmax(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = _act(ctx, op, g.tensor(op.inputs[0]))
    out = _act(ctx, op, g.tensor(op.outputs[0]))
    beta = float(op.options.get("beta", 1.0))
    depth = x.shape[-1]
    outer = x.size // depth
    in_scale, _ = x.quant.scalar()
    out_scale, out_zp = out.quant.scalar()
    name = kernel_name(ctx, op)
    if ctx.rounding(op) == "float":
        if float(out_scale) != 1.0 / 256:
            raise UnsupportedOpError(op.kind, op.index, "output scale other than 1/256")
        table = quant.softmax_float_table(beta, in_scale)
        func = K.softmax_float_table(outer, depth, out_zp)
        note = ("LiteRT's int8 softmax: expf table and float32 normalisation, "
                "as optimized_ops::Softmax computes it")
    else:
        if float(out_scale) != 1.0 / 256 or out_zp != -128:
            raise UnsupportedOpError(op.kind, op.index, "output quantization other than 1/256, -128")
        table = quant.softmax_exp_table(beta, in_scale, ctx.rounding(op))
        func = K.softmax_fixed_point(outer, depth)
        note = "TFLite's reference integer softmax (gemmlowp fixed point), as TFLM runs it"
    notes = [_describe(g, op), f"beta {beta}; {note}"]
    return Kernel(name, op, func, [x.index, Const(f"{name}_exp_table", table)], out.index, 0, notes)


def lower_reshape(ctx: LoweringContext, op: Operator) -> Alias:
    g = ctx.graph
    src, dst = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if src.size != dst.size or src.dtype != dst.dtype:
        raise UnsupportedOpError(op.kind, op.index, f"reshape {src.shape} -> {dst.shape}")
    return Alias(op, src.index, dst.index)


LOWERINGS = {
    "CONV_2D": lower_conv,
    "DEPTHWISE_CONV_2D": lower_conv,
    "FULLY_CONNECTED": lower_fully_connected,
    "AVERAGE_POOL_2D": lower_average_pool,
    "ADD": lower_add,
    "SOFTMAX": lower_softmax,
    "RESHAPE": lower_reshape,
}


def c_identifier(text: str) -> str:
    ident = re.sub(r"\W", "_", text).strip("_").lower() or "model"
    return ident if not ident[0].isdigit() else f"m_{ident}"
