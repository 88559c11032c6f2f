"""AVERAGE_POOL_2D and MAX_POOL_2D."""

from __future__ import annotations

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from .common import (
    Kernel,
    LoweringContext,
    act,
    activation_code,
    describe,
    kernel_name,
    window_padding,
)


def lower_pool(ctx: LoweringContext, op: Operator) -> Kernel:
    """AVERAGE_POOL_2D and MAX_POOL_2D: same window geometry, same quantization in and out."""
    g = ctx.graph
    x = act(ctx, op, g.tensor(op.inputs[0]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    if x.quant.scalar() != out.quant.scalar():
        raise UnsupportedOpError(op.kind, op.index, "input and output quantization differ")
    if len(x.shape) != 4:
        raise UnsupportedOpError(op.kind, op.index, f"{len(x.shape)}-D input")
    n, h, w, c = x.shape
    _, oh, ow, _ = out.shape
    fh, fw = op.options["filter_height"], op.options["filter_width"]
    sh, sw = op.options["stride_h"], op.options["stride_w"]
    pt, pl = window_padding(op, (h, w), (fh, fw), (sh, sw), (1, 1), (oh, ow))
    scale, zp = out.quant.scalar()
    lo, hi = quant.activation_range(activation_code(op), scale, zp)
    average = op.kind == "AVERAGE_POOL_2D"
    builder = K.average_pool if average else K.max_pool
    func = builder(x.shape, out.shape, (fh, fw), (sh, sw), (pt, pl), lo, hi)
    notes = [describe(g, op), f"window {fh}x{fw}, stride {sh}x{sw}, padding top {pt} left {pl}"]
    macs = oh * ow * c * fh * fw if average else 0
    return Kernel(kernel_name(ctx, op), op, func, [x.index], out.index, macs, notes)


LOWERINGS = {"AVERAGE_POOL_2D": lower_pool, "MAX_POOL_2D": lower_pool}
