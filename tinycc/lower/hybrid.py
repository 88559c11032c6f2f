"""Hybrid models (TFLite dynamic-range quantization: float32 activations, int8 weights):
FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D whose weights are int8 in an otherwise float
operator, as LiteRT computes them (kernels in tinycc.kernels.hybrid): the input quantized to
int8 per run, int32 sums, float scaling. Bit-exact with LiteRT (no libm). What LiteRT's
Prepare computes from the weights alone (row sums, per-channel scales) is a constant here.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels import hybrid as KH
from .common import Const, Kernel, LoweringContext, Scratch, activation_code, describe, kernel_name, window_padding
from .float32 import _activation, _clamp_note, _tensor


def is_hybrid(ctx: LoweringContext, op: Operator) -> bool:
    """int8 weights in a float operator; refused under --rounding double (TFLM has no hybrid
    kernels: it cannot allocate such a model)."""
    w = ctx.graph.tensor(op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
    hybrid = w is not None and w.is_const and w.dtype == "int8" and w.quant is not None
    if hybrid and ctx.mode == "double":
        raise UnsupportedOpError(op.kind, op.index, "a hybrid operator (int8 weights, float activations) under "
                                 "--rounding double: TFLM has no hybrid kernels; compile with --rounding litert")
    return hybrid


def _int8_weights(ctx, op, channels: int, axis_size: int):
    w = ctx.graph.tensor(op.inputs[1])
    if np.any(w.quant.zero_point != 0):
        raise UnsupportedOpError(op.kind, op.index, f"int8 weights '{w.name}' with a zero point")
    if w.quant.scale.size not in (1, channels) or axis_size != channels:
        raise UnsupportedOpError(op.kind, op.index, f"{w.quant.scale.size} weight scales for {channels} channels")
    per_channel = w.quant.scale.size > 1 and bool(np.any(w.quant.scale != w.quant.scale[0]))
    scale = np.broadcast_to(w.quant.scale.astype(np.float32), (channels,)).copy()
    return w, per_channel, scale


def _bias(ctx, op, channels: int):
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return None
    b = _tensor(ctx, op, op.inputs[2])
    if not b.is_const or b.size != channels:
        raise UnsupportedOpError(op.kind, op.index, f"bias '{b.name}' is not a constant of {channels} values")
    return b.data.reshape(-1).astype(np.float32)


def lower_fully_connected(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    w0 = ctx.graph.tensor(op.inputs[1])
    if len(w0.shape) != 2 or op.options.get("weights_format", 0) != 0:
        raise UnsupportedOpError(op.kind, op.index, "expects 2-D int8 weights in the default format")
    units, depth = w0.shape
    if x.size % depth:
        raise UnsupportedOpError(op.kind, op.index, f"input of {x.size} values for depth {depth}")
    w, per_channel, scale = _int8_weights(ctx, op, units, units)
    activation_code(op)
    batch = x.size // depth
    asym = bool(op.options.get("asymmetric_quantize_inputs", False))
    bias = _bias(ctx, op, units)
    lo, hi = _activation(op)
    name = kernel_name(ctx, op)
    func = KH.fully_connected(batch, depth, units, asym, bias is not None, lo, hi)
    args = [x.index, Const(f"{name}_weights", w.data), Const(f"{name}_bias", np.zeros(units, np.float32)
                                                              if bias is None else bias),
            Const(f"{name}_scale", scale), Const(f"{name}_row_sums", w.data.astype(np.int32).sum(axis=1).astype(np.int32)),
            Scratch(f"{name}_scratch", np.zeros(depth, np.int8))]
    notes = [describe(ctx.graph, op), f"hybrid: float input quantized per batch to int8 "
             f"({'asymmetric' if asym else 'symmetric'}), int8 weights ({'per-channel' if per_channel else 'per-tensor'}), "
             f"int32 sums scaled to float; {batch} x {depth} -> {units}; {_clamp_note(lo, hi)}"]
    k = Kernel(name, op, func, args, out.index, batch * depth * units, notes)
    k.scratch_bytes = depth
    return k


def lower_conv(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    w0 = ctx.graph.tensor(op.inputs[1])
    if len(x.shape) != 4 or len(w0.shape) != 4 or x.shape[0] != 1:
        raise UnsupportedOpError(op.kind, op.index, "expects a batch-1 NHWC input and a 4-D int8 filter")
    _, h, wd, c = x.shape
    _, oh, ow, oc = out.shape
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    if depthwise:
        mult = oc // c
        if mult * c != oc or w0.shape[3] != oc:
            raise UnsupportedOpError(op.kind, op.index, f"channels {c} -> {oc} with filter {w0.shape}")
        w, per_channel, scale = _int8_weights(ctx, op, oc, w0.shape[3])
        if w.quant.scale.size != oc:  # DepthwiseConvHybridPerChannel reads one scale per channel
            raise UnsupportedOpError(op.kind, op.index, "hybrid depthwise weights with one scale (LiteRT needs one "
                                     "per channel)")
    else:
        mult = 0
        if w0.shape[3] != c or w0.shape[0] != oc:
            raise UnsupportedOpError(op.kind, op.index, f"filter {w0.shape} does not match input {x.shape} "
                                     "(grouped hybrid convolutions are not supported)")
        w, per_channel, scale = _int8_weights(ctx, op, oc, w0.shape[0])
    kh, kw = w.shape[1], w.shape[2]
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    dh, dw = op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)
    pt, pl = window_padding(op, (h, wd), (kh, kw), (sh, sw), (dh, dw), (oh, ow))
    bias = _bias(ctx, op, oc)
    lo, hi = _activation(op)
    name = kernel_name(ctx, op)
    func = KH.conv2d(x.shape, w.shape, out.shape, (sh, sw), (dh, dw), (pt, pl), mult, per_channel, lo, hi)
    args = [x.index, Const(f"{name}_weights", w.data),
            Const(f"{name}_bias", np.zeros(oc, np.float32) if bias is None else bias), Const(f"{name}_scale", scale),
            Scratch(f"{name}_scratch", np.zeros(x.size, np.int8))]
    how = ("DepthwiseConvHybridPerChannel, asymmetric input" if depthwise else
           "HybridConvPerChannel, asymmetric input" if per_channel else "HybridConv, symmetric input")
    notes = [describe(ctx.graph, op), f"hybrid ({how}): kernel {kh}x{kw}, stride {sh}x{sw}, dilation {dh}x{dw}, "
             f"padding top {pt} left {pl}; int32 sums scaled to float; {_clamp_note(lo, hi)}"]
    macs = oh * ow * oc * kh * kw * (1 if depthwise else c)
    k = Kernel(name, op, func, args, out.index, macs, notes)
    k.scratch_bytes = x.size
    return k
