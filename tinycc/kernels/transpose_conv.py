"""Transposed convolution (TRANSPOSE_CONV), output-stationary.

TFLite's reference kernel scatters every input pixel into an int32 copy of the whole output
(a col2im scratch of 4 bytes per output value), then requantizes it. Here each output pixel
gathers its taps instead, so the kernel needs no scratch at all: output row oy receives filter
row ky from input row iy = (oy + pad_top - ky) / stride when that division is exact and iy is
inside the input, i.e. only the rows ky = (oy + pad_top) mod stride + k * stride. Each valid
tap is one call of the 1x4 dot micro-kernel over the C input channels of that input pixel
(OHWI weights keep them contiguous), followed by the input zero point's share of the tap,
`zp * sum(weights of the tap)`, which the lowering precomputes per channel and tap (the set of
taps changes with the position, so it cannot be folded into one bias). Requantization,
zero point and clamp as in every convolution.
"""

from __future__ import annotations

from tvm.script import tirx as T

from .fixedpoint import Requant
from .gemm import _double_flag


def transpose_conv(in_shape, w_shape, out_shape, stride, pad, rq: Requant):
    """NHWC input, OHWI weights; bias (int32, unfolded), per-channel multiplier and shift,
    tap offsets (int32, OC x KH*KW: input zero point times each tap's weight sum)."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (PT, PL) = stride, pad
    KK, TAPS = KH * KW * C, KH * KW
    NY, NX = (KH + SH - 1) // SH, (KW + SW - 1) // SW  # taps per output pixel, at most
    MODE = _double_flag(rq)
    ZP, LO, HI = rq.out_zp, rq.act_min, rq.act_max

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((OC * KK,), "int8"),
               bias: T.Buffer((OC,), "int32"), mult: T.Buffer((OC,), "int32"),
               shift: T.Buffer((OC,), "int32"), tap_zp: T.Buffer((OC * TAPS,), "int32"),
               out: T.Buffer((OH * OW * OC,), "int8")):
        acc = T.alloc_buffer((4,), "int32")
        for oy, ox, oo in T.grid(OH, OW, (OC + 3) // 4):
            for t in range(4):
                acc[t] = bias[T.min(oo * 4 + t, OC - 1)]
            # (no local variables, as in gemm.py: ky = (oy + PT) % SH + i * SH, and so on)
            for i, j in T.grid(NY, NX):
                if ((oy + PT) % SH + i * SH < KH and (oy + PT) % SH + i * SH <= oy + PT
                        and (oy + PT - (oy + PT) % SH - i * SH) // SH < H
                        and (ox + PL) % SW + j * SW < KW and (ox + PL) % SW + j * SW <= ox + PL
                        and (ox + PL - (ox + PL) % SW - j * SW) // SW < W):
                    T.evaluate(T.call_extern(
                        "void", "tinycc_dot_s8_1x4",
                        T.address_of(x[((oy + PT - (oy + PT) % SH - i * SH) // SH * W
                                        + (ox + PL - (ox + PL) % SW - j * SW) // SW) * C]),
                        T.address_of(w[oo * 4 * KK + (((oy + PT) % SH + i * SH) * KW
                                                      + (ox + PL) % SW + j * SW) * C]),
                        T.address_of(w[T.min(oo * 4 + 1, OC - 1) * KK + (((oy + PT) % SH + i * SH) * KW
                                                                         + (ox + PL) % SW + j * SW) * C]),
                        T.address_of(w[T.min(oo * 4 + 2, OC - 1) * KK + (((oy + PT) % SH + i * SH) * KW
                                                                         + (ox + PL) % SW + j * SW) * C]),
                        T.address_of(w[T.min(oo * 4 + 3, OC - 1) * KK + (((oy + PT) % SH + i * SH) * KW
                                                                         + (ox + PL) % SW + j * SW) * C]),
                        C, acc.access_ptr("rw", offset=0, extent=4)))
                    for t in range(4):
                        acc[t] = acc[t] - tap_zp[T.min(oo * 4 + t, OC - 1) * TAPS
                                                 + ((oy + PT) % SH + i * SH) * KW + (ox + PL) % SW + j * SW]
            for t in range(4):
                if oo * 4 + t < OC:
                    out[(oy * OW + ox) * OC + oo * 4 + t] = T.call_extern(
                        "int8", "tinycc_requant_out", acc[t], mult[oo * 4 + t], shift[oo * 4 + t],
                        MODE, ZP, LO, HI)
    return kernel
