"""16x8 kernels: int16 activations, int8 weights, as TFLite's reference_integer_ops compute
them. Convolutions and fully-connected layers accumulate in int64 with an int64 bias and
requantize with the int64 MultiplyByQuantizedMultiplier (the multiplier rounded to 16 bits,
one rounding shift, the same in LiteRT and TFLM); activations are symmetric (zero point 0),
so padding reads 0 and no zero point is folded anywhere. Tensor expressions: correctness first,
int16 models are rare on the smallest cores.
"""

from __future__ import annotations

from tvm import te, tirx
from tvm.script import tirx as T

from .conv import schedule_reduction
from .fixedpoint import I32, I64, i64, sel

I16 = "int16"


def requantize64(acc, reduced_multiplier, total_shift):
    """TFLite's MultiplyByQuantizedMultiplier(int64 x, ...): (x * m16 + 2^(t-1)) >> t, with
    m16 = the Q31 multiplier rounded to 16 bits and t = 15 - shift, both per channel int32
    expressions computed at compile time."""
    t = i64(total_shift)
    rnd = tirx.const(1, I64) << (t - tirx.const(1, I64))
    return tirx.Cast(I32, (acc * i64(reduced_multiplier) + rnd) >> t)


def clamp(x, lo: int, hi: int, dtype: str = I16):
    return tirx.Cast(dtype, tirx.max(tirx.min(x, tirx.const(hi, I32)), tirx.const(lo, I32)))


