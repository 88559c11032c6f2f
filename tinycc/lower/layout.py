"""Operators that move bytes without arithmetic: PAD, PADV2, CONCATENATION, SLICE,
STRIDED_SLICE, TRANSPOSE, SPLIT, SPLIT_V, TILE, RESIZE_NEAREST_NEIGHBOR, DEPTH_TO_SPACE,
SPACE_TO_DEPTH, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND (one gather kernel each, one per output
for the splits); SQUEEZE and EXPAND_DIMS (aliases, like RESHAPE); and the int32 shape
arithmetic that a dynamic-batch export leaves (SHAPE, PACK, and STRIDED_SLICE, CONCATENATION
on int32 constants), folded away at compile time because every shape is static here.

Every output element equals an input element, so both references agree and there is no
rounding; the elements may be int8, int16 (equal quantization in and out) or float32.
"""

from __future__ import annotations

import math

import numpy as np
from tvm import tirx

from .. import kernels as K
from ..errors import UnsupportedOpError
from ..ir import Operator
from .common import Const, Kernel, LoweringContext, act, const, describe, kernel_name

I32 = "int32"


def _data(ctx, op, t):
    """An int8 quantized activation, an int16 one (16x8 models), a float32, int32 or bool one:
    these operators move any."""
    if (t.dtype in ("float32", "bool", "int32") and t.quant is None) or (t.dtype == "int16" and t.quant is not None
                                                      and not t.quant.per_channel):
        return t
    return act(ctx, op, t)


def _same_type(a, b) -> bool:
    if a.dtype != b.dtype or (a.quant is None) != (b.quant is None):
        return False
    return a.quant is None or a.quant.scalar() == b.quant.scalar()


def _fill(t):
    """What a padded position holds: the zero point's value, 0 for float."""
    return tirx.const(0.0 if t.quant is None else t.quant.scalar()[1], t.dtype)


def _same_quant(op, a, b):
    if not _same_type(a, b):
        raise UnsupportedOpError(op.kind, op.index,
                                 f"'{a.name}' and '{b.name}' are quantized differently")


def _source(ctx, op, index: int):
    """A kernel argument for an input: the tensor index, or a Const for a constant tensor."""
    t = ctx.graph.tensor(index)
    if t.is_const:
        return Const(f"{kernel_name(ctx, op)}_const{len(op.inputs) and op.inputs.index(index)}",
                     t.data.astype(np.int8))
    return t.index


def _kernel(ctx, op, in_tensors, out, index_fn, note: str, suffix: str = "") -> Kernel:
    g = ctx.graph
    func = K.gather([t.shape or (1,) for t in in_tensors], out.shape or (1,), index_fn,
                    [t.dtype for t in in_tensors])
    name = kernel_name(ctx, op) + suffix
    notes = [describe(g, op), note]
    args = []
    for k, t in enumerate(in_tensors):
        args.append(Const(f"{name}_const{k}", t.data.astype(t.dtype)) if t.is_const else t.index)
    return Kernel(name, op, func, args, out.index, 0, notes)


SHAPE_OPS = ("SHAPE", "PACK", "STRIDED_SLICE", "CONCATENATION")


def _shape_only(g, t: int) -> bool:
    """The int32 tensor feeds only RESHAPE shapes, directly or through more shape arithmetic."""
    return all((c.kind == "RESHAPE" and c.inputs[0] != t) or
               (c.kind in SHAPE_OPS and all(g.tensor(o).dtype == "int32" and _shape_only(g, o) for o in c.outputs))
               for c in g.consumers(t))


def _shape_derived(g, t: int) -> bool:
    """The int32 tensor is computed from a SHAPE (whose output no kernel writes)."""
    producer = next((op for op in g.operators if t in op.outputs), None)
    if producer is None or producer.kind not in SHAPE_OPS:
        return False
    return producer.kind == "SHAPE" or any(_shape_derived(g, i) for i in producer.inputs
                                           if i >= 0 and not g.tensor(i).is_const)


def _folded(ctx, op) -> bool:
    """True when the operator computes on int32 shape data that is known at compile time: its
    outputs only shape RESHAPEs, or it computes on a SHAPE's output. Other int32 tensors
    (an ARG_MAX's indices, an int32 input) are data, moved like any other."""
    g = ctx.graph
    if not all(g.tensor(o).dtype == "int32" for o in op.outputs):
        return False
    return all(_shape_only(g, o) for o in op.outputs) or \
        any(_shape_derived(g, i) for i in op.inputs if i >= 0 and not g.tensor(i).is_const)


