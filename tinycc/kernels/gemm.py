"""Convolution, depthwise convolution and fully-connected kernels for microcontrollers.

The loops are TIR (TVMScript) and go through TVM's C code generator like every kernel; the
innermost dot products are calls to tinycc's micro-kernels (runtime/kernels/tinycc_nn.h,
copied into each library), which use SXTB16 + SMLAD on cores with the DSP extension and plain
C elsewhere. A convolution gathers the windows of two output pixels (im2col, the padding
filled with the input zero point, which the folded bias expects), then runs a 2x2 tile
(2 pixels x 2 output channels) over the whole window; a 1x1 convolution without padding
reads its input rows in place. A batch-1 fully-connected layer runs 1x4 tiles.
Requantization (LiteRT's single or TFLM's double rounding), zero point and clamp follow.

The schedule's shape choices (2x2 tiles, one-window gather above 1 KiB of stack, the 3x3
depthwise row path) are fixed in code for now; exposing them as per-CPU knobs for a tuner
is still to do.
"""

from __future__ import annotations

from tvm.script import tirx as T

from .fixedpoint import Requant


MAX_STACK_BYTES = 1024


def _double_flag(rq: Requant) -> int:
    """tinycc_requant_out's mode: 0 single rounding, 1 double, 2 double with right shifts only,
    3 the same with an accumulator known to stay below 2^30, 4 onnxruntime's float32 scale."""
    if rq.rounding == "onnxruntime":
        return 4
    if rq.rounding == "single":
        return 0
    if not rq.right_shifts_only:
        return 1
    return 3 if rq.small_accumulator else 2