def conv2d(in_shape, w_shape, out_shape, stride, dilation, pad, depth_multiplier: int, lo: int, hi: int):
    """NHWC int16 convolution (depthwise when depth_multiplier > 0), OHWI / 1HWO int8 weights,
    int64 bias, per-channel reduced multiplier and total shift, clamp."""
    _, h, w, c = in_shape
    oc = out_shape[3]
    kh, kw = w_shape[1], w_shape[2]
    (sh, sw), (dh, dw), (pt, pl) = stride, dilation, pad
    x = te.placeholder(in_shape, I16, name="input")
    wt = te.placeholder(w_shape, "int8", name="weights")
    bias = te.placeholder((oc,), I64, name="bias")
    mult = te.placeholder((oc,), I32, name="multiplier")
    shift = te.placeholder((oc,), I32, name="total_shift")
    ry, rx = te.reduce_axis((0, kh), name="ky"), te.reduce_axis((0, kw), name="kx")

    def tap(b, y, xx, ch):
        inside = tirx.all(y >= 0, y < h, xx >= 0, xx < w)
        safe = x[b, tirx.max(tirx.min(y, h - 1), 0), tirx.max(tirx.min(xx, w - 1), 0), ch]
        return tirx.if_then_else(inside, safe.astype(I64), tirx.const(0, I64))
    if depth_multiplier:
        def acc_fn(b, i, j, o):
            v = tap(b, i * sh - pt + ry * dh, j * sw - pl + rx * dw, o // depth_multiplier)
            return te.sum(v * wt[0, ry, rx, o].astype(I64), axis=[ry, rx])
    else:
        rc = te.reduce_axis((0, c), name="ci")

        def acc_fn(b, i, j, o):
            v = tap(b, i * sh - pt + ry * dh, j * sw - pl + rx * dw, rc)
            return te.sum(v * wt[o, ry, rx, rc].astype(I64), axis=[ry, rx, rc])
    acc = te.compute(out_shape, acc_fn, name="acc")
    out = te.compute(out_shape, lambda b, i, j, o: clamp(requantize64(acc[b, i, j, o] + bias[o], mult[o], shift[o]),
                                                         lo, hi), name="output")
    return schedule_reduction(te.create_prim_func([x, wt, bias, mult, shift, out]))


def transpose_conv(in_shape, w_shape, out_shape, stride, pad, lo: int, hi: int):
    """reference_integer_ops::TransposeConv on int16 (int64 accumulator and bias), gathered per
    output as the int8 kernel does: input row (oy + pad_top - ky) / stride where that divides."""
    _, h, w, c = in_shape
    oc = out_shape[3]
    kh, kw = w_shape[1], w_shape[2]
    (sh, sw), (pt, pl) = stride, pad
    x = te.placeholder(in_shape, I16, name="input")
    wt = te.placeholder(w_shape, "int8", name="weights")
    bias = te.placeholder((oc,), I64, name="bias")
    mult = te.placeholder((oc,), I32, name="multiplier")
    shift = te.placeholder((oc,), I32, name="total_shift")
    ry, rx = te.reduce_axis((0, kh), name="ky"), te.reduce_axis((0, kw), name="kx")
    rc = te.reduce_axis((0, c), name="ci")

    def acc_fn(b, i, j, o):
        ty, tx = i + pt - ry, j + pl - rx
        ok = tirx.all(ty >= 0, tirx.truncmod(ty, sh) == 0, tirx.truncdiv(ty, sh) < h,
                      tx >= 0, tirx.truncmod(tx, sw) == 0, tirx.truncdiv(tx, sw) < w)
        iy = tirx.max(tirx.min(tirx.truncdiv(ty, sh), h - 1), 0)
        ix = tirx.max(tirx.min(tirx.truncdiv(tx, sw), w - 1), 0)
        v = x[b, iy, ix, rc]
        return te.sum(tirx.if_then_else(ok, v.astype(I64) * wt[o, ry, rx, rc].astype(I64), tirx.const(0, I64)),
                      axis=[ry, rx, rc])
    acc = te.compute(out_shape, acc_fn, name="acc")
    out = te.compute(out_shape, lambda b, i, j, o: clamp(requantize64(acc[b, i, j, o] + bias[o], mult[o], shift[o]),
                                                         lo, hi), name="output")
    return schedule_reduction(te.create_prim_func([x, wt, bias, mult, shift, out]))


def fully_connected(batch: int, depth: int, units: int, lo: int, hi: int):
    x = te.placeholder((batch, depth), I16, name="input")
    wt = te.placeholder((units, depth), "int8", name="weights")
    bias = te.placeholder((units,), I64, name="bias")
    mult = te.placeholder((units,), I32, name="multiplier")
    shift = te.placeholder((units,), I32, name="total_shift")
    k = te.reduce_axis((0, depth), name="k")
    acc = te.compute((batch, units), lambda b, u: te.sum(x[b, k].astype(I64) * wt[u, k].astype(I64), axis=k),
                     name="acc")
    out = te.compute((batch, units), lambda b, u: clamp(requantize64(acc[b, u] + bias[u], mult[u], shift[u]), lo, hi),
                     name="output")
    return schedule_reduction(te.create_prim_func([x, wt, bias, mult, shift, out]))


def binary(a_shape, b_shape, out_shape, kind: str, params, rounding: str, lo: int, hi: int):
    """reference_ops::Add / Sub on int16 with general scales (AddGeneralParamScale): each
    input (zero point 0) shifted left by 15, rescaled to twice the larger input scale, summed
    or subtracted, rescaled to the output; Mul: the product rescaled to the output. `params`:
    the (multiplier, shift) pairs, three for ADD and SUB, one for MUL. Broadcasting by index
    (size-1 dimensions)."""
    a = te.placeholder(a_shape, I16, name="input1")
    b = te.placeholder(b_shape, I16, name="input2")
    fn = "tinycc_requantize_single" if rounding == "single" else "tinycc_requantize_double"

    def at(t, shape, idx):
        off = len(out_shape) - len(shape)
        return t[tuple(0 if d == 1 else idx[off + k] for k, d in enumerate(shape))]

    def rq(v, pair):  # the micro-kernel: a TIR expression of it is too big for TVM's simplifier
        return tirx.call_extern(I32, fn, v, tirx.const(pair[0], I32), tirx.const(pair[1], I32))

    def body(*idx):
        va, vb = at(a, a_shape, idx).astype(I32), at(b, b_shape, idx).astype(I32)
        if kind == "MUL":
            return clamp(rq(va * vb, params[0]), lo, hi)
        va = rq(va * tirx.const(1 << 15, I32), params[0])
        vb = rq(vb * tirx.const(1 << 15, I32), params[1])
        return clamp(rq(va - vb if kind == "SUB" else va + vb, params[2]), lo, hi)
    out = te.compute(out_shape, body, name="output")
    return te.create_prim_func([a, b, out])


def requantize_elementwise(size: int, in_dtype: str, out_dtype: str, in_zp: int, out_zp: int, mult: int,
                           shift: int, rounding: str):
    """reference_ops::Requantize: (x - in_zp) rescaled, + out_zp, clamped to the output type."""
    fn = "tinycc_requantize_single" if rounding == "single" else "tinycc_requantize_double"
    lo, hi = (-128, 127) if out_dtype == "int8" else (-32768, 32767)
    x = te.placeholder((size,), in_dtype, name="input")
    out = te.compute((size,), lambda i: clamp(tirx.call_extern(
        I32, fn, x[i].astype(I32) - tirx.const(in_zp, I32), tirx.const(mult, I32), tirx.const(shift, I32))
        + tirx.const(out_zp, I32), lo, hi, out_dtype), name="output")
    return te.create_prim_func([x, out])


def pool(in_shape, out_shape, filt, stride, pad, average: bool, lo: int, hi: int):
    """reference_integer_ops::AveragePool / MaxPool on int16: the in-bounds part of each
    window; the average rounds halves away from zero."""
    from .pool import _window
    _, h, w, _ = in_shape
    (fh, fw), (sh, sw), (pt, pl) = filt, stride, pad
    x = te.placeholder(in_shape, I16, name="input")
    acc = _window(x, in_shape, out_shape, filt, stride, pad, te.sum if average else te.max,
                  0 if average else -32768)
    if not average:
        out = te.compute(out_shape, lambda *i: clamp(acc[i], lo, hi), name="output")
        return schedule_reduction(te.create_prim_func([x, out]))

    def divide(bb, i, j, ch):
        y0, x0 = i * sh - pt, j * sw - pl
        cnt = (tirx.min(fh, h - y0) - tirx.max(0, -y0)) * (tirx.min(fw, w - x0) - tirx.max(0, -x0))
        s, half = acc[bb, i, j, ch], tirx.truncdiv(cnt, 2)
        return clamp(sel(s > 0, tirx.truncdiv(s + half, cnt), tirx.truncdiv(s - half, cnt)), lo, hi)
    out = te.compute(out_shape, divide, name="output")
    return schedule_reduction(te.create_prim_func([x, out]))


def softmax(outer: int, depth: int):
    """reference_ops::SoftmaxInt16 on rows of `depth`: exp(x - max) from the 513-entry exp
    table (interpolated, LUTLookup), its sum's reciprocal from the 1 / (1 + x) table after
    normalising the sum by its leading zeros, each exp times the reciprocal, rounded."""
    N = outer * depth

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((N,), "int16"), mult: T.Buffer((2,), "int32"), exp_lut: T.Buffer((513,), "int16"),
               recip_lut: T.Buffer((513,), "int16"), out: T.Buffer((N,), "int16")):
        # s[0] row max, s[1] sum of exps, s[2] a table's argument, s[3] leading zeros, s[4] 1/sum
        s = T.alloc_buffer((5,), "int32")
        for i in range(outer):
            s[0] = -32768
            for c in range(depth):
                s[0] = T.max(s[0], T.Cast("int32", x[i * depth + c]))
            s[1] = 0
            for c in range(depth):
                s[2] = T.max(T.min(T.call_extern("int32", "tinycc_requantize_double", T.Cast("int32", x[i * depth + c]) - s[0],
                                                 mult[0], mult[1]) + 32767, 32767), -32768)
                out[i * depth + c] = T.Cast("int16", T.Cast("int32", exp_lut[256 + (s[2] >> 7)])
                                            + (((T.Cast("int32", exp_lut[257 + (s[2] >> 7)])
                                                 - T.Cast("int32", exp_lut[256 + (s[2] >> 7)])) * (s[2] & 127) + 64) >> 7))
                s[1] = s[1] + T.Cast("int32", out[i * depth + c])
            s[3] = T.call_extern("int32", "__builtin_clz", T.Cast("uint32", s[1]))
            s[2] = T.max(T.min(T.Cast("int32", ((T.Cast("int64", s[1]) << T.Cast("int64", s[3] - 1))
                                                + T.int64(1 << 13)) >> T.int64(14)) - 98304, 32767), -32768)
            s[4] = T.Cast("int32", recip_lut[256 + (s[2] >> 7)]) + (
                ((T.Cast("int32", recip_lut[257 + (s[2] >> 7)]) - T.Cast("int32", recip_lut[256 + (s[2] >> 7)]))
                 * (s[2] & 127) + 64) >> 7)
            s[4] = T.Cast("int32", T.Cast("int16", s[4]))
            for c in range(depth):
                out[i * depth + c] = T.Cast("int16", T.max(T.min(T.Cast("int32", (
                    T.Cast("int64", out[i * depth + c]) * T.Cast("int64", s[4])
                    + (T.int64(1) << T.Cast("int64", 30 - s[3]))) >> T.Cast("int64", 31 - s[3])), 32767), 0))
    return kernel


