"""Operators that only rename bytes: RESHAPE, SQUEEZE, EXPAND_DIMS."""

from __future__ import annotations

from ..errors import UnsupportedOpError
from ..ir import Operator
from .common import Alias, LoweringContext


def lower_rename(ctx: LoweringContext, op: Operator) -> Alias:
    g = ctx.graph
    src, dst = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if src.size != dst.size or src.dtype != dst.dtype:
        raise UnsupportedOpError(op.kind, op.index, f"{src.shape} -> {dst.shape}")
    return Alias(op, src.index, dst.index)


LOWERINGS = {"RESHAPE": lower_rename, "SQUEEZE": lower_rename, "EXPAND_DIMS": lower_rename}
