"""16x8 quantization: int16 activations (zero point 0) with int8 weights, TFLite's
EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8.

`wrap` routes an operator whose activations are int16 to the lowerings here and leaves every
other one to the int8 table. Each follows TFLite's reference kernel for int16:
CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED accumulate in int64 with the int64 bias and
requantize with the int64 MultiplyByQuantizedMultiplier (16-bit multiplier), except LiteRT's
FULLY_CONNECTED, which rounds once with the whole Q31 multiplier (measured); ADD
and SUB shift their inputs left by 15 instead of 20 (AddGeneralParamScale) and, like MUL,
requantize like the int8 ones (double rounding in LiteRT's reference kernels and TFLM); pools
are the int8 windows on int16 values; SOFTMAX is reference_ops::SoftmaxInt16 with its two
interpolated tables; LOGISTIC and TANH are reference_integer_ops::Logistic / Tanh, a 256-entry
sigmoid table interpolated (see sigmoid_table_uint16); byte moves and renames are the int8
lowerings. Anything else with int16 activations is refused by name.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator, Tensor
from ..kernels import int16 as K16
from .common import (
    SAME,
    Const,
    Kernel,
    LoweringContext,
    activation_code,
    const,
    describe,
    kernel_name,
    padding,
    window_padding,
)

QMIN, QMAX = -32768, 32767


def act16(op, t: Tensor) -> Tensor:
    if t.dtype != "int16" or t.quant is None or t.quant.per_channel or t.quant.scalar()[1] != 0:
        raise UnsupportedOpError(op.kind, op.index, f"tensor '{t.name}' is not an int16 activation with "
                                 "zero point 0 (TFLite's 16x8 quantization)")
    return t


def _range(op, out: Tensor) -> tuple[int, int]:
    scale, zp = out.quant.scalar()
    return quant.activation_range(activation_code(op), scale, zp, QMIN, QMAX)


def _multipliers(ctx, op, x: Tensor, w: Tensor, out: Tensor, channels: int, name: str,
                 bias: np.ndarray) -> list[Const]:
    """Per-channel (multiplier, total right shift) of (acc * multiplier + 2^(shift-1)) >> shift:
    TFLite's int64 MultiplyByQuantizedMultiplier (the Q31 multiplier rounded to 16 bits, shift
    15 - exponent), or, where LiteRT rounds once (its FULLY_CONNECTED), the whole Q31
    multiplier and 31 - exponent; the product must then fit in int64 for every input."""
    if w.quant is None or np.any(w.quant.zero_point != 0) or w.quant.scale.size not in (1, channels):
        raise UnsupportedOpError(op.kind, op.index, "weights need symmetric per-tensor or per-channel quantization")
    single = ctx.rounding(op) == "single"
    in_scale, out_scale = float(x.quant.scalar()[0]), float(out.quant.scalar()[0])
    mult, shift = [], []
    for s in np.broadcast_to(w.quant.scale, (channels,)):
        m, sh = quant.quantize_multiplier(in_scale * float(s) / out_scale, "double")
        if single:
            mult.append(m)
            shift.append(31 - sh)
        else:
            mult.append(((m + (1 << 15)) >> 16) if m < 0x7FFF0000 else 0x7FFF)
            shift.append(15 - sh)
    wabs = np.abs(w.data.astype(np.int64))
    wabs = wabs.reshape(-1, channels).sum(axis=0) if op.kind == "DEPTHWISE_CONV_2D" else \
        wabs.reshape(channels, -1).sum(axis=1)
    bound = (wabs * 32768 + np.abs(bias)) * np.array(mult, np.int64)
    if np.any(bound >= (1 << 62)) or np.any(wabs * 32768 + np.abs(bias) >= (1 << 47)):
        raise UnsupportedOpError(op.kind, op.index, "the int64 accumulator could overflow")
    return [Const(f"{name}_multiplier", np.array(mult, np.int32)),
            Const(f"{name}_total_shift", np.array(shift, np.int32))]


def _bias(ctx, op, channels: int) -> np.ndarray:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return np.zeros(channels, np.int64)
    t = ctx.graph.tensor(op.inputs[2])
    if t.dtype != "int64":  # an int32 bias makes TFLite accumulate in int32 instead
        raise UnsupportedOpError(op.kind, op.index, f"16x8 with an {t.dtype} bias (tinycc takes int64)")
    return const(ctx, op, op.inputs[2], "bias", "int64").data.reshape(-1).astype(np.int64)


def lower_conv16(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act16(op, g.tensor(op.inputs[0])), act16(op, g.tensor(op.outputs[0]))
    w = const(ctx, op, op.inputs[1], "filter", "int8")
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    _, h, wd, c = x.shape
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[1], w.shape[2]
    mult = oc // c if depthwise else 0
    matches = (mult * c == oc and w.shape[3] == oc) if depthwise else (w.shape[0] == oc and w.shape[3] == c)
    if not matches:
        raise UnsupportedOpError(op.kind, op.index, f"filter {w.shape} does not match {x.shape} -> {out.shape}")
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    dh, dw = op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)
    pt, pl = window_padding(op, (h, wd), (kh, kw), (sh, sw), (dh, dw), (oh, ow))
    lo, hi = _range(op, out)
    name = kernel_name(ctx, op)
    func = K16.conv2d(x.shape, w.shape, out.shape, (sh, sw), (dh, dw), (pt, pl), mult, lo, hi)
    bias = _bias(ctx, op, oc)
    consts = [Const(f"{name}_weights", w.data), Const(f"{name}_bias", bias),
              *_multipliers(ctx, op, x, w, out, oc, name, bias)]
    notes = [describe(g, op), f"16x8: kernel {kh}x{kw}, stride {sh}x{sw}, dilation {dh}x{dw}, padding top {pt} "
             f"left {pl}; int64 accumulator and bias, 16-bit multipliers"]
    macs = oh * ow * oc * kh * kw * (1 if depthwise else c)
    return Kernel(name, op, func, [x.index, *consts], out.index, macs, notes)


def lower_transpose_conv16(ctx: LoweringContext, op: Operator) -> Kernel:
    """TRANSPOSE_CONV 16x8: inputs output shape, weights, input, int64 bias; padding as the
    int8 lowering computes it (transpose_conv.py)."""
    from .transpose_conv import geometry
    g = ctx.graph
    x, out = act16(op, g.tensor(op.inputs[2])), act16(op, g.tensor(op.outputs[0]))
    w = const(ctx, op, op.inputs[1], "filter", "int8")
    (sh, sw), (pt, pl) = geometry(ctx, op, x, w, out)
    oc = out.shape[3]
    bias = np.zeros(oc, np.int64)
    if len(op.inputs) > 3 and op.inputs[3] >= 0:
        bias = _bias(ctx, dataclasses.replace(op, inputs=[op.inputs[2], op.inputs[1], op.inputs[3]]), oc)
    lo, hi = _range(op, out)
    name = kernel_name(ctx, op)
    consts = [Const(f"{name}_weights", w.data), Const(f"{name}_bias", bias),
              *_multipliers(ctx, op, x, w, out, oc, name, bias)]
    notes = [describe(g, op), f"16x8: stride {sh}x{sw}, padding top {pt} left {pl}; int64 accumulator and bias"]
    macs = x.size * w.shape[1] * w.shape[2] * oc
    return Kernel(name, op, K16.transpose_conv(x.shape, w.shape, out.shape, (sh, sw), (pt, pl), lo, hi),
                  [x.index, *consts], out.index, macs, notes)


def lower_fully_connected16(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act16(op, g.tensor(op.inputs[0])), act16(op, g.tensor(op.outputs[0]))
    w = const(ctx, op, op.inputs[1], "weights", "int8")
    if len(w.shape) != 2 or op.options.get("weights_format", 0) != 0 or x.size % w.shape[1]:
        raise UnsupportedOpError(op.kind, op.index, f"weights {w.shape} for input {x.shape}")
    units, depth = w.shape
    batch = x.size // depth
    lo, hi = _range(op, out)
    name = kernel_name(ctx, op)
    bias = _bias(ctx, op, units)
    consts = [Const(f"{name}_weights", w.data), Const(f"{name}_bias", bias),
              *_multipliers(ctx, op, x, w, out, units, name, bias)]
    notes = [describe(g, op), f"16x8: {batch} x {depth} -> {units}; int64 accumulator and bias"]
    return Kernel(name, op, K16.fully_connected(batch, depth, units, lo, hi), [x.index, *consts], out.index,
                  batch * depth * units, notes)


def lower_binary16(ctx: LoweringContext, op: Operator) -> Kernel:
    """ADD and SUB (AddGeneralParamScale: left shift 15) and MUL, per Prepare's multipliers."""
    g = ctx.graph
    a, b = act16(op, g.tensor(op.inputs[0])), act16(op, g.tensor(op.inputs[1]))
    out = act16(op, g.tensor(op.outputs[0]))
    if a.is_const or b.is_const:
        raise UnsupportedOpError(op.kind, op.index, "a constant int16 operand")
    if op.options.get("pot_scale_int16", False):
        raise UnsupportedOpError(op.kind, op.index, "power-of-two scaled int16 (pot_scale_int16)")
    sa, sb, so = (float(t.quant.scalar()[0]) for t in (a, b, out))
    r = ctx.rounding(op)
    if op.kind == "MUL":
        params = [quant.quantize_multiplier(sa * sb / so, r)]
        note = "16-bit: the product requantized"
    else:
        twice_max = 2 * max(sa, sb)
        params = [quant.quantize_multiplier(v, r) for v in (sa / twice_max, sb / twice_max,
                                                             twice_max / ((1 << 15) * so))]
        note = "16-bit: inputs shifted left by 15, rescaled to twice the larger scale"
    lo, hi = _range(op, out)
    func = K16.binary(a.shape, b.shape, out.shape, op.kind, params, r, lo, hi)
    return Kernel(kernel_name(ctx, op), op, func, [a.index, b.index], out.index, 0, [describe(g, op), note])


