"""Row-streamed fused kernels (`--fuse-rows`): a chain convolution A -> convolution B
(-> ADD with a shortcut) as one function, as MCUNetV2's patch-based inference does, so that
A's output never exists as a whole tensor.

For each output row y of B, the kernel first computes the rows of A that B's window needs
and that are not computed yet, into a ring of KH_B rows (row t in slot t % KH_B); then B's
row y from the ring, requantized and, with an ADD, added at once to the shortcut's value
(the block input itself, or a 1x1 convolution of it computed row by row), and stored. Every
output row is final when it is stored, so the output may take the block input's place in the
arena (the planner checks that on the access trace of this very code).

Temporaries live in one scratch buffer in the arena (`scratch_layout`): the ring, the im2col
windows of two output pixels (both convolutions use the 2x2 micro-kernel tiles of
tinycc.kernels.gemm, and 1x4 tiles for the last pixel of an odd row), and the shortcut
convolution's current row. The arithmetic is the
unfused kernels' bit for bit: the same micro-kernels, requantization and ADD formula.
"""

from __future__ import annotations

from dataclasses import dataclass

from tvm.script import tirx as T

from .fixedpoint import Requant
from .gemm import _double_flag

_REQUANTIZE = {"single": "tinycc_requantize_single", "double": "tinycc_requantize_double"}


def _requantize_fn(rq: Requant) -> str:
    if rq.rounding == "double" and rq.right_shifts_only:
        return "tinycc_requantize_double_right"
    return _REQUANTIZE[rq.rounding]


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


def scratch_layout(a: ConvGeom, b: ConvGeom, projection: ConvGeom | None) -> tuple[int, int, int]:
    """(offset of the im2col windows, offset of the shortcut row, total bytes); the ring of
    KH_B rows of A's output is at 0."""
    _, _, OW1, OC1 = a.out_shape
    _, _, OW2, OC2 = b.out_shape
    ring = _round4(b.w_shape[1] * OW1 * OC1)
    kk = max(a.w_shape[1] * a.w_shape[2] * a.w_shape[3], b.w_shape[1] * b.w_shape[2] * b.w_shape[3])
    col = _round4(2 * kk)
    row = OW2 * OC2 if projection is not None else 0
    return ring, ring + col, ring + col + row


