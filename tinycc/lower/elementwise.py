"""ADD."""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from .. import quant
from ..ir import Operator
from .common import Kernel, LoweringContext, act, activation_code, describe, kernel_name


def add_params(ctx: LoweringContext, op: Operator) -> tuple:
    """TFLite's ADD Prepare for int8: (za, zb, m1, s1, m2, s2, mo, so, zo, lo, hi), the inputs
    shifted left by 20 and rescaled to twice the larger input scale."""
    g = ctx.graph
    (sa, za), (sb, zb), (so, zo) = (g.tensor(i).quant.scalar() for i in (*op.inputs[:2], op.outputs[0]))
    twice_max = float(np.float32(2) * max(sa, sb))  # float, as in TFLite's Prepare
    r = ctx.rounding(op)
    m1, s1 = quant.quantize_multiplier(float(sa) / twice_max, r)
    m2, s2 = quant.quantize_multiplier(float(sb) / twice_max, r)
    mo, so_ = quant.quantize_multiplier(twice_max / ((1 << 20) * float(so)), r)
    lo, hi = quant.activation_range(activation_code(op), so, zo)
    return za, zb, m1, s1, m2, s2, mo, so_, zo, lo, hi


def lower_add(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    a = act(ctx, op, g.tensor(op.inputs[0]))
    b = act(ctx, op, g.tensor(op.inputs[1]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    if a.shape != b.shape or a.shape != out.shape or a.is_const or b.is_const:
        from .arithmetic import lower_add_sub  # broadcasting or a constant operand
        return lower_add_sub(ctx, op)
    func = K.add(a.size, *add_params(ctx, op), ctx.rounding(op))
    notes = [describe(g, op), "inputs shifted left by 20, rescaled to twice the larger scale"]
    return Kernel(kernel_name(ctx, op), op, func, [a.index, b.index], out.index, 0, notes)


LOWERINGS = {"ADD": lower_add}
