"""Fixed-point building blocks of every integer kernel, as TIR expressions.

TFLite's arithmetic: requantization by a Q31 multiplier and shift with LiteRT's single
rounding or TFLM's double rounding (gemmlowp SaturatingRoundingDoublingHighMul then
RoundingDivideByPOT), then the output zero point and the activation clamp. The Python models
in `tinycc.quant` are the oracle for every formula here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import te, tirx

I32, I64 = "int32", "int64"


def i64(x):
    return tirx.Cast(I64, x) if not isinstance(x, int) else tirx.const(x, I64)


def sel(cond, a, b):
    return tirx.Select(cond, a, b)


def srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul.

    The nudge's sign is the product's, taken from the signs of a and b (a zero product rounds
    to 0 with either nudge), not from the int64 product itself: TVM's simplifier folds a
    per-tensor 2^shift into a constant b as a wrapped int32 and then got the product's sign
    test wrong for sums such as acc + bias[o]."""
    ab = i64(a) * i64(b)
    a_pos = a >= 0 if not isinstance(a, int) else tirx.const(a >= 0, "bool")
    if isinstance(b, int) or isinstance(b, tirx.IntImm):
        positive = a_pos if int(b) >= 0 else tirx.Not(a_pos)
    else:
        positive = tirx.Or(tirx.And(a_pos, b >= 0), tirx.And(tirx.Not(a_pos), b < 0))
    nudge = sel(positive, tirx.const(1 << 30, I64), tirx.const(1 - (1 << 30), I64))
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
        # in 64 bits: exponent may be 31 (gemmlowp uses 1ll)
        mask = tirx.Cast(I32, (tirx.const(1, I64) << i64(exponent)) - tirx.const(1, I64))
        threshold = mask >> 1
        exp = exponent
    limit = threshold + sel(x < 0, tirx.const(1, I32), tirx.const(0, I32))
    return (x >> exp) + sel((x & mask) > limit, tirx.const(1, I32), tirx.const(0, I32))


def requantize(acc, multiplier, shift, rounding: str):
    """MultiplyByQuantizedMultiplier. multiplier/shift: Python ints (per tensor) or int32
    expressions (per channel; then `shift` holds TFLite's shift, as in quant.py).
    "onnxruntime": multiplier is the bit pattern of onnxruntime's float32 scale (shift unused)."""
    if rounding == "onnxruntime":
        m = tirx.const(multiplier, I32) if isinstance(multiplier, int) else multiplier
        return tirx.call_extern(I32, "tinycc_requantize_f32", acc, tirx.Cast("uint32", m))
    if rounding == "single":
        if isinstance(shift, int):
            total = 31 - shift
            rnd = tirx.const(1 << (total - 1), I64)
            return tirx.Cast(I32, (i64(acc) * i64(multiplier) + rnd) >> tirx.const(total, I64))
        total = i64(31 - shift)
        rnd = tirx.const(1, I64) << (total - tirx.const(1, I64))
        return tirx.Cast(I32, (i64(acc) * i64(multiplier) + rnd) >> total)
    if isinstance(shift, int):
        left, right = max(shift, 0), max(-shift, 0)
        scaled = acc * tirx.const(1 << left, I32) if left else acc
        return rounding_divide_by_pot(srdhm(scaled, multiplier), right)
    left = tirx.max(shift, 0)
    right = tirx.max(-shift, 0)
    # x * 2^left, not x << left: shifting a negative value is undefined in C
    return rounding_divide_by_pot(srdhm(acc * (tirx.const(1, I32) << left), multiplier), right)


def clamp_i8(x, lo: int, hi: int):
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
    right_shifts_only: bool = False  # every shift <= 0: cheaper double rounding
    small_accumulator: bool = False  # |acc| < 2^30 for every input: no overflow adding half
    rounding_constants: bool = False  # shift arrays hold (e, r) pairs: see rounding_constants()

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
        return clamp_i8(out, self.act_min, self.act_max)


def sat_shl(v, exponent: int = 2):
    """SaturatingRoundingMultiplyByPOT<exponent> on int32, exponent > 0."""
    lim = (1 << (31 - exponent)) - 1
    return sel(v > lim, tirx.const((1 << 31) - 1, I32),
                sel(v < -lim, tirx.const(-(1 << 31), I32), v * tirx.const(1 << exponent, I32)))


def rounding_constants(rq: Requant, shift) -> np.ndarray | None:
    """The shift array as per-channel (e, r) pairs for tinycc_requant_fast (modes 4 and 5 of
    runtime/kernels/tinycc_nn.h), or None when the layer does not qualify.

    Double rounding needs |acc| < 2^30 (rq.small_accumulator) and right shifts e = -shift >= 1;
    LiteRT's single rounding needs s = 31 - shift >= 33, i.e. e = s - 32 >= 1. Then
    r = 2^(e-1) + zp * 2^e, and the kernel computes (high product + r [- 1 if negative]) >> e.
    Both are checked here to stay inside int32 (|high product| < 2^30)."""
    import numpy as np

    if not rq.per_channel or rq.rounding not in ("single", "double"):
        return None
    shift = np.asarray(shift, dtype=np.int64)
    if rq.rounding == "double":
        if not (rq.right_shifts_only and rq.small_accumulator):
            return None
        e = -shift
    else:
        e = -1 - shift
    if e.min() < 1:
        return None
    r = (np.int64(1) << (e - 1)) + np.int64(rq.out_zp) * (np.int64(1) << e)
    if np.abs(r).max() + (1 << 30) >= (1 << 31):
        return None
    return np.stack([e, r], axis=1).reshape(-1).astype(np.int32)
