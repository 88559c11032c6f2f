"""`--kernels cmsis-nn`: the layers CMSIS-NN takes, as calls into CMSIS-NN.

Each lowering here computes what TFLM's CMSIS-NN kernels compute in `Prepare` (the parameter
structs, per-channel multipliers and shifts with TFLite's QuantizeMultiplier, the activation
range, the scratch size from CMSIS-NN's own `*_get_buffer_size_*` functions for the target's
code path) and writes one small C function per layer, named after it, that hands the layer to
CMSIS-NN: constants as `static const` structs in the function, weights, biases and multipliers
as `const` arrays in flash, the scratch buffer (`ctx.buf`) in the arena, placed by the planner.

A layer CMSIS-NN cannot take (broadcasting ADD and MUL, batches in convolutions, dimensions
beyond its 16-bit loop counters, a softmax output other than TFLM's 1/256, -128) falls back
to tinycc's own lowering; so does every other operator. CMSIS-NN requantizes as TFLM does
(double rounding, fixed-point softmax): that is `--rounding double`, the default with
`--kernels cmsis-nn`. With `--rounding litert` CMSIS-NN is built with
CMSIS_NN_USE_SINGLE_ROUNDING, which is how LiteRT's FULLY_CONNECTED rounds; then it takes the
fully-connected layers and the pools (no requantization), and tinycc the rest (LiteRT rounds
its convolutions, ADD and MUL twice and computes SOFTMAX in float).
"""

from __future__ import annotations

import numpy as np

from .. import cmsis_nn as C
from .. import quant
from ..ir import Operator
from . import conv, elementwise, pool, softmax
from .arithmetic import lower_mul as tinycc_mul
from .arithmetic import mul_params
from .common import (
    SAME,
    CKernel,
    Const,
    LoweringContext,
    Scratch,
    act,
    activation_code,
    const,
    describe,
    kernel_name,
    padding,
    requant,
    window_padding,
)

INCLUDES = ("arm_nnfunctions.h",)
U16 = 65535  # CMSIS-NN keeps most sizes in uint16_t loop counters


def _dims(n, h, w, c) -> str:
    return f"{{{n}, {h}, {w}, {c}}}"


def _tile(w, h) -> str:  # cmsis_nn_tile is {w, h}
    return f"{{{w}, {h}}}"


def _kernel(ctx, op, params: list[str], body: list[str], inputs: list, out: int, macs: int,
            notes: list[str], scratch: int = 0) -> CKernel:
    name = kernel_name(ctx, op)
    if scratch:
        inputs = [*inputs, Scratch(f"{name}_scratch", np.zeros(scratch, np.int8))]
        params = [*params, "int8_t* scratch"]
    params = [*params, "int8_t* output"]
    text = "".join(f"  {line}\n" for line in body)
    return CKernel(name, op, None, inputs, out, macs, notes, params=", ".join(params), body=text,
                   scratch_bytes=scratch, includes=INCLUDES)


def _context(scratch: int) -> str:
    buf = "scratch" if scratch else "NULL"
    return f"const cmsis_nn_context ctx = {{{buf}, {scratch}}};"


def _fits_u16(*sizes) -> bool:
    return all(0 < s <= U16 for s in sizes)


def _rounds_alike(ctx, op) -> bool:
    """CMSIS-NN, built for this --rounding, requantizes this layer as the reference does: always
    with TFLM's double rounding; with --rounding litert (CMSIS_NN_USE_SINGLE_ROUNDING) only
    where LiteRT rounds once, its FULLY_CONNECTED (its convolutions, ADD and MUL round twice,
    its SOFTMAX is float)."""
    return ctx.rounding(op) == C.REQUANTIZATION[ctx.mode]


# --- CONV_2D, DEPTHWISE_CONV_2D -----------------------------------------------------------------

