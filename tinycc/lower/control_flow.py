"""IF_SELECT: the output of an IF, picked from its two branches (see frontend/control_flow.py,
which runs both branches). The branch's bytes are copied as TFLite's IF copies them: raw, with
no requantization."""

from __future__ import annotations

from tvm import tirx

from ..errors import UnsupportedOpError
from ..ir import Operator
from .common import Kernel, LoweringContext
from .logic import _map


def lower_if_select(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    cond, x, y = (g.tensor(i) for i in op.inputs)
    out = g.tensor(op.outputs[0])
    i = op.options["if_index"]
    if cond.dtype != "bool" or cond.size != 1:
        raise UnsupportedOpError("IF", i, f"condition '{cond.name}' is {cond.dtype} {cond.shape}, not one bool")
    if not (x.dtype == y.dtype == out.dtype) or not (x.shape == y.shape == out.shape):
        raise UnsupportedOpError("IF", i, f"branch outputs {x.dtype} {x.shape} and {y.dtype} {y.shape} for "
                                 f"{out.dtype} {out.shape}: dynamic shapes are not supported")
    return _map(ctx, op, [cond, x, y], out, tirx.Select,
                f"IF #{i}: the then branch's {x.dtype} values if the condition holds, else the else branch's "
                "(both branches ran)", shapes=[(1,) * len(x.shape), x.shape, y.shape])


LOWERINGS = {"IF_SELECT": lower_if_select}
