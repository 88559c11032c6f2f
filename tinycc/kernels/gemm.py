"""Convolution, depthwise convolution and fully-connected kernels for microcontrollers.

The loops are TIR (TVMScript) and go through TVM's C code generator like every kernel; the
innermost dot products are calls to tinycc's micro-kernels (runtime/kernels/tinycc_nn.h,
copied into each library), which use SXTB16 + SMLAD on cores with the DSP extension and plain
C elsewhere. A convolution gathers the windows of output pixels (im2col, the padding filled
with the input zero point, which the folded bias expects): with the int16 im2col (the DSP
cores' default) three windows sign-extended into arena scratch and 2x3 tiles (2 output
channels x 3 pixels, inline assembly), or, where the arena has room (schedule.ConvKnobs.block),
the windows of a block of such tiles and every channel pair over them with int16 weights
(expanded once per pair and block, or stored so); with the int8 one two windows (or one, above 1 KiB of
stack) and 2x2 tiles, a 1x1 convolution without padding reading its input rows in place. A
batch-1 fully-connected layer runs 4-row blocks. Requantization (LiteRT's single or TFLM's
double rounding), zero point and clamp follow. The choices that are knobs are in schedule.py.
"""

from __future__ import annotations

from tvm.script import tirx as T

from .fixedpoint import Requant


MAX_STACK_BYTES = 1024


def _double_flag(rq: Requant) -> int:
    """tinycc_requant_ch's mode: 0 single rounding, 1 double, 2 double with right shifts only,
    3 the same with an accumulator known to stay below 2^30; 4 (double) and 5 (single) with
    compile-time rounding constants in the shift array (fixedpoint.rounding_constants); -1
    onnxruntime's float32 scale, whose bit pattern is the multiplier."""
    if rq.rounding == "onnxruntime":
        return -1
    if rq.rounding_constants:
        return 4 if rq.rounding == "double" else 5
    if rq.rounding == "single":
        return 0
    if not rq.right_shifts_only:
        return 1
    return 3 if rq.small_accumulator else 2


def tile_mode(rq: Requant, nonneg_multipliers: bool, doubled: bool = False) -> int:
    """The requantization mode of the convolution tiles and fully-connected blocks:
    _double_flag's, 6 for mode 4 over doubled windows and bias (doubled: doubles_activations);
    then 7 for 6 and 8 for 4, the same without the sign correction, where that cannot change an
    output: the clamp floor at or above the output zero point (ReLU, ReLU6) and no negative
    multiplier (the proof is at tinycc_nn.h's tinycc_requant_local). One instruction fewer per
    output; a layer without activation keeps the correction."""
    mode = _double_flag(rq)
    if mode == 4 and doubled:
        mode = 6
    if mode in (4, 6) and nonneg_multipliers and rq.act_min >= rq.out_zp:
        return 8 if mode == 4 else 7
    return mode


