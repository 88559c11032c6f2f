"""TFLite's fixed-point arithmetic, ported to Python.

These are the compile-time halves of TFLite's integer kernels (QuantizeMultiplier and
friends, the `Prepare` work) and exact Python models of the run-time halves
(MultiplyByQuantizedMultiplier with single or double rounding, gemmlowp's fixed-point
exp), which the tests use as the oracle for the generated C and which build lookup tables.
Integers here are Python ints, wrapped to int32 where TFLite's C++ wraps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
ROUNDINGS = ("litert", "double", "onnxruntime")


def wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def quantize_multiplier(real: float, rounding: str = "single") -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real ~= M * 2^(shift - 31), M a Q31 in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = _tflite_round(q * (1 << 31))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if rounding == "single" and shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return int(q_fixed), int(shift)


def _tflite_round(x: float) -> int:
    """std::round: halves away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    s = ab + nudge
    q = abs(s) >> 31  # C++ division truncates toward zero
    return wrap32(q if s >= 0 else -q)


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent, halves away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mul_by_quantized_multiplier(x: int, multiplier: int, shift: int, rounding: str) -> int:
    """MultiplyByQuantizedMultiplier as LiteRT ('single') or TFLM/CMSIS-NN ('double') build it."""
    if rounding == "single":
        total = 31 - shift
        return wrap32((x * multiplier + (1 << (total - 1))) >> total)
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return rounding_divide_by_pot(srdhm(wrap32(x * (1 << left)), multiplier), right)


def activation_range(activation: int, scale: np.float32, zero_point: int,
                     qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for TFLite's fused activations."""
    def quantize(f: float) -> int:
        return zero_point + _tflite_round(float(np.float32(f) / np.float32(scale)))
    if activation == 0:  # NONE
        return qmin, qmax
    if activation == 1:  # RELU
        return max(qmin, quantize(0.0)), qmax
    if activation == 3:  # RELU6
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == 2:  # RELU_N1_TO_1
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"fused activation {activation}")


# --- gemmlowp fixed point, for TFLM's integer softmax -------------------------------------

def _fx_mul(a: int, b: int) -> int:
    return srdhm(a, b)


def _sat_mul_pot(x: int, exponent: int) -> int:
    """SaturatingRoundingMultiplyByPOT<exponent> on int32."""
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap32(x << exponent)


def _exp_quarter(a: int) -> int:
    """exp_on_interval_between_negative_one_quarter_and_0_excl, F0 -> F0."""
    constant_term, one_third = 1895147668, 715827883
    x = wrap32(a + (1 << 28))
    x2 = _fx_mul(x, x)
    x3 = _fx_mul(x2, x)
    x4 = _fx_mul(x2, x2)
    x4_over_4 = _sat_mul_pot(x4, -2)
    poly = _sat_mul_pot(wrap32(_fx_mul(wrap32(x4_over_4 + x3), one_third) + x2), -1)
    return wrap32(constant_term + _fx_mul(constant_term, wrap32(x + poly)))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp exp_on_negative_values: input F<integer_bits>, output F0 (raw int32)."""
    frac = 31 - integer_bits
    one_quarter = 1 << (frac - 2)
    mask = one_quarter - 1
    a_mod = wrap32((a & mask) - one_quarter)
    result = _exp_quarter(_sat_mul_pot(a_mod, integer_bits))  # Rescale<0>
    remainder = wrap32(a_mod - a)
    barrel = [(-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
              (2, 39332535), (3, 720401), (4, 242)]
    for exponent, multiplier in barrel:
        if integer_bits > exponent:
            if remainder & (1 << (frac + exponent)):
                result = _fx_mul(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = INT32_MAX
    return result


def softmax_integer_params(beta: float, input_scale: float, rounding: str) -> tuple[int, int, int]:
    """PreprocessSoftmaxScaling + CalculateInputRadius for int8 input (5 integer bits)."""
    real = min(beta * float(input_scale) * (1 << 26), float((1 << 31) - 1))
    multiplier, left_shift = quantize_multiplier(real, rounding)
    radius = math.floor(31.0 * (1 << 26) / (1 << left_shift))
    return multiplier, left_shift, -radius


def softmax_exp_table(beta: float, input_scale: float, rounding: str) -> np.ndarray:
    """exp(diff) in gemmlowp Q0.31 for every int8 diff = x - max_in_row in [-255, 0].

    Entry i is for diff = -i; diffs below diff_min give 0, which the kernel treats exactly as
    TFLite's "input_diff < diff_min" branch (no contribution to the sum, output = -128).
    """
    multiplier, left_shift, diff_min = softmax_integer_params(beta, input_scale, rounding)
    table = np.zeros(256, dtype=np.int32)
    for i in range(256):
        diff = -i
        if diff < diff_min:
            continue
        rescaled = mul_by_quantized_multiplier(diff, multiplier, left_shift, rounding) \
            if rounding == "single" else srdhm(wrap32(diff * (1 << left_shift)), multiplier)
        table[i] = exp_on_negative_values(rescaled, 5)
    return table


def one_over_one_plus_x(a: int) -> int:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1 (F0 -> F0), Newton-Raphson in F2."""
    s = a + INT32_MAX
    half_denominator = (s + 1) // 2 if s >= 0 else -((1 - s) // 2)  # RoundingHalfSum
    x = wrap32(1515870810 + _fx_mul(half_denominator, -1010580540))
    for _ in range(3):
        hdx = _fx_mul(half_denominator, x)
        one_minus = wrap32((1 << 29) - hdx)
        x = wrap32(x + _sat_mul_pot(_fx_mul(x, one_minus), 2))
    return _sat_mul_pot(x, 1)  # Rescale<0>(ExactMulByPot<-1>(x)): F2 raw read as F1