def lower_pool16(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = act16(op, g.tensor(op.inputs[0])), act16(op, g.tensor(op.outputs[0]))
    if x.quant.scalar() != out.quant.scalar():
        raise UnsupportedOpError(op.kind, op.index, "input and output quantization differ")
    _, h, w, _ = x.shape
    _, oh, ow, c = out.shape
    fh, fw = op.options["filter_height"], op.options["filter_width"]
    sh, sw = op.options["stride_h"], op.options["stride_w"]
    kind = op.options.get("padding", SAME)
    pt, pl = padding(kind, h, fh, sh, 1, oh), padding(kind, w, fw, sw, 1, ow)
    lo, hi = _range(op, out)
    average = op.kind == "AVERAGE_POOL_2D"
    func = K16.pool(x.shape, out.shape, (fh, fw), (sh, sw), (pt, pl), average, lo, hi)
    notes = [describe(g, op), f"16-bit: window {fh}x{fw}, stride {sh}x{sw}, padding top {pt} left {pl}"]
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, oh * ow * c * fh * fw if average else 0, notes)


def lower_quantize16(ctx: LoweringContext, op: Operator) -> Kernel:
    """QUANTIZE between int16 and int16 or int8 (reference_ops::Requantize)."""
    from .common import act
    g = ctx.graph
    x, out = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    x = act16(op, x) if x.dtype == "int16" else act(ctx, op, x)
    out = act16(op, out) if out.dtype == "int16" else act(ctx, op, out)
    (si, zi), (so, zo) = x.quant.scalar(), out.quant.scalar()
    r = ctx.rounding(op)
    m, sh = quant.quantize_multiplier(float(si) / float(so), r)
    func = K16.requantize_elementwise(x.size, x.dtype, out.dtype, zi, zo, m, sh, r)
    notes = [describe(g, op), f"{x.dtype} -> {out.dtype} requantization: multiplier {m}, shift {sh}"]
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, 0, notes)