def conv2d_gemm(in_shape, w_shape, out_shape, stride, dilation, pad, in_zp: int, rq: Requant,
                im2col: str = "int8", block_tiles: int = 0, wide_weights: bool = False,
                nonneg_multipliers: bool = False):
    """NHWC convolution (OHWI weights) as im2col + micro-kernel tiles. With the int16 im2col
    of whole-group taps, block_tiles > 0 gathers the windows of that many 3-pixel tiles at a
    time and runs int16 weights over them (wide_weights: pre-expanded in flash, else expanded
    per channel pair and block into the scratch); block_tiles 0: one tile at a time, int8
    weights (wide_weights then needs block_tiles > 0: use 1). nonneg_multipliers: no channel's
    multiplier is negative (tile_mode)."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (DH, DW), (PT, PL) = stride, dilation, pad
    KK, P = KH * KW * C, OH * OW
    ROW = KW * C
    MODE = tile_mode(rq, nonneg_multipliers)
    SW_ = 2 if rq.rounding_constants else 1  # shift array entries per channel
    ZP, LO, HI = rq.out_zp, rq.act_min, rq.act_max
    direct = KH == 1 and KW == 1 and PT == 0 and PL == 0
    KP = (KK + 3) // 4 * 4  # gathered windows padded to whole words (zero weights there)

    @T.prim_func(private=True)
    def gather(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((OC * KP,), "int8"),
               bias: T.Buffer((OC,), "int32"), mult: T.Buffer((OC,), "int32"),
               shift: T.Buffer((OC * SW_,), "int32"), out: T.Buffer((P * OC,), "int8")):
        col = T.alloc_buffer((2 * KP,), "int8")
        # windows padded to whole words (zero weights there): no scalar tail in the tiles
        for q in range(2):
            if KP > KK:
                T.evaluate(T.call_extern("void", "tinycc_fill_s8",
                                         col.access_ptr("w", offset=q * KP + KK, extent=KP - KK), 0, KP - KK))
        for pp in range((P + 1) // 2):
            # (no local variables: TVM 0.27's C host lowering rejects the stack buffers of a
            # function that binds scalars, so the window origin is spelled out)
            for q, ky in T.grid(2, KH):
                if (T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH >= 0
                        and T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH < H
                        and T.min(pp * 2 + q, P - 1) % OW * SW - PL >= 0
                        and T.min(pp * 2 + q, P - 1) % OW * SW - PL + (KW - 1) * DW < W and DW == 1):
                    T.evaluate(T.call_extern(
                        "void", "tinycc_copy_s8", col.access_ptr("w", offset=q * KP + ky * ROW, extent=ROW),
                        T.address_of(x[((T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH) * W
                                        + T.min(pp * 2 + q, P - 1) % OW * SW - PL) * C]), ROW))
                else:
                    for kx in range(KW):
                        if (T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH >= 0
                                and T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH < H
                                and T.min(pp * 2 + q, P - 1) % OW * SW - PL + kx * DW >= 0
                                and T.min(pp * 2 + q, P - 1) % OW * SW - PL + kx * DW < W):
                            T.evaluate(T.call_extern(
                                "void", "tinycc_copy_s8", col.access_ptr("w", offset=q * KP + ky * ROW + kx * C, extent=C),
                                T.address_of(x[((T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH) * W
                                                + T.min(pp * 2 + q, P - 1) % OW * SW - PL + kx * DW) * C]), C))
                        else:
                            T.evaluate(T.call_extern("void", "tinycc_fill_s8",
                                                     col.access_ptr("w", offset=q * KP + ky * ROW + kx * C, extent=C), in_zp, C))
            for oo in range((OC + 1) // 2):
                T.evaluate(T.call_extern(
                    "void", "tinycc_conv_s8_2x2_out", col.access_ptr("r", offset=0, extent=KP),
                    col.access_ptr("r", offset=KP, extent=KP), T.address_of(w[oo * 2 * KP]),
                    T.address_of(w[T.min(oo * 2 + 1, OC - 1) * KP]), KP, T.address_of(bias[0]),
                    T.address_of(mult[0]), T.address_of(shift[0]), oo * 2, T.min(oo * 2 + 1, OC - 1), MODE, ZP,
                    LO, HI, T.address_of(out[pp * 2 * OC]), T.address_of(out[T.min(pp * 2 + 1, P - 1) * OC])))

    @T.prim_func(private=True)
    def pointwise(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((OC * KK,), "int8"),
                  bias: T.Buffer((OC,), "int32"), mult: T.Buffer((OC,), "int32"),
                  shift: T.Buffer((OC * SW_,), "int32"), out: T.Buffer((P * OC,), "int8")):
        # one finished 2x2 tile per call; an odd last pixel or channel is computed twice and
        # stored twice with the same value
        for pp, oo in T.grid((P + 1) // 2, (OC + 1) // 2):
            T.evaluate(T.call_extern(
                "void", "tinycc_conv_s8_2x2_out",
                T.address_of(x[(pp * 2 // OW * SH * W + pp * 2 % OW * SW) * C]),
                T.address_of(x[(T.min(pp * 2 + 1, P - 1) // OW * SH * W + T.min(pp * 2 + 1, P - 1) % OW * SW) * C]),
                T.address_of(w[oo * 2 * KK]), T.address_of(w[T.min(oo * 2 + 1, OC - 1) * KK]), KK,
                T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]), oo * 2,
                T.min(oo * 2 + 1, OC - 1), MODE, ZP, LO, HI, T.address_of(out[pp * 2 * OC]),
                T.address_of(out[T.min(pp * 2 + 1, P - 1) * OC])))

    @T.prim_func(private=True)
    def gather1(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((OC * KK,), "int8"),
                bias: T.Buffer((OC,), "int32"), mult: T.Buffer((OC,), "int32"),
                shift: T.Buffer((OC * SW_,), "int32"), out: T.Buffer((P * OC,), "int8")):
        col = T.alloc_buffer((KK,), "int8")
        acc = T.alloc_buffer((4,), "int32")
        for p in range(P):
            for ky, kx in T.grid(KH, KW):
                if (p // OW * SH - PT + ky * DH >= 0 and p // OW * SH - PT + ky * DH < H
                        and p % OW * SW - PL + kx * DW >= 0 and p % OW * SW - PL + kx * DW < W):
                    T.evaluate(T.call_extern(
                        "void", "tinycc_copy_s8", col.access_ptr("w", offset=ky * ROW + kx * C, extent=C),
                        T.address_of(x[((p // OW * SH - PT + ky * DH) * W + p % OW * SW - PL + kx * DW) * C]), C))
                else:
                    T.evaluate(T.call_extern("void", "tinycc_fill_s8",
                                             col.access_ptr("w", offset=ky * ROW + kx * C, extent=C), in_zp, C))
            for oo in range((OC + 3) // 4):
                for t in range(4):
                    acc[t] = bias[T.min(oo * 4 + t, OC - 1)]
                T.evaluate(T.call_extern("void", "tinycc_dot_s8_1x4", col.access_ptr("r", offset=0, extent=KK),
                                         T.address_of(w[oo * 4 * KK]),
                                         T.address_of(w[T.min(oo * 4 + 1, OC - 1) * KK]),
                                         T.address_of(w[T.min(oo * 4 + 2, OC - 1) * KK]),
                                         T.address_of(w[T.min(oo * 4 + 3, OC - 1) * KK]), KK,
                                         acc.access_ptr("rw", offset=0, extent=4)))
                for t in range(4):
                    if oo * 4 + t < OC:
                        out[p * OC + oo * 4 + t] = T.call_extern(
                            "int8", "tinycc_requant_ch", acc[t], T.address_of(mult[0]), T.address_of(shift[0]),
                            oo * 4 + t, MODE, ZP, LO, HI)

    ALIGNED = C % 4 == 0  # every run of a window starts at a multiple of 4

    # the int16 windows doubled (and the bias, by the caller: doubles_activations), so that
    # the tiles' accumulators hold the 2 acc of mode 4's SMMLAR (mode 6)
    DOUBLE = im2col == "int16" and ALIGNED and doubles_activations(w_shape, OC, rq)
    EXPAND = "tinycc_expand_s8_x3_2" if DOUBLE else "tinycc_expand_s8_x3"
    FILL = 2 * in_zp if DOUBLE else in_zp
    TMODE = tile_mode(rq, nonneg_multipliers, DOUBLE)
    NPAIR = (OC + 1) // 2
    TAIL1 = OC if P % 3 == 2 else 0  # the 2x3 tiles' last pixels: repeats of pixel P - 1
    TAIL2 = TAIL1

    # blocks of TB tiles (tinycc_conv_s16_block_out, int16 weights) or, with block_tiles 0,
    # one tile at a time over the int8 weights (tinycc_conv_s16_2x3_out)
    BLOCKED = block_tiles > 0
    TB = max(block_tiles, 1)
    NT = (P + 2) // 3
    NB = (NT + TB - 1) // TB
    TAILF = 1 if P % 3 else 0
    EXPANDW = 0 if wide_weights else 1
    WX = TB * 6 * KP  # the pair's int16 weights after the windows (expanded at run time)
    WDT = "int16" if wide_weights else "int8"
    SCR = wide_scratch_bytes(KP, block_tiles, wide_weights)

    @T.prim_func(private=True)
    def wide(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((NPAIR * 2 * KP,), WDT),
             bias: T.Buffer((OC,), "int32"), mult: T.Buffer((OC,), "int32"),
             shift: T.Buffer((OC * SW_,), "int32"), scratch: T.Buffer((SCR,), "int8"),
             out: T.Buffer((P * OC,), "int8")):
        # the windows of three pixels per tile, sign-extended to int16 and interleaved in the
        # arena scratch (tinycc_nn.h's 2x3 layout: 24 bytes per group of 4 window values), the
        # tiles of a block one after the other; taps are whole groups here (ALIGNED)
        for bb in range(NB):
            for t, q, ky in T.grid(TB, 3, KH):
                if not BLOCKED or bb * TB + t < NT:
                    if (T.min((bb * TB + t) * 3 + q, P - 1) // OW * SH - PT + ky * DH >= 0
                            and T.min((bb * TB + t) * 3 + q, P - 1) // OW * SH - PT + ky * DH < H
                            and T.min((bb * TB + t) * 3 + q, P - 1) % OW * SW - PL >= 0
                            and T.min((bb * TB + t) * 3 + q, P - 1) % OW * SW - PL + (KW - 1) * DW < W and DW == 1):
                        T.evaluate(T.call_extern(
                            "void", EXPAND, T.address_of(scratch[t * 6 * KP + ky * (ROW // 4) * 24 + q * 8]),
                            T.address_of(x[((T.min((bb * TB + t) * 3 + q, P - 1) // OW * SH - PT + ky * DH) * W
                                            + T.min((bb * TB + t) * 3 + q, P - 1) % OW * SW - PL) * C]), ROW))
                    else:
                        for kx in range(KW):
                            if (T.min((bb * TB + t) * 3 + q, P - 1) // OW * SH - PT + ky * DH >= 0
                                    and T.min((bb * TB + t) * 3 + q, P - 1) // OW * SH - PT + ky * DH < H
                                    and T.min((bb * TB + t) * 3 + q, P - 1) % OW * SW - PL + kx * DW >= 0
                                    and T.min((bb * TB + t) * 3 + q, P - 1) % OW * SW - PL + kx * DW < W):
                                T.evaluate(T.call_extern(
                                    "void", EXPAND,
                                    T.address_of(scratch[t * 6 * KP + (ky * (ROW // 4) + kx * (C // 4)) * 24 + q * 8]),
                                    T.address_of(x[((T.min((bb * TB + t) * 3 + q, P - 1) // OW * SH - PT + ky * DH) * W
                                                    + T.min((bb * TB + t) * 3 + q, P - 1) % OW * SW - PL + kx * DW) * C]),
                                    C))
                            else:
                                T.evaluate(T.call_extern(
                                    "void", "tinycc_fill_s16_x3",
                                    T.address_of(scratch[t * 6 * KP + (ky * (ROW // 4) + kx * (C // 4)) * 24 + q * 8]),
                                    FILL, C))
            if BLOCKED:  # one call for every block (one inlined copy): the last one's tiles and tail
                T.evaluate(T.call_extern(
                    "void", "tinycc_conv_s16_block_out", T.address_of(scratch[0]), T.min(TB, NT - bb * TB),
                    T.if_then_else(bb == NB - 1, TAILF, 0), T.address_of(w[0]), EXPANDW,
                    T.address_of(scratch[WX]), KP, OC, T.address_of(bias[0]), T.address_of(mult[0]),
                    T.address_of(shift[0]), TMODE, ZP, LO, HI, T.address_of(out[bb * TB * 3 * OC]), TAIL1, TAIL2))
            elif P % 3 == 0 or bb < P // 3:
                T.evaluate(T.call_extern(
                    "void", "tinycc_conv_s16_2x3_out", T.address_of(scratch[0]), T.address_of(w[0]), KP, OC,
                    T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]), TMODE, ZP, LO, HI,
                    T.address_of(out[bb * 3 * OC]), OC, 2 * OC))
            else:  # the last one or two pixels
                T.evaluate(T.call_extern(
                    "void", "tinycc_conv_s16_2x3_out", T.address_of(scratch[0]), T.address_of(w[0]), KP, OC,
                    T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]), TMODE, ZP, LO, HI,
                    T.address_of(out[bb * 3 * OC]), TAIL1, TAIL2))

    @T.prim_func(private=True)
    def wide_gathered(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((NPAIR * 2 * KP,), "int8"),
                      bias: T.Buffer((OC,), "int32"), mult: T.Buffer((OC,), "int32"),
                      shift: T.Buffer((OC * SW_,), "int32"), scratch: T.Buffer((6 * KP,), "int8"),
                      out: T.Buffer((P * OC,), "int8")):
        # windows whose taps are not whole groups (1 or 3 input channels): each gathered as
        # bytes on the stack (zeros after KK), then sign-extended into the 2x3 layout
        col = T.alloc_buffer((KP,), "int8")
        if KP > KK:
            T.evaluate(T.call_extern("void", "tinycc_fill_s8", col.access_ptr("w", offset=KK, extent=KP - KK), 0,
                                     KP - KK))
        for pp in range((P + 2) // 3):
            for q in range(3):
                for ky in range(KH):
                    if (T.min(pp * 3 + q, P - 1) // OW * SH - PT + ky * DH >= 0
                            and T.min(pp * 3 + q, P - 1) // OW * SH - PT + ky * DH < H
                            and T.min(pp * 3 + q, P - 1) % OW * SW - PL >= 0
                            and T.min(pp * 3 + q, P - 1) % OW * SW - PL + (KW - 1) * DW < W and DW == 1):
                        T.evaluate(T.call_extern(
                            "void", "tinycc_copy_s8", col.access_ptr("w", offset=ky * ROW, extent=ROW),
                            T.address_of(x[((T.min(pp * 3 + q, P - 1) // OW * SH - PT + ky * DH) * W
                                            + T.min(pp * 3 + q, P - 1) % OW * SW - PL) * C]), ROW))
                    else:
                        for kx in range(KW):
                            if (T.min(pp * 3 + q, P - 1) // OW * SH - PT + ky * DH >= 0
                                    and T.min(pp * 3 + q, P - 1) // OW * SH - PT + ky * DH < H
                                    and T.min(pp * 3 + q, P - 1) % OW * SW - PL + kx * DW >= 0
                                    and T.min(pp * 3 + q, P - 1) % OW * SW - PL + kx * DW < W):
                                T.evaluate(T.call_extern(
                                    "void", "tinycc_copy_s8",
                                    col.access_ptr("w", offset=ky * ROW + kx * C, extent=C),
                                    T.address_of(x[((T.min(pp * 3 + q, P - 1) // OW * SH - PT + ky * DH) * W
                                                    + T.min(pp * 3 + q, P - 1) % OW * SW - PL + kx * DW) * C]), C))
                            else:
                                T.evaluate(T.call_extern(
                                    "void", "tinycc_fill_s8", col.access_ptr("w", offset=ky * ROW + kx * C, extent=C),
                                    in_zp, C))
                T.evaluate(T.call_extern("void", "tinycc_expand_s8_x3", T.address_of(scratch[q * 8]),
                                         col.access_ptr("r", offset=0, extent=KP), KP))
            if P % 3 == 0 or pp < P // 3:
                T.evaluate(T.call_extern(
                    "void", "tinycc_conv_s16_2x3_out", T.address_of(scratch[0]), T.address_of(w[0]), KP, OC,
                    T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]), MODE, ZP, LO, HI,
                    T.address_of(out[pp * 3 * OC]), OC, 2 * OC))
            else:  # the last one or two pixels
                T.evaluate(T.call_extern(
                    "void", "tinycc_conv_s16_2x3_out", T.address_of(scratch[0]), T.address_of(w[0]), KP, OC,
                    T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]), MODE, ZP, LO, HI,
                    T.address_of(out[pp * 3 * OC]), TAIL1, TAIL2))

    if im2col == "int16":
        if ALIGNED:
            return wide
        if KP > MAX_STACK_BYTES:
            raise ValueError(f"int16 im2col of {KK}-value windows of {C}-channel runs needs a stack window over "
                             f"{MAX_STACK_BYTES} bytes")
        return wide_gathered
    if direct:
        return pointwise
    # TVM's C backend keeps local buffers on the stack only up to 1 KiB: gather one window
    # at a time when two do not fit.
    return gather if uses_two_windows(w_shape) else gather1


def doubles_activations(w_shape, oc: int, rq: Requant) -> bool:
    """The int16 im2col of whole-group taps doubles its windows, and the layer's bias is
    doubled, when the requantization is mode 4 (double rounding, |acc| < 2^30, so 2 acc fits)
    and the doubling (one SADD16 per 2 window values, per pixel) costs less than the shift it
    saves (one per output)."""
    return _double_flag(rq) == 4 and 2 * oc > padded_depth(w_shape)


def expand_weights(w):
    """int8 weight rows as int16 blocks in the order tinycc_fc_s8s16_out reads them: rows padded
    with zero rows to a multiple of 4; per block of 4 rows and group of 4 values of k, the 4
    rows in turn, each in SXTB16 order (w0 w2 w1 w3). For the fully-connected weights knob
    "int16" (k a multiple of 4)."""
    import numpy as np

    rows, k = w.shape
    padded = np.zeros(((rows + 3) // 4 * 4, k), np.int16)
    padded[:rows] = w
    blocks = padded.reshape(-1, 4, k // 4, 2, 2).transpose(0, 2, 1, 4, 3)  # block, k/4, row, odd, even
    return np.ascontiguousarray(blocks).reshape(-1)


def quad_weights(w):
    """int8 weight rows in the order tinycc_fc_s8_out reads them: rows padded with zero rows to
    a multiple of 4; per block of 4 rows and group of 4 values of k, the 4 rows' 4 bytes in
    turn (k a multiple of 4)."""
    import numpy as np

    rows, k = w.shape
    padded = np.zeros(((rows + 3) // 4 * 4, k), np.int8)
    padded[:rows] = w
    return np.ascontiguousarray(padded.reshape(-1, 4, k // 4, 4).transpose(0, 2, 1, 3)).reshape(-1)


def fully_connected_gemm(batch: int, depth: int, units: int, rq: Requant, weights: str = "int8",
                         nonneg_multipliers: bool = False):
    """Batch-1 fully connected (each batch row in turn): weights "int8" as 4-row blocks
    (quad_weights) when the depth is a multiple of 4, else one activation row against 4 weight
    rows per call; "int16": rows pre-extended at compile time (expand_weights).
    nonneg_multipliers: as in conv2d_gemm."""
    MODE = tile_mode(rq, nonneg_multipliers)
    SW_ = 2 if rq.rounding_constants else 1
    ZP, LO, HI, K, N = rq.out_zp, rq.act_min, rq.act_max, depth, units

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((batch * K,), "int8"), w: T.Buffer((N * K,), "int8"),
               bias: T.Buffer((N,), "int32"), mult: T.Buffer((N,), "int32"),
               shift: T.Buffer((N * SW_,), "int32"), out: T.Buffer((batch * N,), "int8")):
        acc = T.alloc_buffer((4,), "int32")
        for b in range(batch):
            for oo in range((N + 3) // 4):
                for t in range(4):
                    acc[t] = bias[T.min(oo * 4 + t, N - 1)]
                T.evaluate(T.call_extern("void", "tinycc_dot_s8_1x4", T.address_of(x[b * K]),
                                         T.address_of(w[oo * 4 * K]),
                                         T.address_of(w[T.min(oo * 4 + 1, N - 1) * K]),
                                         T.address_of(w[T.min(oo * 4 + 2, N - 1) * K]),
                                         T.address_of(w[T.min(oo * 4 + 3, N - 1) * K]), K,
                                         acc.access_ptr("rw", offset=0, extent=4)))
                for t in range(4):
                    if oo * 4 + t < N:
                        out[b * N + oo * 4 + t] = T.call_extern(
                            "int8", "tinycc_requant_ch", acc[t], T.address_of(mult[0]), T.address_of(shift[0]),
                            oo * 4 + t, MODE, ZP, LO, HI)

    @T.prim_func(private=True)
    def quad(x: T.Buffer((batch * K,), "int8"), w: T.Buffer(((N + 3) // 4 * 4 * K,), "int8"),
             bias: T.Buffer((N,), "int32"), mult: T.Buffer((N,), "int32"),
             shift: T.Buffer((N * SW_,), "int32"), out: T.Buffer((batch * N,), "int8")):
        for b in range(batch):
            T.evaluate(T.call_extern("void", "tinycc_fc_s8_out", T.address_of(x[b * K]), T.address_of(w[0]), K, N,
                                     T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]), MODE,
                                     ZP, LO, HI, T.address_of(out[b * N])))

    @T.prim_func(private=True)
    def wide(x: T.Buffer((batch * K,), "int8"), w: T.Buffer(((N + 3) // 4 * 4 * K,), "int16"),
             bias: T.Buffer((N,), "int32"), mult: T.Buffer((N,), "int32"),
             shift: T.Buffer((N * SW_,), "int32"), out: T.Buffer((batch * N,), "int8")):
        for b in range(batch):
            T.evaluate(T.call_extern("void", "tinycc_fc_s8s16_out", T.address_of(x[b * K]), T.address_of(w[0]), K,
                                     N, T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]),
                                     MODE, ZP, LO, HI, T.address_of(out[b * N])))
    if weights == "int16":
        if K % 4:
            raise ValueError(f"int16 weights need a depth that is a multiple of 4, not {K}")
        return wide
    return quad if K % 4 == 0 else kernel


def uses_two_windows(w_shape) -> bool:
    """The int8 im2col gathers two windows on the stack when they fit in TVM's 1 KiB."""
    return 2 * padded_depth(w_shape) <= MAX_STACK_BYTES


