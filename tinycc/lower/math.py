"""Math operators, int8 and float32: SUM, SQRT, RSQRT, EXP, LOG, SQUARE, NEG, DIV, ADD_N,
SQUARED_DIFFERENCE and ABS (float; int8 in extra.py), FLOOR, CEIL, ROUND, COS, SIN, FLOOR_DIV,
FLOOR_MOD, L2_NORMALIZATION, L2_POOL_2D, LOG_SOFTMAX, BATCH_MATMUL, CUMSUM, RESIZE_BILINEAR.

int8. Each element-wise operator is a function of one int8 value: a 256-entry table computed
here by a Python port of LiteRT's int8 kernel, and one lookup kernel (no float at run time).
- EXP, LOG: LiteRT's Prepare fills a table in float32 (LUTPopulate: dequantize, expf / logf,
  round half away); LOG maps x <= 0 to the lowest output value. The same float32 arithmetic
  here (the host's libm, as LiteRT's) gives the same bytes. TFLM has neither in int8.
- SQRT: LiteRT computes in float32 per value: sqrtf(scale * (q - zp)) / out_scale, truncated
  toward zero. A negative input is an error in LiteRT; the table gives the output zero point.
- RSQRT: LiteRT's and TFLM's integer kernel (GetInvSqrtQuantizedMultiplierExp, a fixed-point
  Newton-Raphson, then two MultiplyByQuantizedMultiplier), ported exactly.
- SUM: reference_ops::QuantizedMeanOrSum with compute_sum (MEAN's kernel without the count
  folded into the multiplier), as TFLM computes it. LiteRT's BUILTIN_REF SUM is no oracle for
  int8: its reduce.cc hands the int8 data to that function as uint8 (measured: outputs
  saturate), and its optimized SUM requantizes in float32 (within one step of this).
- DIV: LiteRT's integer division (a reciprocal per divisor value, a table here), see
  lower_int8_div. L2_NORMALIZATION and LOG_SOFTMAX: hand-written C kernels (fixed point at run
  time). RESIZE_BILINEAR, BATCH_MATMUL: integer tensor expressions.
- NEG, SQUARE, ADD_N, FLOOR, CEIL, ROUND, COS, SIN, FLOOR_DIV, FLOOR_MOD, CUMSUM, L2_POOL_2D:
  LiteRT has no quantized int8 kernel for them (its int8 NEG, FLOOR_DIV, FLOOR_MOD work on raw
  integers; the converter keeps those in float): refused by name.

float32. The reference's operations in its order: bit for bit wherever the C library is not
involved or is exact (sqrtf, fabsf, floorf, ceilf, nearbyintf, fmodf are correctly rounded in IEEE
arithmetic); expf, logf, cosf, sinf are the target's (LIBM_OPS in lower/float32.py: within
verify's FLOAT_TOLERANCE).
"""

from __future__ import annotations

import numpy as np
from tvm import tirx

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels import float32 as KF
from ..kernels import math as KM
from . import extra, reduce
from .activations import F32, VALUES, _clamp, _libm, float_lut_table
from .arithmetic import _check_shapes
from .common import Const, Kernel, LoweringContext, act, describe, kernel_name
from .float32 import _activation, _arg, _clamp_note, _kernel, _tensor, is_float, pool_geometry

for _fn in ("logf", "sqrtf"):
    getattr(_libm, _fn).restype = _libm.expf.restype
    getattr(_libm, _fn).argtypes = _libm.expf.argtypes

# Rounding: ctx.rounding(op), "double" for these operators under LiteRT too. LiteRT 2.3 is
# built without TFLITE_SINGLE_ROUNDING (its RESIZE_BILINEAR int8 takes that #else branch:
# measured), so MultiplyByQuantizedMultiplier rounds twice in RSQRT, DIV, BATCH_MATMUL,
# L2_NORMALIZATION and LOG_SOFTMAX, as in TFLM. (On the zoo's models single rounding gives the
# same bytes: 50 inputs each.) SUM rounds as MEAN does.
NO_INT8 = {"NEG": "LiteRT's int8 NEG negates raw (unquantized) integers: the converter keeps NEG in float",
           **{k: "LiteRT has no int8 kernel for it" for k in
              ("SQUARE", "ADD_N", "FLOOR", "CEIL", "ROUND", "COS", "SIN")},
           **{k: f"LiteRT's int8 {k} works on raw (unquantized) integers" for k in ("FLOOR_DIV", "FLOOR_MOD")}}


# --- int8 tables ---------------------------------------------------------------------------

def exp_table(si, zi, so, zo) -> np.ndarray:
    return float_lut_table(si, zi, so, zo, lambda v: F32(_libm.expf(float(v))))


def log_table(si, zi, so, zo) -> np.ndarray:
    """LogLUTPrepare: logf, and the lowest output value for x <= 0."""
    lowest = F32(F32(-128 - zo) * F32(so))
    return float_lut_table(si, zi, so, zo, lambda v: lowest if v <= 0 else F32(_libm.logf(float(v))))


