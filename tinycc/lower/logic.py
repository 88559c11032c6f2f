"""Comparisons, logic and arg-max: the operators with bool and int32 tensors.

EQUAL, NOT_EQUAL, GREATER, GREATER_EQUAL, LESS, LESS_EQUAL on int8 (TFLite's
ComparisonWithScaling: both sides minus their zero point, shifted left by 8 and rescaled by
their own scale, then compared as int32), float32 and int32; LOGICAL_AND, LOGICAL_OR,
LOGICAL_NOT; REDUCE_ALL, REDUCE_ANY; SELECT and SELECT_V2; CAST; ARG_MAX and ARG_MIN (the
first index on ties, as TFLite's ArgMinMax loop). Broadcasting is numpy's, as TFLite's
broadcasting kernels do. A bool tensor is one byte holding 0 or 1 (C99 `bool`).
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels import logic as KL
from ..kernels.fixedpoint import I32, requantize
from .common import Const, Kernel, LoweringContext, describe, kernel_name
from .reduce import _axes, _kept_shape

VALUE_DTYPES = ("int8", "int16", "int32", "int64", "float32", "bool")
COMPARISONS = {"EQUAL": tirx.EQ, "NOT_EQUAL": tirx.NE, "GREATER": tirx.GT, "GREATER_EQUAL": tirx.GE,
               "LESS": tirx.LT, "LESS_EQUAL": tirx.LE}
# TFLite's int8 comparison shifts both sides left by 8 before rescaling (kLeftShift).
COMPARISON_LEFT_SHIFT = 8


def _tensor(ctx, op, index: int, dtypes=VALUE_DTYPES):
    t = ctx.graph.tensor(index)
    if t.dtype not in dtypes:
        raise UnsupportedOpError(op.kind, op.index, f"tensor '{t.name}' is {t.dtype}; this operator takes "
                                 f"{', '.join(dtypes)}")
    if t.dtype == "int8" and t.quant is not None and t.quant.per_channel:
        raise UnsupportedOpError(op.kind, op.index, f"int8 tensor '{t.name}' is quantized per channel")
    return t


def _arg(ctx, op, t, k: int):
    """A kernel argument: the tensor index, or a Const for a constant operand."""
    if t.is_const:
        return Const(f"{kernel_name(ctx, op)}_operand{k}", np.ascontiguousarray(t.data).astype(t.dtype))
    return t.index


def _check_broadcast(op, shapes, out_shape):
    rank = len(out_shape)
    for s in shapes:
        if len(s) > rank or any(d not in (1, o) for d, o in zip(s, out_shape[rank - len(s):])):
            raise UnsupportedOpError(op.kind, op.index, f"shapes {[list(x) for x in shapes]} do not broadcast "
                                     f"to {list(out_shape)}")


def _same_type(op, tensors):
    a = tensors[0]
    for t in tensors[1:]:
        if t.dtype != a.dtype or (t.quant is None) != (a.quant is None) or \
                (t.quant is not None and t.quant.scalar() != a.quant.scalar()):
            raise UnsupportedOpError(op.kind, op.index, f"'{a.name}' and '{t.name}' differ in type or quantization")


def _map(ctx, op, ins, out, fn, note: str, pre=None, shapes=None) -> Kernel:
    shapes = shapes or [t.shape for t in ins]
    _check_broadcast(op, shapes, out.shape)
    func = KL.broadcast_map(shapes, [t.dtype for t in ins], out.shape, fn, pre)
    args = [_arg(ctx, op, t, k) for k, t in enumerate(ins)]
    return Kernel(kernel_name(ctx, op), op, func, args, out.index, 0, [describe(ctx.graph, op), note])


def _rescale(ctx, op, t):
    """ComparisonsPrepare's int8 rescaling of one side: ((q - zp) << 8) * scale in fixed point."""
    scale, zp = t.quant.scalar()
    r = ctx.rounding(op)
    m, shift = quant.quantize_multiplier(float(scale), r)
    if shift > 0:  # QuantizeMultiplierSmallerThanOneExp takes scales below 1 only
        raise UnsupportedOpError(op.kind, op.index, f"'{t.name}' has scale {float(scale)} >= 1")
    return (lambda v: requantize((v.astype(I32) - zp) * tirx.const(1 << COMPARISON_LEFT_SHIFT, I32), m, shift, r),
            f"(q - {zp}) << {COMPARISON_LEFT_SHIFT} times {m} >> {-shift}")


