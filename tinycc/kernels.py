"""Integer kernels as TVM tensor expressions, and their schedules.

Each builder returns a TIR PrimFunc over flat int8/int32 buffers. The arithmetic is
TFLite's: int32 accumulation, the input zero point folded into the bias (the padded border
holds the zero point, so it contributes nothing), requantization by a Q31 multiplier and
shift with LiteRT's single rounding or TFLM's double rounding, then the output zero point
and the activation clamp. The Python models in `quant.py` are the oracle for every formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir, te, tirx

I32, I64 = "int32", "int64"


def _i64(x):
    return tirx.Cast(I64, x) if not isinstance(x, int) else tirx.const(x, I64)


def _sel(cond, a, b):
    return tirx.Select(cond, a, b)


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul for b >= 0 (b is always a multiplier here)."""
    ab = _i64(a) * _i64(b)
    nudge = _sel(ab >= tirx.const(0, I64), tirx.const(1 << 30, I64), tirx.const(1 - (1 << 30), I64))
    return tirx.Cast(I32, tirx.truncdiv(ab + nudge, tirx.const(1 << 31, I64)))


def rounding_divide_by_pot(x, exponent):
    """gemmlowp RoundingDivideByPOT; exponent a Python int or an int32 expression."""
    if isinstance(exponent, int):
        if exponent == 0:
            return x
        mask = tirx.const((1 << exponent) - 1, I32)
        threshold = tirx.const(((1 << exponent) - 1) >> 1, I32)
        exp = tirx.const(exponent, I32)
    else:
        mask = (tirx.const(1, I32) << exponent) - 1
        threshold = mask >> 1
        exp = exponent
    limit = threshold + _sel(x < 0, tirx.const(1, I32), tirx.const(0, I32))
    return (x >> exp) + _sel((x & mask) > limit, tirx.const(1, I32), tirx.const(0, I32))


def requantize(acc, multiplier, shift, rounding: str):
    """MultiplyByQuantizedMultiplier. multiplier/shift: Python ints (per tensor) or int32
    expressions (per channel; then `shift` holds TFLite's shift, as in quant.py)."""
    if rounding == "single":
        if isinstance(shift, int):
            total = 31 - shift
            rnd = tirx.const(1 << (total - 1), I64)
            return tirx.Cast(I32, (_i64(acc) * _i64(multiplier) + rnd) >> tirx.const(total, I64))
        total = _i64(31 - shift)
        rnd = tirx.const(1, I64) << (total - tirx.const(1, I64))
        return tirx.Cast(I32, (_i64(acc) * _i64(multiplier) + rnd) >> total)
    if isinstance(shift, int):
        left, right = max(shift, 0), max(-shift, 0)
        scaled = acc * tirx.const(1 << left, I32) if left else acc
        return rounding_divide_by_pot(srdhm(scaled, multiplier), right)
    left = tirx.max(shift, 0)
    right = tirx.max(-shift, 0)
    return rounding_divide_by_pot(srdhm(acc << left, multiplier), right)


def _clamp_i8(x, lo: int, hi: int):
    return tirx.Cast("int8", tirx.max(tirx.min(x, tirx.const(hi, I32)), tirx.const(lo, I32)))


@dataclass(frozen=True)
class Requant:
    """How an int32 accumulator becomes int8: per-tensor ints or per-channel arrays."""

    per_channel: bool
    multiplier: int = 0
    shift: int = 0
    out_zp: int = 0
    act_min: int = -128
    act_max: int = 127
    rounding: str = "single"

    def placeholders(self, channels: int) -> list:
        if not self.per_channel:
            return []
        return [te.placeholder((channels,), I32, name="multiplier"),
                te.placeholder((channels,), I32, name="shift")]

    def apply(self, acc, channel, params: list):
        if self.per_channel:
            m, s = params[0][channel], params[1][channel]
        else:
            m, s = self.multiplier, self.shift
        out = requantize(acc, m, s, self.rounding) + tirx.const(self.out_zp, I32)
        return _clamp_i8(out, self.act_min, self.act_max)


# --- builders -------------------------------------------------------------------------------

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
    return _schedule_reduction(te.create_prim_func([x, wt, bias, *extra, out]))


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
    return _schedule_reduction(te.create_prim_func([x, wt, bias, *extra, out]))


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
        q = _sel(s > 0, tirx.truncdiv(s + half, cnt), tirx.truncdiv(s - half, cnt))
        return _clamp_i8(q, act_min, act_max)
    out = te.compute(out_shape, divide, name="output")
    return _schedule_reduction(te.create_prim_func([x, out]))


def add(size: int, in1_zp: int, in2_zp: int, m1: int, s1: int, m2: int, s2: int,
        mo: int, so: int, out_zp: int, act_min: int, act_max: int, rounding: str):
    """TFLite's quantized ADD: both inputs shifted left by 20, rescaled, summed, rescaled."""
    a = te.placeholder((size,), "int8", name="input1")
    b = te.placeholder((size,), "int8", name="input2")

    def rescaled(x, zp, m, sh):
        return te.compute((size,), lambda i: requantize(
            (x[i].astype(I32) - zp) * tirx.const(1 << 20, I32), m, sh, rounding), name="scaled")
    ra, rb = rescaled(a, in1_zp, m1, s1), rescaled(b, in2_zp, m2, s2)
    out = te.compute((size,), lambda i: _clamp_i8(
        requantize(ra[i] + rb[i], mo, so, rounding) + out_zp, act_min, act_max), name="output")
    sch = s_tir.Schedule(te.create_prim_func([a, b, out]))
    loop = sch.get_loops(sch.get_sblock("output"))[0]
    for name in ("scaled", "scaled_1"):
        sch.compute_at(sch.get_sblock(name), loop)
    return sch.mod["main"]