def lower_conv(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    x = act(ctx, op, g.tensor(op.inputs[0]))
    w = const(ctx, op, op.inputs[1], "filter", "int8")
    out = act(ctx, op, g.tensor(op.outputs[0]))
    if len(x.shape) != 4 or len(w.shape) != 4 or w.quant is None or x.shape[0] != 1 \
            or not _rounds_alike(ctx, op):
        return conv.lower_conv(ctx, op)  # refuses, or a batch: tinycc's kernel
    _, h, wd, c = x.shape
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[1], w.shape[2]
    mult = oc // c
    if depthwise and (mult * c != oc or w.shape[3] != oc) or not depthwise and w.shape[3] != c \
            or not _fits_u16(h, wd, c, oh, ow, oc, kh, kw):
        return conv.lower_conv(ctx, op)
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    dh, dw = op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)
    pt, pl = window_padding(op, (h, wd), (kh, kw), (sh, sw), (dh, dw), (oh, ow))
    in_zp = x.quant.scalar()[1]
    rq, rq_consts, rq_note = requant(ctx, op, x, w, out, oc, arrays=True)
    name = kernel_name(ctx, op)
    consts = [Const(f"{name}_weights", w.data)]
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    params = ["int8_t* input", "int8_t* weights"]
    if bias >= 0:
        consts.append(Const(f"{name}_bias", const(ctx, op, bias, "bias", "int32").data.reshape(-1)))
        params.append("int32_t* bias")
    params += ["int32_t* multiplier", "int32_t* shift"]
    consts += rq_consts
    act_ = C.Activation(rq.act_min, rq.act_max)
    in_dims, out_dims = C.Dims(1, h, wd, c), C.Dims(1, oh, ow, oc)
    geometry = [f"static const cmsis_nn_dims input_dims = {_dims(1, h, wd, c)};",
                f"static const cmsis_nn_dims filter_dims = "
                f"{_dims(1, kh, kw, oc) if depthwise else _dims(oc, kh, kw, c)};",
                f"static const cmsis_nn_dims bias_dims = {_dims(1, 1, 1, oc)};",
                f"static const cmsis_nn_dims output_dims = {_dims(1, oh, ow, oc)};"]
    tiles = f"{_tile(sw, sh)}, {_tile(pl, pt)}, {_tile(dw, dh)}, {{{rq.act_min}, {rq.act_max}}}"
    variant = C.variant(ctx.target)
    if depthwise:
        fn = "arm_depthwise_conv_wrapper_s8"
        p = C.DwConvParams(-in_zp, rq.out_zp, mult, C.Tile(sw, sh), C.Tile(pl, pt), C.Tile(dw, dh), act_)
        size = C.buffer_size(fn, variant, p, in_dims, C.Dims(1, kh, kw, oc), out_dims)
        struct = (f"static const cmsis_nn_dw_conv_params conv_params = "
                  f"{{{-in_zp}, {rq.out_zp}, {mult}, {tiles}}};")
        macs = oh * ow * oc * kh * kw
    else:
        fn = "arm_convolve_wrapper_s8"
        p = C.ConvParams(-in_zp, rq.out_zp, C.Tile(sw, sh), C.Tile(pl, pt), C.Tile(dw, dh), act_)
        size = C.buffer_size(fn, variant, p, in_dims, C.Dims(oc, kh, kw, c), out_dims)
        struct = f"static const cmsis_nn_conv_params conv_params = {{{-in_zp}, {rq.out_zp}, {tiles}}};"
        macs = oh * ow * oc * kh * kw * c
    body = [struct, *geometry,
            "const cmsis_nn_per_channel_quant_params quant_params = {(int32_t *)multiplier, (int32_t *)shift};",
            _context(size),
            f"(void){fn}(&ctx, &conv_params, &quant_params, &input_dims, input, &filter_dims, weights, "
            f"&bias_dims, {'bias' if bias >= 0 else 'NULL'}, &output_dims, output);"]
    scratch_note = f"scratch {size} bytes in the arena" if size else "no scratch"
    notes = [describe(g, op),
             f"CMSIS-NN {fn} ({variant} code path); kernel {kh}x{kw}, stride {sh}x{sw}, dilation "
             f"{dh}x{dw}, padding top {pt} left {pl}; {rq_note}; {scratch_note}"]
    return _kernel(ctx, op, params, body, [x.index, *consts], out.index, macs, notes, size)


# --- FULLY_CONNECTED ------------------------------------------------------------------------

