"""Pooling kernels."""

from __future__ import annotations

from tvm import te, tirx

from .conv import schedule_reduction
from .fixedpoint import I32, clamp_i8, sel


def _window(x, in_shape, out_shape, filt, stride, pad, reduce_fn, outside, dtype=I32):
    """acc[b, i, j, ch] = reduce_fn over the window of output (i, j) in `dtype`; taps outside
    the input read `outside`, which the reduction ignores (0 for a sum, the lowest value for a
    max)."""
    _, h, w, _ = in_shape
    (fh, fw), (sh, sw), (pt, pl) = filt, stride, pad
    ry = te.reduce_axis((0, fh), name="ky")
    rx = te.reduce_axis((0, fw), name="kx")

    def body(b, i, j, ch):
        y, xx = i * sh - pt + ry, j * sw - pl + rx
        inside = tirx.all(y >= 0, y < h, xx >= 0, xx < w)
        v = tirx.if_then_else(inside, x[b, y, xx, ch].astype(dtype), tirx.const(outside, dtype))
        return reduce_fn(v, axis=[ry, rx])
    return te.compute(out_shape, body, name="acc")


def average_pool(in_shape, out_shape, filt, stride, pad, act_min: int, act_max: int):
    """TFLite's integer average pool: sum over the in-bounds window, divide rounding halves
    away from zero by the in-bounds count."""
    _, h, w, _ = in_shape
    (fh, fw), (sh, sw), (pt, pl) = filt, stride, pad
    x = te.placeholder(in_shape, "int8", name="input")
    acc = _window(x, in_shape, out_shape, filt, stride, pad, te.sum, 0)

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


def max_pool(in_shape, out_shape, filt, stride, pad, act_min: int, act_max: int):
    """TFLite's int8 max pool: the maximum over the in-bounds part of each window, clamped to
    the fused activation's range."""
    x = te.placeholder(in_shape, "int8", name="input")
    acc = _window(x, in_shape, out_shape, filt, stride, pad, te.max, -128)
    out = te.compute(out_shape, lambda *i: clamp_i8(acc[i], act_min, act_max), name="output")
    return schedule_reduction(te.create_prim_func([x, out]))
