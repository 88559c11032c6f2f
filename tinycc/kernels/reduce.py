"""Reductions over whole axes: MEAN, REDUCE_MAX."""

from __future__ import annotations

from tvm import te, tirx

from .conv import schedule_reduction
from .fixedpoint import I32, clamp_i8, requantize


def _reduce(x, in_shape, axes, out_shape, combine, name="acc", dtype=I32):
    """acc over `axes` of x in `dtype`; out_shape = in_shape without the reduced axes (or (1,))."""
    raxes = [te.reduce_axis((0, in_shape[a]), name=f"r{a}") for a in axes]

    def body(*idx):
        it = iter(idx)
        rit = iter(raxes)
        full = [next(rit) if d in axes else next(it) for d in range(len(in_shape))]
        return combine(x[tuple(full)].astype(dtype), raxes)
    return te.compute(out_shape, body, name=name)


def reduce_max(in_shape, axes, out_shape):
    x = te.placeholder(in_shape, "int8", name="input")
    acc = _reduce(x, in_shape, axes, out_shape, lambda v, r: te.max(v, axis=r))
    out = te.compute(out_shape, lambda *i: acc[i].astype("int8"), name="output")
    return schedule_reduction(te.create_prim_func([x, out]))


def mean(in_shape, axes, out_shape, variant: str, in_zp: int, out_zp: int, count: int,
         multiplier: int = 0, shift: int = 0, rounding: str = "double"):
    """The integer means of TFLite's kernels, by `variant`:
    - "multiplier" (QuantizedMeanOrSum): the count folded into the multiplier at compile time;
    - "truncate" (reference_ops::Mean, equal quantization): raw sum / count, truncated."""
    x = te.placeholder(in_shape, "int8", name="input")
    acc = _reduce(x, in_shape, axes, out_shape, lambda v, r: te.sum(v, axis=r))
    n = tirx.const(count, I32)

    def finish(*i):
        s = acc[i]
        if variant == "truncate":
            return tirx.Cast("int8", tirx.truncdiv(s, n))
        centred = s - tirx.const(in_zp * count, I32)
        return clamp_i8(requantize(centred, multiplier, shift, rounding) + out_zp, -128, 127)
    out = te.compute(out_shape, finish, name="output")
    return schedule_reduction(te.create_prim_func([x, out]))
