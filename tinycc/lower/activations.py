"""Element-wise int8 -> int8 operators: RELU, RELU6, RELU_N1_TO_1, LEAKY_RELU, HARD_SWISH,
LOGISTIC, TANH and QUANTIZE (int8 to int8 requantization).

Each is a function of one int8 value, so each becomes a 256-entry table computed here, at
compile time, by a Python port of the reference kernel's arithmetic (the `*_table` functions
below, the tests' oracle too), and one lookup kernel. The tables differ between the two
references where their kernels do:

- LOGISTIC, TANH: LiteRT's int8 kernels are themselves a table that Prepare fills in float32
  (dequantize, expf / tanhf, `std::round`): the same float32 arithmetic here gives the same
  bytes, and no float is left for run time. TFLM computes gemmlowp's fixed-point logistic and
  tanh (Q4.27 input, Newton-Raphson reciprocal); ported exactly.
- The rest requantize with MultiplyByQuantizedMultiplier: LiteRT rounds as `ROUNDING` says
  (measured against BUILTIN_REF, see tests/test_ops.py), TFLM rounds twice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from .common import Const, Kernel, LoweringContext, act, describe, kernel_name

F32 = np.float32
_libm = ctypes.CDLL(ctypes.util.find_library("m"))
for _fn in ("expf", "tanhf"):
    getattr(_libm, _fn).restype = ctypes.c_float
    getattr(_libm, _fn).argtypes = [ctypes.c_float]

# How LiteRT 2.3's BUILTIN_REF requantizes in these operators, measured: "single" or "double"
# rounding of MultiplyByQuantizedMultiplier, or "float" for a table LiteRT fills in float32.
# LEAKY_RELU is measured double (19-43 of 256 table entries differ with single rounding); for
# RELU, RELU6, RELU_N1_TO_1 the zoo's scales give the same table either way, and LiteRT's
# kernels call the same MultiplyByQuantizedMultiplier; HARD_SWISH is int16 fixed point.
ROUNDING = {"RELU": "double", "RELU6": "double", "RELU_N1_TO_1": "double", "LEAKY_RELU": "double",
            "HARD_SWISH": "double", "QUANTIZE": "double", "LOGISTIC": "float", "TANH": "float"}
VALUES = np.arange(-128, 128)


def mode(ctx: LoweringContext, op: Operator) -> str:
    """"single", "double" or "float" for this operator under the context's rounding."""
    if ctx.mode == "litert":
        return ROUNDING.get(op.kind, "double")
    return ctx.mode


def _round(x: float) -> int:
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def _clamp(v: int, lo: int = -128, hi: int = 127) -> int:
    return max(lo, min(hi, v))


def _mbqm(x, m, s, r):
    if m < 0:  # a negative multiplier (negative alpha): TFLite negates after the positive one
        return -quant.mul_by_quantized_multiplier(x, -m, s, r)
    return quant.mul_by_quantized_multiplier(x, m, s, r)


def _qm(real: float, r: str) -> tuple[int, int]:
    if real < 0:
        m, s = quant.quantize_multiplier(-real, r)
        return -m, s
    return quant.quantize_multiplier(real, r)


# --- the tables ------------------------------------------------------------------------------

def relu_table(si, zi, so, zo, lo: float, hi: float | None, r: str) -> np.ndarray:
    """QuantizedReluX / ReluQuantized: requantize, then clamp to [lo, hi] in output units
    (roundf(bound / scale) in float32, as both references compute the bounds)."""
    m, s = quant.quantize_multiplier(float(F32(si) / F32(so)), r)
    amin = max(-128, zo + _round(float(F32(lo) / F32(so))))
    amax = 127 if hi is None else min(127, zo + _round(float(F32(hi) / F32(so))))
    return np.array([_clamp(zo + _mbqm(int(v) - zi, m, s, r), amin, amax) for v in VALUES], np.int8)


def leaky_relu_table(si, zi, so, zo, alpha: float, r: str) -> np.ndarray:
    """QuantizeLeakyRelu: identity multiplier for x >= 0, alpha multiplier below."""
    mi, shi = quant.quantize_multiplier(float(F32(si) / F32(so)), r)
    ma, sha = _qm(float(F32(si) * F32(alpha) / F32(so)), r)
    out = []
    for v in VALUES:
        x = int(v) - zi
        y = _mbqm(x, mi, shi, r) if x >= 0 else _mbqm(x, ma, sha, r)
        out.append(_clamp(zo + y))
    return np.array(out, np.int8)


