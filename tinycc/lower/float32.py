"""Float32 lowering: the arithmetic operators of a float model, each one float kernel
(tinycc.kernels.float32) with its fused activation. The byte-moving operators (PAD,
CONCATENATION, SLICE, TRANSPOSE, SPLIT, RESHAPE, ...) need no float version: their lowerings
in layout.py and shape.py move elements of any type.

`lower` sends an operator here when every tensor it reads or writes (constants aside) is
float32. What TFLite's Prepare computes for a float kernel is only geometry (padding) and
the activation bounds; there is no quantization to fold.
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from ..errors import UnsupportedOpError
from ..ir import Graph, Operator
from ..kernels import float32 as KF
from .arithmetic import _check_shapes
from .common import (
    Const,
    Kernel,
    LoweringContext,
    activation_code,
    describe,
    kernel_name,
    window_padding,
)
from .reduce import _axes, _kept_shape

F32 = "float32"
# expf, tanhf, logf, cosf, sinf: rounded as the target's C library does (sqrtf, floorf, fmodf... are exact)
LIBM_OPS = ("LOGISTIC", "TANH", "SOFTMAX", "EXP", "LOG", "COS", "SIN", "LOG_SOFTMAX", "UNIDIRECTIONAL_SEQUENCE_LSTM")
# CalculateActivationRange for float: (lo, hi), None for the end of the float range
ACTIVATION_RANGE = {0: (None, None), 1: (0.0, None), 2: (-1.0, 1.0), 3: (0.0, 6.0)}


def is_float(graph: Graph, op: Operator) -> bool:
    """Every tensor the operator computes on (constants aside) is float32."""
    ids = [i for i in op.inputs if i >= 0 and not graph.tensor(i).is_const] + list(op.outputs)
    return bool(ids) and all(graph.tensor(i).dtype == F32 for i in ids)


def _tensor(ctx, op, index: int):
    t = ctx.graph.tensor(index)
    if t.dtype != F32:
        raise UnsupportedOpError(op.kind, op.index, f"tensor '{t.name}' is {t.dtype} in a float32 operator")
    return t


def _arg(ctx, op, t, what: str):
    """A kernel argument: the tensor index, or a Const for a constant operand."""
    return Const(f"{kernel_name(ctx, op)}_{what}", t.data.astype(np.float32)) if t.is_const else t.index


def _activation(op) -> tuple[float | None, float | None]:
    return ACTIVATION_RANGE[activation_code(op)]


def _clamp_note(lo, hi) -> str:
    if lo is None and hi is None:
        return "no fused activation"
    return f"clamped to [{'-FLT_MAX' if lo is None else f'{lo:g}'}, {'FLT_MAX' if hi is None else f'{hi:g}'}]"


def _bias(ctx, op, channels: int) -> np.ndarray:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return np.zeros(channels, np.float32)  # adding 0 changes no sum
    b = _tensor(ctx, op, op.inputs[2])
    if not b.is_const or b.size != channels:
        raise UnsupportedOpError(op.kind, op.index, f"bias '{b.name}' is not a constant of {channels} values")
    return b.data.reshape(-1).astype(np.float32)


def _weights(ctx, op, index: int):
    t = ctx.graph.tensor(index)
    if t.dtype == "int8" and t.quant is not None:
        raise UnsupportedOpError(op.kind, op.index, f"its weights '{t.name}' are int8 in a float32 operator: "
                                 "dynamic-range (hybrid) quantization, which tinycc compiles for FULLY_CONNECTED, "
                                 "CONV_2D and DEPTHWISE_CONV_2D only; convert the model fully to int8 (with a "
                                 "representative dataset) or keep it float32")
    w = _tensor(ctx, op, index)
    if not w.is_const:
        raise UnsupportedOpError(op.kind, op.index, f"its weights '{w.name}' are not a constant")
    return w


def _kernel(ctx, op, func, args, out, note: str, macs: int = 0) -> Kernel:
    return Kernel(kernel_name(ctx, op), op, func, args, out.index, macs, [describe(ctx.graph, op), note])


def lower_conv(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    w = _weights(ctx, op, op.inputs[1])
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise UnsupportedOpError(op.kind, op.index, "expects a 4-D NHWC input and a 4-D filter")
    n, h, wd, c = x.shape
    if n != 1:  # the float convolution loops take one image
        raise UnsupportedOpError(op.kind, op.index, f"a batch of {n} images (float32 convolutions take one)")
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[1], w.shape[2]
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    dh, dw = op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)
    pt, pl = window_padding(op, (h, wd), (kh, kw), (sh, sw), (dh, dw), (oh, ow))
    if op.kind == "DEPTHWISE_CONV_2D":
        mult = oc // c
        if mult * c != oc or w.shape[3] != oc:
            raise UnsupportedOpError(op.kind, op.index, f"channels {c} -> {oc} with filter {w.shape}")
        macs = oh * ow * oc * kh * kw
    else:
        if w.shape[3] != c or w.shape[0] != oc:
            raise UnsupportedOpError(op.kind, op.index, f"filter {w.shape} does not match input {x.shape}")
        mult, macs = 0, oh * ow * oc * kh * kw * c
    lo, hi = _activation(op)
    func = KF.conv2d(x.shape, w.shape, out.shape, (sh, sw), (dh, dw), (pt, pl), mult, lo, hi)
    name = kernel_name(ctx, op)
    args = [x.index, Const(f"{name}_weights", w.data.astype(np.float32)), Const(f"{name}_bias", _bias(ctx, op, oc))]
    note = (f"float32; kernel {kh}x{kw}, stride {sh}x{sw}, dilation {dh}x{dw}, padding top {pt} left {pl}; "
            f"{_clamp_note(lo, hi)}")
    return _kernel(ctx, op, func, args, out, note, macs)


def lower_fully_connected(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    w = _weights(ctx, op, op.inputs[1])
    if len(w.shape) != 2 or op.options.get("weights_format", 0) != 0:
        raise UnsupportedOpError(op.kind, op.index, "expects 2-D weights in the default format")
    units, depth = w.shape
    if x.size % depth:
        raise UnsupportedOpError(op.kind, op.index, f"input of {x.size} values for depth {depth}")
    batch = x.size // depth
    lo, hi = _activation(op)
    name = kernel_name(ctx, op)
    args = [x.index, Const(f"{name}_weights", w.data.astype(np.float32)), Const(f"{name}_bias", _bias(ctx, op, units))]
    return _kernel(ctx, op, KF.fully_connected(batch, depth, units, lo, hi), args, out,
                   f"float32; {batch} x {depth} -> {units}; {_clamp_note(lo, hi)}", batch * depth * units)


def pool_geometry(ctx: LoweringContext, op: Operator):
    """A 2-D pool's input and output tensors, window, strides and padding (top, left)."""
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    if len(x.shape) != 4:
        raise UnsupportedOpError(op.kind, op.index, f"{len(x.shape)}-D input")
    window = op.options["filter_height"], op.options["filter_width"]
    stride = op.options["stride_h"], op.options["stride_w"]
    pad = window_padding(op, x.shape[1:3], window, stride, (1, 1), out.shape[1:3])
    return x, out, window, stride, pad


