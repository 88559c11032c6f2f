"""The edges of a model with float input or output: QUANTIZE float32 -> int8/int16 and
DEQUANTIZE int8 -> float32. No libm: the rounding is done on the truncated quotient."""

from __future__ import annotations

from tvm import te, tirx

from .fixedpoint import I32

F32 = "float32"
_LIMITS = {"int8": (-128, 127), "int16": (-32768, 32767)}


def quantize(size: int, out_dtype: str, zero_point: int, half_even: bool = False):
    """out = clamp(round(x / scale) + zero_point), as reference_ops::AffineQuantize computes
    it: one float32 division (scale[0] is the float32 scale), then std::round, half away from
    zero (half to even with `half_even`, as ONNX's QuantizeLinear rounds).

    Rounding without libm, exact: the quotient is first clamped to +-3 * 2^15 (beyond that the
    result saturates either way), so it truncates to an int32 t and q - t is exact in float32;
    the fraction then decides the step."""
    lo, hi = _LIMITS[out_dtype]
    bound = float(3 * (hi + 1))
    x = te.placeholder((size,), F32, name="input")
    scale = te.placeholder((1,), F32, name="scale")
    half = tirx.const(0.5, F32)

    def rounded(i):
        q = te.max(te.min(x[i] / scale[0], tirx.const(bound, F32)), tirx.const(-bound, F32))
        t = q.astype(I32)
        frac = q - t.astype(F32)
        if half_even:
            odd = tirx.truncmod(t, 2) != 0
            up = tirx.Or(frac > half, tirx.And(frac == half, odd))
            down = tirx.Or(frac < -half, tirx.And(frac == -half, odd))
        else:
            up, down = frac >= half, frac <= -half
        return t + up.astype(I32) - down.astype(I32)

    out = te.compute((size,), lambda i: te.max(te.min(rounded(i) + zero_point, hi), lo).astype(out_dtype),
                     name="output")
    return te.create_prim_func([x, scale, out])


def dequantize_lut(size: int):
    """out[i] = table[in[i] + 128]: the 256 float32 values, computed at compile time as
    reference_ops::Dequantize does (in double, then rounded to float32)."""
    x = te.placeholder((size,), "int8", name="input")
    table = te.placeholder((256,), F32, name="table")
    out = te.compute((size,), lambda i: table[x[i].astype(I32) + 128], name="output")
    return te.create_prim_func([x, table, out])
