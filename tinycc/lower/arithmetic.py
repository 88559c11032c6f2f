"""MUL, SUB, MAXIMUM, MINIMUM, PRELU, and ADD with broadcasting: TFLite's integer
arithmetic on two int8 tensors (either may be a constant), broadcast as TFLite broadcasts."""

from __future__ import annotations

import numpy as np
from tvm import tirx

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels.fixedpoint import I32, clamp_i8, requantize
from .common import Const, Kernel, LoweringContext, activation_code, describe, kernel_name

# MultiplyByQuantizedMultiplier's rounding in LiteRT 2.3's BUILTIN_REF, measured per operator.
ROUNDING = {"MUL": "double", "SUB": "double", "ADD": "double", "PRELU": "double"}


def _rounding(ctx, op) -> str:
    return ROUNDING.get(op.kind, "double") if ctx.mode == "litert" else ctx.mode


def _operand(ctx, op, k: int):
    t = ctx.graph.tensor(op.inputs[k])
    if t.dtype != "int8" or t.quant is None or t.quant.per_channel:
        raise UnsupportedOpError(op.kind, op.index, f"operand '{t.name}' is {t.dtype}"
                                 f"{' per-channel' if t.quant is not None and t.quant.per_channel else ''}; "
                                 "int8 per-tensor operands only")
    arg = Const(f"{kernel_name(ctx, op)}_operand{k}", t.data) if t.is_const else t.index
    return t, arg


def _check_shapes(op, a, b, out):
    rank = len(out.shape)
    for s in (a.shape, b.shape):
        if len(s) > rank or any(d not in (1, o) for d, o in zip(s, out.shape[rank - len(s):])):
            raise UnsupportedOpError(op.kind, op.index, f"shapes {a.shape} and {b.shape} -> {out.shape}")


def _binary(ctx, op, fn, note: str, pre=None) -> Kernel:
    g = ctx.graph
    (a, arg_a), (b, arg_b) = _operand(ctx, op, 0), _operand(ctx, op, 1)
    out = g.tensor(op.outputs[0])
    if out.dtype != "int8" or out.quant is None:
        raise UnsupportedOpError(op.kind, op.index, "output is not int8")
    _check_shapes(op, a, b, out)
    func = K.binary(a.shape, b.shape, out.shape, fn, pre)
    notes = [describe(g, op), note]
    return Kernel(kernel_name(ctx, op), op, func, [arg_a, arg_b], out.index, 0, notes)


def _quants(ctx, op):
    g = ctx.graph
    return [g.tensor(i).quant.scalar() for i in (op.inputs[0], op.inputs[1], op.outputs[0])]


def mul_params(ctx: LoweringContext, op: Operator) -> tuple:
    """TFLite's MUL Prepare for int8: (za, zb, zo, multiplier, shift, lo, hi)."""
    (sa, za), (sb, zb), (so, zo) = _quants(ctx, op)
    m, s = quant.quantize_multiplier(float(sa) * float(sb) / float(so), _rounding(ctx, op))
    lo, hi = quant.activation_range(activation_code(op), so, zo)
    return za, zb, zo, m, s, lo, hi


def lower_mul(ctx: LoweringContext, op: Operator) -> Kernel:
    za, zb, zo, m, s, lo, hi = mul_params(ctx, op)
    r = _rounding(ctx, op)

    def fn(x, y):
        prod = (x.astype(I32) - za) * (y.astype(I32) - zb)
        return clamp_i8(requantize(prod, m, s, r) + zo, lo, hi)
    return _binary(ctx, op, fn, f"(a - {za}) * (b - {zb}) requantized by {m}, shift {s} ({r} rounding)")


def lower_add_sub(ctx: LoweringContext, op: Operator) -> Kernel:
    """TFLite's quantized ADD and SUB: inputs shifted left by 20, rescaled to twice the larger
    input scale, added or subtracted, rescaled to the output."""
    (sa, za), (sb, zb), (so, zo) = _quants(ctx, op)
    r = _rounding(ctx, op)
    twice_max = float(np.float32(2) * max(sa, sb))
    m1, s1 = quant.quantize_multiplier(float(sa) / twice_max, r)
    m2, s2 = quant.quantize_multiplier(float(sb) / twice_max, r)
    mo, so_ = quant.quantize_multiplier(twice_max / ((1 << 20) * float(so)), r)
    lo, hi = quant.activation_range(activation_code(op), so, zo)
    sign = 1 if op.kind == "ADD" else -1

    def pre_a(x):
        return requantize((x.astype(I32) - za) * tirx.const(1 << 20, I32), m1, s1, r)

    def pre_b(y):
        return requantize((y.astype(I32) - zb) * tirx.const(1 << 20, I32), m2, s2, r)

    def fn(xa, yb):
        total = xa + yb if sign > 0 else xa - yb
        return clamp_i8(requantize(total, mo, so_, r) + zo, lo, hi)
    return _binary(ctx, op, fn, f"inputs shifted left by 20, rescaled to twice the larger scale "
                   f"({r} rounding)", (pre_a, pre_b))


def lower_max_min(ctx: LoweringContext, op: Operator) -> Kernel:
    qa, qb, qo = _quants(ctx, op)
    if not qa == qb == qo:
        raise UnsupportedOpError(op.kind, op.index, "operands and output quantized differently")
    pick = tirx.max if op.kind == "MAXIMUM" else tirx.min
    return _binary(ctx, op, lambda x, y: pick(x, y), f"{op.kind.lower()} of the int8 values")


def lower_prelu(ctx: LoweringContext, op: Operator) -> Kernel:
    (si, zi), (sa, za), (so, zo) = _quants(ctx, op)
    r = _rounding(ctx, op)
    m1, s1 = quant.quantize_multiplier(float(si) / float(so), r)
    m2, s2 = quant.quantize_multiplier(float(si) * float(sa) / float(so), r)

    def fn(v, alpha):
        pos = requantize(v, m1, s1, r)
        neg = requantize(v * (alpha.astype(I32) - za), m2, s2, r)
        return clamp_i8(tirx.Select(v >= 0, pos, neg) + zo, -128, 127)
    return _binary(ctx, op, fn, f"x >= 0: x * {m1} >> {s1}; else x * alpha ({r} rounding)",
                   (lambda x: x.astype(I32) - zi, lambda alpha: alpha))


LOWERINGS = {"MUL": lower_mul, "SUB": lower_add_sub, "MAXIMUM": lower_max_min,
             "MINIMUM": lower_max_min, "PRELU": lower_prelu}