def sqrt_table(si, zi, so, zo) -> np.ndarray:
    """SqrtEvalQuantized: float32, the quotient truncated toward zero; a negative input (an
    error in LiteRT) gives the output zero point."""
    out = []
    for v in VALUES:
        deq = F32(F32(si) * F32(int(v) - zi))
        root = F32(_libm.sqrtf(float(deq))) if deq >= 0 else F32(0.0)
        out.append(_clamp(int(F32(root / F32(so))) + zo))
    return np.array(out, np.int8)


def inv_sqrt_multiplier(x: int) -> tuple[int, int]:
    """GetInvSqrtQuantizedMultiplierExp(x, kReverseShift): 1/sqrt(x) as (multiplier, shift)."""
    if x <= 1:
        return quant.INT32_MAX, 0
    shift = 11
    while x >= (1 << 29):
        x //= 4
        shift += 1
    pairs = ((32 - x.bit_length()) - 1) // 2 - 1
    shift -= pairs
    x <<= 2 * pairs
    half_input = quant.rounding_divide_by_pot(x >> 1, 1)  # F3, halved
    half_three = (1 << 28) + (1 << 27)
    y = 1 << 28  # F3 one
    for _ in range(5):  # Newton-Raphson: y = 1.5 y - x/2 y^3, each product an F6 rescaled to F3
        y3 = quant._sat_mul_pot(quant.srdhm(quant.srdhm(y, y), y), 6)
        y = quant._sat_mul_pot(quant.wrap32(quant.srdhm(half_three, y) - quant.srdhm(half_input, y3)), 3)
    y = quant.srdhm(y, 1518500250)  # * sqrt(2) / 2
    if shift < 0:
        y, shift = quant.wrap32(y << -shift), 0
    return y, -shift


def rsqrt_table(si, zi, so, zo, r: str) -> np.ndarray:
    """RsqrtEvalQuantizedInt8; 1 / (sqrtf(si) * so) in double as SetRsqrtOutputMultiplier
    computes it. x == zp gives 127; x < zp (an error in both references) gives 127 too."""
    m, s = quant.quantize_multiplier(1.0 / float(F32(F32(_libm.sqrtf(float(si))) * F32(so))), r)
    out = []
    for v in VALUES:
        x = int(v) - zi
        if x <= 0:
            out.append(127)
            continue
        im, ish = inv_sqrt_multiplier(x)
        data = quant.mul_by_quantized_multiplier(1, im, ish + 20, r)
        out.append(_clamp(quant.mul_by_quantized_multiplier(data, m, s - 20, r) + zo))
    return np.array(out, np.int8)


def _lut(ctx, op, table: np.ndarray, note: str) -> Kernel:
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    if x.size != out.size:
        raise UnsupportedOpError(op.kind, op.index, f"{x.shape} -> {out.shape}")
    name = kernel_name(ctx, op)
    return Kernel(name, op, K.lut(x.size), [x.index, Const(f"{name}_table", table)], out.index, 0,
                  [describe(g, op), note])


def _quants(ctx, op):
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    (si, zi), (so, zo) = x.quant.scalar(), out.quant.scalar()
    return si, zi, so, zo


def lower_int8_unary(ctx: LoweringContext, op: Operator) -> Kernel:
    si, zi, so, zo = _quants(ctx, op)
    if op.kind == "EXP":
        return _lut(ctx, op, exp_table(si, zi, so, zo), "256-entry table filled in float32 at compile time: expf")
    if op.kind == "LOG":
        return _lut(ctx, op, log_table(si, zi, so, zo),
                    "256-entry table filled in float32 at compile time: logf, x <= 0 to the lowest value")
    if op.kind == "SQRT":
        return _lut(ctx, op, sqrt_table(si, zi, so, zo),
                    "256-entry table: sqrtf in float32 at compile time, quotient truncated")
    r = ctx.rounding(op)
    return _lut(ctx, op, rsqrt_table(si, zi, so, zo, r),
                f"256-entry table: fixed-point inverse square root, requantized ({r} rounding)")


def lower_int8_sum(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    axes = reduce._axes(ctx, op, len(x.shape))
    count = int(np.prod([x.shape[a] for a in axes]))
    (si, zi), (so, zo) = x.quant.scalar(), out.quant.scalar()
    r = ctx.rounding(op)
    m, s = quant.quantize_multiplier(float(si) / float(so), r)
    if count * 255 >= (1 << 31):
        raise UnsupportedOpError(op.kind, op.index, f"a sum of {count} values may overflow int32")
    func = K.mean(x.shape, axes, reduce._kept_shape(x.shape, axes), "multiplier", zi, zo, count, m, s, r)
    notes = [describe(g, op), (f"sum over axes {axes} ({count} values) minus {count} x {zi}, "
             f"requantized by {m}, shift {s} ({r} rounding)")]
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, 0, notes)


