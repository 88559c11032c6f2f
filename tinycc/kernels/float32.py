"""Float32 kernels as TVM tensor expressions: TFLite's reference float kernels, operation for
operation and in their order of accumulation (a convolution sums over filter rows, columns,
then input channels, and adds the bias last), so that on a core with IEEE single precision
and no contraction into fused multiply-adds (`-std=c99` turns it off in GCC) the results
differ from LiteRT only where its C library's expf / tanhf differ from the target's.

The fused activation is a clamp to [lo, hi] (None: unbounded), as
ActivationFunctionWithMinMax does it: min(max(x, lo), hi).
"""

from __future__ import annotations

from tvm import s_tir, te, tirx

from .binary import binary
from .conv import schedule_reduction
from .pool import _window
from .reduce import _reduce

F32 = "float32"
LOWEST = -3.4028234663852886e38  # std::numeric_limits<float>::lowest()
# reference_ops::Logistic: above this 1, below -9 exp(x) (the float overflows otherwise)
LOGISTIC_UPPER, LOGISTIC_LOWER = 16.619047164916992188, -9.0


def f32(v: float):
    return tirx.const(v, F32)


def clamp(x, lo: float | None, hi: float | None):
    if lo is not None:
        x = tirx.max(x, f32(lo))
    if hi is not None:
        x = tirx.min(x, f32(hi))
    return x