def softmax_float_table(outer: int, depth: int, out_zp: int):
    """LiteRT's int8 softmax, which computes in float32 from a table of expf values:
    sum in row order, 1 / (sum * 1/256), round halves away from zero."""
    x = te.placeholder((outer, depth), "int8", name="input")
    table = te.placeholder((256,), "float32", name="exp_table")
    j = te.reduce_axis((0, depth), name="j")
    mx = te.compute((outer,), lambda i: te.max(x[i, j].astype(I32), axis=j), name="row_max")

    def lookup(i, c):
        return table[255 - mx[i] + x[i, c].astype(I32)]
    j2 = te.reduce_axis((0, depth), name="j")
    total = te.compute((outer,), lambda i: te.sum(lookup(i, j2), axis=j2), name="row_sum")
    inv = te.compute((outer,), lambda i: tirx.const(1.0, "float32") /
                     (total[i] * tirx.const(1.0 / 256.0, "float32")), name="row_inv")

    def quantize(i, c):
        p = lookup(i, c) * inv[i]
        r = tirx.Cast(I32, p)
        up = _sel(p - tirx.Cast("float32", r) >= tirx.const(0.5, "float32"),
                  tirx.const(1, I32), tirx.const(0, I32))
        return _clamp_i8(r + up + out_zp, -128, 127)
    out = te.compute((outer, depth), quantize, name="output")
    return _schedule_softmax(te.create_prim_func([x, table, out]))


def softmax_fixed_point(outer: int, depth: int):
    """TFLite's reference integer softmax (gemmlowp fixed point), as TFLM runs it. The
    per-diff exponentials come from a compile-time table; the reciprocal of the row sum is
    gemmlowp's Newton-Raphson in Q2.29."""
    x = te.placeholder((outer, depth), "int8", name="input")
    table = te.placeholder((256,), I32, name="exp_table")
    j = te.reduce_axis((0, depth), name="j")
    mx = te.compute((outer,), lambda i: te.max(x[i, j].astype(I32), axis=j), name="row_max")

    def lookup(i, c):
        return table[mx[i] - x[i, c].astype(I32)]
    j2 = te.reduce_axis((0, depth), name="j")
    total = te.compute((outer,), lambda i: te.sum(rounding_divide_by_pot(lookup(i, j2), 12),
                                                  axis=j2), name="row_sum")
    # headroom_plus_one = clz(sum); for sum > 0, clz = #{k in 1..31 : sum < 2^k}
    clz = te.compute((outer,), lambda i: sum(
        _sel(total[i] < tirx.const(1 << k, I32), tirx.const(1, I32), tirx.const(0, I32))
        for k in range(1, 31)) + 1, name="row_clz")
    # shifted_sum_minus_one = (sum << clz) - 2^31, computed in uint32
    shifted = te.compute((outer,), lambda i: tirx.Cast(I32, (tirx.Cast("uint32", total[i])
                         << tirx.Cast("uint32", clz[i])) - tirx.const(1 << 31, "uint32")),
                         name="row_shifted")
    half_den = te.compute((outer,), lambda i: tirx.Cast(I32, tirx.truncdiv(
        _i64(shifted[i]) + tirx.const((1 << 31) - 1, I64) + _sel(
            _i64(shifted[i]) + tirx.const((1 << 31) - 1, I64) >= tirx.const(0, I64),
            tirx.const(1, I64), tirx.const(-1, I64)), tirx.const(2, I64))), name="half_den")
    est = te.compute((outer,), lambda i: tirx.const(1515870810, I32) +
                     srdhm(half_den[i], tirx.const(-1010580540, I32)), name="nr0")
    def newton_step(prev, step):
        return te.compute((outer,), lambda i: prev[i] + _sat_shl(
            srdhm(prev[i], tirx.const(1 << 29, I32) - srdhm(half_den[i], prev[i]))),
            name=f"nr{step}")
    for step in range(3):
        est = newton_step(est, step + 1)
    recip = te.compute((outer,), lambda i: _sat_shl(est[i], 1), name="row_recip")

    def scaled(i, c):
        bits = tirx.const(12, I32) - clz[i]
        return rounding_divide_by_pot(srdhm(recip[i], lookup(i, c)), bits + 23) - 128
    # Kept in its own stage: TVM's simplifier wrongly drops the upper clamp when it sees the
    # whole formula, and 128 would wrap to -128.
    unsat = te.compute((outer, depth), scaled, name="unsaturated")
    out = te.compute((outer, depth), lambda i, c: _clamp_i8(unsat[i, c], -128, 127), name="output")
    sch = s_tir.Schedule(te.create_prim_func([x, table, out]))
    sch.compute_at(sch.get_sblock("unsaturated"), sch.get_loops(sch.get_sblock("output"))[-1])
    return sch.mod["main"]


def _sat_shl(v, exponent: int = 2):
    """SaturatingRoundingMultiplyByPOT<exponent> on int32, exponent > 0."""
    lim = (1 << (31 - exponent)) - 1
    return _sel(v > lim, tirx.const((1 << 31) - 1, I32),
                _sel(v < -lim, tirx.const(-(1 << 31), I32), v << exponent))


# --- schedules ------------------------------------------------------------------------------

def _schedule_reduction(func):
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


def _schedule_softmax(func):
    return func
