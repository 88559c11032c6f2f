"""Table lookup: any int8 -> int8 function of one value (activations, requantization)."""

from __future__ import annotations

from tvm import te

from .fixedpoint import I32


def lut(size: int):
    """out[i] = table[in[i] + 128]; the 256-entry table is computed at compile time."""
    x = te.placeholder((size,), "int8", name="input")
    table = te.placeholder((256,), "int8", name="table")
    out = te.compute((size,), lambda i: table[x[i].astype(I32) + 128], name="output")
    return te.create_prim_func([x, table, out])
