"""SOFTMAX."""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from .common import Const, Kernel, LoweringContext, act, describe, kernel_name


def lower_softmax(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = act(ctx, op, g.tensor(op.inputs[0]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    beta = float(op.options.get("beta", 1.0))
    depth = x.shape[-1]
    outer = x.size // depth
    in_scale, _ = x.quant.scalar()
    out_scale, out_zp = out.quant.scalar()
    name = kernel_name(ctx, op)
    if ctx.rounding(op) == "float":
        if float(out_scale) != 1.0 / 256:
            raise UnsupportedOpError(op.kind, op.index, "output scale other than 1/256")
        table = quant.softmax_float_table(beta, in_scale).view(np.uint32)
        func = K.softmax_litert(outer, depth, out_zp)
        note = ("LiteRT's int8 softmax: expf table and float32 normalisation, emulated exactly in "
                "integer arithmetic (float32 bit patterns, round to nearest even); "
                "as optimized_ops::Softmax computes it")
    else:
        if float(out_scale) != 1.0 / 256 or out_zp != -128:
            raise UnsupportedOpError(op.kind, op.index, "output quantization other than 1/256, -128")
        table = quant.softmax_exp_table(beta, in_scale, ctx.rounding(op))
        func = K.softmax_fixed_point(outer, depth)
        note = "TFLite's reference integer softmax (gemmlowp fixed point), as TFLM runs it"
    notes = [describe(g, op), f"beta {beta}; {note}"]
    return Kernel(name, op, func, [x.index, Const(f"{name}_exp_table", table)], out.index, 0, notes)


LOWERINGS = {"SOFTMAX": lower_softmax}