def lower_pool(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out, (fh, fw), (sh, sw), (pt, pl) = pool_geometry(ctx, op)
    _, oh, ow, c = out.shape
    average = op.kind == "AVERAGE_POOL_2D"
    builder = KF.average_pool if average else KF.max_pool
    func = builder(x.shape, out.shape, (fh, fw), (sh, sw), (pt, pl), *_activation(op))
    note = f"float32; window {fh}x{fw}, stride {sh}x{sw}, padding top {pt} left {pl}"
    return _kernel(ctx, op, func, [x.index], out, note, oh * ow * c * fh * fw if average else 0)


def _binary_fn(op):
    fn = {"ADD": lambda a, b: a + b, "SUB": lambda a, b: a - b, "MUL": lambda a, b: a * b,
          "MAXIMUM": tirx.max, "MINIMUM": tirx.min,
          # BroadcastPrelu4DSlowFloat: x >= 0 ? x : x * alpha
          "PRELU": lambda v, alpha: tirx.Select(v >= KF.f32(0.0), v, v * alpha)}[op.kind]
    if op.kind in ("ADD", "SUB", "MUL"):  # the ones with a fused activation
        return lambda a, b: KF.clamp(fn(a, b), *_activation(op))
    return fn


def lower_binary(ctx: LoweringContext, op: Operator) -> Kernel:
    a, b = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.inputs[1])
    out = _tensor(ctx, op, op.outputs[0])
    _check_shapes(op, a, b, out)
    func = KF.elementwise(a.shape, b.shape, out.shape, _binary_fn(op))
    args = [_arg(ctx, op, a, "operand0"), _arg(ctx, op, b, "operand1")]
    return _kernel(ctx, op, func, args, out, f"float32 {op.kind.lower()}, broadcast {a.shape} and {b.shape}")


def _unary_fn(op):
    f = KF.f32
    kind = op.kind
    if kind == "LEAKY_RELU":
        alpha = float(np.float32(op.options.get("alpha", 0.2)))
        return lambda v: tirx.Select(v > f(0.0), v, v * f(alpha))
    return {"RELU": lambda v: tirx.max(f(0.0), v),
            "RELU6": lambda v: tirx.min(tirx.max(v, f(0.0)), f(6.0)),
            "RELU_N1_TO_1": lambda v: tirx.min(tirx.max(v, f(-1.0)), f(1.0)),
            "HARD_SWISH": KF.hard_swish, "LOGISTIC": KF.logistic, "TANH": tirx.tanh}[kind]


def lower_unary(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    if x.size != out.size:
        raise UnsupportedOpError(op.kind, op.index, f"{x.shape} -> {out.shape}")
    libm = " (libm: expf)" if op.kind == "LOGISTIC" else " (libm: tanhf)" if op.kind == "TANH" else ""
    return _kernel(ctx, op, KF.unary(x.size, _unary_fn(op)), [x.index], out, f"float32 {op.kind.lower()}{libm}")


def lower_softmax(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    beta = float(np.float32(op.options.get("beta", 1.0)))
    depth = x.shape[-1] if x.shape else 1
    func = KF.softmax(x.size // depth, depth, beta)
    return _kernel(ctx, op, func, [x.index], out, f"float32 softmax over {depth} values, beta {beta} (libm: expf)")


def lower_reduce(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    axes = _axes(ctx, op, len(x.shape))
    func = KF.reduce(x.shape, axes, _kept_shape(x.shape, axes), op.kind)
    what = "mean" if op.kind == "MEAN" else "maximum"
    return _kernel(ctx, op, func, [x.index], out, f"float32 {what} over axes {axes}")


LOWERINGS = {
    "CONV_2D": lower_conv, "DEPTHWISE_CONV_2D": lower_conv, "FULLY_CONNECTED": lower_fully_connected,
    "AVERAGE_POOL_2D": lower_pool, "MAX_POOL_2D": lower_pool,
    **{k: lower_binary for k in ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "PRELU")},
    **{k: lower_unary for k in ("RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "HARD_SWISH", "LOGISTIC", "TANH")},
    "SOFTMAX": lower_softmax, "MEAN": lower_reduce, "REDUCE_MAX": lower_reduce,
}