def padded_depth(w_shape) -> int:
    """The int16 im2col's window length: KH * KW * C rounded up to a multiple of 4."""
    return (w_shape[1] * w_shape[2] * w_shape[3] + 3) // 4 * 4


def pad_weights(w):
    """OHWI weights as rows of padded_depth values, zeros after each row's own (int16 im2col)."""
    import numpy as np

    rows = w.reshape(w.shape[0], -1)
    out = np.zeros((rows.shape[0], padded_depth(w.shape)), w.dtype)
    out[:, :rows.shape[1]] = rows
    return out


def conv_scratch_bytes(w_shape, block_tiles: int = 0, wide_weights: bool = False) -> int:
    """The arena scratch of the int16 im2col: three windows of 2 bytes per value per tile
    (wide_scratch_bytes)."""
    return wide_scratch_bytes(padded_depth(w_shape), block_tiles, wide_weights)


def wide_scratch_bytes(kp: int, block_tiles: int, wide_weights: bool) -> int:
    """Three int16 windows of kp values per tile of the block (one tile without blocks), and
    a channel pair's int16 weights (4 kp bytes) when they are expanded at run time."""
    return 6 * kp * max(block_tiles, 1) + (4 * kp if block_tiles and not wide_weights else 0)


def wide_pair_weights(w):
    """pair_weights sign-extended to int16 in the order tinycc_conv_s16s16_2x3_pair reads them:
    each 4-value group in SXTB16 order (v0 v2 v1 v3), what tinycc_expand_s8 makes of it at run
    time (the CONV_2D weights knob "int16": twice the flash, no run-time expansion)."""
    import numpy as np

    return np.ascontiguousarray(pair_weights(w).reshape(-1, 4)[:, [0, 2, 1, 3]]).astype(np.int16).reshape(-1)


def pair_weights(w):
    """OHWI weights in the order tinycc_conv_s16_2x3_out reads them: rows padded to
    padded_depth, then per pair of output channels (the last one twice for an odd count) and
    group of 4 values, the first row's 4 bytes and the second's."""
    import numpy as np

    rows = pad_weights(w)
    oc, kp = rows.shape
    rows = rows[np.minimum(np.arange((oc + 1) // 2 * 2), oc - 1)]
    return np.ascontiguousarray(rows.reshape(-1, 2, kp // 4, 4).transpose(0, 2, 1, 3)).reshape(-1)