# --- float32 -------------------------------------------------------------------------------

def _unary_fn(kind: str):
    f = KF.f32
    return {"EXP": tirx.exp, "LOG": tirx.log, "SQRT": tirx.sqrt, "RSQRT": lambda v: f(1.0) / tirx.sqrt(v),
            "SQUARE": lambda v: v * v, "NEG": lambda v: -v, "FLOOR": tirx.floor, "CEIL": tirx.ceil,
            # RoundToNearest: halves to even, which nearbyintf does in the default rounding mode
            "ROUND": tirx.nearbyint, "COS": tirx.cos, "SIN": tirx.sin, "ABS": lambda v: tirx.call_extern(KF.F32, "fabsf", v)}[kind]


LIBM = {"EXP": "expf", "LOG": "logf", "SQRT": "sqrtf", "RSQRT": "sqrtf", "FLOOR": "floorf", "CEIL": "ceilf",
        "ROUND": "nearbyintf", "COS": "cosf", "SIN": "sinf", "FLOOR_DIV": "floor, in double",
        "FLOOR_MOD": "fmodf", "ABS": "fabsf"}


def lower_float_unary(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    if x.size != out.size:
        raise UnsupportedOpError(op.kind, op.index, f"{x.shape} -> {out.shape}")
    libm = f" (libm: {LIBM[op.kind]})" if op.kind in LIBM else ""
    return _kernel(ctx, op, KF.unary(x.size, _unary_fn(op.kind)), [x.index], out,
                   f"float32 {op.kind.lower()}{libm}")


def _binary_fn(op):
    lo, hi = _activation(op) if op.kind == "DIV" else (None, None)
    return {"DIV": lambda a, b: KF.clamp(a / b, lo, hi),
            "SQUARED_DIFFERENCE": lambda a, b: (a - b) * (a - b),
            "FLOOR_DIV": KM.floor_div, "FLOOR_MOD": KM.floor_mod}[op.kind], _clamp_note(lo, hi)


def lower_float_binary(ctx: LoweringContext, op: Operator) -> Kernel:
    a, b = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.inputs[1])
    out = _tensor(ctx, op, op.outputs[0])
    _check_shapes(op, a, b, out)
    fn, clamp = _binary_fn(op)
    func = KF.elementwise(a.shape, b.shape, out.shape, fn)
    args = [_arg(ctx, op, a, "operand0"), _arg(ctx, op, b, "operand1")]
    libm = f" (libm: {LIBM[op.kind]})" if op.kind in LIBM else ""
    return _kernel(ctx, op, func, args, out,
                   f"float32 {op.kind.lower()}{libm}, broadcast {a.shape} and {b.shape}; {clamp}")


def lower_float_add_n(ctx: LoweringContext, op: Operator) -> Kernel:
    ins = [_tensor(ctx, op, i) for i in op.inputs]
    out = _tensor(ctx, op, op.outputs[0])
    if any(t.shape != out.shape for t in ins):
        raise UnsupportedOpError(op.kind, op.index, f"inputs {[t.shape for t in ins]} -> {out.shape} "
                                 "(ADD_N does not broadcast)")
    args = [_arg(ctx, op, t, f"operand{k}") for k, t in enumerate(ins)]
    return _kernel(ctx, op, KM.add_n(out.size, len(ins)), args, out, f"float32 sum of {len(ins)} tensors, in order")


