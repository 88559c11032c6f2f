"""Reductions over whole axes: MEAN, REDUCE_MAX."""

from __future__ import annotations

from tvm import te, tirx

from .conv import schedule_reduction
from .fixedpoint import I32, requantize


def _reduce(x, in_shape, axes, out_shape, combine, name="acc", dtype=I32):
    """acc over `axes` of x in `dtype`; out_shape = in_shape without the reduced axes (or (1,))."""
    # axes of extent 1 are indexed at 0, not reduced: TVM 0.27 lowers a reduction whose every
    # axis has extent 1 so that the output reads the accumulator before its update
    raxes = {a: te.reduce_axis((0, in_shape[a]), name=f"r{a}") for a in axes if in_shape[a] > 1}

    def body(*idx):
        it = iter(idx)
        full = [(raxes.get(d, 0) if d in axes else next(it)) for d in range(len(in_shape))]
        v = x[tuple(full)].astype(dtype)
        return combine(v, list(raxes.values())) if raxes else v
    return te.compute(out_shape, body, name=name)


def reduce_max(in_shape, axes, out_shape):
    x = te.placeholder(in_shape, "int8", name="input")
    acc = _reduce(x, in_shape, axes, out_shape, lambda v, r: te.max(v, axis=r))
    out = te.compute(out_shape, lambda *i: acc[i].astype("int8"), name="output")
    return schedule_reduction(te.create_prim_func([x, out]))


def mean(in_shape, axes, out_shape, variant: str, in_zp: int, out_zp: int, count: int,
         multiplier: int = 0, shift: int = 0, rounding: str = "double", dtype: str = "int8"):
    """The integer means of TFLite's kernels, by `variant`:
    - "multiplier" (QuantizedMeanOrSum): the count folded into the multiplier at compile time;
    - "truncate" (reference_ops::Mean, equal quantization): raw sum / count, truncated."""
    x = te.placeholder(in_shape, dtype, name="input")
    acc = _reduce(x, in_shape, axes, out_shape, lambda v, r: te.sum(v, axis=r))
    lo, hi = (-128, 127) if dtype == "int8" else (-32768, 32767)
    n = tirx.const(count, I32)

    def finish(*i):
        s = acc[i]
        if variant == "truncate":
            return tirx.Cast(dtype, tirx.truncdiv(s, n))
        centred = s - tirx.const(in_zp * count, I32)
        v = requantize(centred, multiplier, shift, rounding) + out_zp
        return tirx.Cast(dtype, tirx.max(tirx.min(v, tirx.const(hi, I32)), tirx.const(lo, I32)))
    out = te.compute(out_shape, finish, name="output")
    return schedule_reduction(te.create_prim_func([x, out]))