def requantize_table(si, zi, so, zo, r: str) -> np.ndarray:
    """reference_ops::Requantize (QUANTIZE int8 -> int8)."""
    m, s = quant.quantize_multiplier(float(si) / float(so), r)
    return np.array([_clamp(zo + _mbqm(int(v) - zi, m, s, r)) for v in VALUES], np.int8)


def _i16(x: int) -> int:
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    q = abs(ab + nudge) >> 15
    return _i16(q if ab + nudge >= 0 else -q)


def _sdhm16(a: int, b: int) -> int:
    """HardSwish's SaturatingDoublingHighMul (no rounding: C division truncates)."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    ab = a * b
    q = abs(ab) >> 15
    return _i16(q if ab >= 0 else -q)


def _sat_shl16(v: int, amount: int) -> int:
    return max(-(1 << 15), min((1 << 15) - 1, v * (1 << amount)))


def _to_int16_multiplier(m: int) -> int:
    if m >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (m + (1 << 15)) >> 16


def hard_swish_table(si, zi, so, zo, r: str) -> np.ndarray:
    """reference_ops::HardSwish (int16 fixed point), with HardSwishPrepare's multipliers
    (computed in float32, as both references do)."""
    hires = F32(F32(1.0 / 128.0) * F32(si))
    om, oe = quant.quantize_multiplier(float(F32(hires / F32(so))), r)
    rm, re_ = quant.quantize_multiplier(float(F32(hires / F32(3.0 / 32768.0))), r)
    om16, rm16 = _to_int16_multiplier(om), _to_int16_multiplier(rm)
    if oe > 0:
        raise ValueError("output multiplier exponent above 0")
    out = []
    for v in VALUES:
        x = _i16(int(v) - zi)
        hi_in = _i16(x * 128)
        pre_out = _srdhm16(hi_in, om16)
        rel = hi_in
        if re_ > 0:
            rel = _sat_shl16(rel, re_ - 1)
        rel = _srdhm16(rel, rm16)
        if re_ > 0:
            rel = _sat_shl16(rel, 1)
        if re_ < 0:
            rel = quant.rounding_divide_by_pot(rel, -re_)
        rel = _i16((rel + (1 << 15)) >> 1)
        pre = _sdhm16(rel, pre_out)
        y = _i16(quant.rounding_divide_by_pot(pre, -oe) + zo)
        out.append(_clamp(y))
    return np.array(out, np.int8)


def float_lut_table(si, zi, so, zo, fn) -> np.ndarray:
    """LiteRT's PopulateLookupTable / LUTPopulate, in float32 as it computes."""
    inv = F32(F32(1.0) / F32(so))
    out = []
    for v in VALUES:
        deq = F32(F32(si) * F32(int(v) - zi))
        rescaled = F32(_round(float(F32(fn(deq) * inv))))
        out.append(_clamp(int(F32(rescaled + F32(zo)))))
    return np.array(out, np.int8)


def _logistic_f32(x):
    return F32(F32(1.0) / F32(F32(1.0) + F32(_libm.expf(float(-x)))))


def _tanh_f32(x):
    return F32(_libm.tanhf(float(x)))


def _fixed_input_params(si) -> tuple[int, int, int]:
    """Logistic/Tanh Prepare in TFLM: input to Q4.27 multiplier, left shift, range radius."""
    real = float(si) * float(1 << 27)
    q, shift = math.frexp(real)
    mult = _round(q * (1 << 31))
    radius = math.floor(15.0 * (1 << 27) / (1 << shift))
    return mult, shift, radius


def _logistic_q4(a: int) -> int:
    """gemmlowp::logistic on a Q4.27 raw value, result Q0.31."""
    if a == 0:
        return 1 << 30
    pos = quant.one_over_one_plus_x(quant.exp_on_negative_values(-abs(a), 4))
    return pos if a > 0 else quant.wrap32(quant.INT32_MAX - pos)


def _one_minus_x_over_one_plus_x(a: int) -> int:
    s = a + quant.INT32_MAX
    half = (s + 1) // 2 if s >= 0 else -((1 - s) // 2)
    x = quant.wrap32(1515870810 + quant.srdhm(half, -1010580540))
    for _ in range(3):
        one_minus = quant.wrap32((1 << 29) - quant.srdhm(half, x))
        x = quant.wrap32(x + quant._sat_mul_pot(quant.srdhm(x, one_minus), 2))
    return quant._sat_mul_pot(quant.wrap32(x - (1 << 29)), 2)


