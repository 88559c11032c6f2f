"""Data movement: every output byte is one input byte (or a constant), at an index computed
from the output's. PAD, CONCATENATION, SLICE, STRIDED_SLICE, TRANSPOSE, SPLIT, TILE, nearest
neighbour resize, depth/space rearrangements: one builder, the index map is the lowering's."""

from __future__ import annotations

from tvm import te


def gather(in_shapes: list, out_shape, index_fn, in_dtypes: list | None = None):
    """`index_fn(placeholders, out_indices)` returns the int8 value of one output element.
    Placeholders are int8 tensors of `in_shapes` (or `in_dtypes`), in parameter order."""
    dtypes = in_dtypes or ["int8"] * len(in_shapes)
    ins = [te.placeholder(tuple(s), d, name=f"input{k}") for k, (s, d) in enumerate(zip(in_shapes, dtypes))]
    out = te.compute(tuple(out_shape), lambda *idx: index_fn(ins, list(idx)), name="output")
    return te.create_prim_func([*ins, out])
