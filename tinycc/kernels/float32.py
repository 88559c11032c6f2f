"""Float32 kernels: TFLite's reference float kernels, operation for operation and in their
order of accumulation (a convolution sums over filter rows, columns, then input channels, and
adds the bias last), so that on a core with IEEE single precision and no contraction into
fused multiply-adds (`-std=c99` turns it off in GCC) the results differ from LiteRT only where
its C library's expf / tanhf differ from the target's. Convolutions and fully-connected layers
are TVMScript loops (tiles of output channels, over the in-bounds filter taps); the rest are
tensor expressions, sharing the int8 kernels' window, reduction and broadcasting code.

The fused activation is a clamp to [lo, hi] (None: the end of the float range), as
ActivationFunctionWithMinMax does it: min(max(x, lo), hi).
"""

from __future__ import annotations

from tvm import s_tir, te, tirx
from tvm.script import tirx as T

from .binary import binary
from .conv import schedule_reduction
from .pool import _window
from .reduce import _reduce

F32 = "float32"
LOWEST = -3.4028234663852886e38  # std::numeric_limits<float>::lowest()
HIGHEST = 3.4028234663852886e38
# reference_ops::Logistic: above this 1, below -9 exp(x) (the float overflows otherwise)
LOGISTIC_UPPER, LOGISTIC_LOWER = 16.619047164916992188, -9.0


def f32(v: float):
    return tirx.const(v, F32)


def clamp(x, lo: float | None, hi: float | None):
    """ActivationFunctionWithMinMax: min(max(x, lo), hi), None the float range's end (the
    reference clamps to it all the same: -inf becomes the lowest float)."""
    lo, hi = _bounds(lo, hi)
    return tirx.min(tirx.max(x, lo), hi)


def conv2d(in_shape, w_shape, out_shape, stride, dilation, pad, depth_multiplier: int,
           lo: float | None, hi: float | None):
    """NHWC convolution (depthwise when depth_multiplier > 0) + bias + clamp; weights OHWI
    (1HWO depthwise). TVMScript loops over the filter taps inside the input only (their range
    computed per output pixel: no test in the loops), as the reference skips the others;
    tiles of up to 4 output channels share each input load (each output still sums its
    products in the reference's order)."""
    if depth_multiplier:
        return _depthwise(in_shape, w_shape, out_shape, stride, dilation, pad, depth_multiplier, lo, hi)
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (DH, DW), (PT, PL) = stride, dilation, pad
    LO, HI = _bounds(lo, hi)
    N = next(n for n in (4, 2, 1) if OC % n == 0)  # output channels per tile: one input load each

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((H * W * C,), F32), w: T.Buffer((OC * KH * KW * C,), F32),
               bias: T.Buffer((OC,), F32), out: T.Buffer((OH * OW * OC,), F32)):
        acc = T.alloc_buffer((N,), F32)
        for i, j, oo in T.grid(OH, OW, OC // N):
            for t in T.unroll(N):
                acc[t] = T.float32(0)
            for ky in range(T.max(0, (PT - i * SH + DH - 1) // DH), T.min(KH, (H + PT - i * SH + DH - 1) // DH)):
                for kx in range(T.max(0, (PL - j * SW + DW - 1) // DW), T.min(KW, (W + PL - j * SW + DW - 1) // DW)):
                    for c in range(C):
                        for t in T.unroll(N):
                            acc[t] = acc[t] + x[((i * SH - PT + ky * DH) * W + j * SW - PL + kx * DW) * C + c] \
                                * w[(((oo * N + t) * KH + ky) * KW + kx) * C + c]
            for t in T.unroll(N):
                out[(i * OW + j) * OC + oo * N + t] = T.min(T.max(acc[t] + bias[oo * N + t], LO), HI)  # clamp()
    return kernel


def _depthwise(in_shape, w_shape, out_shape, stride, dilation, pad, M: int, lo, hi):
    """Tiles of up to 4 output channels of one pixel, their sums in registers, tap by tap."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (DH, DW), (PT, PL) = stride, dilation, pad
    LO, HI = _bounds(lo, hi)
    N = next(n for n in (4, 2, 1) if OC % n == 0)

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((H * W * C,), F32), w: T.Buffer((KH * KW * OC,), F32),
               bias: T.Buffer((OC,), F32), out: T.Buffer((OH * OW * OC,), F32)):
        acc = T.alloc_buffer((N,), F32)
        for i, j, oo in T.grid(OH, OW, OC // N):
            for t in T.unroll(N):
                acc[t] = T.float32(0)
            # the taps inside the input: ky in [ceil((PT - i SH) / DH), ceil((H + PT - i SH) / DH))
            for ky in range(T.max(0, (PT - i * SH + DH - 1) // DH), T.min(KH, (H + PT - i * SH + DH - 1) // DH)):
                for kx in range(T.max(0, (PL - j * SW + DW - 1) // DW), T.min(KW, (W + PL - j * SW + DW - 1) // DW)):
                    for t in T.unroll(N):
                        acc[t] = acc[t] + x[((i * SH - PT + ky * DH) * W + j * SW - PL + kx * DW) * C
                                            + (oo * N + t) // M] * w[(ky * KW + kx) * OC + oo * N + t]
            for t in T.unroll(N):
                out[(i * OW + j) * OC + oo * N + t] = T.min(T.max(acc[t] + bias[oo * N + t], LO), HI)  # clamp()
    return kernel


def _bounds(lo, hi):
    return T.float32(LOWEST if lo is None else lo), T.float32(HIGHEST if hi is None else hi)


def fully_connected(batch: int, depth: int, units: int, lo: float | None, hi: float | None):
    """Tiles of up to 4 units share each input load; each sums over depth in order, bias last."""
    LO, HI = _bounds(lo, hi)
    N = next(n for n in (4, 2, 1) if units % n == 0)

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((batch * depth,), F32), w: T.Buffer((units * depth,), F32),
               bias: T.Buffer((units,), F32), out: T.Buffer((batch * units,), F32)):
        acc = T.alloc_buffer((N,), F32)
        for b, uu in T.grid(batch, units // N):
            for t in T.unroll(N):
                acc[t] = T.float32(0)
            for k in range(depth):
                for t in T.unroll(N):
                    acc[t] = acc[t] + x[b * depth + k] * w[(uu * N + t) * depth + k]
            for t in T.unroll(N):
                out[b * units + uu * N + t] = T.min(T.max(acc[t] + bias[uu * N + t], LO), HI)  # clamp()
    return kernel


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
