"""TRANSPOSE_CONV (int8, per-tensor or per-channel weights, optional bias, SAME or VALID).

Inputs as TFLite orders them: output shape, OHWI weights, input, bias. The padding is
TFLite's: ComputePaddingHeightWidth run on the *output* size, as if the transposed
convolution were the convolution it undoes. Per-channel multipliers as for CONV_2D
(PopulateConvolutionQuantizationParams); both LiteRT's reference kernel and TFLM requantize
with MultiplyByQuantizedMultiplier's double rounding (measured, see LITERT_ROUNDING). The
kernel (tinycc.kernels.transpose_conv) gathers each output's taps, so unlike TFLite it needs
no int32 scratch of the output's size.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels.transpose_conv import transpose_conv
from .common import SAME, VALID, Const, Kernel, LoweringContext, act, const, describe, kernel_name, padding, requant
from .conv import small_accumulator


def geometry(ctx: LoweringContext, op: Operator, x, w, out):
    """((stride_h, stride_w), (pad_top, pad_left)), the shapes checked."""
    if len(x.shape) != 4 or len(w.shape) != 4 or (w.quant is None and w.dtype != "float32") or x.shape[0] != 1:
        raise UnsupportedOpError(op.kind, op.index, "expects a batch-1 NHWC input and a quantized or float 4-D filter")
    _, oh, ow, oc = out.shape
    if w.shape[0] != oc or w.shape[3] != x.shape[3]:
        raise UnsupportedOpError(op.kind, op.index, f"filter {w.shape} does not match {x.shape} -> {out.shape}")
    kh, kw = w.shape[1], w.shape[2]
    sh, sw = op.options.get("stride_h", 1), op.options.get("stride_w", 1)
    kind = op.options.get("padding", SAME)
    if kind not in (SAME, VALID):
        raise UnsupportedOpError(op.kind, op.index, f"padding {kind}")

    def conv_out(size, k, s):  # ComputeOutSize of the convolution this one transposes
        return (size + s - 1) // s if kind == SAME else (size + s - k) // s
    pt = padding(kind, oh, kh, sh, 1, conv_out(oh, kh, sh))
    pl = padding(kind, ow, kw, sw, 1, conv_out(ow, kw, sw))
    return (sh, sw), (pt, pl)


def lower_transpose_conv(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    w = const(ctx, op, op.inputs[1], "filter", "int8")
    x = act(ctx, op, g.tensor(op.inputs[2]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    (sh, sw), (pt, pl) = geometry(ctx, op, x, w, out)
    _, h, wd, c = x.shape
    oc = out.shape[3]
    kh, kw = w.shape[1], w.shape[2]
    in_zp = x.quant.scalar()[1]
    rq, rq_consts, rq_note = requant(ctx, op, x, w, out, oc, arrays=True)
    bias = np.zeros(oc, np.int32)
    if len(op.inputs) > 3 and op.inputs[3] >= 0:
        bias = const(ctx, op, op.inputs[3], "bias", "int32").data.reshape(-1).astype(np.int32)
    wdata = w.data.astype(np.int64)
    tap_zp = (in_zp * wdata.sum(axis=3)).reshape(oc, kh * kw).astype(np.int32)
    # the accumulator is bias + sum (x - zp) * w with |x - zp| <= 255: twice the conv bound
    rq = small_accumulator(rq, 2 * np.abs(wdata).sum(axis=(1, 2, 3)), bias)
    name = kernel_name(ctx, op)
    func = transpose_conv(x.shape, w.shape, out.shape, (sh, sw), (pt, pl), rq)
    consts = [Const(f"{name}_weights", w.data), Const(f"{name}_bias", bias), *rq_consts,
              Const(f"{name}_tap_zero_point", tap_zp)]
    notes = [describe(g, op), f"kernel {kh}x{kw}, stride {sh}x{sw}, padding top {pt} left {pl}; "
             f"each output gathers its taps (no scratch); input zero point {in_zp} per tap; {rq_note}"]
    return Kernel(name, op, func, [x.index, *consts], out.index, h * wd * kh * kw * c * oc, notes)


LOWERINGS = {"TRANSPOSE_CONV": lower_transpose_conv}