def _tanh_q4(a: int) -> int:
    """gemmlowp::tanh on a Q4.27 raw value, result Q0.31."""
    if a == 0:
        return 0
    n = a if a < 0 else -a
    t = _one_minus_x_over_one_plus_x(quant.exp_on_negative_values(n, 5))
    return quant.wrap32(-t) if a < 0 else t


def fixed_point_table(si, zi, kind: str) -> np.ndarray:
    """reference_integer_ops::Logistic / Tanh (TFLM): output 1/256, -128 or 1/128, 0."""
    mult, shift, radius = _fixed_input_params(si)
    out = []
    for v in VALUES:
        x = int(v) - zi
        if x <= -radius:
            out.append(-128)
        elif x >= radius:
            out.append(127)
        else:
            q4 = quant.mul_by_quantized_multiplier(x, mult, shift, "double")
            if kind == "LOGISTIC":
                y = quant.rounding_divide_by_pot(_logistic_q4(q4), 23) - 128
            else:
                y = quant.rounding_divide_by_pot(_tanh_q4(q4), 24)
            out.append(_clamp(y))
    return np.array(out, np.int8)


def table_for(kind: str, options: dict, si, zi, so, zo, r: str, tflm: bool = False) -> tuple[np.ndarray, str]:
    """The 256-entry table of one operator and a note on how it was computed; `tflm` for
    TFLM's own algorithm where it differs from LiteRT's beyond rounding."""
    if kind == "RELU6" and tflm:  # TFLM clamps the raw input, no requantization
        six = _clamp(_round(float(F32(6.0) / F32(si))) + zi)
        return np.clip(VALUES, zi, six).astype(np.int8), "TFLM's Relu6: clamp in input units"
    if kind in ("RELU", "RELU6", "RELU_N1_TO_1"):
        lo, hi = {"RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}[kind]
        return relu_table(si, zi, so, zo, lo, hi, r), f"requantize ({r} rounding), clamp"
    if kind == "LEAKY_RELU":
        alpha = float(options.get("alpha", 0.2))
        return leaky_relu_table(si, zi, so, zo, alpha, r), f"alpha {alpha:g}; {r} rounding"
    if kind == "QUANTIZE":
        return requantize_table(si, zi, so, zo, r), f"int8 requantization, {r} rounding"
    if kind == "HARD_SWISH":
        return hard_swish_table(si, zi, so, zo, r), "TFLite's int16 fixed-point hard swish"
    fn = _logistic_f32 if kind == "LOGISTIC" else _tanh_f32
    if r == "float":
        return float_lut_table(si, zi, so, zo, fn), "LiteRT's float32 table, filled at compile time"
    return fixed_point_table(si, zi, kind), "gemmlowp fixed point (Q4.27 input), as TFLM computes it"


# --- the lowering ----------------------------------------------------------------------------

def lower_unary(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = act(ctx, op, g.tensor(op.inputs[0]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    if x.size != out.size:
        raise UnsupportedOpError(op.kind, op.index, f"{x.shape} -> {out.shape}")
    (si, zi), (so, zo) = x.quant.scalar(), out.quant.scalar()
    r = mode(ctx, op)
    if op.kind in ("LOGISTIC", "TANH") and r != "float":
        want = (1.0 / 256, -128) if op.kind == "LOGISTIC" else (1.0 / 128, 0)
        if (float(so), zo) != want:
            raise UnsupportedOpError(op.kind, op.index, f"output quantization {float(so)}, {zo} "
                                     f"(TFLite's integer kernel needs {want[0]}, {want[1]})")
    try:
        table, note = table_for(op.kind, op.options, si, zi, so, zo, r, ctx.mode == "double")
    except ValueError as exc:
        raise UnsupportedOpError(op.kind, op.index, str(exc)) from None
    name = kernel_name(ctx, op)
    notes = [describe(g, op), f"256-entry table: {note}"]
    return Kernel(name, op, K.lut(x.size), [x.index, Const(f"{name}_table", table)], out.index, 0, notes)


LOWERINGS = {k: lower_unary for k in ROUNDING}
