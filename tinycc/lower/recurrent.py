"""Stateful operators: READ_VARIABLE, ASSIGN_VARIABLE (resource variables, made variable tensors
by tinycc.frontend.variables) and int8 SVDF.

A variable tensor lives at the start of the arena for the whole run and keeps its value from
one run to the next (tinycc.plan, tinycc.package). A kernel that updates it takes it as its
last input and writes it as its output.
"""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels import recurrent as R
from .common import Const, Kernel, LoweringContext, act, const, describe, kernel_name


def _label(t) -> str:
    return f"{t.name} {'x'.join(map(str, t.shape))}"


def lower_read_variable(ctx: LoweringContext, op: Operator) -> Kernel:
    var, out = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
    notes = [f"{op.kind} #{op.index}: variable {_label(var)} -> {_label(out)}",
             "a copy: the variable may be assigned before this value's last use"]
    return Kernel(kernel_name(ctx, op), op, R.copy(var.shape, var.dtype), [var.index], out.index, 0, notes)


def lower_assign_variable(ctx: LoweringContext, op: Operator) -> Kernel:
    var, value = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.inputs[1])
    if value.is_const:
        raise UnsupportedOpError(op.kind, op.index, "it assigns a constant in the main graph")
    notes = [f"{op.kind} #{op.index}: {_label(value)} -> variable {_label(var)}",
             "the variable keeps this value until the next run"]
    return Kernel(kernel_name(ctx, op), op, R.copy(var.shape, var.dtype), [value.index], var.index, 0, notes)


def lower_svdf(ctx: LoweringContext, op: Operator) -> list[Kernel]:
    """TFLite's full-integer SVDF (int8 input and feature weights, int16 time weights and
    state) as two kernels: the state update, then the output from the new state."""
    g = ctx.graph
    if len(op.inputs) != 5:
        raise UnsupportedOpError(op.kind, op.index, f"{len(op.inputs)} inputs, expected 5")
    x = act(ctx, op, g.tensor(op.inputs[0]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    wf = const(ctx, op, op.inputs[1], "feature weights", "int8")
    wt = const(ctx, op, op.inputs[2], "time weights", "int16")
    state = g.tensor(op.inputs[4])
    if not state.is_variable or state.dtype != "int16" or state.quant is None:
        raise UnsupportedOpError(op.kind, op.index, "its state is not an int16 quantized variable tensor")
    rank = int(op.options.get("rank", 0))
    (batch, depth), (filters, memory) = x.shape, wt.shape
    if rank <= 0 or filters % rank or wf.shape != (filters, depth) or \
            state.shape != (batch, filters * memory):
        raise UnsupportedOpError(op.kind, op.index, f"inconsistent shapes (rank {rank}, input {x.shape}, "
                                 f"weights {wf.shape} and {wt.shape}, state {state.shape})")
    for t in (wf, wt, state):
        if t.quant.per_channel or int(t.quant.zero_point[0]) != 0:
            raise UnsupportedOpError(op.kind, op.index, f"'{t.name}' is not quantized per tensor, symmetric")
    units = filters // rank
    bias = np.zeros(units, np.int32) if op.inputs[3] < 0 else \
        const(ctx, op, op.inputs[3], "bias", "int32").data.reshape(-1)
    (sx, zx), (so, zo) = x.quant.scalar(), out.quant.scalar()
    s_state, s_wf, s_wt = (float(t.quant.scale[0]) for t in (state, wf, wt))
    r = ctx.rounding(op)
    m1, e1 = quant.quantize_multiplier(float(sx) * s_wf / s_state, r)
    m2, e2 = quant.quantize_multiplier(s_state * s_wt / float(so), r)
    name = kernel_name(ctx, op)
    offset = (-zx * wf.data.astype(np.int64).sum(axis=1)).astype(np.int32)
    update = Kernel(f"{name}_state", op, R.svdf_state(batch, depth, filters, memory, m1, e1, r),
                    [x.index, Const(f"{name}_feature_weights", wf.data), Const(f"{name}_offset", offset),
                     state.index], state.index, batch * filters * depth,
                    [describe(g, op) + ": state update",
                     f"{filters} filters of memory {memory}: shift left by one, newest entry = feature "
                     f"matmul requantized to int16 (multiplier {m1}, shift {e1})"])
    output = Kernel(name, op, R.svdf_output(batch, filters, memory, rank, m2, e2, zo, r),
                    [state.index, Const(f"{name}_time_weights", wt.data), Const(f"{name}_bias", bias)],
                    out.index, batch * filters * memory,
                    [describe(g, op) + ": output",
                     f"time weights . state per filter, summed over rank {rank}, plus bias, "
                     f"requantized (multiplier {m2}, shift {e2}); TFLite's integer SVDF only clamps"])
    return [update, output]


LOWERINGS = {"READ_VARIABLE": lower_read_variable, "ASSIGN_VARIABLE": lower_assign_variable,
             "SVDF": lower_svdf}
