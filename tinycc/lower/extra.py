"""More of TFLM's op resolver in int8 (and int16, for the byte moves): MIRROR_PAD, PACK,
UNPACK, GATHER (byte gathers, as layout.py's) and REDUCE_MIN (the REDUCE_MAX reduction with
min), where every output value is an input value; SQUARED_DIFFERENCE (TFLite's int8 kernel:
inputs shifted left by 7, rescaled to twice the larger scale, the difference squared and
requantized); ABS and ELU as 256-entry tables.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tvm import te, tirx

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels.conv import schedule_reduction
from ..kernels.fixedpoint import I32, clamp_i8, requantize
from ..kernels.reduce import _reduce
from . import arithmetic, layout, reduce
from .common import Const, Kernel, LoweringContext, activation_code, const, describe, kernel_name
from .layout import _data as act
from .layout import _kernel, _same_quant


def lower_mirror_pad(ctx: LoweringContext, op: Operator) -> Kernel:
    """MirrorPad: REFLECT (mode 0) mirrors around the edge value, SYMMETRIC (1) repeats it."""
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    pads = const(ctx, op, op.inputs[1], "paddings", g.tensor(op.inputs[1]).dtype).data.reshape(-1, 2)
    symmetric = op.options.get("mode", 0) == 1
    before = [int(p) for p in pads[:, 0]]
    if any(int(p) > d - (0 if symmetric else 1) for row, d in zip(pads, x.shape) for p in row):
        raise UnsupportedOpError(op.kind, op.index, f"paddings {pads.tolist()} wider than the input {x.shape}")

    def mirror(i, b, d):
        s = i - b
        low = -s - 1 if symmetric else -s
        high = 2 * d - 1 - s if symmetric else 2 * (d - 1) - s
        return tirx.Select(s < 0, low, tirx.Select(s >= d, high, s))

    def index(ins, idx):
        return ins[0][tuple(mirror(i, b, d) for i, b, d in zip(idx, before, x.shape))]
    return _kernel(ctx, op, [x], out, index, f"{'symmetric' if symmetric else 'reflect'} padding {pads.tolist()}")


def lower_pack(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    out = g.tensor(op.outputs[0])
    if layout._folded(ctx, op):  # shape arithmetic
        return layout._fold_unsupported(ctx, op)
    out = act(ctx, op, out)
    ins = [act(ctx, op, g.tensor(i)) for i in op.inputs]
    for t in ins:
        _same_quant(op, t, out)
    axis = op.options.get("axis", 0) % len(out.shape)

    def index(phs, idx):
        value = None
        for k in range(len(ins)):
            src = tuple(idx[:axis] + idx[axis + 1:]) or (0,)
            v = phs[k][src]
            value = v if value is None else tirx.if_then_else(idx[axis] == k, v, value)
        return value
    return _kernel(ctx, op, ins, out, index, f"{len(ins)} inputs stacked along axis {axis}")


def lower_unpack(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = act(ctx, op, g.tensor(op.inputs[0]))
    axis = op.options.get("axis", 0) % len(x.shape)
    steps = []
    for k, o in enumerate(op.outputs):
        out = act(ctx, op, g.tensor(o))
        _same_quant(op, x, out)

        def index(ins, idx, k=k):
            src = list(idx) if out.shape else []
            return ins[0][tuple(src[:axis] + [k] + src[axis:])]
        steps.append(_kernel(ctx, op, [x], out, index, f"part {k} of {len(op.outputs)} along axis {axis}", f"_{k}"))
    return steps


def lower_gather(ctx: LoweringContext, op: Operator) -> Kernel:
    """GATHER (batch_dims 0): constant indices become a constant array the kernel reads (an
    index out of range is refused at compile time); indices computed at run time (an
    embedding's ids) are clamped into range in the kernel, where TFLite fails the invoke."""
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    idx_t = g.tensor(op.inputs[1])
    if idx_t.dtype not in ("int32", "int64") or op.options.get("batch_dims", 0):
        raise UnsupportedOpError(op.kind, op.index, "indices must be an int32 tensor (batch_dims 0)")
    axis = op.options.get("axis", 0) % len(x.shape)
    r = len(idx_t.shape)  # 0 for a scalar index: the axis disappears
    shape = idx_t.shape or (1,)
    if idx_t.is_const:
        indices = idx_t.data.astype("int32")
        if indices.size and (indices.min() < 0 or indices.max() >= x.shape[axis]):
            raise UnsupportedOpError(op.kind, op.index, f"an index outside 0..{x.shape[axis] - 1}")
        idx_t = dataclasses.replace(idx_t, data=indices.reshape(shape), dtype="int32", shape=shape)
        note = f"indices {indices.reshape(-1).tolist()[:16]} along axis {axis}"
    else:
        idx_t = dataclasses.replace(idx_t, shape=shape)
        note = f"indices computed at run time, clamped to 0..{x.shape[axis] - 1}, along axis {axis}"

    def index(ins, idx):
        picked = ins[1][tuple(idx[axis:axis + r]) or (0,)].astype("int32")
        if not idx_t.is_const:
            picked = tirx.max(tirx.min(picked, tirx.const(x.shape[axis] - 1, "int32")), tirx.const(0, "int32"))
        return ins[0][tuple(idx[:axis]) + (picked,) + tuple(idx[axis + r:])]
    return _kernel(ctx, op, [x, idx_t], out, index, note)


def lower_elu(ctx: LoweringContext, op: Operator) -> Kernel:
    """ELU: a 256-entry table filled in float32 as TFLM's Prepare fills it (expf(x) - 1), so no
    float is left for run time. LiteRT has no int8 ELU kernel (version 2) in either resolver:
    TFLM is the reference with either rounding."""
    from .activations import F32, _libm, float_lut_table
    from .common import act as act8
    g = ctx.graph
    x, out = act8(ctx, op, g.tensor(op.inputs[0])), act8(ctx, op, g.tensor(op.outputs[0]))

    def fn(v):
        return v if v >= 0 else F32(F32(_libm.expf(float(v))) - F32(1.0))
    (si, zi), (so, zo) = x.quant.scalar(), out.quant.scalar()
    table = float_lut_table(si, zi, so, zo, fn)
    name = kernel_name(ctx, op)
    return Kernel(name, op, K.lut(x.size), [x.index, Const(f"{name}_table", table)], out.index, 0,
                  [describe(g, op), "256-entry table filled in float32 at compile time: expf(x) - 1, as TFLM"])


def lower_abs(ctx: LoweringContext, op: Operator) -> Kernel:
    """ABS: |x - zi| requantized to the output scale (elementwise.cc's AbsEval), a table."""
    from .common import act as act8
    g = ctx.graph
    x, out = act8(ctx, op, g.tensor(op.inputs[0])), act8(ctx, op, g.tensor(op.outputs[0]))
    (si, zi), (so, zo) = x.quant.scalar(), out.quant.scalar()
    r = arithmetic._rounding(ctx, op)
    m, s = quant.quantize_multiplier(float(si) / float(so), r)
    table = np.array([min(127, max(-128, quant.mul_by_quantized_multiplier(abs(int(v) - zi), m, s, r) + zo))
                      for v in range(-128, 128)], np.int8)
    name = kernel_name(ctx, op)
    return Kernel(name, op, K.lut(x.size), [x.index, Const(f"{name}_table", table)], out.index, 0,
                  [describe(g, op), f"256-entry table: |x - {zi}| requantized ({r} rounding)"])


def lower_reduce_min(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    if x.dtype not in ("int8", "int16"):
        raise UnsupportedOpError(op.kind, op.index, f"{x.dtype} (int8 and int16 only)")
    axes = reduce._axes(ctx, op, len(x.shape))
    kept = reduce._kept_shape(x.shape, axes)
    ph = te.placeholder(x.shape, x.dtype, name="input")
    acc = _reduce(ph, x.shape, axes, kept, lambda v, r: te.min(v, axis=r))
    res = te.compute(kept, lambda *i: acc[i].astype(x.dtype), name="output")
    func = schedule_reduction(te.create_prim_func([ph, res]))
    notes = [describe(g, op), f"minimum over axes {axes}"]
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, 0, notes)


def lower_squared_difference(ctx: LoweringContext, op: Operator) -> Kernel:
    (sa, za), (sb, zb), (so, zo) = arithmetic._quants(ctx, op)
    r = arithmetic._rounding(ctx, op)
    twice_max = 2 * max(float(sa), float(sb))
    m1, s1 = quant.quantize_multiplier(float(sa) / twice_max, r)
    m2, s2 = quant.quantize_multiplier(float(sb) / twice_max, r)
    mo, so_ = quant.quantize_multiplier(twice_max * twice_max / ((1 << 14) * float(so)), r)
    lo, hi = quant.activation_range(activation_code(op), so, zo)

    def fn(xa, yb):
        d = xa - yb
        return clamp_i8(requantize(d * d, mo, so_, r) + zo, lo, hi)
    pre = (lambda x: requantize((x.astype(I32) - za) * tirx.const(1 << 7, I32), m1, s1, r),
           lambda y: requantize((y.astype(I32) - zb) * tirx.const(1 << 7, I32), m2, s2, r))
    note = f"inputs shifted left by 7, rescaled, difference squared ({r} rounding)"
    return arithmetic._binary(ctx, op, fn, note, pre)


LOWERINGS = {"SQUARED_DIFFERENCE": lower_squared_difference, "MIRROR_PAD": lower_mirror_pad, "PACK": lower_pack,
             "UNPACK": lower_unpack, "REDUCE_MIN": lower_reduce_min, "GATHER": lower_gather,
             "ELU": lower_elu, "ABS": lower_abs}
