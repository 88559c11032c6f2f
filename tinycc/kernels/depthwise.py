"""Depthwise convolution kernels (depth multiplier 1, channels a multiple of 4) for
microcontrollers: TIR loops emitted by TVM's C code generator around the depthwise
micro-kernels of runtime/kernels/tinycc_nn.h (tinycc_depthwise*). The schedule's choice is
`DEPTHWISE_CONV_2D.variant` (tinycc.kernels.schedule).
"""

from __future__ import annotations

from tvm.script import tirx as T

from .fixedpoint import Requant
from .gemm import MAX_STACK_BYTES, _double_flag


def depthwise_gemm(in_shape, w_shape, out_shape, stride, dilation, pad, in_zp: int, rq: Requant,
                   variant: str = "rows", nonneg_multipliers: bool = False):
    """Depthwise convolution (depth multiplier 1, channels a multiple of 4): one micro-kernel
    call per output pixel and group of 4 channels, requantizing as it stores. A pixel whose
    window leaves the input first copies its window into a small patch, the zero point in
    place of the missing taps. nonneg_multipliers: no channel's multiplier is negative (the
    'pairs' kernels may then drop a sign correction: pairs_mode)."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (DH, DW), (PT, PL) = stride, dilation, pad
    DOUBLE = _double_flag(rq)
    SW_ = 2 if rq.rounding_constants else 1
    ZP, LO, HI = rq.out_zp, rq.act_min, rq.act_max
    G, TAPS = C // 4, KH * KW

    # output columns whose whole window lies inside the input, for the row-span fast path
    X0 = max(0, -(-PL // SW))
    X1 = max(X0, min(OW, (W - 1 - (KW - 1) * DW + PL) // SW + 1))

    @T.prim_func(private=True)
    def rows3x3(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((KH * KW * C,), "int8"),
                bias: T.Buffer((C,), "int32"), mult: T.Buffer((C,), "int32"),
                shift: T.Buffer((C * SW_,), "int32"), out: T.Buffer((OH * OW * C,), "int8")):
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
               shift: T.Buffer((C * SW_,), "int32"), out: T.Buffer((OH * OW * C,), "int8")):
        patch = T.alloc_buffer((TAPS * 4,), "int8")
        for oy, ox, g in T.grid(OH, OW, G):
            if (oy * SH - PT >= 0 and oy * SH - PT + (KH - 1) * DH < H
                    and ox * SW - PL >= 0 and ox * SW - PL + (KW - 1) * DW < W):
                T.evaluate(T.call_extern(
                    "void", "tinycc_depthwise_s8x4_out",
                    T.address_of(x[((oy * SH - PT) * W + ox * SW - PL) * C + g * 4]), KH, KW, DH * W * C,
                    DW * C, T.address_of(w[g * 4]), C, T.address_of(bias[g * 4]), T.address_of(mult[g * 4]),
                    T.address_of(shift[g * 4 * SW_]), DOUBLE, ZP, LO, HI,
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
                    T.address_of(mult[g * 4]), T.address_of(shift[g * 4 * SW_]), DOUBLE, ZP, LO, HI,
                    T.address_of(out[(oy * OW + ox) * C + g * 4])))
    LW = (OW - 1) * SW + 3  # pixels per line buffer

    @T.prim_func(private=True)
    def lines(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((KH * KW * C,), "int8"),
              bias: T.Buffer((C,), "int32"), mult: T.Buffer((C,), "int32"),
              shift: T.Buffer((C * SW_,), "int32"), scratch: T.Buffer((LW * 32,), "int8"),
              out: T.Buffer((OH * OW * C,), "int8")):
        for g in range(G):
            T.evaluate(T.call_extern(
                "void", "tinycc_depthwise3x3_lines_s8x4", T.address_of(x[g * 4]), H, W, C, SH, SW, PT, PL, OH,
                OW, in_zp, T.address_of(w[g * 4]), T.address_of(bias[g * 4]), T.address_of(mult[g * 4]),
                T.address_of(shift[g * 4 * SW_]), DOUBLE, ZP, LO, HI, T.address_of(out[g * 4]), LW,
                scratch.access_ptr("w", offset=0, extent=LW * 32)))

    if variant == "pairs" and kx1_axis(w_shape, stride, dilation, pad) is not None:
        return _kx1(in_shape, w_shape, out_shape, stride, pad, in_zp, rq, kx1_axis(w_shape, stride, dilation, pad),
                    nonneg_multipliers)
    if variant == "pairs":
        sweep = pairs_sweep(in_shape, out_shape, stride)
        if sweep is None or not lines_eligible(w_shape, dilation):
            raise ValueError(f"depthwise variant 'pairs' needs a 3x3 window without dilation and a stride "
                             f"of 1 or 2 along its lines, not {w_shape} with stride {stride}")
        return _pairs(in_shape, out_shape, stride, pad, in_zp, rq, sweep, nonneg_multipliers)
    if variant == "lines":
        if not lines_eligible(w_shape, dilation):
            raise ValueError(f"depthwise variant 'lines' needs a 3x3 window without dilation, not {w_shape}")
        return lines
    # the pad row lives on the stack, which TVM allows up to 1 KiB
    return rows3x3 if (KH, KW) == (3, 3) and C <= MAX_STACK_BYTES else kernel


def lines_eligible(w_shape, dilation) -> bool:
    return tuple(w_shape[1:3]) == (3, 3) and tuple(dilation) == (1, 1)


def depthwise_scratch_bytes(out_shape, stride) -> int:
    """The arena scratch of the 'lines' depthwise kernel: 4 lines of 8 bytes per pixel."""
    return ((out_shape[2] - 1) * stride[1] + 3) * 8 * 4


# --- the 'pairs' variant: channel-planar line buffers, two outputs per step ----------------

def pairs_sweep(in_shape, out_shape, stride) -> str | None:
    """The axis the 'pairs' kernel sweeps along ("rows" or "columns"), or None when its stride
    along both is above 2. Each line of outputs costs a fixed setup per channel and its last
    pair computes a wasted output when the line is odd: the axis with the lower estimate wins
    (KWS's 25x5 planes sweep columns: 13 pairs per line instead of 3)."""
    _, OH, OW, _ = out_shape
    sh, sw = stride

    def cost(n_out, m_out):
        return m_out * (15 + 36 * ((n_out + 1) // 2))
    options = []
    if sw <= 2:
        options.append((cost(OW, OH), 0, "rows"))
    if sh <= 2:
        options.append((cost(OH, OW), 1, "columns"))
    return min(options)[2] if options else None


def pairs_line(out_shape, stride, sweep: str) -> int:
    """int16 values per line buffer of the 'pairs' kernel: the taps of ceil(n / 2) pairs."""
    n_out, s = (out_shape[2], stride[1]) if sweep == "rows" else (out_shape[1], stride[0])
    return 2 * s * ((n_out + 1) // 2) + 2


PLANE_SCRATCH_MAX = 6000


def pairs_plane_bytes(out_shape, stride, sweep: str) -> int:
    """The scratch of the whole-plane form (tinycc_depthwise3x3_plane_s8x4): per channel of a
    group of 4, the padded plane's (m_out - 1) * sr + 3 lines of int16."""
    m_out, sr = (out_shape[1], stride[0]) if sweep == "rows" else (out_shape[2], stride[1])
    return 8 * ((m_out - 1) * sr + 3) * pairs_line(out_shape, stride, sweep)


def pairs_plane(out_shape, stride, sweep: str) -> bool:
    """Whether the 'pairs' kernel extends the whole plane at once (small planes: VWW's 6x6 and
    3x3, where the ring's per-line setup per channel dominated)."""
    return pairs_plane_bytes(out_shape, stride, sweep) <= PLANE_SCRATCH_MAX


def pairs_scratch_bytes(out_shape, stride, sweep: str) -> int:
    """3 ring slots of 4 channel lines, int16; or the whole plane's lines (pairs_plane)."""
    if pairs_plane(out_shape, stride, sweep):
        return pairs_plane_bytes(out_shape, stride, sweep)
    return 24 * pairs_line(out_shape, stride, sweep)


def pair_weights(w, sweep: str, doubled: bool = False):
    """(1, 3, 3, C) int8 weights as tinycc_depthwise3x3_pairs_s8x4 reads them: per channel, per
    row of the sweep (input rows, or columns when it sweeps columns) (w0, w1, w1, w2) as int16;
    doubled for the requantization mode 4 (the kernel then accumulates 2 acc)."""
    import numpy as np

    k = w[0].astype(np.int16) * (2 if doubled else 1)  # ky, kx, c
    if sweep == "columns":
        k = k.transpose(1, 0, 2)
    rows = np.stack([k[:, 0], k[:, 1], k[:, 1], k[:, 2]], axis=1)  # row, 4, c
    return np.ascontiguousarray(rows.transpose(2, 0, 1)).reshape(-1)


def pairs_mode(rq: Requant, nonneg_multipliers: bool) -> int:
    """The 'pairs' kernels' requantization mode: tinycc_requant_ch's (_double_flag), or 7 for
    mode 4 where the sign correction cannot change an output (tinycc_requant_local: the clamp
    floor at or above the output zero point, as with ReLU and ReLU6, and no negative
    multiplier): one instruction fewer per output."""
    mode = _double_flag(rq)
    if mode == 4 and nonneg_multipliers and rq.act_min >= rq.out_zp:
        return 7
    return mode


def _pairs(in_shape, out_shape, stride, pad, in_zp: int, rq: Requant, sweep: str, nonneg: bool = False):
    _, H, W, C = in_shape
    _, OH, OW, _ = out_shape
    (SH, SW), (PT, PL) = stride, pad
    DOUBLE = pairs_mode(rq, nonneg)
    SW_ = 2 if rq.rounding_constants else 1
    ZP, LO, HI = rq.out_zp, rq.act_min, rq.act_max
    G, LWP = C // 4, pairs_line(out_shape, stride, sweep)
    SCRATCH = pairs_scratch_bytes(out_shape, stride, sweep)
    PLANE = int(pairs_plane(out_shape, stride, sweep))
    if sweep == "rows":  # along a line, then across lines
        N_IN, M_IN, IN_STEP, IN_LINE, N_OUT, M_OUT, OUT_STEP, OUT_LINE = W, H, C, W * C, OW, OH, C, OW * C
        S, SR, P, PR = SW, SH, PL, PT
    else:
        N_IN, M_IN, IN_STEP, IN_LINE, N_OUT, M_OUT, OUT_STEP, OUT_LINE = H, W, W * C, C, OH, OW, OW * C, C
        S, SR, P, PR = SH, SW, PT, PL

    @T.prim_func(private=True)
    def pairs(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((C * 12,), "int16"),
              bias: T.Buffer((C,), "int32"), mult: T.Buffer((C,), "int32"),
              shift: T.Buffer((C * SW_,), "int32"), scratch: T.Buffer((SCRATCH,), "int8"),
              out: T.Buffer((OH * OW * C,), "int8")):
        for g in range(G):
            T.evaluate(T.call_extern(
                "void", "tinycc_depthwise3x3_pairs_s8x4", T.address_of(x[g * 4]), N_IN, M_IN, IN_STEP, IN_LINE,
                N_OUT, M_OUT, OUT_STEP, OUT_LINE, S, SR, P, PR, in_zp, T.address_of(w[g * 48]),
                T.address_of(bias[g * 4]), T.address_of(mult[g * 4]), T.address_of(shift[g * 4 * SW_]), DOUBLE,
                ZP, LO, HI, T.address_of(out[g * 4]), LWP, scratch.access_ptr("w", offset=0, extent=SCRATCH), PLANE,
                T.Cast("int32", g == 0)))
    return pairs


def schedule_weights(variant: str, w, in_shape, out_shape, stride, dilation, rq: Requant, pad=(0, 0)):
    """(the variant a layer gets, its weights as stored, its arena scratch bytes) for the knob
    value `variant`: layers the 'lines' or 'pairs' kernels do not take keep 'rows'."""
    axis = kx1_axis(w.shape, stride, dilation, pad)
    if variant == "pairs" and axis is not None:
        return "pairs", kx1_weights(w, axis, _double_flag(rq) == 4), kx1_scratch_bytes(w.shape, out_shape, axis)
    if variant == "pairs":
        sweep = pairs_sweep(in_shape, out_shape, stride)
        if sweep is not None and lines_eligible(w.shape, dilation):
            return ("pairs", pair_weights(w, sweep, _double_flag(rq) == 4),
                    pairs_scratch_bytes(out_shape, stride, sweep))
        variant = "lines"
    if variant == "lines" and lines_eligible(w.shape, dilation):
        return "lines", w, depthwise_scratch_bytes(out_shape, stride)
    return "rows", w, 0


# --- 'pairs' for windows one pixel across (Kx1, 1xK): tinycc_depthwise_kx1_pairs_s8x4 ------

def kx1_axis(w_shape, stride, dilation, pad) -> str | None:
    """"columns" for a Kx1 window (taps along the height), "rows" for 1xK (2 <= K <= 15: the
    kernel's taps are written out), when the stride along the taps is 1, without dilation and without padding across; else None (3x3 and 1x1
    windows go elsewhere)."""
    kh, kw = w_shape[1], w_shape[2]
    if tuple(dilation) != (1, 1):
        return None
    if kw == 1 and 2 <= kh <= 15 and stride[0] == 1 and pad[1] == 0:
        return "columns"
    if kh == 1 and 2 <= kw <= 15 and stride[1] == 1 and pad[0] == 0:
        return "rows"
    return None


def _kx1_sizes(w_shape, out_shape, axis: str) -> tuple[int, int]:
    """(taps, int16 values per line buffer)."""
    kt, n_out = (w_shape[1], out_shape[1]) if axis == "columns" else (w_shape[2], out_shape[2])
    return kt, 2 * ((n_out + 1) // 2) + 2 * (kt // 2 + 1)


def kx1_scratch_bytes(w_shape, out_shape, axis: str) -> int:
    """One int16 line buffer per channel of a group of 4."""
    return 8 * _kx1_sizes(w_shape, out_shape, axis)[1]


def kx1_weights(w, axis: str, doubled: bool = False):
    """(1, KH, KW, C) int8 weights of a Kx1 or 1xK window as tinycc_depthwise_kx1_pairs_s8x4
    reads them: per channel the taps w0 .. w(kt-1) padded with a zero to ceil(kt / 2) pairs,
    then 0, w0, w1, .. padded to floor(kt / 2) + 1 pairs, int16 (doubled for mode 4)."""
    import numpy as np

    taps = (w[0, :, 0, :] if axis == "columns" else w[0, 0, :, :]).astype(np.int16) * (2 if doubled else 1)
    kt, c = taps.shape
    na, nb = (kt + 1) // 2, kt // 2 + 1
    a = np.zeros((2 * na, c), np.int16)
    a[:kt] = taps
    b = np.zeros((2 * nb, c), np.int16)
    b[1:kt + 1] = taps[:2 * nb - 1]
    return np.ascontiguousarray(np.concatenate([a, b]).T).reshape(-1)


def _kx1(in_shape, w_shape, out_shape, stride, pad, in_zp: int, rq: Requant, axis: str, nonneg: bool = False):
    _, H, W, C = in_shape
    _, OH, OW, _ = out_shape
    (SH, SW), (PT, PL) = stride, pad
    DOUBLE = pairs_mode(rq, nonneg)
    SW_ = 2 if rq.rounding_constants else 1
    ZP, LO, HI = rq.out_zp, rq.act_min, rq.act_max
    G = C // 4
    KT, LWK = _kx1_sizes(w_shape, out_shape, axis)
    WPC = 2 * ((KT + 1) // 2 + KT // 2 + 1)  # int16 weights per channel
    SCRATCH = kx1_scratch_bytes(w_shape, out_shape, axis)
    if axis == "columns":  # lines along the height, one per output column
        N_IN, M, IN_STEP, IN_LINE, N_OUT, OUT_STEP, OUT_LINE, P = H, OW, W * C, SW * C, OH, OW * C, C, PT
    else:
        N_IN, M, IN_STEP, IN_LINE, N_OUT, OUT_STEP, OUT_LINE, P = W, OH, C, SH * W * C, OW, C, OW * C, PL

    @T.prim_func(private=True)
    def kx1(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((C * WPC,), "int16"),
            bias: T.Buffer((C,), "int32"), mult: T.Buffer((C,), "int32"),
            shift: T.Buffer((C * SW_,), "int32"), scratch: T.Buffer((SCRATCH,), "int8"),
            out: T.Buffer((OH * OW * C,), "int8")):
        for g in range(G):
            T.evaluate(T.call_extern(
                "void", "tinycc_depthwise_kx1_pairs_s8x4", T.address_of(x[g * 4]), N_IN, M, IN_STEP, IN_LINE,
                N_OUT, OUT_STEP, OUT_LINE, KT, P, in_zp, T.address_of(w[g * 4 * WPC]), T.address_of(bias[g * 4]),
                T.address_of(mult[g * 4]), T.address_of(shift[g * 4 * SW_]), DOUBLE, ZP, LO, HI,
                T.address_of(out[g * 4]), LWK, scratch.access_ptr("w", offset=0, extent=SCRATCH),
                T.Cast("int32", g == 0)))
    return kx1
