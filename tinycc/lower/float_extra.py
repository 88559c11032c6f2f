"""Float32 TRANSPOSE_CONV, SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM (kernels in
tinycc.kernels.float_extra). TRANSPOSE_CONV is bit-exact with LiteRT's reference kernel; SVDF
too with a clamping activation (NONE, RELU, RELU_N1_TO_1, RELU6); the LSTM calls expf and
tanhf and is within the float bound of tinycc.verify. The two stateful ones keep their state
in variable tensors at the start of the arena, as the int8 ones do (lower/recurrent.py).
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels import float_extra as KX
from .common import Kernel, LoweringContext, describe, kernel_name
from .float32 import _activation, _clamp_note, _tensor, _weights
from .common import Const


def lower_transpose_conv(ctx: LoweringContext, op: Operator) -> Kernel:
    from .transpose_conv import geometry
    x, out = _tensor(ctx, op, op.inputs[2]), _tensor(ctx, op, op.outputs[0])
    w = _weights(ctx, op, op.inputs[1])
    (sh, sw), (pt, pl) = geometry(ctx, op, x, w, out)
    _, h, wd, c = x.shape
    oc = out.shape[3]
    kh, kw = w.shape[1], w.shape[2]
    has_bias = len(op.inputs) > 3 and op.inputs[3] >= 0
    bias = np.zeros(oc, np.float32)
    if has_bias:
        b = _tensor(ctx, op, op.inputs[3])
        if not b.is_const or b.size != oc:
            raise UnsupportedOpError(op.kind, op.index, f"bias '{b.name}' is not a constant of {oc} values")
        bias = b.data.reshape(-1).astype(np.float32)
    lo, hi = _activation(op)
    name = kernel_name(ctx, op)
    func = KX.transpose_conv(x.shape, w.shape, out.shape, (sh, sw), (pt, pl), has_bias, lo, hi)
    args = [x.index, Const(f"{name}_weights", w.data.astype(np.float32)), Const(f"{name}_bias", bias)]
    notes = [describe(ctx.graph, op), f"float32; kernel {kh}x{kw}, stride {sh}x{sw}, padding top {pt} left {pl}; "
             f"each output gathers its taps in the reference's order; {_clamp_note(lo, hi)}"]
    return Kernel(name, op, func, args, out.index, h * wd * kh * kw * c * oc, notes)


LOWERINGS = {"TRANSPOSE_CONV": lower_transpose_conv}