def lower_float_sum(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    axes = reduce._axes(ctx, op, len(x.shape))
    func = KM.float_sum(x.shape, axes, reduce._kept_shape(x.shape, axes))
    return _kernel(ctx, op, func, [x.index], out, f"float32 sum over axes {axes}, in index order")


# --- dispatch ------------------------------------------------------------------------------

FLOAT = {**{k: lower_float_unary for k in ("EXP", "LOG", "SQRT", "RSQRT", "SQUARE", "NEG", "FLOOR", "CEIL",
                                            "ROUND", "COS", "SIN", "ABS")},
         **{k: lower_float_binary for k in ("DIV", "SQUARED_DIFFERENCE", "FLOOR_DIV", "FLOOR_MOD")},
         "ADD_N": lower_float_add_n, "SUM": lower_float_sum}
INT8 = {**{k: lower_int8_unary for k in ("EXP", "LOG", "SQRT", "RSQRT")}, "SUM": lower_int8_sum}


def lower_math(ctx: LoweringContext, op: Operator):
    if is_float(ctx.graph, op):
        return FLOAT[op.kind](ctx, op)
    if op.kind in INT8:
        return INT8[op.kind](ctx, op)
    if op.kind in extra.LOWERINGS:  # int8 ABS and SQUARED_DIFFERENCE
        return extra.LOWERINGS[op.kind](ctx, op)
    t = ctx.graph.tensor(op.inputs[0])
    raise UnsupportedOpError(op.kind, op.index, f"{t.dtype}: {NO_INT8[op.kind]} (float32 only)")


LOWERINGS = {k: lower_math for k in FLOAT}


# --- priority 2: normalizations, resize, matrix products -------------------------------------

def _rows(x):
    depth = x.shape[-1] if x.shape else 1
    return x.size // depth, depth


def lower_float_l2_norm(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    if op.options.get("fused_activation_function", 0):
        raise UnsupportedOpError(op.kind, op.index, "a fused activation")
    outer, depth = _rows(x)
    return _kernel(ctx, op, KM.l2_normalization(outer, depth, 1e-6), [x.index], out,
                   f"float32 L2 normalization over {depth} values, epsilon 1e-6 (libm: sqrtf)")


def lower_float_log_softmax(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    outer, depth = _rows(x)
    return _kernel(ctx, op, KM.log_softmax(outer, depth), [x.index], out,
                   f"float32 log-softmax over {depth} values (libm: expf, logf)")


def lower_float_cumsum(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    axis_t = ctx.graph.tensor(op.inputs[1])
    if not axis_t.is_const:
        raise UnsupportedOpError(op.kind, op.index, "its axis is not a constant")
    axis = int(axis_t.data.reshape(-1)[0]) % len(x.shape)
    outer, inner = int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis + 1:]))
    ex, rev = bool(op.options.get("exclusive")), bool(op.options.get("reverse"))
    func = KM.cumsum(outer, x.shape[axis], inner, ex, rev)
    return _kernel(ctx, op, func, [x.index], out, f"float32 running sum along axis {axis}"
                   f"{', exclusive' if ex else ''}{', from the end' if rev else ''}")


def _resize_axis(in_size: int, out_size: int, align: bool, half: bool, integer: bool):
    """ComputeInterpolationValues(Integer) for every output row (column): lower and upper
    source index, and the weights of each (float32: 1 - d and d; integer: of 1024)."""
    idx, w = [], []
    if integer:
        scale = ((1 << 10) * in_size + out_size // 2) // out_size
        if align and out_size > 1:
            scale = ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
        for v in range(out_size):
            sv = v * scale + scale // 2 - (1 << 9) if half else v * scale
            lo = max(int(sv / (1 << 10)), 0)  # C division truncates toward zero
            hi = min((sv + (1 << 10) - 1) // (1 << 10) if sv + 1023 >= 0 else -((-(sv + 1023)) // 1024), in_size - 1)
            idx += [lo, hi]
            w += [(1 << 10) - (sv - (1 << 10) * lo), sv - (1 << 10) * lo]
        return np.array(idx, np.int32), np.array(w, np.int32)
    scale = F32(F32(in_size) / F32(out_size))
    if align and out_size > 1:
        scale = F32(F32(in_size - 1) / F32(out_size - 1))
    for v in range(out_size):
        sv = F32(F32(F32(F32(v) + F32(0.5)) * scale) - F32(0.5)) if half else F32(F32(v) * scale)
        lo = max(int(np.floor(sv)), 0)
        hi = min(int(np.ceil(sv)), in_size - 1)
        d = F32(sv - F32(lo))
        idx += [lo, hi]
        w += [F32(F32(1) - d), d]
    return np.array(idx, np.int32), np.array(w, np.float32)


def lower_resize_bilinear(ctx: LoweringContext, op: Operator) -> Kernel:
    """reference_ops::ResizeBilinear (float32) and ResizeBilinearInteger (int8: weights of
    1024, rounded as the context's rounding: LiteRT adds 2^19 and shifts, TFLM rounds halves
    away from zero); the sample positions are compile-time constants."""
    g = ctx.graph
    floating = is_float(g, op)
    if floating:
        x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    else:
        x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
        if x.quant.scalar() != out.quant.scalar():
            raise UnsupportedOpError(op.kind, op.index, "input and output quantized differently")
    if len(x.shape) != 4:
        raise UnsupportedOpError(op.kind, op.index, f"{len(x.shape)}-D input")
    align, half = bool(op.options.get("align_corners")), bool(op.options.get("half_pixel_centers"))
    ys, wy = _resize_axis(x.shape[1], out.shape[1], align, half, not floating)
    xs, wx = _resize_axis(x.shape[2], out.shape[2], align, half, not floating)
    if floating:
        def combine(a, b, c, d, wy0, wy1, wx0, wx1):
            return a * wy0 * wx0 + b * wy1 * wx0 + c * wy0 * wx1 + d * wy1 * wx1 + KF.f32(0.0)
        note = "float32 weights 1 - d and d per row and column"
    else:
        def combine(a, b, c, d, wy0, wy1, wx0, wx1):
            i32 = "int32"
            s = (a.astype(i32) * wy0 * wx0 + b.astype(i32) * wy1 * wx0 + c.astype(i32) * wy0 * wx1
                 + d.astype(i32) * wy1 * wx1)  # |s| <= 128 * 2^20: int32
            # halves away from zero: the #else (no TFLITE_SINGLE_ROUNDING) branch, LiteRT's and TFLM's
            return tirx.Cast("int8", tirx.truncdiv(s + tirx.Select(s > 0, 1 << 19, -(1 << 19)), 1 << 20))
        note = "integer weights of 1024 per row and column, halves rounded away from zero"
    func = KM.resize_bilinear(x.shape, out.shape, "float32" if floating else "int8", combine)
    name = kernel_name(ctx, op)
    args = [x.index, Const(f"{name}_rows", ys), Const(f"{name}_row_weights", wy),
            Const(f"{name}_columns", xs), Const(f"{name}_column_weights", wx)]
    mode = "align_corners" if align else "half_pixel_centers" if half else "asymmetric"
    return Kernel(name, op, func, args, out.index, 0,
                  [describe(g, op), f"bilinear resize ({mode}): {note}"])


def lower_batch_matmul(ctx: LoweringContext, op: Operator) -> Kernel:
    """reference_ops::BatchMatMul: float32 sums in order of k from 0; int8 sums (a - za)(b - zb)
    in int32 and requantizes by lhs scale * rhs scale / output scale (no activation)."""
    g = ctx.graph
    floating = is_float(g, op)
    if floating:
        a, b, out = (_tensor(ctx, op, i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    else:
        a, b, out = (act(ctx, op, g.tensor(i)) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    adj_x, adj_y = bool(op.options.get("adj_x")), bool(op.options.get("adj_y"))
    if len(a.shape) < 2 or len(b.shape) < 2 or len(out.shape) > 5:
        raise UnsupportedOpError(op.kind, op.index, f"shapes {a.shape} x {b.shape}")
    depth = a.shape[-2] if adj_x else a.shape[-1]
    macs = out.size * depth
    if floating:
        func = KM.batch_matmul(a.shape, b.shape, out.shape, adj_x, adj_y, "float32", (lambda u, v: u * v, lambda s: s))
        note = "float32, sums in order"
    else:
        (sa, za), (sb, zb), (so, zo) = a.quant.scalar(), b.quant.scalar(), out.quant.scalar()
        r = ctx.rounding(op)
        m, s = quant.quantize_multiplier(float(sa) * float(sb) / float(so), r)
        from ..kernels.fixedpoint import clamp_i8, requantize

        def term(u, v):
            return (u.astype("int32") - za) * (v.astype("int32") - zb)
        func = KM.batch_matmul(a.shape, b.shape, out.shape, adj_x, adj_y, "int8",
                               (term, lambda acc: clamp_i8(requantize(acc, m, s, r) + zo, -128, 127)))
        note = f"int8: (a - {za}) (b - {zb}) summed, requantized by {m}, shift {s} ({r} rounding)"
    name = kernel_name(ctx, op)
    args = [Const(f"{name}_lhs", a.data) if a.is_const else a.index,
            Const(f"{name}_rhs", b.data.astype(np.float32) if floating else b.data) if b.is_const else b.index]
    return Kernel(name, op, func, args, out.index, macs,
                  [describe(g, op), f"{'lhs transposed, ' if adj_x else ''}{'rhs transposed, ' if adj_y else ''}{note}"])


def lower_float_l2_pool(ctx: LoweringContext, op: Operator) -> Kernel:
    """L2_POOL_2D: float32 only in TFLite."""
    x, out, (fh, fw), (sh, sw), (pt, pl) = pool_geometry(ctx, op)
    _, oh, ow, c = out.shape
    lo, hi = _activation(op)
    func = KM.l2_pool(x.shape, out.shape, (fh, fw), (sh, sw), (pt, pl), lo, hi)
    return _kernel(ctx, op, func, [x.index], out, f"float32 L2 pool; window {fh}x{fw}, stride {sh}x{sw}, "
                   f"padding top {pt} left {pl} (libm: sqrtf); {_clamp_note(lo, hi)}", oh * ow * c * fh * fw)


FLOAT.update({"L2_POOL_2D": lower_float_l2_pool, "L2_NORMALIZATION": lower_float_l2_norm, "LOG_SOFTMAX": lower_float_log_softmax,
              "CUMSUM": lower_float_cumsum, "RESIZE_BILINEAR": lower_resize_bilinear,
              "BATCH_MATMUL": lower_batch_matmul})
INT8.update({"RESIZE_BILINEAR": lower_resize_bilinear, "BATCH_MATMUL": lower_batch_matmul})
NO_INT8.update({"CUMSUM": "LiteRT's CUMSUM has no quantized form (its integer one, on int32, is not lowered)",
                "L2_POOL_2D": "TFLite's L2_POOL_2D is float32 only"})
LOWERINGS = {k: lower_math for k in FLOAT}


# --- int8 L2_NORMALIZATION: a hand-written C kernel ----------------------------------------------

def _srdhm_c(a: str, b: str) -> str:
    """gemmlowp SaturatingRoundingDoublingHighMul in C (operands never both INT32_MIN here)."""
    p = f"((int64_t)({a}) * ({b}))"
    return f"(int32_t)(({p} + ({p} >= 0 ? (1 << 30) : 1 - (1 << 30))) / ((int64_t)1 << 31))"


def _mbqm_c(x: str, m: str, shift: str) -> list[str]:
    """MultiplyByQuantizedMultiplier(x, m, shift) -> `q` in C, rounding twice (shift <= 7
    here: a left shift of at most 7)."""
    return [f"left = {shift} > 0 ? {shift} : 0;", f"right = {shift} > 0 ? 0 : -{shift};",
            f"q = {_srdhm_c(f'{x} * (1 << left)', m)};",
            "mask = (int32_t)(((int64_t)1 << right) - 1);",
            "q = (q >> right) + ((q & mask) > ((mask >> 1) + (q < 0 ? 1 : 0)) ? 1 : 0);"]


def lower_int8_l2_norm(ctx: LoweringContext, op: Operator):
    """reference_integer_ops::L2Normalization: per row, the sum of squares' inverse square
    root as a multiplier (GetInvSqrtQuantizedMultiplierExp: five fixed-point Newton-Raphson
    steps at run time), each value requantized by it to the output's 1/128 scale."""
    from .common import CKernel
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    if op.options.get("fused_activation_function", 0):
        raise UnsupportedOpError(op.kind, op.index, "a fused activation")
    if out.quant.scalar() != (F32(1.0 / 128), 0):
        raise UnsupportedOpError(op.kind, op.index, f"output quantization {out.quant.scalar()}, not (1/128, 0)")
    outer, depth = _rows(x)
    if depth * 65025 >= (1 << 31):
        raise UnsupportedOpError(op.kind, op.index, f"{depth} values a row: the sum of squares may overflow int32")
    zp = x.quant.scalar()[1]
    r = ctx.rounding(op)
    half_three = (1 << 28) + (1 << 27)
    body = [
        "int32_t r, c, d, acc, v, shift, lz, pairs, half, y, y3, t, m, s, q, k;",
        "int32_t left, right, mask;",
        f"for (r = 0; r < {outer}; ++r) {{",
        f"  const int8_t *row = input + r * {depth};",
        "  acc = 0;",
        f"  for (c = 0; c < {depth}; ++c) {{ d = row[c] - ({zp}); acc += d * d; }}",
        "  /* GetInvSqrtQuantizedMultiplierExp(acc): 1 / sqrt(acc) = m * 2^(s - 31) */",
        "  if (acc <= 1) { m = INT32_MAX; s = 0; } else {",
        "    v = acc; shift = 11;",
        "    while (v >= (1 << 29)) { v /= 4; ++shift; }",
        "    for (lz = 0; !((uint32_t)v & (0x80000000u >> lz)); ++lz) {}",
        "    pairs = (lz - 1) / 2 - 1;",
        "    shift -= pairs; v <<= 2 * pairs;",
        "    half = ((v >> 1) >> 1) + ((v >> 1) & 1);  /* F3 input / 2, rounded */",
        "    y = 1 << 28;  /* F3 one */",
        "    for (k = 0; k < 5; ++k) {  /* y = 3/2 y - input/2 y^3, in F3 */",
        f"      t = {_srdhm_c('y', 'y')};",
        f"      y3 = {_srdhm_c('t', 'y')};",
        "      y3 = y3 > (1 << 25) - 1 ? INT32_MAX : y3 < -((1 << 25) - 1) ? INT32_MIN : y3 * 64;",
        f"      t = {_srdhm_c(str(half_three), 'y')} - {_srdhm_c('half', 'y3')};",
        "      y = t > (1 << 28) - 1 ? INT32_MAX : t < -((1 << 28) - 1) ? INT32_MIN : t * 8;",
        "    }",
        f"    y = {_srdhm_c('y', '1518500250')};  /* * sqrt(2) / 2 */",
        "    if (shift < 0) { y = y * (1 << -shift); shift = 0; }",
        "    m = y; s = -shift;",
        "  }",
        f"  for (c = 0; c < {depth}; ++c) {{",
        f"    d = row[c] - ({zp});",
        *[f"    {line}" for line in _mbqm_c("d", "m", "(s + 7)")],
        "    output[r * " + str(depth) + " + c] = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);",
        "  }",
        "}",
    ]
    name = kernel_name(ctx, op)
    text = "".join(f"  {line}\n" for line in body)
    return CKernel(name, op, None, [x.index], out.index, 0,
                   [describe(g, op), (f"int8 L2 normalization over {depth} values: fixed-point inverse square root "
                    f"per row, output scale 1/128 ({r} rounding)")],
                   params="int8_t* input, int8_t* output", body=text)


INT8["L2_NORMALIZATION"] = lower_int8_l2_norm


# --- int8 LOG_SOFTMAX: a hand-written C kernel ---------------------------------------------------

# gemmlowp's fixed point as C macros, defined inside the kernel and undefined after it
FIXED_POINT_MACROS = [
    ("#define SRDHM(a, b) ((a) == INT32_MIN && (b) == INT32_MIN ? INT32_MAX : (int32_t)((((int64_t)(a) * (b))"
    " + (((int64_t)(a) * (b)) >= 0 ? (1 << 30) : 1 - (1 << 30))) / ((int64_t)1 << 31)))"),
    "#define MASK(e) ((int32_t)(((int64_t)1 << (e)) - 1))",
    "#define RDBPOT(x, e) (((x) >> (e)) + (((x) & MASK(e)) > (MASK(e) >> 1) + ((x) < 0 ? 1 : 0) ? 1 : 0))",
    ("#define SATSHL(x, e) ((e) == 0 ? (x) : (x) > MASK(31 - (e)) ? INT32_MAX : (x) < -MASK(31 - (e)) ? INT32_MIN"
    " : (x) * (1 << (e)))"),
    "#define SAT32(v) ((int32_t)((v) > INT32_MAX ? INT32_MAX : (v) < INT32_MIN ? INT32_MIN : (v)))",
    "#define HALFSUM(a, b) ((int32_t)(((int64_t)(a) + (b) + ((int64_t)(a) + (b) >= 0 ? 1 : -1)) / 2))",
]
UNDEF = ["#undef SRDHM", "#undef MASK", "#undef RDBPOT", "#undef SATSHL", "#undef SAT32", "#undef HALFSUM"]


def log_softmax_params(si, r: str):
    """LogSoftmaxPrepare (int8): PreprocessLogSoftmaxScalingExp and the input radius."""
    m, left, diff_min = quant.softmax_integer_params(1.0, float(si), r)
    rev_m, rev_s = quant.quantize_multiplier((1 << (31 - left)) / float(m), r)
    return m, left, rev_m, rev_s, diff_min


def lower_int8_log_softmax(ctx: LoweringContext, op: Operator):
    """reference_integer_ops::LogSoftmax: per row the sum of gemmlowp exponentials (a table of
    the 256 possible differences from the row's maximum, computed here), its fixed-point log
    (log_x_for_x_greater_than_or_equal_to_1, at run time), and each output from the
    difference's Q5.26 value minus the log; output scale 16/256, zero point 127."""
    from .common import CKernel
    g = ctx.graph
    x, out = act(ctx, op, g.tensor(op.inputs[0])), act(ctx, op, g.tensor(op.outputs[0]))
    if out.quant.scalar() != (F32(16.0 / 256), 127):
        raise UnsupportedOpError(op.kind, op.index, f"output quantization {out.quant.scalar()}, not (1/16, 127)")
    outer, depth = _rows(x)
    if depth > 4096:
        raise UnsupportedOpError(op.kind, op.index, f"{depth} values a row: over the 2^12 the Q12 sum holds")
    r = ctx.rounding(op)
    m, left, rev_m, rev_s, diff_min = log_softmax_params(x.quant.scalar()[0], r)
    q5 = np.array([quant.mul_by_quantized_multiplier(-i, m, left, r) for i in range(256)], np.int32)
    exps = np.array([quant.rounding_divide_by_pot(quant.exp_on_negative_values(int(q5[i]), 5), 12)
                     if -i >= diff_min else 0 for i in range(256)], np.int32)
    reverse = f"RDBPOT(SRDHM(shifted, {rev_m}), {-rev_s})"
    quarter = quant.rounding_divide_by_pot(536870912, 6)
    body = [
        *FIXED_POINT_MACROS,
        "int32_t i, c, mx, sum, za, hp1, ra, rb, zb, zbh, zpa, zpb, rr, zp, p, q, sq, num, den, hd, y, k, log_sum;",
        "int32_t shifted, adjusted, diff, v;",
        f"for (i = 0; i < {outer}; ++i) {{",
        f"  const int8_t *row = input + i * {depth};",
        f"  int8_t *dst = output + i * {depth};",
        "  mx = -128;",
        f"  for (c = 0; c < {depth}; ++c) mx = row[c] > mx ? row[c] : mx;",
        "  sum = 0;  /* Q12 */",
        f"  for (c = 0; c < {depth}; ++c) sum += exps[mx - row[c]];",
        "  /* log_x_for_x_greater_than_or_equal_to_1<5>(sum as Q12) */",
        "  za = sum;",
        "  for (hp1 = 0; !((uint32_t)za & (0x80000000u >> hp1)); ++hp1) {}",
        "  ra = SATSHL(za, hp1 - 1);",
        "  ra = SRDHM(ra, 1518500250); ra = SATSHL(ra, 1);",
        f"  zpa = SAT32((int64_t)SATSHL(12 - hp1, 25) + {quarter});",
        "  zb = SRDHM(za, 1518500250);",
        "  for (zbh = 0; !((uint32_t)zb & (0x80000000u >> zbh)); ++zbh) {}",
        "  zbh -= 1;",
        "  rb = SATSHL(za, zbh);",
        f"  zpb = SAT32((int64_t)SATSHL(12 - zbh, 25) - {quarter});",
        "  rr = ra < rb ? ra : rb;",
        "  zp = zpa > zpb ? zpa : zpb;",
        "  p = HALFSUM(rr, 1805811301);",
        "  q = (int32_t)((uint32_t)rr - 1805811301u); q = (int32_t)((uint32_t)q + (uint32_t)q);",
        "  sq = SRDHM(q, q);",
        "  num = (int32_t)((uint32_t)SRDHM(q, rr) + (uint32_t)SRDHM(SRDHM(q, sq), 117049297));",
        "  den = (int32_t)(1057819769u + (uint32_t)q + (uint32_t)SRDHM(127690142, sq));",
        "  den = (int32_t)((uint32_t)SRDHM(p, den) + (uint32_t)SRDHM(638450708, q));",
        "  /* one_over_one_plus_x_for_x_in_0_1(den): Newton-Raphson in Q2 */",
        "  hd = HALFSUM(den, INT32_MAX);",
        "  y = (int32_t)(1515870810u + (uint32_t)SRDHM(hd, -1010580540));",
        "  for (k = 0; k < 3; ++k) {",
        "    v = (int32_t)((1u << 29) - (uint32_t)SRDHM(hd, y));",
        "    v = SRDHM(y, v); v = SATSHL(v, 2);",
        "    y = (int32_t)((uint32_t)y + (uint32_t)v);",
        "  }",
        "  y = SATSHL(y, 1);",
        "  log_sum = (int32_t)((uint32_t)SRDHM(zp, 1488522236) + (uint32_t)SRDHM(RDBPOT(num, 6), y));",
        "  log_sum = SATSHL(log_sum, 1);  /* Q6 -> Q5 */",
        "  shifted = (int32_t)((uint32_t)log_sum + 0x80000000u);",
        f"  adjusted = {reverse};",
        f"  adjusted = adjusted > {diff_min - 1} ? adjusted : {diff_min - 1};",
        f"  for (c = 0; c < {depth}; ++c) {{",
        "    diff = row[c] - mx;",
        "    if (diff > adjusted) {",
        "      v = q5[-diff] - log_sum;",
        "      v = RDBPOT(v, 22) + 127;",
        "      dst[c] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);",
        "    } else {",
        "      dst[c] = -128;",
        "    }",
        "  }",
        "}",
        *UNDEF,
    ]
    name = kernel_name(ctx, op)
    text = "".join(f"{line}\n" if line.startswith("#") else f"  {line}\n" for line in body)
    return CKernel(name, op, None, [x.index, Const(f"{name}_exps", exps), Const(f"{name}_q5", q5)], out.index, 0,
                   [describe(g, op), (f"int8 log-softmax over {depth} values: gemmlowp exp table, fixed-point log "
                    f"per row ({r} rounding)")],
                   params="int8_t* input, int32_t* exps, int32_t* q5, int8_t* output", body=text)


INT8["LOG_SOFTMAX"] = lower_int8_log_softmax


def lower_int8_div(ctx: LoweringContext, op: Operator) -> Kernel:
    """DIV int8 (LiteRT's div.cc; TFLM has no int8 DIV): see kernels.math.int8_div. A zero
    divisor, an error in TFLite, gives the output zero point."""
    from .arithmetic import _operand
    from .common import activation_code
    g = ctx.graph
    (a, arg_a), (b, arg_b) = _operand(ctx, op, 0), _operand(ctx, op, 1)
    out = act(ctx, op, g.tensor(op.outputs[0]))
    _check_shapes(op, a, b, out)
    (sa, za), (sb, zb), (so, zo) = a.quant.scalar(), b.quant.scalar(), out.quant.scalar()
    r = ctx.rounding(op)
    m, s = quant.quantize_multiplier(float(sa) / (float(sb) * float(so)), r)
    lo, hi = quant.activation_range(activation_code(op), so, zo)
    inv, shifts = np.zeros(256, np.int32), np.zeros(256, np.int32)
    for v in range(-128, 128):
        d = abs(v - zb)
        if d:
            inv[v + 128], shifts[v + 128] = quant.get_reciprocal(d, 31)
    if np.any(s - shifts - 23 > 0):  # a right shift for every dividend (headroom >= 23), as the reference assumes
        raise UnsupportedOpError(op.kind, op.index, f"output multiplier shift {s} too large for its divisors")
    name = kernel_name(ctx, op)
    func = KM.int8_div(a.shape, b.shape, out.shape, za, zb, zo, m, s, lo, hi)
    args = [arg_a, arg_b, Const(f"{name}_reciprocal", inv), Const(f"{name}_shift", shifts)]
    return Kernel(name, op, func, args, out.index, 0,
                  [describe(g, op), (f"(a - {za}) / (b - {zb}): reciprocal table of the divisor, requantized by {m}, "
                   f"shift {s} ({r} rounding); broadcast {a.shape} and {b.shape}")])


INT8["DIV"] = lower_int8_div
