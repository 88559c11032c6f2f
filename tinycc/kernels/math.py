"""Float32 kernels of the math operators (tinycc.lower.math) that the float32 module has no
builder for: SUM, ADD_N, and the element-wise libm calls TVM's C generator does not know."""

from __future__ import annotations

from tvm import te, tirx

from .conv import schedule_reduction
from .float32 import F32, f32
from .reduce import _reduce


def float_sum(in_shape, axes, out_shape):
    """reference_ops::ReduceSum in float: each output the sum of its inputs in index order,
    from 0 (0 + x is x but for -0)."""
    x = te.placeholder(in_shape, F32, name="input")
    acc = _reduce(x, in_shape, axes, out_shape, lambda v, r: te.sum(v, axis=r), dtype=F32)
    # an output over axes of extent 1 only is a copy: add 0 as the reference does
    out = te.compute(out_shape, lambda *i: acc[i] + f32(0.0), name="output")
    return schedule_reduction(te.create_prim_func([x, out]))


def add_n(size: int, count: int):
    """reference_ops::AddN: x = 0, then every input added in order."""
    xs = [te.placeholder((size,), F32, name=f"input{k}") for k in range(count)]

    def body(i):
        total = f32(0.0)
        for x in xs:
            total = total + x[i]
        return total
    out = te.compute((size,), body, name="output")
    return te.create_prim_func([*xs, out])


def fmodf(a, b):
    """C's fmodf (exact in IEEE arithmetic)."""
    return tirx.call_extern(F32, "fmodf", a, b)


def floor_div(a, b):
    """reference_ops::FloorDiv for float: floor of the quotient computed in double (a float
    quotient rounds up to the next integer near it), converted back to float."""
    f64 = "float64"
    return tirx.Cast(F32, tirx.floor(tirx.Cast(f64, a) / tirx.Cast(f64, b)))


def floor_mod(a, b):
    """reference_ops::FloorMod for float: fmodf, then + b where its sign differs from b's."""
    m = fmodf(a, b)
    zero = f32(0.0)
    return tirx.Select(tirx.And(m != zero, (b < zero) != (m < zero)), m + b, m)
