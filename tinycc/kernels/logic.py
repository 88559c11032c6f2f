"""Kernels on bool and int32 tensors: element-wise maps of any number of broadcast operands
(comparisons, logic, SELECT_V2, CAST), ARG_MAX / ARG_MIN, REDUCE_ALL / REDUCE_ANY."""

from __future__ import annotations

from tvm import s_tir, te, tirx

from .binary import broadcast_index
from .conv import schedule_reduction
from .fixedpoint import I32
from .reduce import _reduce


def broadcast_map(in_shapes: list, in_dtypes: list, out_shape, fn, pre=None):
    """out[i] = fn(*values) with each input read at its broadcast index (TFLite's, numpy's).

    `pre`: optional per-input functions computed first, each in its own block inlined into the
    output loop (as kernels.binary does: one whole formula makes TVM's simplifier slow)."""
    out_shape = tuple(out_shape) or (1,)
    ins = [te.placeholder(tuple(s) or (1,), d, name=f"input{k}") for k, (s, d) in enumerate(zip(in_shapes, in_dtypes))]

    def at(k, idx):
        return ins[k][tuple(broadcast_index(ins[k].shape, out_shape, idx))]
    if pre is None:
        out = te.compute(out_shape, lambda *i: fn(*[at(k, i) for k in range(len(ins))]), name="output")
        return te.create_prim_func([*ins, out])
    def stage(k):
        return te.compute(out_shape, lambda *i: pre[k](at(k, i)), name=f"pre{k}")
    stages = [stage(k) for k in range(len(ins))]
    out = te.compute(out_shape, lambda *i: fn(*[s[i] for s in stages]), name="output")
    sch = s_tir.Schedule(te.create_prim_func([*ins, out]))
    loop = sch.get_loops(sch.get_sblock("output"))[-1]
    for k in range(len(ins)):
        sch.compute_at(sch.get_sblock(f"pre{k}"), loop)
    return sch.mod["main"]


def _arg_reducer(larger: bool):
    """(index, value) pairs combined as TFLite's ArgMinMax loop: the first value starts the
    search (identity index -1), a later one wins only if strictly greater (less): ties keep the
    first index, a NaN never wins."""
    def combine(acc, new):
        better = new[1] > acc[1] if larger else new[1] < acc[1]
        take = tirx.Or(acc[0] < 0, better)
        return tirx.Select(take, new[0], acc[0]), tirx.Select(take, new[1], acc[1])

    def identity(t_index, t_value):
        return tirx.const(-1, t_index), tirx.const(0, t_value)
    return te.comm_reducer(combine, identity, name="argmax" if larger else "argmin")


def arg_min_max(in_shape, axis: int, dtype: str, out_dtype: str, larger: bool):
    """ARG_MAX (larger) or ARG_MIN of `axis`: the index of the first maximum (minimum)."""
    x = te.placeholder(tuple(in_shape), dtype, name="input")
    kept = tuple(d for i, d in enumerate(in_shape) if i != axis) or (1,)
    k = te.reduce_axis((0, in_shape[axis]), name="k")
    reducer = _arg_reducer(larger)

    def body(*idx):
        it = iter(idx if len(in_shape) > 1 else ())
        full = [k if d == axis else next(it) for d in range(len(in_shape))]
        return reducer((k.var.astype(I32), x[tuple(full)]), axis=k)
    acc_index, _ = te.compute(kept, body, name="acc")
    out = te.compute(kept, lambda *i: acc_index[i].astype(out_dtype), name="output")
    return schedule_reduction(te.create_prim_func([x, out]))


def reduce_bool(in_shape, axes, out_shape, every: bool):
    """REDUCE_ALL (every) or REDUCE_ANY of a bool tensor over `axes`."""
    x = te.placeholder(tuple(in_shape), "bool", name="input")
    pick = te.min if every else te.max
    acc = _reduce(x, in_shape, axes, out_shape, lambda v, r: pick(v, axis=r))
    out = te.compute(out_shape, lambda *i: acc[i] != tirx.const(0, I32), name="output")
    return schedule_reduction(te.create_prim_func([x, out]))
