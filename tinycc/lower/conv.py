"""CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED."""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import kernels as K
from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels import schedule
from .common import (
    Const,
    Kernel,
    LoweringContext,
    act,
    const,
    describe,
    folded_bias,
    kernel_name,
    requant,
    window_padding,
)


@dataclasses.dataclass
class DoubledBias(Const):
    """The folded bias times 2, for 2x3 tiles over doubled windows (kernels.gemm.
    doubles_activations: they accumulate 2 acc); `halved()` is the bias itself."""

    def halved(self) -> Const:
        return Const(self.name, self.array // 2)


def lower_conv(ctx: LoweringContext, op: Operator, scratch_budget: int | None = None, knobs=None) -> Kernel:
    """scratch_budget: the arena bytes the layer's scratch may take (tinycc.plan.grow_scratch
    asks again with it, through the kernel's regrow); None: the least its knobs allow."""
    g = ctx.graph
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    x = act(ctx, op, g.tensor(op.inputs[0]))
    w = const(ctx, op, op.inputs[1], "filter", "int8")
    out = act(ctx, op, g.tensor(op.outputs[0]))
    if len(x.shape) != 4 or len(w.shape) != 4 or w.quant is None:
        raise UnsupportedOpError(op.kind, op.index, "expects 4-D NHWC input and a quantized 4-D filter")
    n, h, wd, c = x.shape
    _, oh, ow, oc = out.shape
    kh, kw = w.shape[1], w.shape[2]
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    dh, dw = op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1)
    pt, pl = window_padding(op, (h, wd), (kh, kw), (sh, sw), (dh, dw), (oh, ow))
    in_zp = x.quant.scalar()[1]
    rq, rq_consts, rq_note = requant(ctx, op, x, w, out, oc, arrays=True)
    if depthwise:
        mult = oc // c
        if mult * c != oc or w.shape[3] != oc:
            raise UnsupportedOpError(op.kind, op.index, f"channels {c} -> {oc} with filter {w.shape}")
        wsum = w.data.astype(np.int64).sum(axis=(0, 1, 2))
        macs = oh * ow * oc * kh * kw
    else:
        if w.shape[3] != c or w.shape[0] != oc:
            raise UnsupportedOpError(op.kind, op.index, f"filter {w.shape} does not match input {x.shape}")
        mult = 0
        wsum = w.data.astype(np.int64).sum(axis=(1, 2, 3))
        macs = oh * ow * oc * kh * kw * c
    bias = folded_bias(ctx, op, op.inputs[2] if len(op.inputs) > 2 else -1, wsum, in_zp, oc)
    wabs = np.abs(w.data.astype(np.int64)).sum(axis=(0, 1, 2) if depthwise else (1, 2, 3))
    rq = small_accumulator(rq, wabs, bias)
    name = kernel_name(ctx, op)
    scratch_bytes = 0
    weights = w.data
    doubled = band = False
    geometry = (x.shape, w.shape, out.shape, (sh, sw), (dh, dw), (pt, pl), in_zp, rq)
    knobs = knobs or _knobs(ctx, op, x.shape, w.shape, out.shape, (sh, sw), (dh, dw), (pt, pl))
    regrow = None
    block_tiles, wide_weights = 0, False
    # the tiled kernels take one image; a batch (SPACE_TO_BATCH_ND's sub-images) the generic one
    tiled = n == 1 and (not depthwise or (mult == 1 and c % 4 == 0))
    if tiled:
        if knobs.requant == "constants":
            rq, rq_consts, bias = fast_requantization(rq, rq_consts, bias, wabs)
        geometry = (*geometry[:-1], rq)
        if depthwise:
            variant, weights, scratch_bytes = K.depthwise.schedule_weights(
                knobs.variant, w.data, x.shape, out.shape, (sh, sw), (dh, dw), rq, (pt, pl))
            func = K.depthwise_gemm(*geometry, variant=variant,
                                    nonneg_multipliers=bool(np.min(rq_consts[0].array) >= 0))
        elif knobs.few_channels == "band" and K.first_layer.applies(x.shape, w.shape, out.shape, (sh, sw), (dh, dw)):
            # few input channels (first layers): windows read in place from an int16 band of rows
            band = True
            func = K.first_layer.conv2d_band(x.shape, w.shape, out.shape, (sh, sw), (pt, pl), in_zp, rq)
            doubled = K.first_layer.doubles(rq)
            weights = K.first_layer.band_weights(w.data, bias * 2 if doubled else bias, rq_consts[0].array,
                                                 rq_consts[1].array, doubled)
            scratch_bytes = K.first_layer.band_scratch_bytes(w.shape, out.shape, (sh, sw))
        else:
            # windows whose taps are not whole SXTB16 groups (1 or 3 input channels) are gathered
            # as bytes on the stack first, up to TVM's 1 KiB there
            im2col = knobs.im2col if c % 4 == 0 or K.gemm.padded_depth(w.shape) <= K.gemm.MAX_STACK_BYTES \
                else "int8"
            if im2col == "int16" and c % 4 == 0:
                wide_weights = knobs.weights == "int16"
                block_tiles = conv_block_tiles(knobs, w.shape, oh * ow, scratch_budget)
                if knobs.block == "fit":
                    regrow = lambda budget: lower_conv(ctx, op, budget, knobs)  # noqa: E731
            func = K.conv2d_gemm(*geometry, im2col=im2col, block_tiles=block_tiles, wide_weights=wide_weights,
                                 nonneg_multipliers=bool(np.min(rq_consts[0].array) >= 0))
            if im2col == "int16":
                scratch_bytes = K.gemm.conv_scratch_bytes(w.shape, block_tiles, wide_weights)
            direct = kh == 1 and kw == 1 and pt == 0 and pl == 0
            if im2col == "int16":
                # the 2x3 tiles' order; int16 in flash for the weights knob
                weights = (K.gemm.wide_pair_weights if wide_weights else K.gemm.pair_weights)(w.data)
                doubled = c % 4 == 0 and K.gemm.doubles_activations(w.shape, oc, rq)
            elif not direct and K.gemm.uses_two_windows(w.shape):
                weights = K.gemm.pad_weights(w.data)  # rows of whole words, zeros after
    else:  # depth multiplier > 1 or odd channel counts: the generic tensor expression
        func = K.conv2d(*geometry, mult)
    bias_const = DoubledBias(f"{name}_bias", bias * 2) if doubled else Const(f"{name}_bias", bias)
    consts = [Const(f"{name}_weights", weights), bias_const, *rq_consts]
    if scratch_bytes:
        from .common import Scratch
        consts.append(Scratch(f"{name}_scratch", np.zeros(scratch_bytes, np.int8)))
    notes = [describe(g, op), f"kernel {kh}x{kw}, stride {sh}x{sw}, dilation {dh}x{dw}, "
             f"padding top {pt} left {pl}; input zero point {in_zp} folded into the bias; {rq_note}"]
    if tiled:
        form = "rounding constants" if rq.rounding_constants else "plain"
        used = f"variant {variant}" if depthwise else "few channels band" if band else f"im2col {im2col}"
        if block_tiles:
            used += (f", blocks of {min(3 * block_tiles, oh * ow)} pixels, int16 weights "
                     + ("in flash" if wide_weights else "expanded per channel pair and block"))
        used += f", requantization {form}"
        notes.append(f"schedule: {used}" + (f"; arena scratch {scratch_bytes} bytes" if scratch_bytes else ""))
    return Kernel(name, op, func, [x.index, *consts], out.index, macs, notes, scratch_bytes=scratch_bytes,
                  regrow=regrow)