def conv2d(in_shape, w_shape, out_shape, stride, dilation, pad, depth_multiplier: int,
           lo: float | None, hi: float | None):
    """NHWC convolution (depthwise when depth_multiplier > 0) + bias + clamp; weights OHWI
    (1HWO depthwise). Taps outside the input add 0 * w, which leaves every sum unchanged."""
    _, h, w, c = in_shape
    oc = out_shape[3]
    kh, kw = w_shape[1], w_shape[2]
    (sh, sw), (dh, dw), (pt, pl) = stride, dilation, pad
    x = te.placeholder(in_shape, F32, name="input")
    wt = te.placeholder(w_shape, F32, name="weights")
    bias = te.placeholder((oc,), F32, name="bias")

    def padded(b, y, xx, ch):
        inside = tirx.all(y >= pt, y < h + pt, xx >= pl, xx < w + pl)
        return tirx.if_then_else(inside, x[b, y - pt, xx - pl, ch], f32(0.0))

    ry = te.reduce_axis((0, kh), name="ky")
    rx = te.reduce_axis((0, kw), name="kx")
    if depth_multiplier:
        def acc_fn(b, i, j, o):
            v = padded(b, i * sh + ry * dh, j * sw + rx * dw, o // depth_multiplier)
            return te.sum(v * wt[0, ry, rx, o], axis=[ry, rx])
    else:
        rc = te.reduce_axis((0, c), name="ci")

        def acc_fn(b, i, j, o):
            v = padded(b, i * sh + ry * dh, j * sw + rx * dw, rc)
            return te.sum(v * wt[o, ry, rx, rc], axis=[ry, rx, rc])
    acc = te.compute(out_shape, acc_fn, name="acc")
    out = te.compute(out_shape, lambda b, i, j, o: clamp(acc[b, i, j, o] + bias[o], lo, hi), name="output")
    return schedule_reduction(te.create_prim_func([x, wt, bias, out]))


def fully_connected(batch: int, depth: int, units: int, lo: float | None, hi: float | None):
    x = te.placeholder((batch, depth), F32, name="input")
    wt = te.placeholder((units, depth), F32, name="weights")
    bias = te.placeholder((units,), F32, name="bias")
    k = te.reduce_axis((0, depth), name="k")
    acc = te.compute((batch, units), lambda b, u: te.sum(x[b, k] * wt[u, k], axis=k), name="acc")
    out = te.compute((batch, units), lambda b, u: clamp(acc[b, u] + bias[u], lo, hi), name="output")
    return schedule_reduction(te.create_prim_func([x, wt, bias, out]))


def average_pool(in_shape, out_shape, filt, stride, pad, lo, hi):
    """Sum over the in-bounds part of the window divided by its size (as a float)."""
    _, h, w, _ = in_shape
    (fh, fw), (sh, sw), (pt, pl) = filt, stride, pad
    x = te.placeholder(in_shape, F32, name="input")
    acc = _window(x, in_shape, out_shape, filt, stride, pad, te.sum, 0.0, F32)

    def divide(b, i, j, ch):
        y0, x0 = i * sh - pt, j * sw - pl
        count = (tirx.min(fh, h - y0) - tirx.max(0, -y0)) * (tirx.min(fw, w - x0) - tirx.max(0, -x0))
        return clamp(acc[b, i, j, ch] / count.astype(F32), lo, hi)
    out = te.compute(out_shape, divide, name="output")
    return schedule_reduction(te.create_prim_func([x, out]))


def max_pool(in_shape, out_shape, filt, stride, pad, lo, hi):
    x = te.placeholder(in_shape, F32, name="input")
    acc = _window(x, in_shape, out_shape, filt, stride, pad, te.max, LOWEST, F32)
    out = te.compute(out_shape, lambda *i: clamp(acc[i], lo, hi), name="output")
    return schedule_reduction(te.create_prim_func([x, out]))


def reduce(in_shape, axes, out_shape, kind: str):
    """MEAN (the sum in index order, divided by the count) or REDUCE_MAX."""
    x = te.placeholder(in_shape, F32, name="input")
    if kind == "MEAN":
        count = 1
        for a in axes:
            count *= in_shape[a]
        acc = _reduce(x, in_shape, axes, out_shape, lambda v, r: te.sum(v, axis=r), dtype=F32)
        out = te.compute(out_shape, lambda *i: acc[i] / f32(float(count)), name="output")
    else:
        acc = _reduce(x, in_shape, axes, out_shape, lambda v, r: te.max(v, axis=r), dtype=F32)
        out = te.compute(out_shape, lambda *i: acc[i], name="output")
    return schedule_reduction(te.create_prim_func([x, out]))


def elementwise(shape_a, shape_b, out_shape, fn):
    """Two tensors, broadcast as TFLite broadcasts (see kernels.binary)."""
    return binary(shape_a, shape_b, out_shape, fn, dtype=F32)


def unary(size: int, fn):
    x = te.placeholder((size,), F32, name="input")
    out = te.compute((size,), lambda i: fn(x[i]), name="output")
    return te.create_prim_func([x, out])


def logistic(v):
    """reference_ops::Logistic."""
    return tirx.Select(v > f32(LOGISTIC_UPPER), f32(1.0),
                       tirx.Select(v < f32(LOGISTIC_LOWER), tirx.exp(v),
                                   f32(1.0) / (f32(1.0) + tirx.exp(-v))))


def hard_swish(v):
    """reference_ops::HardSwish: x * min(6, max(0, x + 3)) / 6."""
    return v * tirx.min(f32(6.0), tirx.max(f32(0.0), v + f32(3.0))) / f32(6.0)


def softmax(outer: int, depth: int, beta: float):
    """reference_ops::Softmax: exp((x - max) * beta) / sum. The exponentials are computed
    twice (for the sum, then for the quotient) instead of stored: no scratch buffer, and
    expf gives the same value both times."""
    x = te.placeholder((outer, depth), F32, name="input")
    k = te.reduce_axis((0, depth), name="k")
    mx = te.compute((outer,), lambda i: te.max(x[i, k], axis=k), name="max")

    def e(i, c):
        return tirx.exp((x[i, c] - mx[i]) * f32(beta))
    k2 = te.reduce_axis((0, depth), name="k2")
    total = te.compute((outer,), lambda i: te.sum(e(i, k2), axis=k2), name="sum")
    out = te.compute((outer, depth), lambda i, c: e(i, c) / total[i], name="output")
    sch = s_tir.Schedule(te.create_prim_func([x, out]))
    row = sch.get_loops(sch.get_sblock("output"))[0]
    for name in ("sum", "max"):
        sch.compute_at(sch.get_sblock(name), row)
    return sch.mod["main"]
