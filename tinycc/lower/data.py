"""Data operators on any element type (int8 with equal quantization in and out, int16, int32,
int64, float32, bool): REVERSE_V2, BROADCAST_TO, FILL, ZEROS_LIKE, GATHER_ND (constant
indices), EMBEDDING_LOOKUP (ids at run time, a constant table), DYNAMIC_UPDATE_SLICE
(constant start indices). Every output element is an input element (or a constant), so there
is no rounding. FILL, ZEROS_LIKE, BROADCAST_TO and BROADCAST_ARGS whose result is known at
compile time were already folded by the importer (tinycc.frontend.fold); what reaches this
module computes at run time.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tvm import tirx

from ..errors import UnsupportedOpError
from ..ir import Operator
from .common import Const, Kernel, LoweringContext
from .layout import _kernel, _same_quant
from .logic import _map, _tensor

INDEX_DTYPES = ("int32", "int64")


def _const_ints(ctx, op, k: int, what: str) -> np.ndarray:
    t = ctx.graph.tensor(op.inputs[k])
    if not t.is_const or t.dtype not in INDEX_DTYPES:
        raise UnsupportedOpError(op.kind, op.index, f"its {what} '{t.name}' must be a constant int32 tensor")
    return t.data.astype(np.int64)


def lower_reverse(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    _same_quant(op, x, out)
    axes = sorted({int(a) % len(x.shape) for a in _const_ints(ctx, op, 1, "axes").reshape(-1)})

    def index(ins, idx):
        return ins[0][tuple(x.shape[d] - 1 - i if d in axes else i for d, i in enumerate(idx))]
    return _kernel(ctx, op, [x], out, index, f"reversed along axes {axes}")


def lower_broadcast_to(ctx: LoweringContext, op: Operator) -> Kernel:
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    _same_quant(op, x, out)
    return _map(ctx, op, [x], out, lambda v: v, f"{list(x.shape)} broadcast to {list(out.shape)}")


def lower_fill(ctx: LoweringContext, op: Operator) -> Kernel:
    value, out = _tensor(ctx, op, op.inputs[1]), _tensor(ctx, op, op.outputs[0])
    if value.size != 1:
        raise UnsupportedOpError(op.kind, op.index, f"the value has {value.size} elements, not one")
    _same_quant(op, value, out)
    return _map(ctx, op, [value], out, lambda v: v, "every element the one value", shapes=[(1,)])


def lower_zeros_like(ctx: LoweringContext, op: Operator) -> Kernel:
    """Only a ZEROS_LIKE that is the model's output gets here (the importer folds the rest):
    a kernel that writes zeros (the raw value 0, as TFLite's memset)."""
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    return _map(ctx, op, [x], out, lambda v: tirx.const(0, out.dtype), "zeros")


def lower_gather_nd(ctx: LoweringContext, op: Operator) -> Kernel:
    """Constant indices are checked at compile time; indices computed at run time are clamped
    into the params shape in the kernel (TFLite's interpreter fails the invoke on one outside)."""
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    _same_quant(op, x, out)
    idx_t = _tensor(ctx, op, op.inputs[1], INDEX_DTYPES)
    k = idx_t.shape[-1] if idx_t.shape else 0
    if not 0 < k <= len(x.shape):
        raise UnsupportedOpError(op.kind, op.index, f"indices of shape {list(idx_t.shape)} for params {list(x.shape)}")
    lead = idx_t.shape[:-1]
    if idx_t.is_const:
        indices = idx_t.data.astype(np.int64)
        if np.any(indices < 0) or np.any(indices >= np.array(x.shape[:k])):
            raise UnsupportedOpError(op.kind, op.index, f"an index outside the params shape {list(x.shape)}")
        idx_t = dataclasses.replace(idx_t, data=indices.astype(np.int32), dtype="int32")

    def index(ins, idx):
        picked = []
        for j in range(k):
            v = ins[1][tuple(idx[:len(lead)]) + (j,)].astype("int32")
            if not idx_t.is_const:
                v = tirx.max(tirx.min(v, tirx.const(x.shape[j] - 1, "int32")), tirx.const(0, "int32"))
            picked.append(v)
        return ins[0][tuple(picked) + tuple(idx[len(lead):])]
    what = "constant" if idx_t.is_const else "run-time (clamped)"
    count = int(np.prod(lead, dtype=np.int64))
    kernel = _kernel(ctx, op, [x, idx_t], out, index, f"{count} {what} index tuples of {k}")
    if idx_t.is_const:
        kernel.inputs[1] = Const(f"{kernel.name}_indices", idx_t.data)
    return kernel


def lower_embedding_lookup(ctx: LoweringContext, op: Operator) -> Kernel:
    """Rows of a constant table picked by int32 ids. TFLite's interpreter fails the invoke on
    an id outside the table; a library function cannot, so an id is clamped into range."""
    ids = _tensor(ctx, op, op.inputs[0], ("int32",))
    table, out = _tensor(ctx, op, op.inputs[1], ("int8", "float32")), _tensor(ctx, op, op.outputs[0])
    if not table.is_const:
        raise UnsupportedOpError(op.kind, op.index, "the table must be a constant")
    if out.dtype != table.dtype:
        raise UnsupportedOpError(op.kind, op.index, f"an {table.dtype} table with {out.dtype} output "
                                 "(a hybrid lookup, dequantized)")
    _same_quant(op, table, out)
    if len(ids.shape) != 1:
        raise UnsupportedOpError(op.kind, op.index, f"ids of shape {list(ids.shape)}, not one axis")
    rows = table.shape[0]

    def index(ins, idx):
        row = tirx.max(tirx.min(ins[0][idx[0]], tirx.const(rows - 1, "int32")), tirx.const(0, "int32"))
        return ins[1][(row,) + tuple(idx[1:])]
    k = _kernel(ctx, op, [ids, table], out, index, f"rows of a {list(table.shape)} table; ids clamped to "
                f"0..{rows - 1}")
    k.inputs[1] = Const(f"{k.name}_table", k.inputs[1].array)
    return k


def lower_dynamic_update_slice(ctx: LoweringContext, op: Operator) -> Kernel:
    """The update written over the operand at start indices that TFLite clamps so that the update
    fits (each start into 0..dim - update_dim): at compile time for constant indices, in the
    kernel for indices computed at run time."""
    g = ctx.graph
    x, upd = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.inputs[1])
    out = _tensor(ctx, op, op.outputs[0])
    _same_quant(op, x, out)
    _same_quant(op, upd, out)
    idx_t = _tensor(ctx, op, op.inputs[2], INDEX_DTYPES)
    if idx_t.size != len(x.shape) or len(upd.shape) != len(x.shape):
        raise UnsupportedOpError(op.kind, op.index, f"{idx_t.size} start indices for shapes {x.shape}, {upd.shape}")
    if idx_t.is_const:
        start = [int(max(0, min(s, d - u))) for s, d, u in zip(idx_t.data.reshape(-1), x.shape, upd.shape)]
        ins, note = [x, upd], f"update {list(upd.shape)} written at {start}"
    else:
        ins, note = [x, upd, idx_t], f"update {list(upd.shape)} written at the run-time start indices, clamped"

    def index(phs, idx):
        starts = start if idx_t.is_const else \
            [tirx.max(tirx.min(phs[2][(d,)].astype("int32"), tirx.const(dim - u, "int32")), tirx.const(0, "int32"))
             for d, (dim, u) in enumerate(zip(x.shape, upd.shape))]
        inside = tirx.all(*[tirx.all(i >= s, i < s + u) for i, s, u in zip(idx, starts, upd.shape)])
        src = tuple(tirx.max(tirx.min(i - s, u - 1), 0) for i, s, u in zip(idx, starts, upd.shape))
        return tirx.if_then_else(inside, phs[1][src], phs[0][tuple(idx)])
    if not idx_t.is_const and len(g.tensor(op.inputs[2]).shape) != 1:
        raise UnsupportedOpError(op.kind, op.index, "start indices that are not one axis")
    return _kernel(ctx, op, ins, out, index, note)


def lower_broadcast_args(ctx: LoweringContext, op: Operator):
    raise UnsupportedOpError(op.kind, op.index, "its shapes are not constants (tinycc folds BROADCAST_ARGS "
                             "at import)")


LOWERINGS = {"REVERSE_V2": lower_reverse, "BROADCAST_TO": lower_broadcast_to, "FILL": lower_fill,
             "ZEROS_LIKE": lower_zeros_like, "GATHER_ND": lower_gather_nd,
             "EMBEDDING_LOOKUP": lower_embedding_lookup, "DYNAMIC_UPDATE_SLICE": lower_dynamic_update_slice,
             "BROADCAST_ARGS": lower_broadcast_args}