def lower_comparison(ctx: LoweringContext, op: Operator) -> Kernel:
    a = _tensor(ctx, op, op.inputs[0], ("int8", "int32", "int64", "float32"))
    b = _tensor(ctx, op, op.inputs[1], ("int8", "int32", "int64", "float32"))
    out = _tensor(ctx, op, op.outputs[0], ("bool",))
    if a.dtype != b.dtype:
        raise UnsupportedOpError(op.kind, op.index, f"operands are {a.dtype} and {b.dtype}")
    cmp = COMPARISONS[op.kind]
    if a.dtype != "int8":
        return _map(ctx, op, [a, b], out, cmp, f"{a.dtype} comparison")
    if a.quant is None or b.quant is None:
        raise UnsupportedOpError(op.kind, op.index, "int8 operands without quantization")
    (fa, na), (fb, nb) = _rescale(ctx, op, a), _rescale(ctx, op, b)
    note = f"int8 sides rescaled ({ctx.rounding(op)} rounding): a {na}; b {nb}"
    return _map(ctx, op, [a, b], out, cmp, note, pre=[fa, fb])


def lower_logical(ctx: LoweringContext, op: Operator) -> Kernel:
    ins = [_tensor(ctx, op, i, ("bool",)) for i in op.inputs]
    out = _tensor(ctx, op, op.outputs[0], ("bool",))
    fn = {"LOGICAL_AND": tirx.And, "LOGICAL_OR": tirx.Or, "LOGICAL_NOT": tirx.Not}[op.kind]
    return _map(ctx, op, ins, out, fn, op.kind.lower().replace("_", " "))


def lower_select(ctx: LoweringContext, op: Operator) -> Kernel:
    """SELECT_V2 broadcasts all three operands; SELECT takes equal shapes, or a rank-1
    condition that picks whole rows of the first axis (select.cc's RankOneSelect)."""
    cond = _tensor(ctx, op, op.inputs[0], ("bool",))
    x, y = (_tensor(ctx, op, i) for i in op.inputs[1:3])
    out = _tensor(ctx, op, op.outputs[0])
    _same_type(op, [x, y, out])
    shapes = [cond.shape, x.shape, y.shape]
    if op.kind == "SELECT":
        if x.shape != y.shape or x.shape != out.shape:
            raise UnsupportedOpError(op.kind, op.index, f"shapes {x.shape} and {y.shape} differ (use SELECT_V2)")
        if len(cond.shape) == 1 and len(x.shape) > 1:
            shapes[0] = cond.shape + (1,) * (len(x.shape) - 1)  # one condition per row
        elif cond.shape != x.shape:
            raise UnsupportedOpError(op.kind, op.index, f"condition {cond.shape} for values {x.shape}")
    return _map(ctx, op, [cond, x, y], out, tirx.Select, f"{x.dtype} values picked by the condition",
                shapes=shapes)


def lower_cast(ctx: LoweringContext, op: Operator) -> Kernel:
    """static_cast of the raw values (cast.cc: quantization is ignored); to bool: != 0."""
    x = _tensor(ctx, op, op.inputs[0])
    out = _tensor(ctx, op, op.outputs[0])
    if out.dtype == "bool":
        def fn(v):
            return v != tirx.const(0, x.dtype)
    else:
        def fn(v):
            return v.astype(out.dtype)
    return _map(ctx, op, [x], out, fn, f"{x.dtype} -> {out.dtype} (C conversion of each value)")


def lower_arg_min_max(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = _tensor(ctx, op, op.inputs[0], ("int8", "int16", "int32", "float32"))
    out = _tensor(ctx, op, op.outputs[0], ("int32", "int64"))
    axis_t = g.tensor(op.inputs[1])
    if not axis_t.is_const or axis_t.dtype not in ("int32", "int64") or axis_t.size != 1:
        raise UnsupportedOpError(op.kind, op.index, "the axis must be one constant int32 or int64 value")
    axis = int(axis_t.data.reshape(-1)[0]) % len(x.shape)
    larger = op.kind == "ARG_MAX"
    func = KL.arg_min_max(x.shape, axis, x.dtype, out.dtype, larger)
    note = (f"index of the first {'largest' if larger else 'smallest'} {x.dtype} value along axis {axis} "
            f"({out.dtype}); ties keep the first")
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, 0, [describe(g, op), note])


def lower_reduce_bool(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = _tensor(ctx, op, op.inputs[0], ("bool",))
    out = _tensor(ctx, op, op.outputs[0], ("bool",))
    axes = _axes(ctx, op, len(x.shape))
    every = op.kind == "REDUCE_ALL"
    func = KL.reduce_bool(x.shape, axes, _kept_shape(x.shape, axes), every)
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, 0,
                  [describe(g, op), f"{'all' if every else 'any'} over axes {axes}"])


LOWERINGS = {**{k: lower_comparison for k in COMPARISONS},
             "LOGICAL_AND": lower_logical, "LOGICAL_OR": lower_logical, "LOGICAL_NOT": lower_logical,
             "SELECT": lower_select, "SELECT_V2": lower_select, "CAST": lower_cast,
             "ARG_MAX": lower_arg_min_max, "ARG_MIN": lower_arg_min_max,
             "REDUCE_ALL": lower_reduce_bool, "REDUCE_ANY": lower_reduce_bool}
