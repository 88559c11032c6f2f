"""MEAN, REDUCE_MAX."""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from .common import Kernel, LoweringContext, act, const, describe, kernel_name
from .int16 import act16

# LiteRT 2.3 (BUILTIN_REF) requantizes MEAN with double rounding (measured).
ROUNDING = {"MEAN": "double"}


def _axes(ctx, op, rank: int) -> list[int]:
    t = const(ctx, op, op.inputs[1], "axes", "int32")
    axes = sorted({int(a) % rank for a in t.data.reshape(-1)})
    return axes


def _kept_shape(shape, axes):
    kept = tuple(d for i, d in enumerate(shape) if i not in axes)
    return kept or (1,)


def lower_mean(ctx: LoweringContext, op: Operator) -> Kernel:
    """int8, and int16 (16x8 models: zero point 0, the same arithmetic)."""
    g = ctx.graph
    check = act16 if g.tensor(op.inputs[0]).dtype == "int16" else (lambda op, t: act(ctx, op, t))
    x, out = check(op, g.tensor(op.inputs[0])), check(op, g.tensor(op.outputs[0]))
    axes = _axes(ctx, op, len(x.shape))
    count = int(np.prod([x.shape[a] for a in axes]))
    (si, zi), (so, zo) = x.quant.scalar(), out.quant.scalar()
    r = ROUNDING["MEAN"] if ctx.mode == "litert" else ctx.mode
    m, s = quant.quantize_multiplier(float(si) / float(so), r)
    if ctx.mode == "litert" and (si, zi) == (so, zo):
        variant, note = "truncate", "raw sum divided by the count, truncated (equal quantization)"
    else:
        variant = "multiplier"
        k = min(count.bit_length() - 1, 32, 31 + s)
        m, s = (m << k) // count, s - k
        note = f"count folded into the multiplier ({m}, shift {s})"
    func = K.mean(x.shape, axes, _kept_shape(x.shape, axes), variant, zi, zo, count, m, s, r, x.dtype)
    notes = [describe(g, op), f"mean over axes {axes} ({count} values): {note}"]
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, 0, notes)


def lower_reduce_max(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = act(ctx, op, g.tensor(op.inputs[0]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    if x.quant.scalar() != out.quant.scalar():
        raise UnsupportedOpError(op.kind, op.index, "input and output quantization differ")
    axes = _axes(ctx, op, len(x.shape))
    func = K.reduce_max(x.shape, axes, _kept_shape(x.shape, axes))
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, 0,
                  [describe(g, op), f"maximum over axes {axes}"])


LOWERINGS = {"MEAN": lower_mean, "REDUCE_MAX": lower_reduce_max}