def lut_int16(input_scale, input_zp: int, output_scale, output_zp: int, fn) -> np.ndarray:
    """LUTPopulateInt16<float>: 512 samples of fn over the int16 input range, each corrected
    by half its midpoint interpolation error, plus the end point; float32 throughout, as
    TFLite's Prepare computes it (fn on float32, rounding half away from zero)."""
    f32 = np.float32

    def rnd(v):
        return f32(np.sign(v) * np.floor(np.abs(v) + f32(0.5)))
    input_min = f32(input_scale) * f32(QMIN - input_zp)
    input_max = f32(input_scale) * f32(QMAX - input_zp)
    output_min = f32(output_scale) * f32(QMIN - output_zp)
    output_max = f32(output_scale) * f32(QMAX - output_zp)
    step = (input_max - input_min) / f32(512)
    half_step = step / f32(2)
    inv = f32(65536) / (output_max - output_min)
    lut = np.zeros(513, np.int16)
    for i in range(512):
        val = fn(input_min + f32(i) * step)
        val_mid = fn(input_min + f32(i) * step + half_step)
        val_next = fn(input_min + f32(i + 1) * step)
        sample = rnd(val * inv)
        interp = rnd((val_next * inv + rnd(val * inv)) / f32(2))
        err = interp - rnd(val_mid * inv)
        lut[i] = int(min(max(sample - rnd(err / f32(2)), f32(QMIN)), f32(QMAX)))
    lut[512] = int(min(max(rnd(fn(input_max) * inv), f32(QMIN)), f32(QMAX)))
    return lut


