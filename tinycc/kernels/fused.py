"""Row-streamed fused kernels (`--fuse-rows`): a chain convolution A -> convolution B
(-> ADD with a shortcut) as one function, as MCUNetV2's patch-based inference does, so that
A's output never exists as a whole tensor.

For each output row y of B, the kernel first computes the rows of A that B's window needs
and that are not computed yet, into a ring of KH_B rows (row t in slot t % KH_B); then B's
row y from the ring, two pixels at a time, and, with an ADD, adds those two pixels to the
shortcut's (the block input itself, or a 1x1 convolution of it computed row by row) and
stores them. Every output row is final when it is stored, so the output may take the block
input's place in the arena (the planner checks that on the access trace of this very code).

Both convolutions run the unfused kernels' micro-kernels (tinycc.kernels.gemm): im2col
windows of two output pixels, sign-extended once to int16 where the lowered layer has the
int16 im2col (CONV_2D.im2col, the default on DSP cores) and 2x2 tiles over them
(tinycc_conv_s16_2x2_out, else tinycc_conv_s8_2x2_out), with the same requantization form
(the per-channel rounding constants where they are exact); the last pixel of an odd row
runs the same tile with its window twice. The ADD is tinycc_add_s8, as unfused.
Temporaries live in one scratch buffer in the arena (`scratch_layout`): the ring, the two
windows, the shortcut convolution's current row and B's two requantized pixels before the
ADD. The arithmetic is the unfused kernels' bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm.script import tirx as T

from .elementwise import add_mode
from .fixedpoint import Requant
from .gemm import _double_flag


@dataclass(frozen=True)
class ConvGeom:
    """One convolution of the chain: NHWC shapes, OHWI weights, no dilation."""

    in_shape: tuple
    w_shape: tuple
    out_shape: tuple
    stride: tuple
    pad: tuple  # (top, left)
    in_zp: int
    rq: Requant
    wide: bool = False  # int16 im2col windows (C a multiple of 4)


@dataclass(frozen=True)
class AddParams:
    """TFLite's ADD of two int8 tensors: (x - z) << 20 rescaled per input, summed, rescaled."""

    z1: int
    z2: int
    m1: int
    s1: int
    m2: int
    s2: int
    mo: int
    so: int
    zo: int
    lo: int
    hi: int
    rounding: str
    conv_first: bool  # B's output is the ADD's first operand


def _round4(n: int) -> int:
    return (n + 3) // 4 * 4


def _col_bytes(g: ConvGeom) -> int:
    """The im2col bytes of g for two neighbouring output pixels: int16, the union of their
    windows (KH rows of KW + SW pixels: the second pixel's window starts SW pixels in); int8,
    two windows."""
    kh, kw, c = g.w_shape[1], g.w_shape[2], g.w_shape[3]
    return kh * (kw + g.stride[1]) * c * 2 if g.wide else 2 * kh * kw * c


def scratch_layout(a: ConvGeom, b: ConvGeom, projection: ConvGeom | None,
                   add: bool = False) -> tuple[int, int, int]:
    """(offset of the im2col windows, offset of two output pixels' bytes before the ADD, total
    bytes); the ring of KH_B rows of A's output is at 0."""
    _, _, OW1, OC1 = a.out_shape
    OC2 = b.out_shape[3]
    ring = _round4(b.w_shape[1] * OW1 * OC1)
    col = _round4(max(_col_bytes(a), _col_bytes(b)))
    pair = _round4(2 * OC2) if add else 0
    return ring, ring + col, ring + col + pair


