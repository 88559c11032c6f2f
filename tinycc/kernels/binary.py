"""Element-wise operators of two tensors with TFLite's broadcasting (MUL, SUB, ADD, MAXIMUM,
MINIMUM, PRELU): each input is indexed with 0 along the dimensions it broadcasts."""

from __future__ import annotations

from tvm import s_tir, te


def broadcast_index(shape, out_shape, idx):
    """Indices into a tensor of `shape` (right-aligned with `out_shape`) for output `idx`."""
    lead = len(out_shape) - len(shape)
    return [0 if d == 1 and out_shape[lead + k] != 1 else idx[lead + k] for k, d in enumerate(shape)]


def binary(shape_a, shape_b, out_shape, fn, pre=None, dtype="int8"):
    """out[i] = fn(a[bcast i], b[bcast i]) on inputs of `dtype`; fn returns the result.

    `pre` = (fa, fb): per-operand int32 stages (TFLite's input rescaling) computed first, each
    in its own block inlined into the output loop: one whole formula makes TVM's simplifier
    take minutes."""
    sa, sb = tuple(shape_a) or (1,), tuple(shape_b) or (1,)
    a = te.placeholder(sa, dtype, name="input1")
    b = te.placeholder(sb, dtype, name="input2")
    out_shape = tuple(out_shape) or (1,)

    def at_a(idx):
        return a[tuple(broadcast_index(sa, out_shape, idx))]

    def at_b(idx):
        return b[tuple(broadcast_index(sb, out_shape, idx))]
    if pre is None:
        out = te.compute(out_shape, lambda *i: fn(at_a(i), at_b(i)), name="output")
        return te.create_prim_func([a, b, out])
    pa = te.compute(out_shape, lambda *i: pre[0](at_a(i)), name="pre_a")
    pb = te.compute(out_shape, lambda *i: pre[1](at_b(i)), name="pre_b")
    out = te.compute(out_shape, lambda *i: fn(pa[i], pb[i]), name="output")
    sch = s_tir.Schedule(te.create_prim_func([a, b, out]))
    loop = sch.get_loops(sch.get_sblock("output"))[-1]
    for name in ("pre_a", "pre_b"):
        sch.compute_at(sch.get_sblock(name), loop)
    return sch.mod["main"]