#: the fewest tiles per block for the run-time weight expansion to pay (it costs about 2.3
#: tiles' worth of the instructions it saves per tile); below, the one-tile form
MIN_BLOCK_TILES = 3


def conv_block_tiles(knobs, w_shape, pixels: int, scratch_budget: int | None) -> int:
    """Tiles (3 pixels each) per block of the int16 im2col (kernels.gemm.conv2d_gemm's
    block_tiles; 0: one tile at a time over int8 weights) for the CONV_2D knobs block and
    weights, within scratch_budget bytes for "fit" (None: the least scratch). Blocks are
    balanced: as many as the budget needs, each as small as that count allows."""
    tiles = (pixels + 2) // 3
    least = 1 if knobs.weights == "int16" else 0
    if knobs.block == "tile":
        return least
    if knobs.block == "plane":
        return tiles
    if scratch_budget is None:
        return least
    kp = K.gemm.padded_depth(w_shape)
    wide = knobs.weights == "int16"
    best = max([t for t in range(1, tiles + 1)
                if K.gemm.wide_scratch_bytes(kp, t, wide) <= scratch_budget], default=0)
    if best == 0:
        return least
    best = -(-tiles // -(-tiles // best))  # the same number of blocks, balanced
    return best if wide or best >= MIN_BLOCK_TILES else least


def lower_fully_connected(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = act(ctx, op, g.tensor(op.inputs[0]))
    w = const(ctx, op, op.inputs[1], "weights", "int8")
    out = act(ctx, op, g.tensor(op.outputs[0]))
    if w.quant is None or len(w.shape) != 2:
        raise UnsupportedOpError(op.kind, op.index, "expects quantized 2-D int8 weights")
    if op.options.get("weights_format", 0) != 0:
        raise UnsupportedOpError(op.kind, op.index, "shuffled weights format")
    units, depth = w.shape
    if x.size % depth:
        raise UnsupportedOpError(op.kind, op.index, f"input of {x.size} values for depth {depth}")
    batch = x.size // depth
    in_zp = x.quant.scalar()[1]
    rq, rq_consts, rq_note = requant(ctx, op, x, w, out, units, arrays=True)
    bias = folded_bias(ctx, op, op.inputs[2] if len(op.inputs) > 2 else -1,
                        w.data.astype(np.int64).sum(axis=1), in_zp, units)
    wabs = np.abs(w.data.astype(np.int64)).sum(axis=1)
    rq = small_accumulator(rq, wabs, bias)
    knobs = _knobs(ctx, op, x.shape, w.shape, out.shape)
    if knobs.requant == "constants":
        rq, rq_consts, bias = fast_requantization(rq, rq_consts, bias, wabs)
    name = kernel_name(ctx, op)
    wide = knobs.weights == "int16" and depth % 4 == 0
    func = K.fully_connected_gemm(batch, depth, units, rq, "int16" if wide else "int8",
                                  nonneg_multipliers=bool(np.min(rq_consts[0].array) >= 0))
    if wide:
        weights = K.gemm.expand_weights(w.data)
    else:
        weights = K.gemm.quad_weights(w.data) if depth % 4 == 0 else w.data
    consts = [Const(f"{name}_weights", weights), Const(f"{name}_bias", bias), *rq_consts]
    notes = [describe(g, op), f"{batch} x {depth} -> {units}; input zero point {in_zp} folded "
             f"into the bias; {rq_note}"]
    if wide:
        notes.append("schedule: weights int16 (pre-extended for SMLAD, 2 bytes each)")
    return Kernel(name, op, func, [x.index, *consts], out.index, batch * depth * units, notes)


def small_accumulator(rq, weight_abs_sums: np.ndarray, bias: np.ndarray):
    """Mark the requantization when no int8 input can drive the accumulator (folded bias plus
    weights times inputs in [-128, 127]) to 2^30: the kernels may then round more cheaply."""
    bound = int((weight_abs_sums * 128 + np.abs(bias.astype(np.int64))).max())
    return dataclasses.replace(rq, small_accumulator=bound < (1 << 30))


def _knobs(ctx: LoweringContext, op: Operator, *geometry):
    """The layer's schedule knobs (tinycc.kernels.schedule): per-CPU defaults and tuning records."""
    sig = schedule.signature(op.kind, *geometry)
    if ctx.schedules is None:
        return schedule.KNOBS[op.kind]()
    return ctx.schedules.knobs(op.kind, sig, op.index)


def with_rounding_constants(rq, rq_consts: list):
    """The micro-kernels' cheaper requantization (SMMUL/SMMULR, rounding constant with the
    output zero point per channel) when the layer qualifies: the shift array becomes (e, r)
    pairs. Same results bit for bit (runtime/kernels/tinycc_nn.h, tinycc_requant_fast)."""
    pairs = K.rounding_constants(rq, rq_consts[1].array)
    if pairs is None:
        return rq, rq_consts
    shift = dataclasses.replace(rq_consts[1], array=pairs)
    return dataclasses.replace(rq, rounding_constants=True), [rq_consts[0], shift]


def fast_requantization(rq, rq_consts: list, bias: np.ndarray, weight_abs_sums: np.ndarray):
    """with_rounding_constants, where a channel whose output is one value for every input (a
    pruned channel: zero weights, a bias of +-2^30 and a tiny multiplier, as in VWW) would
    keep the whole layer from qualifying: such a channel gets multiplier 0, bias 0 and
    (e, r) = (1, 2v + 1), which gives v. Returns (rq, rq_consts, bias)."""
    mult, shift = np.asarray(rq_consts[0].array), np.asarray(rq_consts[1].array)
    fixed = constant_channels(rq, mult, shift, bias, weight_abs_sums)
    if not fixed:
        return (*with_rounding_constants(rq, rq_consts), bias)
    mult, shift, new_bias = mult.copy(), shift.copy(), bias.copy()
    for c in fixed:
        mult[c], shift[c], new_bias[c] = 0, -1 if rq.rounding == "double" else -2, 0
    rq_fast, consts = with_rounding_constants(
        small_accumulator(rq, weight_abs_sums, new_bias),
        [dataclasses.replace(rq_consts[0], array=mult), dataclasses.replace(rq_consts[1], array=shift)])
    if not rq_fast.rounding_constants:
        return rq, rq_consts, bias
    pairs = np.array(consts[1].array)
    for c, v in fixed.items():
        pairs[2 * c], pairs[2 * c + 1] = 1, 2 * v + 1
    return rq_fast, [consts[0], dataclasses.replace(consts[1], array=pairs)], new_bias


def constant_channels(rq, mult, shift, bias, weight_abs_sums) -> dict:
    """{channel: output} for the channels whose clamped output is the same at both ends of
    their accumulator's range (the requantization is monotonic without a left shift)."""
    from .. import quant

    if not rq.per_channel or rq.rounding not in ("single", "double"):
        return {}
    out = {}
    for c in range(len(mult)):
        if shift[c] > 0:
            continue
        reach = int(weight_abs_sums[c]) * 128
        ends = [min(rq.act_max, max(rq.act_min, quant.mul_by_quantized_multiplier(
            int(bias[c]) + d, int(mult[c]), int(shift[c]), rq.rounding) + rq.out_zp)) for d in (-reach, reach)]
        if ends[0] == ends[1]:
            out[c] = ends[0]
    # only worth it where a channel would otherwise keep the layer from qualifying
    return out if K.rounding_constants(rq, shift) is None else {}


LOWERINGS = {"CONV_2D": lower_conv, "DEPTHWISE_CONV_2D": lower_conv, "FULLY_CONNECTED": lower_fully_connected}