def lower_softmax16(ctx: LoweringContext, op: Operator) -> Kernel:
    """reference_ops::SoftmaxInt16, with SoftmaxPrepare's tables and input multiplier."""
    from ..quant import _libm
    g = ctx.graph
    x, out = act16(op, g.tensor(op.inputs[0])), act16(op, g.tensor(op.outputs[0]))
    if abs(float(out.quant.scalar()[0]) * 32768 - 1) > 0.001:
        raise UnsupportedOpError(op.kind, op.index, "int16 output scale other than 1/32768")
    f32 = np.float32
    rng = f32(QMAX - QMIN)
    exp_lut = lut_int16(f32(10.0) / rng, QMAX, f32(2.0) / rng, 0, lambda v: f32(_libm.expf(float(v))))
    recip_lut = lut_int16(f32(1.0) / rng, QMIN, f32(2.0) / rng, 0, lambda v: f32(1.0) / (f32(1.0) + f32(v)))
    beta = float(op.options.get("beta", 1.0))
    m, sh = quant.quantize_multiplier(float(x.quant.scalar()[0]) * beta / (10.0 / 65535.0), "double")
    depth = x.shape[-1]
    name = kernel_name(ctx, op)
    consts = [Const(f"{name}_input_multiplier", np.array([m, sh], np.int32)), Const(f"{name}_exp_table", exp_lut),
              Const(f"{name}_one_over_one_plus_x_table", recip_lut)]
    notes = [describe(g, op), f"beta {beta}; TFLite's int16 softmax: 513-entry exp and 1/(1+x) tables, "
             "interpolated"]
    return Kernel(name, op, K16.softmax(x.size // depth, depth), [x.index, *consts], out.index, 0, notes)


def sigmoid_table_uint16() -> np.ndarray:
    """sigmoid(i/24) in Q0.16 for i = 0..255, the table TFLite's int16 LOGISTIC and TANH
    interpolate (tanh(x) = 2 sigmoid(2x) - 1). Regenerated, not copied: each sample is lowered
    by half the error of linear interpolation at the midpoint of the segment that starts at
    it, e = (f(i) + f(i+1)) / 2 - f(i + 1/2), unrounded (gen_lut's correction without rounding
    e first), then rounded half away from zero, in double. The last entry is only the far end
    of the last segment, beyond which the kernel saturates: it is the saturation value 0xFFFF.
    tests/test_int16_activations.py checks both kernels against LiteRT and TFLM on every int16
    input; the nearest rounding tie is 0.004 away, so the table does not depend on libm's exp."""
    import math

    def f(x):
        return 65536.0 / (1.0 + math.exp(-x / 24.0))
    table = np.full(256, 0xFFFF, np.uint16)
    for i in range(255):
        v = f(i) - ((f(i) + f(i + 1)) / 2 - f(i + 0.5)) / 2
        table[i] = min(int(math.floor(v + 0.5)), 0xFFFF)
    return table


def sigmoid_input_scaling(op, x: Tensor) -> tuple[int, int]:
    """LogisticPrepare / TanhPrepare for int16: the (multiplier, left shift) that bring the
    input to the table's scale 1/(3 * 4096); a power-of-two scale the kernel takes as 3 << shift."""
    f32 = np.float32
    scale = f32(x.quant.scalar()[0])
    log2 = f32(np.log(scale)) * (f32(1.0) / f32(np.log(f32(2.0))))
    rounded = f32(np.sign(log2) * np.floor(np.abs(log2) + f32(0.5)))
    shift = 12 + int(rounded)
    if abs(log2 - rounded) < f32(1e-3) and (shift == 0 or (op.kind == "TANH" and shift == 1)):
        return 3 << shift, 0
    multiplier, shift = float(scale) * 4096.0 * 3.0, 0
    while multiplier <= 32767.0 / 2.0 and shift <= 30:
        shift += 1
        multiplier *= 2.0
    return int(multiplier), shift


def lower_sigmoid16(ctx: LoweringContext, op: Operator) -> Kernel:
    """reference_integer_ops::Logistic / Tanh (LiteRT's reference and TFLM alike)."""
    g = ctx.graph
    x, out = act16(op, g.tensor(op.inputs[0])), act16(op, g.tensor(op.outputs[0]))
    if abs(float(out.quant.scalar()[0]) * 32768 - 1) > 1e-6:
        raise UnsupportedOpError(op.kind, op.index, "int16 output scale other than 1/32768")
    multiplier, shift = sigmoid_input_scaling(op, x)
    name = kernel_name(ctx, op)
    notes = [describe(g, op), f"16-bit: input times {multiplier} >> {shift}, then the 256-entry sigmoid(i/24) "
             "table, interpolated" + ("; tanh(x) = 2 sigmoid(2x) - 1" if op.kind == "TANH" else "")]
    func = K16.sigmoid(x.size, op.kind == "TANH", multiplier, shift)
    return Kernel(name, op, func, [x.index, Const(f"{name}_sigmoid_table", sigmoid_table_uint16())], out.index, 0,
                  notes)


LOWERINGS = {"CONV_2D": lower_conv16, "DEPTHWISE_CONV_2D": lower_conv16, "FULLY_CONNECTED": lower_fully_connected16,
             "TRANSPOSE_CONV": lower_transpose_conv16, "ADD": lower_binary16, "SUB": lower_binary16,
             "MUL": lower_binary16, "AVERAGE_POOL_2D": lower_pool16,
             "MAX_POOL_2D": lower_pool16, "SOFTMAX": lower_softmax16, "QUANTIZE": lower_quantize16,
             "LOGISTIC": lower_sigmoid16, "TANH": lower_sigmoid16}


def _is_int16(ctx, op) -> bool:
    """The operator's data (its first input, or its output) is an int16 activation. A float32
    input (QUANTIZE at a float edge) is quantize.py's; operators whose only int16 tensors are
    state (SVDF, LSTM, the variable ops) are recurrent.py's."""
    if op.kind in PASS_THROUGH_ANY:
        return False
    ins = [ctx.graph.tensor(i) for i in op.inputs if i >= 0 and not ctx.graph.tensor(i).is_const]
    if any(t.dtype == "float32" for t in ins):
        return False
    return any(t.dtype == "int16" for t in ins) or any(ctx.graph.tensor(o).dtype == "int16" for o in op.outputs)


# operators with int16 tensors of their own making (state), lowered by their own modules
PASS_THROUGH_ANY = {"READ_VARIABLE", "ASSIGN_VARIABLE", "SVDF", "UNIDIRECTIONAL_SEQUENCE_LSTM"}


def wrap(table: dict) -> dict:
    """The lowering table with int16-activation operators sent here; an operator with int16
    activations that has no 16x8 lowering is refused rather than lowered as int8."""
    def route(ctx, op):
        if not _is_int16(ctx, op):
            return table[op.kind](ctx, op)
        if op.kind in LOWERINGS:
            return LOWERINGS[op.kind](ctx, op)
        if op.kind in PASS_THROUGH:
            return table[op.kind](ctx, op)
        raise UnsupportedOpError(op.kind, op.index, "int16 activations (16x8) are not supported for it yet")
    return {kind: route for kind in table} | {kind: route for kind in LOWERINGS}


# lowerings of the int8 table that take int16 too: MEAN, renames, byte moves (layout.py)
PASS_THROUGH = {"MEAN", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "PAD", "PADV2", "CONCATENATION", "SPLIT",
                "SPLIT_V", "SLICE", "STRIDED_SLICE", "TRANSPOSE", "TILE", "RESIZE_NEAREST_NEIGHBOR",
                "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND",
                "MIRROR_PAD", "PACK", "UNPACK", "REDUCE_MIN", "GATHER"}