def sigmoid_value(x, table, tanh: bool, multiplier: int, left_shift: int):
    """reference_integer_ops::Logistic / Tanh of one int16 value (an int32 expression) with
    the 256-entry Q0.16 sigmoid table (a uint16 buffer): the input times `multiplier`,
    rounded right by `left_shift` (to the table's scale 1/(3 * 4096)); its absolute value
    indexes the table by its high bits (>> 9, or >> 8 for tanh = 2 sigmoid(2x) - 1) and
    interpolates with the low 9 (8) bits; index 255 and above saturate; a negative input takes
    1 - sigmoid (-tanh) with the reference's rounding. Output scale 1/32768, int32."""
    bits = 8 if tanh else 9
    saturated = 0xFFFF << 8 if tanh else 0x7FFF << 10
    c = lambda v: tirx.const(v, I32)  # noqa: E731
    rnd = (1 << (left_shift - 1)) if left_shift > 0 else 0
    v = (x * c(multiplier) + c(rnd)) >> c(left_shift)
    a = tirx.abs(v)
    uh = tirx.min(a >> c(bits), c(254))
    ua, ub = table[uh].astype(I32), table[uh + 1].astype(I32)
    res = tirx.if_then_else(a >= c(255 << bits), c(saturated), (ua << c(bits)) + (a & c((1 << bits) - 1)) * (ub - ua))
    if tanh:
        return sel(v >= c(0), res - c(1 << 23) + c(1 << 7), c(1 << 23) - res + c((1 << 7) - 1)) >> c(8)
    return sel(v >= c(0), res + c(1 << 9), c(1 << 25) - res + c((1 << 9) - 1)) >> c(10)


def sigmoid(size: int, tanh: bool, multiplier: int, left_shift: int):
    """16x8 LOGISTIC / TANH element-wise: sigmoid_value on each int16."""
    x = te.placeholder((size,), I16, name="input")
    table = te.placeholder((256,), "uint16", name="sigmoid_table")
    out = te.compute((size,), lambda i: sigmoid_value(x[i].astype(I32), table, tanh, multiplier, left_shift)
                     .astype(I16), name="output")
    return te.create_prim_func([x, table, out])