def get_reciprocal(x: int, integer_digits: int) -> tuple[int, int]:
    """TFLite GetReciprocal: (Q0.31 of 1/x scaled, num_bits_over_unit)."""
    headroom_plus_one = 32 - (x & 0xFFFFFFFF).bit_length()
    num_bits_over_unit = integer_digits - headroom_plus_one
    shifted_minus_one = wrap32(((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31))
    return one_over_one_plus_x(shifted_minus_one), num_bits_over_unit


def softmax_integer_reference(row: np.ndarray, table: np.ndarray) -> np.ndarray:
    """TFLite's reference_ops::Softmax on one int8 row, given the exp table above."""
    max_in_row = int(row.max())
    diffs = [max_in_row - int(v) for v in row]
    total = 0
    for d in diffs:
        total = wrap32(total + rounding_divide_by_pot(int(table[d]), 12))
    scale, bits = get_reciprocal(total, 12)
    out = [rounding_divide_by_pot(srdhm(scale, int(table[d])), bits + 23) - 128 for d in diffs]
    return np.clip(out, -128, 127).astype(np.int8)


# --- LiteRT's float softmax for int8 -------------------------------------------------------

_libm = ctypes.CDLL(ctypes.util.find_library("m"))
_libm.expf.restype = ctypes.c_float
_libm.expf.argtypes = [ctypes.c_float]


def softmax_float_table(beta: float, input_scale: np.float32) -> np.ndarray:
    """optimized_ops::PopulateSoftmaxLookupTable: table[255 - v] = expf(-scale*beta*v), float32."""
    scale = np.float32(-np.float32(input_scale) * np.float32(beta))
    table = np.zeros(256, dtype=np.float32)
    for v in range(256):
        table[255 - v] = _libm.expf(float(np.float32(scale * np.float32(v))))
    return table


# --- onnxruntime's float32 requantization ----------------------------------------------------

def f32_bits(x) -> int:
    """The bit pattern of float32(x), as a (non-negative for x >= 0) Python int."""
    return int(np.array(np.float32(x), dtype=np.float32).view(np.uint32))


def ort_scale(*factors, divisor) -> np.float32:
    """A requantization scale as onnxruntime computes it at run time, left to right in float32
    (QLinearConv: x_scale * w_scale / y_scale)."""
    acc = np.float32(factors[0])
    for f in factors[1:]:
        acc = np.float32(acc * np.float32(f))
    return np.float32(acc / np.float32(divisor))