def conv_conv_rows(a: ConvGeom, b: ConvGeom, projection: ConvGeom | None = None,
                   add: AddParams | None = None):
    """The fused PrimFunc. Parameters: x, A's weights, bias, multipliers, shifts, the same for
    B, for the projection shortcut if any, the scratch, the output. With `add` and no
    projection the shortcut is x itself (same shape as B's output)."""
    _, H, W, C = a.in_shape
    _, OH1, OW1, OC1 = a.out_shape
    _, OH2, OW2, OC2 = b.out_shape
    KHA, KWA = a.w_shape[1], a.w_shape[2]
    KHB, KWB = b.w_shape[1], b.w_shape[2]
    (SHA, SWA), (PTA, PLA) = a.stride, a.pad
    (SHB, SWB), (PTB, PLB) = b.stride, b.pad
    KKA, ROWA = KHA * KWA * C, KWA * C
    KKB, ROWB = KHB * KWB * OC1, KWB * OC1
    R, RROW = KHB, OW1 * OC1  # ring rows, bytes per row
    COL, ROWP, SCRATCH = scratch_layout(a, b, projection)
    ZA, ZB = a.in_zp, b.in_zp
    FA, FB = _requantize_fn(a.rq), _requantize_fn(b.rq)
    MODEA = _double_flag(a.rq)  # tinycc_conv_s8_2x2_out's requantization mode for A's tiles
    OZA, LOA, HIA = a.rq.out_zp, a.rq.act_min, a.rq.act_max
    OZB, LOB, HIB = b.rq.out_zp, b.rq.act_min, b.rq.act_max
    HAS_ADD, HAS_PROJ = add is not None, projection is not None
    if HAS_PROJ:
        SHP, SWP = projection.stride
        MODEP = _double_flag(projection.rq)
        OZP, LOP, HIP = projection.rq.out_zp, projection.rq.act_min, projection.rq.act_max
    else:
        SHP = SWP = 1
        OZP, LOP, HIP, MODEP = 0, -128, 127, 0
    if HAS_ADD:
        ad = add
        FADD = _REQUANTIZE[ad.rounding]
        Z1, Z2, M1, S1, M2, S2, MO, SO, ZO, LO, HI = (ad.z1, ad.z2, ad.m1, ad.s1, ad.m2, ad.s2, ad.mo,
                                                      ad.so, ad.zo, ad.lo, ad.hi)
        CONV_FIRST = ad.conv_first
    else:
        FADD, Z1, Z2, M1, S1, M2, S2, MO, SO, ZO, LO, HI, CONV_FIRST = _REQUANTIZE["single"], 0, 0, 0, 0, 0, 0, 0, 0, 0, -128, 127, True

    # the last row of A that B's output row y needs (rows past the bottom are padding)
    def last_a(y):
        return T.min(y * SHB - PTB + KHB - 1, OH1 - 1)

    def req(fn, accv, m, sh, ch, zp, lo, hi):
        return T.max(T.min(T.call_extern("int32", fn, accv, m[ch], sh[ch]) + zp, hi), lo)

    def add_expr(conv_val, other_val):
        """conv_val: B's requantized value (int32), other_val: the shortcut's int8 value."""
        v1 = conv_val if CONV_FIRST else T.Cast("int32", other_val)
        v2 = T.Cast("int32", other_val) if CONV_FIRST else conv_val
        return T.Cast("int8", T.max(T.min(T.call_extern(
            "int32", FADD,
            T.call_extern("int32", FADD, (v1 - Z1) * 1048576, M1, S1)
            + T.call_extern("int32", FADD, (v2 - Z2) * 1048576, M2, S2), MO, SO) + ZO, HI), LO))

    @T.macro
    def window_a(x, scratch, t, px, q):
        """im2col of A's output pixel (t, px) into window slot q."""
        for ky in range(KHA):
            if (t * SHA - PTA + ky >= 0 and t * SHA - PTA + ky < H
                    and px * SWA - PLA >= 0 and px * SWA - PLA + KWA - 1 < W):
                T.evaluate(T.call_extern(
                    "void", "tinycc_copy_s8",
                    scratch.access_ptr("w", offset=COL + q * KKA + ky * ROWA, extent=ROWA),
                    T.address_of(x[((t * SHA - PTA + ky) * W + px * SWA - PLA) * C]), ROWA))
            else:
                for kx in range(KWA):
                    if (t * SHA - PTA + ky >= 0 and t * SHA - PTA + ky < H
                            and px * SWA - PLA + kx >= 0 and px * SWA - PLA + kx < W):
                        T.evaluate(T.call_extern(
                            "void", "tinycc_copy_s8",
                            scratch.access_ptr("w", offset=COL + q * KKA + ky * ROWA + kx * C, extent=C),
                            T.address_of(x[((t * SHA - PTA + ky) * W + px * SWA - PLA + kx) * C]), C))
                    else:
                        T.evaluate(T.call_extern(
                            "void", "tinycc_fill_s8",
                            scratch.access_ptr("w", offset=COL + q * KKA + ky * ROWA + kx * C, extent=C),
                            ZA, C))

    @T.macro
    def window_b(scratch, y, px, q):
        """im2col of B's output pixel (y, px) into window slot q, from the ring."""
        for ky in range(KHB):
            if (y * SHB - PTB + ky >= 0 and y * SHB - PTB + ky < OH1
                    and px * SWB - PLB >= 0 and px * SWB - PLB + KWB - 1 < OW1):
                T.evaluate(T.call_extern(
                    "void", "tinycc_copy_s8",
                    scratch.access_ptr("w", offset=COL + q * KKB + ky * ROWB, extent=ROWB),
                    scratch.access_ptr("r", offset=(y * SHB - PTB + ky) % R * RROW + (px * SWB - PLB) * OC1,
                                       extent=ROWB), ROWB))
            else:
                for kx in range(KWB):
                    if (y * SHB - PTB + ky >= 0 and y * SHB - PTB + ky < OH1
                            and px * SWB - PLB + kx >= 0 and px * SWB - PLB + kx < OW1):
                        T.evaluate(T.call_extern(
                            "void", "tinycc_copy_s8",
                            scratch.access_ptr("w", offset=COL + q * KKB + ky * ROWB + kx * OC1, extent=OC1),
                            scratch.access_ptr("r", offset=(y * SHB - PTB + ky) % R * RROW
                                               + (px * SWB - PLB + kx) * OC1, extent=OC1), OC1))
                    else:
                        T.evaluate(T.call_extern(
                            "void", "tinycc_fill_s8",
                            scratch.access_ptr("w", offset=COL + q * KKB + ky * ROWB + kx * OC1, extent=OC1),
                            ZB, OC1))

    @T.macro
    def tile_2x2(scratch, w, bias, acc, kk, oc, oo):
        """acc = bias + the 2 windows x output channels 2oo, 2oo+1."""
        acc[0] = bias[oo * 2]
        acc[1] = bias[T.min(oo * 2 + 1, oc - 1)]
        acc[2] = bias[oo * 2]
        acc[3] = bias[T.min(oo * 2 + 1, oc - 1)]
        T.evaluate(T.call_extern(
            "void", "tinycc_dot_s8_2x2", scratch.access_ptr("r", offset=COL, extent=kk),
            scratch.access_ptr("r", offset=COL + kk, extent=kk), T.address_of(w[oo * 2 * kk]),
            T.address_of(w[T.min(oo * 2 + 1, oc - 1) * kk]), kk, acc.access_ptr("rw", offset=0, extent=4)))

    @T.macro
    def tile_1x4(scratch, w, bias, acc, kk, oc, oo):
        """acc = bias + window 0 x output channels 4oo .. 4oo+3 (an odd row's last pixel)."""
        for u in range(4):
            acc[u] = bias[T.min(oo * 4 + u, oc - 1)]
        T.evaluate(T.call_extern(
            "void", "tinycc_dot_s8_1x4", scratch.access_ptr("r", offset=COL, extent=kk),
            T.address_of(w[oo * 4 * kk]), T.address_of(w[T.min(oo * 4 + 1, oc - 1) * kk]),
            T.address_of(w[T.min(oo * 4 + 2, oc - 1) * kk]), T.address_of(w[T.min(oo * 4 + 3, oc - 1) * kk]),
            kk, acc.access_ptr("rw", offset=0, extent=4)))

    @T.macro
    def conv_a_row(x, wa, ba, ma, sa, scratch, acc, t):
        """Row t of A's output into ring slot t % R: im2col of 2 pixels, 2x2 tiles; an odd
        row's last pixel alone with 1x4 tiles."""
        for xx in range(OW1 // 2):
            for q in range(2):
                window_a(x, scratch, t, xx * 2 + q, q)
            for oo in range((OC1 + 1) // 2):
                # the finished tile straight into the ring (an odd last channel is stored twice)
                T.evaluate(T.call_extern(
                    "void", "tinycc_conv_s8_2x2_out", scratch.access_ptr("r", offset=COL, extent=KKA),
                    scratch.access_ptr("r", offset=COL + KKA, extent=KKA), T.address_of(wa[oo * 2 * KKA]),
                    T.address_of(wa[T.min(oo * 2 + 1, OC1 - 1) * KKA]), KKA, T.address_of(ba[0]),
                    T.address_of(ma[0]), T.address_of(sa[0]), oo * 2, T.min(oo * 2 + 1, OC1 - 1), MODEA, OZA,
                    LOA, HIA, T.address_of(scratch[t % R * RROW + xx * 2 * OC1]),
                    T.address_of(scratch[t % R * RROW + (xx * 2 + 1) * OC1])))
        if OW1 % 2 == 1:
            window_a(x, scratch, t, OW1 - 1, 0)
            for oo in range((OC1 + 3) // 4):
                tile_1x4(scratch, wa, ba, acc, KKA, OC1, oo)
                for u in range(4):
                    if oo * 4 + u < OC1:
                        scratch[t % R * RROW + (OW1 - 1) * OC1 + oo * 4 + u] = T.Cast(
                            "int8", req(FA, acc[u], ma, sa, oo * 4 + u, OZA, LOA, HIA))

    @T.macro
    def store_b(x, scratch, out, y, px, ch, value):
        """B's requantized value at (y, px, ch), added to the shortcut if there is an ADD."""
        if HAS_PROJ:
            out[(y * OW2 + px) * OC2 + ch] = add_expr(value, scratch[ROWP + px * OC2 + ch])
        elif HAS_ADD:
            out[(y * OW2 + px) * OC2 + ch] = add_expr(value, x[(y * W + px) * C + ch])
        else:
            out[(y * OW2 + px) * OC2 + ch] = T.Cast("int8", value)

    @T.macro
    def conv_b_row(x, wb, bb, mb, sb, scratch, out, acc, y):
        for xx in range(OW2 // 2):
            for q in range(2):
                window_b(scratch, y, xx * 2 + q, q)
            for oo in range((OC2 + 1) // 2):
                tile_2x2(scratch, wb, bb, acc, KKB, OC2, oo)
                for u in range(4):
                    if oo * 2 + u % 2 < OC2:
                        store_b(x, scratch, out, y, xx * 2 + u // 2, oo * 2 + u % 2,
                                req(FB, acc[u], mb, sb, oo * 2 + u % 2, OZB, LOB, HIB))
        if OW2 % 2 == 1:
            window_b(scratch, y, OW2 - 1, 0)
            for oo in range((OC2 + 3) // 4):
                tile_1x4(scratch, wb, bb, acc, KKB, OC2, oo)
                for u in range(4):
                    if oo * 4 + u < OC2:
                        store_b(x, scratch, out, y, OW2 - 1, oo * 4 + u,
                                req(FB, acc[u], mb, sb, oo * 4 + u, OZB, LOB, HIB))

    @T.prim_func(private=True)
    def plain(x: T.Buffer((H * W * C,), "int8"), wa: T.Buffer((OC1 * KKA,), "int8"),
              ba: T.Buffer((OC1,), "int32"), ma: T.Buffer((OC1,), "int32"), sa: T.Buffer((OC1,), "int32"),
              wb: T.Buffer((OC2 * KKB,), "int8"), bb: T.Buffer((OC2,), "int32"),
              mb: T.Buffer((OC2,), "int32"), sb: T.Buffer((OC2,), "int32"),
              scratch: T.Buffer((SCRATCH,), "int8"), out: T.Buffer((OH2 * OW2 * OC2,), "int8")):
        acc = T.alloc_buffer((4,), "int32")
        for y in range(OH2):
            for t in T.serial(T.if_then_else(y == 0, 0, last_a(y - 1) + 1), last_a(y) + 1):
                conv_a_row(x, wa, ba, ma, sa, scratch, acc, t)
            conv_b_row(x, wb, bb, mb, sb, scratch, out, acc, y)

    @T.prim_func(private=True)
    def projected(x: T.Buffer((H * W * C,), "int8"), wa: T.Buffer((OC1 * KKA,), "int8"),
                  ba: T.Buffer((OC1,), "int32"), ma: T.Buffer((OC1,), "int32"), sa: T.Buffer((OC1,), "int32"),
                  wb: T.Buffer((OC2 * KKB,), "int8"), bb: T.Buffer((OC2,), "int32"),
                  mb: T.Buffer((OC2,), "int32"), sb: T.Buffer((OC2,), "int32"),
                  wp: T.Buffer((OC2 * C,), "int8"), bp: T.Buffer((OC2,), "int32"),
                  mp: T.Buffer((OC2,), "int32"), sp: T.Buffer((OC2,), "int32"),
                  scratch: T.Buffer((SCRATCH,), "int8"), out: T.Buffer((OH2 * OW2 * OC2,), "int8")):
        acc = T.alloc_buffer((4,), "int32")
        for y in range(OH2):
            for t in T.serial(T.if_then_else(y == 0, 0, last_a(y - 1) + 1), last_a(y) + 1):
                conv_a_row(x, wa, ba, ma, sa, scratch, acc, t)
            # the shortcut's row y: a 1x1 convolution of x, read in place
            for xx, oo in T.grid((OW2 + 1) // 2, (OC2 + 1) // 2):
                T.evaluate(T.call_extern(
                    "void", "tinycc_conv_s8_2x2_out", T.address_of(x[(y * SHP * W + xx * 2 * SWP) * C]),
                    T.address_of(x[(y * SHP * W + T.min(xx * 2 + 1, OW2 - 1) * SWP) * C]),
                    T.address_of(wp[oo * 2 * C]), T.address_of(wp[T.min(oo * 2 + 1, OC2 - 1) * C]), C,
                    T.address_of(bp[0]), T.address_of(mp[0]), T.address_of(sp[0]), oo * 2,
                    T.min(oo * 2 + 1, OC2 - 1), MODEP, OZP, LOP, HIP,
                    T.address_of(scratch[ROWP + xx * 2 * OC2]),
                    T.address_of(scratch[ROWP + T.min(xx * 2 + 1, OW2 - 1) * OC2])))
            conv_b_row(x, wb, bb, mb, sb, scratch, out, acc, y)

    return (projected if HAS_PROJ else plain), SCRATCH
