"""Float32 kernels for TRANSPOSE_CONV, SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM: TFLite's
reference float kernels (reference_ops::TransposeConv, EvalFloatSVDF, lstm_eval's float path
with the portable tensor_utils), each output summed in the reference's order, so that without
fused multiply-adds the results are LiteRT's wherever no libm function is called (the LSTM's
sigmoid and tanh are expf and tanhf).
"""

from __future__ import annotations

from tvm.script import tirx as T

from .float32 import F32, _bounds


def transpose_conv(in_shape, w_shape, out_shape, stride, pad, has_bias: bool, lo, hi):
    """NHWC input, OHWI weights. The reference scatters input pixels in row-major order into a
    zeroed output; each output here gathers the same products in the same order: input rows
    and columns increasing (filter taps decreasing), channels innermost; then the bias (when
    the model has one) and the clamp."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (PT, PL) = stride, pad
    NY, NX = (KH + SH - 1) // SH, (KW + SW - 1) // SW  # taps per output pixel, at most
    LO, HI = _bounds(lo, hi)
    B = 1.0 if has_bias else 0.0

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((H * W * C,), F32), w: T.Buffer((OC * KH * KW * C,), F32),
               bias: T.Buffer((OC,), F32), out: T.Buffer((OH * OW * OC,), F32)):
        acc = T.alloc_buffer((1,), F32)
        for oy, ox, o in T.grid(OH, OW, OC):
            acc[0] = T.float32(0)
            # filter row ky = (oy + PT) % SH + (NY - 1 - i) * SH reads input row (oy + PT - ky) / SH
            for i, j in T.grid(NY, NX):
                if ((oy + PT) % SH + (NY - 1 - i) * SH < KH and (oy + PT) % SH + (NY - 1 - i) * SH <= oy + PT
                        and (oy + PT - (oy + PT) % SH - (NY - 1 - i) * SH) // SH < H
                        and (ox + PL) % SW + (NX - 1 - j) * SW < KW and (ox + PL) % SW + (NX - 1 - j) * SW <= ox + PL
                        and (ox + PL - (ox + PL) % SW - (NX - 1 - j) * SW) // SW < W):
                    for c in range(C):
                        acc[0] = acc[0] + x[((oy + PT - (oy + PT) % SH - (NY - 1 - i) * SH) // SH * W
                                             + (ox + PL - (ox + PL) % SW - (NX - 1 - j) * SW) // SW) * C + c] \
                            * w[((o * KH + (oy + PT) % SH + (NY - 1 - i) * SH) * KW
                                 + (ox + PL) % SW + (NX - 1 - j) * SW) * C + c]
            if B > 0:
                acc[0] = acc[0] + bias[o]
            out[(oy * OW + ox) * OC + o] = T.min(T.max(acc[0], LO), HI)
    return kernel
