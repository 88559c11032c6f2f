"""onnxruntime's arithmetic, for the operators of ONNX models (rounding "onnxruntime").

onnxruntime's CPU kernels requantize in float32 where TFLite uses fixed point. Convolutions,
fully-connected layers and global average pools share TFLite's kernels with requantization
mode "onnxruntime" (tinycc.lower.common.requant: float32(acc) * scale, half to even, the scale
computed in float32 as onnxruntime computes it). The operators here have their own rules:

- QuantizeLinear (float input): round_half_even(x / scale) + zp, clamped (MlasQuantizeLinear).
- DequantizeLinear (float output): float32(q - zp) * scale.
- A DQ -> Relu/Clip/LeakyRelu -> Q group, which onnxruntime runs in float, QLinearLeakyRelu,
  QLinearSigmoid (its polynomial logistic, fused multiply-adds included) and the
  requantization of a QLinearConcat input: one 256-entry table, computed at compile time with
  float32 arithmetic (the same IEEE operations in the same order).
- QLinearAdd: onnxruntime's x86-64 AVX2 kernel, fma(a, ra, fma(b, rb, fixed)) in float32.

onnxruntime on x86 runs a QDQ model's activations as uint8 (values and zero points + 128);
Add and AveragePool, where a zero point enters float arithmetic, follow that
(`uint8_kernel`, set by the reader).
- QLinearSoftmax: its float32 exp table, float32 sum, product and quotient.
- QLinearGlobalAveragePool: (sum - zp * n) requantized by x_scale / (y_scale * n).
- QLinearMul: (a - za) * (b - zb) requantized by sa * sb / sc.
- QLinearAveragePool: the dequantized window summed in float32, / n, then y / y_scale + zp.

All of it is emulated exactly on float32 bit patterns with integer instructions.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels import onnxruntime as ORT
from ..kernels.fixedpoint import I32, clamp_i8, requantize
from .common import Const, Kernel, LoweringContext, act, describe, kernel_name
from .reduce import _axes, _kept_shape

F32 = np.float32
VALUES = np.arange(-128, 128, dtype=np.int32)


def _dequantize(v: np.ndarray, scale, zp: int) -> np.ndarray:
    """DequantizeLinear: float32(v - zp) * scale."""
    return (v.astype(np.int64) - zp).astype(F32) * F32(scale)


def _quantize(x: np.ndarray, scale, zp: int) -> np.ndarray:
    """QuantizeLinear: clamp(round_half_even(x / scale) + zp)."""
    return np.clip(np.rint(x.astype(F32) / F32(scale)) + zp, -128, 127).astype(np.int8)


def float_table(x_quant, out_quant, fn=lambda v: v) -> np.ndarray:
    """The int8 -> int8 table of a group dequantize -> fn in float32 -> quantize."""
    (si, zi), (so, zo) = x_quant.scalar(), out_quant.scalar()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _quantize(fn(_dequantize(VALUES, si, zi)).astype(F32), so, zo)


def _round_f32(value: Fraction) -> F32:
    """An exact rational rounded once to float32 (half to even); normal range."""
    if value == 0:
        return F32(0)
    a = abs(value)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    scaled = a / Fraction(2) ** (e - 23)
    m = int(scaled)
    rem = scaled - m
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and m % 2):
        m += 1
    return F32(math.copysign(m * 2.0 ** (e - 23), float(value)))


def _unpacked(x: F32) -> tuple[int, int]:
    """float32 as (signed mantissa, exponent): x = m * 2^e."""
    bits = quant.f32_bits(abs(x))
    if bits == 0:
        return 0, 0
    biased = bits >> 23
    m = (bits & 0x7FFFFF) | (0x800000 if biased else 0)
    e = (biased if biased else 1) - 150
    return (-m if x < 0 else m), e


def _offset(op: Operator) -> int:
    """128 where onnxruntime runs its uint8 kernel (a QDQ model on x86), else 0."""
    return 128 if op.options.get("uint8_kernel") else 0


# --- the lowerings ---------------------------------------------------------------------------

def lower_quantize(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = g.tensor(op.inputs[0]), act(ctx, op, g.tensor(op.outputs[0]))
    so, zo = out.quant.scalar()
    name = kernel_name(ctx, op)
    if x.dtype == "float32":
        func = ORT.quantize_f32(x.size, quant.f32_bits(so), zo)
        notes = [describe(g, op), f"QuantizeLinear: round_half_even(x / {float(so):.9g}) + {zo}, "
                 "clamped (float32 division emulated exactly with integers)"]
        return Kernel(name, op, func, [x.index], out.index, 0, notes)
    x = act(ctx, op, x)
    table = float_table(x.quant, out.quant)
    notes = [describe(g, op), "256-entry table: dequantize, QuantizeLinear in float32"]
    return Kernel(name, op, K.lut(x.size), [x.index, Const(f"{name}_table", table)], out.index, 0, notes)


def lower_dequantize(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), g.tensor(op.outputs[0])
    if out.dtype != "float32":
        raise UnsupportedOpError(op.kind, op.index, f"output of type {out.dtype}")
    si, zi = x.quant.scalar()
    func = ORT.dequantize_f32(x.size, zi, quant.f32_bits(si))
    notes = [describe(g, op), f"DequantizeLinear: float32(q - {zi}) * {float(si):.9g} "
             "(float32 product emulated exactly with integers)"]
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, 0, notes)


# MlasLogisticConstants (onnxruntime/core/mlas/lib/logistic.cpp), as float32
_ALPHA = ("4.37031012579801e-11", "1.15627324459942e-07", "6.08574864600143e-05", "8.51377133304701e-03",
          "2.48287947061529e-01")
_BETA = ("6.10247389755681e-13", "5.76102136993427e-09", "6.29106785017040e-06", "1.70198817374094e-03",
         "1.16817656904453e-01", "9.93151921023180e-01")


def _fma(a, b, c) -> F32:
    return _round_f32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


def _horner_fma(x2: F32, coefficients) -> F32:
    """MLAS's polynomial in x^2, highest coefficient first, by fused multiply-adds (each
    coefficient rounded to float32 as the C++ literal is)."""
    c = [_round_f32(Fraction(v)) for v in coefficients]
    p = _fma(x2, c[0], c[1])
    for a in c[2:]:
        p = _fma(x2, p, a)
    return p


def mlas_logistic(x: F32) -> F32:
    """MlasComputeLogisticF32KernelFma3 (x86-64): x clamped to [-18, 18], odd and even
    polynomials in x^2 by fused multiply-adds, p * x / q + 1/2, at least 0."""
    x = F32(min(max(F32(x), F32(-18.0)), F32(18.0)))
    x2 = F32(x * x)
    p, q = _horner_fma(x2, _ALPHA), _horner_fma(x2, _BETA)
    return F32(max(F32(F32(F32(x * p) / q) + F32(0.5)), F32(0.0)))


# MlasTanhConstants (onnxruntime/core/mlas/lib/tanh.cpp)
_TANH_ALPHA = ("-2.76076847742355e-16", "2.00018790482477e-13", "-8.60467152213735e-11",
               "5.12229709037114e-08", "1.48572235717979e-05", "6.37261928875436e-04",
               "4.89352455891786e-03")
_TANH_BETA = ("1.19825839466702e-06", "1.18534705686654e-04", "2.26843463243900e-03",
              "4.89352518554385e-03")


def mlas_tanh(x: F32) -> F32:
    """MlasComputeTanh's x86-64 FMA kernel: x clamped to [-9, 9], odd and even polynomials in
    x^2 by fused multiply-adds, p * x / q. (Measured against onnxruntime on 120 quantizations,
    every int8 value: the fused form matches all, the unfused one misses two.)"""
    x = F32(min(max(F32(x), F32(-9.0)), F32(9.0)))
    x2 = F32(x * x)
    p, q = _horner_fma(x2, _TANH_ALPHA), _horner_fma(x2, _TANH_BETA)
    return F32(F32(x * p) / q)


def _unary_fn(op: Operator):
    if op.kind == "TANH":
        return (lambda v: np.array([mlas_tanh(t) for t in v], dtype=F32),
                "onnxruntime's float32 tanh (MlasComputeTanh, x86-64 FMA kernel)")
    if op.kind == "LOGISTIC":
        return (lambda v: np.array([mlas_logistic(t) for t in v], dtype=F32),
                "onnxruntime's float32 logistic (MlasComputeLogistic, x86-64 FMA kernel)")
    if "float_scalar" in op.options:  # x op c, or c op x
        c = F32(op.options["float_scalar"])
        fn = {"ADD": np.add, "SUB": np.subtract, "MUL": np.multiply, "DIV": np.divide}[op.kind]
        if op.options.get("scalar_first"):
            return lambda v: fn(c, v).astype(F32), f"{float(c):g} {op.kind.lower()} x"
        return lambda v: fn(v, c).astype(F32), f"x {op.kind.lower()} {float(c):g}"
    if op.kind == "LEAKY_RELU":
        alpha = F32(op.options.get("alpha", 0.01))
        return lambda v: np.where(v >= 0, v, alpha * v).astype(F32), f"LeakyRelu alpha {float(alpha):g}"
    lo, hi = op.options.get("min", 0.0), op.options.get("max")
    lo = F32(-np.inf if lo is None else lo)
    hi = F32(np.inf if hi is None else hi)
    return lambda v: np.minimum(np.maximum(v, lo), hi), f"clip to [{float(lo):g}, {float(hi):g}]"


def lower_unary(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    fn, what = _unary_fn(op)
    name = kernel_name(ctx, op)
    table = float_table(x.quant, out.quant, fn)
    notes = [describe(g, op), f"256-entry table: dequantize, {what}, QuantizeLinear, in float32 "
             "as onnxruntime computes it"]
    return Kernel(name, op, K.lut(x.size), [x.index, Const(f"{name}_table", table)], out.index, 0, notes)


def lower_scalar(ctx: LoweringContext, op: Operator) -> Kernel:
    """SUB, DIV: only of a scalar constant (a float group in onnxruntime, one table)."""
    if "float_scalar" not in op.options:
        raise UnsupportedOpError(op.kind, op.index, "only with a scalar constant operand")
    return lower_unary(ctx, op)


def lower_global_average_pool(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    axes = _axes(ctx, op, len(x.shape))
    if len(x.shape) != 4 or axes != [1, 2]:
        raise UnsupportedOpError(op.kind, op.index, f"mean over axes {axes} (a global average pool only)")
    count = x.shape[1] * x.shape[2]
    (si, zi), (so, zo) = x.quant.scalar(), out.quant.scalar()
    scale = F32(F32(si) / F32(F32(so) * F32(count)))
    func = K.mean(x.shape, axes, _kept_shape(x.shape, axes), "multiplier", zi, zo, count,
                  quant.f32_bits(scale), 0, "onnxruntime")
    notes = [describe(g, op), f"QLinearGlobalAveragePool: (sum - {zi} * {count}) * {float(scale):.9g} "
             "in float32, rounded half to even"]
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, 0, notes)


def lower_add(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    if "float_scalar" in op.options:  # DQ -> Add of a constant -> Q, run in float
        return lower_unary(ctx, op)
    a, b, out = (act(ctx, op, g.tensor(i)) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if a.shape != b.shape or a.size != out.size:
        raise UnsupportedOpError(op.kind, op.index, f"broadcasting {a.shape} + {b.shape}")
    (sa, za), (sb, zb), (sc, zc) = a.quant.scalar(), b.quant.scalar(), out.quant.scalar()
    ra, rb = F32(F32(sa) / F32(sc)), F32(F32(sb) / F32(sc))
    off = _offset(op)
    za, zb, zc = za + off, zb + off, zc + off
    # (float)zc - (ra * za + rb * zb), which the compiler contracts to an fma
    inner = _round_f32(Fraction(float(ra)) * za + Fraction(float(F32(rb * F32(zb)))))
    fixed = _round_f32(Fraction(zc) - Fraction(float(inner)))
    inner = [_unpacked(_round_f32(Fraction(int(v) + off) * Fraction(float(rb)) + Fraction(float(fixed))))
             for v in VALUES]  # fma(b, rb, fixed) for every b
    t_m = np.array([m for m, _ in inner], np.int32)
    t_e = np.array([e for _, e in inner], np.int32)
    func = ORT.qlinear_add(a.size, _unpacked(ra), off)
    name = kernel_name(ctx, op)
    notes = [describe(g, op), f"QLinearAdd as onnxruntime's x86-64 AVX2 kernel: fma(a, {float(ra):.9g}, "
             f"fma(b, {float(rb):.9g}, {float(fixed):.9g})) in float32, rounded half to even"
             + (" (its uint8 kernel: values + 128)" if off else "")]
    return Kernel(name, op, func, [a.index, b.index, Const(f"{name}_inner_mantissa", t_m),
                                   Const(f"{name}_inner_exponent", t_e)], out.index, 0, notes)


def lower_mul(ctx: LoweringContext, op: Operator) -> Kernel:
    """QLinearMul: round_half_even(float32((a - za) * (b - zb)) * (sa * sb / sc)) + zc, the
    requantization of a convolution, so no uint8 difference either."""
    g = ctx.graph
    if "float_scalar" in op.options:  # DQ -> Mul by a float constant -> Q, run in float
        return lower_unary(ctx, op)
    a, b, out = (g.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    (sa, za), (sb, zb), (sc, zc) = a.quant.scalar(), b.quant.scalar(), out.quant.scalar()
    scale = F32(F32(F32(sa) * F32(sb)) / F32(sc))
    bits = quant.f32_bits(scale)
    name = kernel_name(ctx, op)

    def fn(x, y):
        prod = (x.astype(I32) - za) * (y.astype(I32) - zb)
        return clamp_i8(requantize(prod, bits, 0, "onnxruntime") + zc, -128, 127)
    args = [Const(f"{name}_operand{k}", t.data) if t.is_const else t.index for k, t in enumerate((a, b))]
    func = K.binary(a.shape, b.shape, out.shape, fn, None)
    notes = [describe(g, op), f"QLinearMul: (a - {za}) * (b - {zb}) * {float(scale):.9g} in float32, "
             "rounded half to even"]
    return Kernel(name, op, func, args, out.index, 0, notes)


def softmax_table(x_scale, depth: int) -> np.ndarray:
    """QlinearBuildLookupTableUint32 for int8 input: entry uint8(i - 128) = float32(exp((i - 255 +
    shift) * x_scale)), shift = max(0, log(FLT_MAX / depth) - 5) / x_scale, in double."""
    top = F32(np.finfo(F32).max) / F32(depth)
    shift = max(0.0, math.log(float(top)) - 5.0) / float(F32(x_scale))
    table = np.zeros(256, dtype=F32)
    for i in range(256):
        table[(i - 128) & 0xFF] = F32(math.exp((i - 255 + shift) * float(F32(x_scale))))
    return table


def lower_softmax(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    depth = x.shape[-1]
    (si, _), (so, zo) = x.quant.scalar(), out.quant.scalar()
    y_scale = F32(np.floor(F32(1.0) / F32(so)))
    name = kernel_name(ctx, op)
    table = softmax_table(si, depth).view(np.uint32)
    func = ORT.qlinear_softmax(x.size // depth, depth, quant.f32_bits(y_scale), zo)
    notes = [describe(g, op), f"QLinearSoftmax: float32 exp table, sum, round_half_even(t * {float(y_scale):g} "
             "/ sum) + zero point, clamped"]
    return Kernel(name, op, func, [x.index, Const(f"{name}_exp_table", table)], out.index, 0, notes)


def lower_average_pool(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    o = op.options
    window, stride = (o["filter_height"], o["filter_width"]), (o["stride_h"], o["stride_w"])
    pad = tuple(o.get("explicit_padding", (0, 0)))
    (si, zi), (so, zo) = x.quant.scalar(), out.quant.scalar()
    name = kernel_name(ctx, op)
    table = _dequantize(VALUES, si, zi).view(np.uint32)
    func = ORT.qlinear_average_pool(x.shape, out.shape, window, stride, pad, quant.f32_bits(so), zo, _offset(op))
    notes = [describe(g, op), f"QLinearAveragePool: window {window[0]}x{window[1]}, stride {stride[0]}x"
             f"{stride[1]}, padding top {pad[0]} left {pad[1]}; dequantized values summed in float32, "
             "divided by the count, round_half_even(y / y_scale + zero point)"]
    return Kernel(name, op, func, [x.index, Const(f"{name}_dequantized", table)], out.index,
                  out.size * window[0] * window[1], notes)


# Operators whose TFLite lowering is also onnxruntime's arithmetic (byte moves, max, and the
# float32-scale requantization of convolutions and fully-connected layers).
SHARED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "RESHAPE", "TRANSPOSE",
          "CONCATENATION")

LOWERINGS = {"QUANTIZE": lower_quantize, "DEQUANTIZE": lower_dequantize, "RELU": lower_unary,
             "LEAKY_RELU": lower_unary, "MEAN": lower_global_average_pool, "ADD": lower_add,
             "SOFTMAX": lower_softmax, "AVERAGE_POOL_2D": lower_average_pool,
             "MUL": lower_mul, "LOGISTIC": lower_unary, "SUB": lower_scalar, "DIV": lower_scalar,
             "TANH": lower_unary}