def lower_fully_connected(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = act(ctx, op, g.tensor(op.inputs[0]))
    w = const(ctx, op, op.inputs[1], "weights", "int8")
    out = act(ctx, op, g.tensor(op.outputs[0]))
    if w.quant is None or len(w.shape) != 2 or op.options.get("weights_format", 0) != 0 \
            or x.size % w.shape[1] or not _rounds_alike(ctx, op):
        return conv.lower_fully_connected(ctx, op)  # refuses with the reason
    units, depth = w.shape
    batch = x.size // depth
    variant = C.variant(ctx.target)
    filter_dims = C.Dims(depth, 1, 1, units)
    size = C.buffer_size("arm_fully_connected_s8", variant, filter_dims)
    if size:  # Helium wants the weight sums precomputed in the buffer: not done here
        return conv.lower_fully_connected(ctx, op)
    in_zp = x.quant.scalar()[1]
    rq, rq_consts, rq_note = requant(ctx, op, x, w, out, units)
    name = kernel_name(ctx, op)
    consts = [Const(f"{name}_weights", w.data)]
    params = ["int8_t* input", "int8_t* weights"]
    bias = op.inputs[2] if len(op.inputs) > 2 else -1
    if bias >= 0:
        consts.append(Const(f"{name}_bias", const(ctx, op, bias, "bias", "int32").data.reshape(-1)))
        params.append("int32_t* bias")
    body = [f"static const cmsis_nn_fc_params fc_params = {{{-in_zp}, 0, {rq.out_zp}, "
            f"{{{rq.act_min}, {rq.act_max}}}}};",
            f"static const cmsis_nn_dims input_dims = {_dims(batch, 1, 1, depth)};",
            f"static const cmsis_nn_dims filter_dims = {_dims(depth, 1, 1, units)};",
            f"static const cmsis_nn_dims bias_dims = {_dims(1, 1, 1, units)};",
            f"static const cmsis_nn_dims output_dims = {_dims(batch, 1, 1, units)};",
            _context(0)]
    call = "(&ctx, &fc_params, &quant_params, &input_dims, input, &filter_dims, weights, &bias_dims, " \
           f"{'bias' if bias >= 0 else 'NULL'}, &output_dims, output);"
    if rq.per_channel:
        fn = "arm_fully_connected_per_channel_s8"
        params += ["int32_t* multiplier", "int32_t* shift"]
        consts += rq_consts
        body += ["const cmsis_nn_per_channel_quant_params quant_params = "
                 "{(int32_t *)multiplier, (int32_t *)shift};", f"(void){fn}{call}"]
    else:
        fn = "arm_fully_connected_s8"
        body += [f"static const cmsis_nn_per_tensor_quant_params quant_params = {{{rq.multiplier}, {rq.shift}}};",
                 f"(void){fn}{call}"]
    notes = [describe(g, op), f"CMSIS-NN {fn} ({variant} code path); {batch} x {depth} -> {units}; {rq_note}"]
    return _kernel(ctx, op, params, body, [x.index, *consts], out.index, batch * depth * units, notes)


# --- AVERAGE_POOL_2D, MAX_POOL_2D -------------------------------------------------------------

def lower_pool(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = act(ctx, op, g.tensor(op.inputs[0]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    if len(x.shape) != 4 or x.shape[0] != 1 or x.quant.scalar() != out.quant.scalar():
        return pool.lower_pool(ctx, op)
    _, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    fh, fw = op.options["filter_height"], op.options["filter_width"]
    sh, sw = op.options["stride_h"], op.options["stride_w"]
    if not _fits_u16(h, w, c, oh, ow, fh, fw):
        return pool.lower_pool(ctx, op)
    pad = op.options.get("padding", SAME)
    pt, pl = padding(pad, h, fh, sh, 1, oh), padding(pad, w, fw, sw, 1, ow)
    scale, zp = out.quant.scalar()
    lo, hi = quant.activation_range(activation_code(op), scale, zp)
    average = op.kind == "AVERAGE_POOL_2D"
    fn = "arm_avgpool_s8" if average else "arm_max_pool_s8"
    variant = C.variant(ctx.target)
    size = C.buffer_size("arm_avgpool_s8", variant, ow, c) if average else 0
    body = [f"static const cmsis_nn_pool_params pool_params = {{{_tile(sw, sh)}, {_tile(pl, pt)}, "
            f"{{{lo}, {hi}}}}};",
            f"static const cmsis_nn_dims input_dims = {_dims(1, h, w, c)};",
            f"static const cmsis_nn_dims filter_dims = {_dims(1, fh, fw, 1)};",
            f"static const cmsis_nn_dims output_dims = {_dims(1, oh, ow, c)};",
            _context(size),
            f"(void){fn}(&ctx, &pool_params, &input_dims, input, &filter_dims, &output_dims, output);"]
    notes = [describe(g, op), f"CMSIS-NN {fn} ({variant} code path); window {fh}x{fw}, stride {sh}x{sw}, "
             f"padding top {pt} left {pl}" + (f"; scratch {size} bytes in the arena" if size else "")]
    macs = oh * ow * c * fh * fw if average else 0
    return _kernel(ctx, op, ["int8_t* input"], body, [x.index], out.index, macs, notes, size)


# --- SOFTMAX ------------------------------------------------------------------------------------

def lower_softmax(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = act(ctx, op, g.tensor(op.inputs[0]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    out_scale, out_zp = out.quant.scalar()
    if float(out_scale) != 1.0 / 256 or out_zp != -128 or not _rounds_alike(ctx, op):
        return softmax.lower_softmax(ctx, op)  # refuses, as TFLM does, or LiteRT's float softmax
    beta = float(op.options.get("beta", 1.0))
    depth = x.shape[-1]
    rows = x.size // depth
    mult, shift, diff_min = quant.softmax_integer_params(beta, x.quant.scalar()[0], ctx.rounding(op))
    body = [f"arm_softmax_s8(input, {rows}, {depth}, {mult}, {shift}, {diff_min}, output);"]
    notes = [describe(g, op), f"CMSIS-NN arm_softmax_s8; beta {beta}: input multiplier {mult}, "
             f"left shift {shift}, diff_min {diff_min} (TFLite's integer softmax)"]
    return _kernel(ctx, op, ["int8_t* input"], body, [x.index], out.index, 0, notes)


# --- ADD, MUL -----------------------------------------------------------------------------------

def _same_shape(ctx, op) -> bool:
    g = ctx.graph
    a, b, out = (g.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    return (a.shape == b.shape == out.shape and not a.is_const and not b.is_const
            and all(t.dtype == "int8" and t.quant is not None and not t.quant.per_channel for t in (a, b, out)))


def lower_add(ctx: LoweringContext, op: Operator):
    if not _same_shape(ctx, op) or not _rounds_alike(ctx, op):
        return elementwise.lower_add(ctx, op)  # broadcasting or a constant operand: as TFLM, tinycc's
    g = ctx.graph
    za, zb, m1, s1, m2, s2, mo, so_, zo, lo, hi = elementwise.add_params(ctx, op)
    n = g.tensor(op.outputs[0]).size
    body = [f"(void)arm_elementwise_add_s8(input1, input2, {-za}, {m1}, {s1}, {-zb}, {m2}, {s2}, 20, output, "
            f"{zo}, {mo}, {so_}, {lo}, {hi}, {n});"]
    notes = [describe(g, op), "CMSIS-NN arm_elementwise_add_s8; inputs shifted left by 20, rescaled to "
             "twice the larger scale"]
    return _kernel(ctx, op, ["int8_t* input1", "int8_t* input2"], body,
                   [op.inputs[0], op.inputs[1]], op.outputs[0], 0, notes)


def lower_mul(ctx: LoweringContext, op: Operator):
    if not _same_shape(ctx, op) or not _rounds_alike(ctx, op):
        return tinycc_mul(ctx, op)
    g = ctx.graph
    za, zb, zo, m, s, lo, hi = mul_params(ctx, op)
    n = g.tensor(op.outputs[0]).size
    body = [f"(void)arm_elementwise_mul_s8(input1, input2, {-za}, {-zb}, output, {zo}, {m}, {s}, "
            f"{lo}, {hi}, {n});"]
    notes = [describe(g, op), f"CMSIS-NN arm_elementwise_mul_s8; (a - {za}) * (b - {zb}) requantized by "
             f"{m}, shift {s}"]
    return _kernel(ctx, op, ["int8_t* input1", "int8_t* input2"], body,
                   [op.inputs[0], op.inputs[1]], op.outputs[0], 0, notes)


LOWERINGS = {"CONV_2D": lower_conv, "DEPTHWISE_CONV_2D": lower_conv, "FULLY_CONNECTED": lower_fully_connected,
             "AVERAGE_POOL_2D": lower_pool, "MAX_POOL_2D": lower_pool, "SOFTMAX": lower_softmax,
             "ADD": lower_add, "MUL": lower_mul}


def check(ctx: LoweringContext) -> None:
    """What --kernels cmsis-nn needs before any layer is lowered."""
    if ctx.target is None:
        raise C.CmsisNNError("--kernels cmsis-nn needs the target (its CPU picks CMSIS-NN's code path)")
    if C.variant(ctx.target) == "mve":
        raise C.CmsisNNError(f"--kernels cmsis-nn: CMSIS-NN's Helium (MVE) code path for {ctx.target.cpu} "
                             "has no emulated board to verify it on here; not supported yet")
    C.source_dir()