def conv_conv_rows(a: ConvGeom, b: ConvGeom, projection: ConvGeom | None = None,
                   add: AddParams | None = None):
    """The fused PrimFunc and its scratch bytes. Parameters: x, A's weights, bias,
    multipliers, shifts, the same for B, for the projection shortcut if any, the scratch, the
    output. With `add` and no projection the shortcut is x itself (same shape as B's output)."""
    _, H, W, C = a.in_shape
    _, OH1, OW1, OC1 = a.out_shape
    _, OH2, OW2, OC2 = b.out_shape
    KHA, KWA = a.w_shape[1], a.w_shape[2]
    KHB, KWB = b.w_shape[1], b.w_shape[2]
    (SHA, SWA), (PTA, PLA) = a.stride, a.pad
    (SHB, SWB), (PTB, PLB) = b.stride, b.pad
    KKA, ROWA = KHA * KWA * C, KWA * C
    KKB, ROWB = KHB * KWB * OC1, KWB * OC1
    UWA, UWB = KWA + SWA, KWB + SWB  # pixels per row of a pair's union window
    R, RROW = KHB, OW1 * OC1  # ring rows, bytes per row
    HAS_ADD, HAS_PROJ = add is not None, projection is not None
    COL, PAIR, SCRATCH = scratch_layout(a, b, projection, HAS_ADD)
    ZA, ZB = a.in_zp, b.in_zp
    WA, WB = a.wide, b.wide
    MODEA, MODEB = _double_flag(a.rq), _double_flag(b.rq)
    SWA_, SWB_ = (2 if g.rq.rounding_constants else 1 for g in (a, b))
    OZA, LOA, HIA = a.rq.out_zp, a.rq.act_min, a.rq.act_max
    OZB, LOB, HIB = b.rq.out_zp, b.rq.act_min, b.rq.act_max
    if HAS_PROJ:
        SHP, SWP = projection.stride
        MODEP = _double_flag(projection.rq)
        SWP_ = 2 if projection.rq.rounding_constants else 1
        OZP, LOP, HIP = projection.rq.out_zp, projection.rq.act_min, projection.rq.act_max
    else:
        SHP = SWP = SWP_ = 1
        OZP, LOP, HIP, MODEP = 0, -128, 127, 0
    if HAS_ADD:
        ad = add
        Z1, Z2, M1, S1, M2, S2, MO, SO, ZO, LO, HI = (ad.z1, ad.z2, ad.m1, ad.s1, ad.m2, ad.s2, ad.mo,
                                                      ad.so, ad.zo, ad.lo, ad.hi)
        MODED = add_mode(ad.rounding, ad.s1, ad.s2, ad.so)
        CONV_FIRST = ad.conv_first
    else:
        Z1, Z2, M1, S1, M2, S2, MO, SO, ZO, LO, HI, MODED, CONV_FIRST = 0, 0, 0, 0, 0, 0, 0, 0, 0, -128, 127, 0, True

    # the last row of A that B's output row y needs (rows past the bottom are padding)
    def last_a(y):
        return T.min(y * SHB - PTB + KHB - 1, OH1 - 1)

    @T.macro
    def gather_a(x, scratch, t, px, two):
        """A's output pixels (t, px) and, if two, (t, px + 1): int16, the union of their windows
        (KHA rows of UWA pixels, sign-extended); int8, two windows."""
        if WA:
            for ky in range(KHA):
                if (t * SHA - PTA + ky >= 0 and t * SHA - PTA + ky < H and px * SWA - PLA >= 0
                        and px * SWA - PLA + T.if_then_else(two, UWA, KWA) - 1 < W):
                    T.evaluate(T.call_extern(
                        "void", "tinycc_expand_s8", scratch.access_ptr("w", offset=COL + ky * UWA * C * 2,
                                                                       extent=UWA * C * 2),
                        T.address_of(x[((t * SHA - PTA + ky) * W + px * SWA - PLA) * C]),
                        T.if_then_else(two, UWA, KWA) * C))
                else:
                    for kx in range(UWA):
                        if kx < KWA or two:
                            if (t * SHA - PTA + ky >= 0 and t * SHA - PTA + ky < H
                                    and px * SWA - PLA + kx >= 0 and px * SWA - PLA + kx < W):
                                T.evaluate(T.call_extern(
                                    "void", "tinycc_expand_s8",
                                    scratch.access_ptr("w", offset=COL + (ky * UWA + kx) * C * 2, extent=C * 2),
                                    T.address_of(x[((t * SHA - PTA + ky) * W + px * SWA - PLA + kx) * C]), C))
                            else:
                                T.evaluate(T.call_extern(
                                    "void", "tinycc_fill_s16",
                                    scratch.access_ptr("w", offset=COL + (ky * UWA + kx) * C * 2, extent=C * 2),
                                    ZA, C))
        else:
            for q in range(2):
                if q == 0 or two:
                    for ky, kx in T.grid(KHA, KWA):
                        if (t * SHA - PTA + ky >= 0 and t * SHA - PTA + ky < H
                                and (px + q) * SWA - PLA + kx >= 0 and (px + q) * SWA - PLA + kx < W):
                            T.evaluate(T.call_extern(
                                "void", "tinycc_copy_s8",
                                scratch.access_ptr("w", offset=COL + q * KKA + ky * ROWA + kx * C, extent=C),
                                T.address_of(x[((t * SHA - PTA + ky) * W + (px + q) * SWA - PLA + kx) * C]), C))
                        else:
                            T.evaluate(T.call_extern(
                                "void", "tinycc_fill_s8",
                                scratch.access_ptr("w", offset=COL + q * KKA + ky * ROWA + kx * C, extent=C),
                                ZA, C))

    @T.macro
    def gather_b(scratch, y, px, two):
        """gather_a for B's output pixels (y, px), (y, px + 1), from the ring."""
        if WB:
            for ky in range(KHB):
                if (y * SHB - PTB + ky >= 0 and y * SHB - PTB + ky < OH1 and px * SWB - PLB >= 0
                        and px * SWB - PLB + T.if_then_else(two, UWB, KWB) - 1 < OW1):
                    T.evaluate(T.call_extern(
                        "void", "tinycc_expand_s8", scratch.access_ptr("w", offset=COL + ky * UWB * OC1 * 2,
                                                                       extent=UWB * OC1 * 2),
                        scratch.access_ptr("r", offset=(y * SHB - PTB + ky) % R * RROW + (px * SWB - PLB) * OC1,
                                           extent=UWB * OC1),
                        T.if_then_else(two, UWB, KWB) * OC1))
                else:
                    for kx in range(UWB):
                        if kx < KWB or two:
                            if (y * SHB - PTB + ky >= 0 and y * SHB - PTB + ky < OH1
                                    and px * SWB - PLB + kx >= 0 and px * SWB - PLB + kx < OW1):
                                T.evaluate(T.call_extern(
                                    "void", "tinycc_expand_s8",
                                    scratch.access_ptr("w", offset=COL + (ky * UWB + kx) * OC1 * 2, extent=OC1 * 2),
                                    scratch.access_ptr("r", offset=(y * SHB - PTB + ky) % R * RROW
                                                       + (px * SWB - PLB + kx) * OC1, extent=OC1), OC1))
                            else:
                                T.evaluate(T.call_extern(
                                    "void", "tinycc_fill_s16",
                                    scratch.access_ptr("w", offset=COL + (ky * UWB + kx) * OC1 * 2, extent=OC1 * 2),
                                    ZB, OC1))
        else:
            for q in range(2):
                if q == 0 or two:
                    for ky, kx in T.grid(KHB, KWB):
                        if (y * SHB - PTB + ky >= 0 and y * SHB - PTB + ky < OH1
                                and (px + q) * SWB - PLB + kx >= 0 and (px + q) * SWB - PLB + kx < OW1):
                            T.evaluate(T.call_extern(
                                "void", "tinycc_copy_s8",
                                scratch.access_ptr("w", offset=COL + q * KKB + ky * ROWB + kx * OC1, extent=OC1),
                                scratch.access_ptr("r", offset=(y * SHB - PTB + ky) % R * RROW
                                                   + ((px + q) * SWB - PLB + kx) * OC1, extent=OC1), OC1))
                        else:
                            T.evaluate(T.call_extern(
                                "void", "tinycc_fill_s8",
                                scratch.access_ptr("w", offset=COL + q * KKB + ky * ROWB + kx * OC1, extent=OC1),
                                ZB, OC1))

    @T.macro
    def tile(scratch, acc, wide, kh, uw, cin, sw, kk, row, oc, w, bias, mult, shift, mode, zp, lo, hi, oo, two,
             dst0, dst1):
        """Output channels 2oo, 2oo + 1 of the gathered pixels, requantized and stored at dst0,
        dst1 (the same pixel twice when not two): int16, one 2x2 dot product per window row over
        the union; int8, the unfused 2x2 tile."""
        if wide:
            acc[0] = bias[oo * 2]
            acc[1] = bias[T.min(oo * 2 + 1, oc - 1)]
            acc[2] = bias[oo * 2]
            acc[3] = bias[T.min(oo * 2 + 1, oc - 1)]
            for ky in range(kh):
                T.evaluate(T.call_extern(
                    "void", "tinycc_dot_s16_2x2", scratch.access_ptr("r", offset=COL + ky * uw * cin * 2,
                                                                     extent=row * 2),
                    scratch.access_ptr("r", offset=COL + ky * uw * cin * 2 + T.if_then_else(two, sw * cin * 2, 0),
                                       extent=row * 2),
                    T.address_of(w[oo * 2 * kk + ky * row]), T.address_of(w[T.min(oo * 2 + 1, oc - 1) * kk + ky * row]),
                    row, acc.access_ptr("rw", offset=0, extent=4)))
            T.evaluate(T.call_extern(
                "void", "tinycc_store_2x2", acc.access_ptr("r", offset=0, extent=4), T.address_of(mult[0]),
                T.address_of(shift[0]), oo * 2, T.min(oo * 2 + 1, oc - 1), mode, zp, lo, hi, dst0, dst1))
        else:
            T.evaluate(T.call_extern(
                "void", "tinycc_conv_s8_2x2_out", scratch.access_ptr("r", offset=COL, extent=kk),
                scratch.access_ptr("r", offset=COL + T.if_then_else(two, kk, 0), extent=kk),
                T.address_of(w[oo * 2 * kk]), T.address_of(w[T.min(oo * 2 + 1, oc - 1) * kk]), kk,
                T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]), oo * 2,
                T.min(oo * 2 + 1, oc - 1), mode, zp, lo, hi, dst0, dst1))

    @T.macro
    def conv_a_row(x, wa, ba, ma, sa, scratch, acc, t):
        """Row t of A's output into ring slot t % R, two pixels at a time."""
        for xx in range((OW1 + 1) // 2):
            gather_a(x, scratch, t, xx * 2, xx * 2 + 1 < OW1)
            for oo in range((OC1 + 1) // 2):
                tile(scratch, acc, WA, KHA, UWA, C, SWA, KKA, ROWA, OC1, wa, ba, ma, sa, MODEA, OZA, LOA, HIA, oo,
                     xx * 2 + 1 < OW1, T.address_of(scratch[t % R * RROW + xx * 2 * OC1]),
                     T.address_of(scratch[t % R * RROW + T.min(xx * 2 + 1, OW1 - 1) * OC1]))

    @T.macro
    def shortcut_add(first, second, n, out, y, xx):
        """out's pixels (y, 2xx), (y, 2xx + 1) (n bytes) = ADD(first, second)."""
        T.evaluate(T.call_extern("void", "tinycc_add_s8", first, second, n, Z1, Z2, M1, S1, M2, S2, MO, SO,
                                 MODED, ZO, LO, HI, T.address_of(out[(y * OW2 + xx * 2) * OC2])))

    @T.macro
    def conv_b_row(x, wb, bb, mb, sb, wp, bp, mp, sp, scratch, acc, out, y):
        """Row y of B, two pixels at a time. With a projection shortcut, its two pixels go to the
        scratch first, B's straight to the output, and tinycc_add_s8 adds them in place; with the
        block input as shortcut B's two pixels go to the scratch and the ADD stores them."""
        for xx in range((OW2 + 1) // 2):
            if HAS_PROJ:
                for oo in range((OC2 + 1) // 2):
                    T.evaluate(T.call_extern(
                        "void", "tinycc_conv_s8_2x2_out", T.address_of(x[(y * SHP * W + xx * 2 * SWP) * C]),
                        T.address_of(x[(y * SHP * W + T.min(xx * 2 + 1, OW2 - 1) * SWP) * C]),
                        T.address_of(wp[oo * 2 * C]), T.address_of(wp[T.min(oo * 2 + 1, OC2 - 1) * C]), C,
                        T.address_of(bp[0]), T.address_of(mp[0]), T.address_of(sp[0]), oo * 2,
                        T.min(oo * 2 + 1, OC2 - 1), MODEP, OZP, LOP, HIP, T.address_of(scratch[PAIR]),
                        T.address_of(scratch[PAIR + T.if_then_else(xx * 2 + 1 < OW2, OC2, 0)])))
            gather_b(scratch, y, xx * 2, xx * 2 + 1 < OW2)
            for oo in range((OC2 + 1) // 2):
                if HAS_ADD and not HAS_PROJ:
                    tile(scratch, acc, WB, KHB, UWB, OC1, SWB, KKB, ROWB, OC2, wb, bb, mb, sb, MODEB, OZB, LOB, HIB,
                         oo, xx * 2 + 1 < OW2, T.address_of(scratch[PAIR]),
                         T.address_of(scratch[PAIR + T.if_then_else(xx * 2 + 1 < OW2, OC2, 0)]))
                else:
                    tile(scratch, acc, WB, KHB, UWB, OC1, SWB, KKB, ROWB, OC2, wb, bb, mb, sb, MODEB, OZB, LOB, HIB,
                         oo, xx * 2 + 1 < OW2, T.address_of(out[(y * OW2 + xx * 2) * OC2]),
                         T.address_of(out[(y * OW2 + T.min(xx * 2 + 1, OW2 - 1)) * OC2]))
            if HAS_PROJ:
                if CONV_FIRST:
                    shortcut_add(T.address_of(out[(y * OW2 + xx * 2) * OC2]), T.address_of(scratch[PAIR]),
                                 T.min(2, OW2 - xx * 2) * OC2, out, y, xx)
                else:
                    shortcut_add(T.address_of(scratch[PAIR]), T.address_of(out[(y * OW2 + xx * 2) * OC2]),
                                 T.min(2, OW2 - xx * 2) * OC2, out, y, xx)
            elif HAS_ADD:
                if CONV_FIRST:
                    shortcut_add(T.address_of(scratch[PAIR]), T.address_of(x[(y * W + xx * 2) * C]),
                                 T.min(2, OW2 - xx * 2) * OC2, out, y, xx)
                else:
                    shortcut_add(T.address_of(x[(y * W + xx * 2) * C]), T.address_of(scratch[PAIR]),
                                 T.min(2, OW2 - xx * 2) * OC2, out, y, xx)

    @T.prim_func(private=True)
    def plain(x: T.Buffer((H * W * C,), "int8"), wa: T.Buffer((OC1 * KKA,), "int8"),
              ba: T.Buffer((OC1,), "int32"), ma: T.Buffer((OC1,), "int32"), sa: T.Buffer((OC1 * SWA_,), "int32"),
              wb: T.Buffer((OC2 * KKB,), "int8"), bb: T.Buffer((OC2,), "int32"),
              mb: T.Buffer((OC2,), "int32"), sb: T.Buffer((OC2 * SWB_,), "int32"),
              scratch: T.Buffer((SCRATCH,), "int8"), out: T.Buffer((OH2 * OW2 * OC2,), "int8")):
        acc = T.alloc_buffer((4,), "int32")
        for y in range(OH2):
            for t in T.serial(T.if_then_else(y == 0, 0, last_a(y - 1) + 1), last_a(y) + 1):
                conv_a_row(x, wa, ba, ma, sa, scratch, acc, t)
            conv_b_row(x, wb, bb, mb, sb, wb, bb, mb, sb, scratch, acc, out, y)

    @T.prim_func(private=True)
    def projected(x: T.Buffer((H * W * C,), "int8"), wa: T.Buffer((OC1 * KKA,), "int8"),
                  ba: T.Buffer((OC1,), "int32"), ma: T.Buffer((OC1,), "int32"),
                  sa: T.Buffer((OC1 * SWA_,), "int32"),
                  wb: T.Buffer((OC2 * KKB,), "int8"), bb: T.Buffer((OC2,), "int32"),
                  mb: T.Buffer((OC2,), "int32"), sb: T.Buffer((OC2 * SWB_,), "int32"),
                  wp: T.Buffer((OC2 * C,), "int8"), bp: T.Buffer((OC2,), "int32"),
                  mp: T.Buffer((OC2,), "int32"), sp: T.Buffer((OC2 * SWP_,), "int32"),
                  scratch: T.Buffer((SCRATCH,), "int8"), out: T.Buffer((OH2 * OW2 * OC2,), "int8")):
        acc = T.alloc_buffer((4,), "int32")
        for y in range(OH2):
            for t in T.serial(T.if_then_else(y == 0, 0, last_a(y - 1) + 1), last_a(y) + 1):
                conv_a_row(x, wa, ba, ma, sa, scratch, acc, t)
            conv_b_row(x, wb, bb, mb, sb, wp, bp, mp, sp, scratch, acc, out, y)

    return (projected if HAS_PROJ else plain), SCRATCH
