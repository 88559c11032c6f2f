"""Pooling kernels."""

from __future__ import annotations

from tvm import te, tirx

from .conv import schedule_reduction
from .fixedpoint import I32, clamp_i8, sel


def average_pool(in_shape, out_shape, filt, stride, pad, act_min: int, act_max: int):
    """TFLite's integer average pool: sum over the in-bounds window, divide rounding halves
    away from zero by the in-bounds count."""
    n, h, w, c = in_shape
    (fh, fw), (sh, sw), (pt, pl) = filt, stride, pad
    x = te.placeholder(in_shape, "int8", name="input")
    ry = te.reduce_axis((0, fh), name="ky")
    rx = te.reduce_axis((0, fw), name="kx")

    def window_sum(b, i, j, ch):
        y, xx = i * sh - pt + ry, j * sw - pl + rx
        inside = tirx.all(y >= 0, y < h, xx >= 0, xx < w)
        v = tirx.if_then_else(inside, x[b, y, xx, ch].astype(I32), tirx.const(0, I32))
        return te.sum(v, axis=[ry, rx])
    acc = te.compute(out_shape, window_sum, name="acc")

    def count(i, j):
        y0, x0 = i * sh - pt, j * sw - pl
        ny = tirx.min(fh, h - y0) - tirx.max(0, -y0)
        nx = tirx.min(fw, w - x0) - tirx.max(0, -x0)
        return ny * nx

    def divide(b, i, j, ch):
        s, cnt = acc[b, i, j, ch], count(i, j)
        half = tirx.truncdiv(cnt, 2)
        q = sel(s > 0, tirx.truncdiv(s + half, cnt), tirx.truncdiv(s - half, cnt))
        return clamp_i8(q, act_min, act_max)
    out = te.compute(out_shape, divide, name="output")
    return schedule_reduction(te.create_prim_func([x, out]))
