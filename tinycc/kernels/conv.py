"""Convolution, depthwise convolution and fully-connected kernels: int32 accumulation,
zero point folded into the bias at compile time, fused requantize and activation."""

from __future__ import annotations

from tvm import s_tir, te, tirx

from .fixedpoint import I32, Requant


def conv2d(in_shape, w_shape, out_shape, stride, dilation, pad, in_zp: int, rq: Requant,
           depth_multiplier: int = 0):
    """NHWC convolution (depthwise when depth_multiplier > 0) + bias + requantize + clamp.

    w_shape is OHWI for a convolution and 1HWO for a depthwise one, as TFLite stores them.
    """
    n, h, w, c = in_shape
    _, oh, ow, oc = out_shape
    depthwise = depth_multiplier > 0
    kh, kw = (w_shape[1], w_shape[2])
    (sh, sw), (dh, dw), (pt, pl) = stride, dilation, pad
    x = te.placeholder(in_shape, "int8", name="input")
    wt = te.placeholder(w_shape, "int8", name="weights")
    bias = te.placeholder((oc,), I32, name="bias")
    extra = rq.placeholders(oc)

    def padded(b, y, xx, ch):
        inside = tirx.all(y >= pt, y < h + pt, xx >= pl, xx < w + pl)
        return tirx.if_then_else(inside, x[b, y - pt, xx - pl, ch], tirx.const(in_zp, "int8"))

    ry = te.reduce_axis((0, kh), name="ky")
    rx = te.reduce_axis((0, kw), name="kx")
    if depthwise:
        def acc_fn(b, i, j, o):
            v = padded(b, i * sh + ry * dh, j * sw + rx * dw, o // depth_multiplier)
            return te.sum(v.astype(I32) * wt[0, ry, rx, o].astype(I32), axis=[ry, rx])
    else:
        rc = te.reduce_axis((0, c), name="ci")

        def acc_fn(b, i, j, o):
            v = padded(b, i * sh + ry * dh, j * sw + rx * dw, rc)
            return te.sum(v.astype(I32) * wt[o, ry, rx, rc].astype(I32), axis=[ry, rx, rc])
    acc = te.compute(out_shape, acc_fn, name="acc")
    out = te.compute(out_shape, lambda b, i, j, o: rq.apply(acc[b, i, j, o] + bias[o], o, extra),
                     name="output")
    return schedule_reduction(te.create_prim_func([x, wt, bias, *extra, out]))


def fully_connected(batch: int, depth: int, units: int, rq: Requant):
    x = te.placeholder((batch, depth), "int8", name="input")
    wt = te.placeholder((units, depth), "int8", name="weights")
    bias = te.placeholder((units,), I32, name="bias")
    extra = rq.placeholders(units)
    k = te.reduce_axis((0, depth), name="k")
    acc = te.compute((batch, units),
                     lambda b, u: te.sum(x[b, k].astype(I32) * wt[u, k].astype(I32), axis=k),
                     name="acc")
    out = te.compute((batch, units), lambda b, u: rq.apply(acc[b, u] + bias[u], u, extra),
                     name="output")
    return schedule_reduction(te.create_prim_func([x, wt, bias, *extra, out]))


def schedule_reduction(func):
    """Accumulate in a register: the reduction block computed inside the output's loops."""
    sch = s_tir.Schedule(func)
    out = sch.get_sblock("output")
    acc = sch.get_sblock("acc")
    loops = sch.get_loops(out)
    sch.compute_at(acc, loops[-1])
    red_loops = sch.get_loops(acc)[len(loops):]
    if red_loops:
        sch.decompose_reduction(acc, red_loops[0])
    return sch.mod["main"]