def conv2d_gemm(in_shape, w_shape, out_shape, stride, dilation, pad, in_zp: int, rq: Requant):
    """NHWC convolution (OHWI weights) as im2col + 2x2 micro-kernel tiles."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (DH, DW), (PT, PL) = stride, dilation, pad
    KK, P = KH * KW * C, OH * OW
    ROW = KW * C
    MODE = _double_flag(rq)
    ZP, LO, HI = rq.out_zp, rq.act_min, rq.act_max
    direct = KH == 1 and KW == 1 and PT == 0 and PL == 0

    @T.prim_func(private=True)
    def gather(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((OC * KK,), "int8"),
               bias: T.Buffer((OC,), "int32"), mult: T.Buffer((OC,), "int32"),
               shift: T.Buffer((OC,), "int32"), out: T.Buffer((P * OC,), "int8")):
        col = T.alloc_buffer((2 * KK,), "int8")
        for pp in range((P + 1) // 2):
            # (no local variables: TVM 0.27's C host lowering rejects the stack buffers of a
            # function that binds scalars, so the window origin is spelled out)
            for q, ky in T.grid(2, KH):
                if (T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH >= 0
                        and T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH < H
                        and T.min(pp * 2 + q, P - 1) % OW * SW - PL >= 0
                        and T.min(pp * 2 + q, P - 1) % OW * SW - PL + (KW - 1) * DW < W and DW == 1):
                    T.evaluate(T.call_extern(
                        "void", "tinycc_copy_s8", col.access_ptr("w", offset=q * KK + ky * ROW, extent=ROW),
                        T.address_of(x[((T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH) * W
                                        + T.min(pp * 2 + q, P - 1) % OW * SW - PL) * C]), ROW))
                else:
                    for kx in range(KW):
                        if (T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH >= 0
                                and T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH < H
                                and T.min(pp * 2 + q, P - 1) % OW * SW - PL + kx * DW >= 0
                                and T.min(pp * 2 + q, P - 1) % OW * SW - PL + kx * DW < W):
                            T.evaluate(T.call_extern(
                                "void", "tinycc_copy_s8", col.access_ptr("w", offset=q * KK + ky * ROW + kx * C, extent=C),
                                T.address_of(x[((T.min(pp * 2 + q, P - 1) // OW * SH - PT + ky * DH) * W
                                                + T.min(pp * 2 + q, P - 1) % OW * SW - PL + kx * DW) * C]), C))
                        else:
                            T.evaluate(T.call_extern("void", "tinycc_fill_s8",
                                                     col.access_ptr("w", offset=q * KK + ky * ROW + kx * C, extent=C), in_zp, C))
            for oo in range((OC + 1) // 2):
                T.evaluate(T.call_extern(
                    "void", "tinycc_conv_s8_2x2_out", col.access_ptr("r", offset=0, extent=KK),
                    col.access_ptr("r", offset=KK, extent=KK), T.address_of(w[oo * 2 * KK]),
                    T.address_of(w[T.min(oo * 2 + 1, OC - 1) * KK]), KK, T.address_of(bias[0]),
                    T.address_of(mult[0]), T.address_of(shift[0]), oo * 2, T.min(oo * 2 + 1, OC - 1), MODE, ZP,
                    LO, HI, T.address_of(out[pp * 2 * OC]), T.address_of(out[T.min(pp * 2 + 1, P - 1) * OC])))

    @T.prim_func(private=True)
    def pointwise(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((OC * KK,), "int8"),
                  bias: T.Buffer((OC,), "int32"), mult: T.Buffer((OC,), "int32"),
                  shift: T.Buffer((OC,), "int32"), out: T.Buffer((P * OC,), "int8")):
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
                shift: T.Buffer((OC,), "int32"), out: T.Buffer((P * OC,), "int8")):
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
                            "int8", "tinycc_requant_out", acc[t], mult[oo * 4 + t], shift[oo * 4 + t],
                            MODE, ZP, LO, HI)

    if direct:
        return pointwise
    # TVM's C backend keeps local buffers on the stack only up to 1 KiB: gather one window
    # at a time when two do not fit.
    return gather if 2 * KK <= MAX_STACK_BYTES else gather1


def fully_connected_gemm(batch: int, depth: int, units: int, rq: Requant):
    """Batch-1 fully connected: one activation row against 4 weight rows per call."""
    MODE = _double_flag(rq)
    ZP, LO, HI, K, N = rq.out_zp, rq.act_min, rq.act_max, depth, units

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((batch * K,), "int8"), w: T.Buffer((N * K,), "int8"),
               bias: T.Buffer((N,), "int32"), mult: T.Buffer((N,), "int32"),
               shift: T.Buffer((N,), "int32"), out: T.Buffer((batch * N,), "int8")):
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
                            "int8", "tinycc_requant_out", acc[t], mult[oo * 4 + t], shift[oo * 4 + t],
                            MODE, ZP, LO, HI)
    return kernel


def depthwise_gemm(in_shape, w_shape, out_shape, stride, dilation, pad, in_zp: int, rq: Requant):
    """Depthwise convolution (depth multiplier 1, channels a multiple of 4): one micro-kernel
    call per output pixel and group of 4 channels, requantizing as it stores. A pixel whose
    window leaves the input first copies its window into a small patch, the zero point in
    place of the missing taps."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (DH, DW), (PT, PL) = stride, dilation, pad
    DOUBLE = _double_flag(rq)
    ZP, LO, HI = rq.out_zp, rq.act_min, rq.act_max
    G, TAPS = C // 4, KH * KW

    # output columns whose whole window lies inside the input, for the row-span fast path
    X0 = max(0, -(-PL // SW))
    X1 = max(X0, min(OW, (W - 1 - (KW - 1) * DW + PL) // SW + 1))

    @T.prim_func(private=True)
    def rows3x3(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((KH * KW * C,), "int8"),
                bias: T.Buffer((C,), "int32"), mult: T.Buffer((C,), "int32"),
                shift: T.Buffer((C,), "int32"), out: T.Buffer((OH * OW * C,), "int8")):
        pad = T.alloc_buffer((C,), "int8")
        T.evaluate(T.call_extern("void", "tinycc_fill_s8", pad.access_ptr("w", offset=0, extent=C), in_zp, C))
        for oy in range(OH):
            if oy * SH - PT >= 0 and oy * SH - PT + (KH - 1) * DH < H and X1 > X0:
                T.evaluate(T.call_extern(
                    "void", "tinycc_depthwise3x3_row",
                    T.address_of(x[((oy * SH - PT) * W + X0 * SW - PL) * C]), X1 - X0, SW * C, DH * W * C,
                    DW * C, T.address_of(w[0]), C, T.address_of(bias[0]), T.address_of(mult[0]),
                    T.address_of(shift[0]), DOUBLE, ZP, LO, HI, T.address_of(out[(oy * OW + X0) * C]), C))
            for ox in range(OW):
                if not (oy * SH - PT >= 0 and oy * SH - PT + (KH - 1) * DH < H and ox >= X0 and ox < X1):
                    T.evaluate(T.call_extern(
                        "void", "tinycc_depthwise3x3_edge", T.address_of(x[0]), H, W, oy * SH - PT,
                        ox * SW - PL, DH, DW, pad.access_ptr("r", offset=0, extent=C), T.address_of(w[0]), C,
                        T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]), DOUBLE, ZP, LO,
                        HI, T.address_of(out[(oy * OW + ox) * C])))

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((KH * KW * C,), "int8"),
               bias: T.Buffer((C,), "int32"), mult: T.Buffer((C,), "int32"),
               shift: T.Buffer((C,), "int32"), out: T.Buffer((OH * OW * C,), "int8")):
        patch = T.alloc_buffer((TAPS * 4,), "int8")
        for oy, ox, g in T.grid(OH, OW, G):
            if (oy * SH - PT >= 0 and oy * SH - PT + (KH - 1) * DH < H
                    and ox * SW - PL >= 0 and ox * SW - PL + (KW - 1) * DW < W):
                T.evaluate(T.call_extern(
                    "void", "tinycc_depthwise_s8x4_out",
                    T.address_of(x[((oy * SH - PT) * W + ox * SW - PL) * C + g * 4]), KH, KW, DH * W * C,
                    DW * C, T.address_of(w[g * 4]), C, T.address_of(bias[g * 4]), T.address_of(mult[g * 4]),
                    T.address_of(shift[g * 4]), DOUBLE, ZP, LO, HI,
                    T.address_of(out[(oy * OW + ox) * C + g * 4])))
            else:
                for ky, kx in T.grid(KH, KW):
                    if (oy * SH - PT + ky * DH >= 0 and oy * SH - PT + ky * DH < H
                            and ox * SW - PL + kx * DW >= 0 and ox * SW - PL + kx * DW < W):
                        T.evaluate(T.call_extern(
                            "void", "tinycc_copy_s8", patch.access_ptr("w", offset=(ky * KW + kx) * 4, extent=4),
                            T.address_of(x[((oy * SH - PT + ky * DH) * W + ox * SW - PL + kx * DW) * C + g * 4]), 4))
                    else:
                        T.evaluate(T.call_extern(
                            "void", "tinycc_fill_s8", patch.access_ptr("w", offset=(ky * KW + kx) * 4, extent=4),
                            in_zp, 4))
                T.evaluate(T.call_extern(
                    "void", "tinycc_depthwise_s8x4_out", patch.access_ptr("r", offset=0, extent=TAPS * 4),
                    KH, KW, KW * 4, 4, T.address_of(w[g * 4]), C, T.address_of(bias[g * 4]),
                    T.address_of(mult[g * 4]), T.address_of(shift[g * 4]), DOUBLE, ZP, LO, HI,
                    T.address_of(out[(oy * OW + ox) * C + g * 4])))
    # the pad row lives on the stack, which TVM allows up to 1 KiB
    return rows3x3 if (KH, KW) == (3, 3) and C <= MAX_STACK_BYTES else kernel