def _fold_unsupported(ctx, op):
    g = ctx.graph
    for o in op.outputs:
        for consumer in g.consumers(o):
            if not _shape_only(g, o):
                raise UnsupportedOpError(op.kind, op.index, "int32 shape arithmetic that feeds "
                                         f"{consumer.kind} #{consumer.index}, not a RESHAPE's shape")
    return []


# --- padding ---------------------------------------------------------------------------------

def lower_pad(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x = _data(ctx, op, g.tensor(op.inputs[0]))
    out = _data(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    pads = const(ctx, op, op.inputs[1], "paddings", g.tensor(op.inputs[1]).dtype).data.reshape(-1, 2)
    value = _fill(out)
    if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
        value = tirx.const(const(ctx, op, op.inputs[2], "constant value", x.dtype).data.reshape(-1)[0].item(),
                           x.dtype)
    before = [int(p) for p in pads[:, 0]]

    def index(ins, idx):
        src = [i - b for i, b in zip(idx, before)]
        inside = tirx.all(*[tirx.all(s >= 0, s < d) for s, d in zip(src, x.shape)])
        safe = [tirx.max(tirx.min(s, d - 1), 0) for s, d in zip(src, x.shape)]
        return tirx.if_then_else(inside, ins[0][tuple(safe)], value)
    return _kernel(ctx, op, [x], out, index, f"pad {pads.tolist()} with {value.value}")


# --- concatenation and splits ----------------------------------------------------------------

def lower_concatenation(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    out = g.tensor(op.outputs[0])
    if _folded(ctx, op):
        return _fold_unsupported(ctx, op)
    out = _data(ctx, op, out)
    ins = [g.tensor(i) for i in op.inputs]
    for t in ins:
        _data(ctx, op, t) if not t.is_const else None
        if not _same_type(t, out):
            raise UnsupportedOpError(op.kind, op.index, f"input '{t.name}' is quantized differently "
                                     "from the output (TFLite's int8 CONCATENATION needs them equal)")
    if op.options.get("fused_activation_function", 0) != 0:
        raise UnsupportedOpError(op.kind, op.index, "a fused activation")
    axis = op.options.get("axis", 0) % len(out.shape)
    starts = np.cumsum([0] + [t.shape[axis] for t in ins])

    def index(phs, idx):
        value = None
        for k in range(len(ins)):
            src = list(idx)
            src[axis] = tirx.max(tirx.min(idx[axis] - int(starts[k]), ins[k].shape[axis] - 1), 0)
            v = phs[k][tuple(src)]
            value = v if value is None else tirx.if_then_else(idx[axis] >= int(starts[k]), v, value)
        return value
    return _kernel(ctx, op, ins, out, index, f"{len(ins)} inputs along axis {axis}")


def _split_kernels(ctx, op, x, axis: int, sizes: list[int]):
    g = ctx.graph
    steps, start = [], 0
    for k, (o, size) in enumerate(zip(op.outputs, sizes)):
        out = _data(ctx, op, g.tensor(o))
        _same_quant(op, x, out)

        def index(ins, idx, start=start):
            src = list(idx)
            src[axis] = idx[axis] + start
            return ins[0][tuple(src)]
        steps.append(_kernel(ctx, op, [x], out, index, f"part {k} of {len(sizes)} along axis {axis}",
                             f"_{k}"))
        start += size
    return steps


def lower_split(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = _data(ctx, op, g.tensor(op.inputs[1]))
    axis = int(const(ctx, op, op.inputs[0], "axis", "int32").data.reshape(-1)[0]) % len(x.shape)
    n = len(op.outputs)
    return _split_kernels(ctx, op, x, axis, [x.shape[axis] // n] * n)


def lower_split_v(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = _data(ctx, op, g.tensor(op.inputs[0]))
    axis = int(const(ctx, op, op.inputs[2], "axis", "int32").data.reshape(-1)[0]) % len(x.shape)
    sizes = [g.tensor(o).shape[axis] for o in op.outputs]
    return _split_kernels(ctx, op, x, axis, sizes)


# --- slices ----------------------------------------------------------------------------------

def lower_slice(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = _data(ctx, op, g.tensor(op.inputs[0]))
    out = _data(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    begin = [int(v) for v in const(ctx, op, op.inputs[1], "begin", g.tensor(op.inputs[1]).dtype).data.reshape(-1)]

    def index(ins, idx):
        return ins[0][tuple(i + b for i, b in zip(idx, begin))]
    return _kernel(ctx, op, [x], out, index, f"begin {begin}, size {list(out.shape)}")


def _strided_starts(op, shape, begin, end, strides):
    """TFLite's StartForAxis per axis (begin_mask honoured), for the axes of `shape`."""
    bmask = op.options.get("begin_mask", 0)
    starts = []
    for a, dim in enumerate(shape):
        stride = strides[a]
        if bmask & (1 << a):
            start = 0 if stride > 0 else dim - 1
        else:
            start = begin[a] + (dim if begin[a] < 0 else 0)
            start = min(max(start, 0), dim) if stride > 0 else min(max(start, -1), dim - 1)
        starts.append(start)
    return starts


def lower_strided_slice(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    if _folded(ctx, op):
        return _fold_unsupported(ctx, op)
    x = _data(ctx, op, g.tensor(op.inputs[0]))
    out = _data(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    if op.options.get("ellipsis_mask", 0) or op.options.get("new_axis_mask", 0) or op.options.get("offset", False):
        raise UnsupportedOpError(op.kind, op.index, "ellipsis, new-axis masks or offset")
    vals = [[int(v) for v in const(ctx, op, op.inputs[k], what, g.tensor(op.inputs[k]).dtype).data.reshape(-1)]
            for k, what in ((1, "begin"), (2, "end"), (3, "strides"))]
    begin, end, strides = vals
    starts = _strided_starts(op, x.shape, begin, end, strides)
    shrink = op.options.get("shrink_axis_mask", 0)
    kept = [a for a in range(len(x.shape)) if not shrink & (1 << a)]
    if len(kept) != len(out.shape):
        raise UnsupportedOpError(op.kind, op.index, f"output {out.shape} from input {x.shape}")

    def index(ins, idx):
        it = iter(idx)
        src = [starts[a] + (next(it) * strides[a] if a in kept else 0) for a in range(len(x.shape))]
        return ins[0][tuple(src)]
    return _kernel(ctx, op, [x], out, index, f"start {starts}, strides {strides}")


# --- permutations ----------------------------------------------------------------------------

def lower_transpose(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = _data(ctx, op, g.tensor(op.inputs[0]))
    out = _data(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    perm = [int(p) for p in const(ctx, op, op.inputs[1], "permutation", "int32").data.reshape(-1)]

    def index(ins, idx):
        src = [None] * len(perm)
        for o, p in enumerate(perm):
            src[p] = idx[o]
        return ins[0][tuple(src)]
    return _kernel(ctx, op, [x], out, index, f"permutation {perm}")


def lower_tile(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = _data(ctx, op, g.tensor(op.inputs[0]))
    out = _data(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)

    def index(ins, idx):
        return ins[0][tuple(tirx.floormod(i, d) if d != o else i for i, d, o in zip(idx, x.shape, out.shape))]
    return _kernel(ctx, op, [x], out, index, f"tile {x.shape} -> {out.shape}")


def _nearest(in_size: int, out_size: int, align: bool, half: bool) -> list[int]:
    """reference_ops::ResizeNearestNeighbor's source index per output index (float32 math)."""
    f32 = np.float32
    scale = f32(in_size - 1) / f32(out_size - 1) if align and out_size > 1 else f32(in_size) / f32(out_size)
    offset = f32(0.5) if half else f32(0.0)
    src = []
    for i in range(out_size):
        v = f32(f32(i) + offset) * scale
        k = int(math.floor(abs(float(v)) + 0.5)) if align else int(math.floor(float(v)))
        k = min(k, in_size - 1)
        src.append(max(0, k) if half else k)
    return src


def lower_resize_nearest(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = _data(ctx, op, g.tensor(op.inputs[0]))
    out = _data(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    align = bool(op.options.get("align_corners", False))
    half = bool(op.options.get("half_pixel_centers", False))
    rows = _nearest(x.shape[1], out.shape[1], align, half)
    cols = _nearest(x.shape[2], out.shape[2], align, half)

    def pick(idx, table, var):  # a small if-chain: the source index of each output index
        value = tirx.const(table[0], I32)
        for k in range(1, len(table)):
            if table[k] != table[k - 1]:
                value = tirx.Select(var >= k, tirx.const(table[k], I32), value)
        return value

    def index(ins, idx):
        b, i, j, c = idx
        return ins[0][b, pick(idx, rows, i), pick(idx, cols, j), c]
    return _kernel(ctx, op, [x], out, index, f"source rows {rows}, columns {cols}")


def lower_depth_to_space(ctx: LoweringContext, op: Operator):
    g = ctx.graph
    x = _data(ctx, op, g.tensor(op.inputs[0]))
    out = _data(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    bs = op.options["block_size"]
    oc = out.shape[3]

    def d2s(ins, idx):
        b, i, j, c = idx
        return ins[0][b, tirx.floordiv(i, bs), tirx.floordiv(j, bs),
                      (tirx.floormod(i, bs) * bs + tirx.floormod(j, bs)) * oc + c]

    def s2d(ins, idx):
        b, i, j, c = idx
        ic = x.shape[3]
        blk = tirx.floordiv(c, ic)
        return ins[0][b, i * bs + tirx.floordiv(blk, bs), j * bs + tirx.floormod(blk, bs), tirx.floormod(c, ic)]
    fn = d2s if op.kind == "DEPTH_TO_SPACE" else s2d
    return _kernel(ctx, op, [x], out, fn, f"block size {bs}")


def lower_space_batch(ctx: LoweringContext, op: Operator):
    """SPACE_TO_BATCH_ND (pads with the zero point) and BATCH_TO_SPACE_ND (crops), 4-D."""
    g = ctx.graph
    x = _data(ctx, op, g.tensor(op.inputs[0]))
    out = _data(ctx, op, g.tensor(op.outputs[0]))
    _same_quant(op, x, out)
    if len(x.shape) != 4:
        raise UnsupportedOpError(op.kind, op.index, f"{len(x.shape)}-D input")
    block = [int(v) for v in const(ctx, op, op.inputs[1], "block shape", "int32").data.reshape(-1)]
    pads = const(ctx, op, op.inputs[2], "paddings" if op.kind == "SPACE_TO_BATCH_ND" else "crops",
                 "int32").data.reshape(-1, 2)
    bh, bw = block
    fill = _fill(out)
    if op.kind == "SPACE_TO_BATCH_ND":
        pt, pl = int(pads[0, 0]), int(pads[1, 0])
        in_b = x.shape[0]

        def index(ins, idx):
            b, i, j, c = idx
            blk, ib = tirx.floordiv(b, in_b), tirx.floormod(b, in_b)
            y = i * bh + tirx.floordiv(blk, bw) - pt
            xx = j * bw + tirx.floormod(blk, bw) - pl
            inside = tirx.all(y >= 0, y < x.shape[1], xx >= 0, xx < x.shape[2])
            v = ins[0][ib, tirx.max(tirx.min(y, x.shape[1] - 1), 0), tirx.max(tirx.min(xx, x.shape[2] - 1), 0), c]
            return tirx.if_then_else(inside, v, fill)
    else:
        ct, cl = int(pads[0, 0]), int(pads[1, 0])
        out_b = out.shape[0]

        def index(ins, idx):
            b, i, j, c = idx
            y, xx = i + ct, j + cl
            blk = tirx.floormod(y, bh) * bw + tirx.floormod(xx, bw)
            return ins[0][blk * out_b + b, tirx.floordiv(y, bh), tirx.floordiv(xx, bw), c]
    return _kernel(ctx, op, [x], out, index, f"block {block}, {pads.tolist()}")


# --- renames and folded shape arithmetic -----------------------------------------------------

def lower_shape_arithmetic(ctx: LoweringContext, op: Operator):
    """SHAPE and PACK on shapes: static here, so they only matter as a RESHAPE's shape
    operand, which the RESHAPE ignores (its output tensor has the static shape)."""
    if not _folded(ctx, op):
        raise UnsupportedOpError(op.kind, op.index, "only int32 shape arithmetic is supported")
    return _fold_unsupported(ctx, op)


LOWERINGS = {
    "PAD": lower_pad, "PADV2": lower_pad, "CONCATENATION": lower_concatenation,
    "SPLIT": lower_split, "SPLIT_V": lower_split_v, "SLICE": lower_slice,
    "STRIDED_SLICE": lower_strided_slice, "TRANSPOSE": lower_transpose, "TILE": lower_tile,
    "RESIZE_NEAREST_NEIGHBOR": lower_resize_nearest, "DEPTH_TO_SPACE": lower_depth_to_space,
    "SPACE_TO_DEPTH": lower_depth_to_space, "SPACE_TO_BATCH_ND": lower_space_batch,
    "BATCH_TO_SPACE_ND": lower_space_batch,
    "SHAPE": lower_shape_arithmetic, "PACK": lower_shape_arithmetic,
}
