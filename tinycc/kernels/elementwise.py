"""Element-wise kernels."""

from __future__ import annotations

from tvm import s_tir, te, tirx

from .fixedpoint import I32, clamp_i8, requantize


def add(size: int, in1_zp: int, in2_zp: int, m1: int, s1: int, m2: int, s2: int,
        mo: int, so: int, out_zp: int, act_min: int, act_max: int, rounding: str):
    """TFLite's quantized ADD: both inputs shifted left by 20, rescaled, summed, rescaled."""
    a = te.placeholder((size,), "int8", name="input1")
    b = te.placeholder((size,), "int8", name="input2")

    def rescaled(x, zp, m, sh):
        return te.compute((size,), lambda i: requantize(
            (x[i].astype(I32) - zp) * tirx.const(1 << 20, I32), m, sh, rounding), name="scaled")
    ra, rb = rescaled(a, in1_zp, m1, s1), rescaled(b, in2_zp, m2, s2)
    out = te.compute((size,), lambda i: clamp_i8(
        requantize(ra[i] + rb[i], mo, so, rounding) + out_zp, act_min, act_max), name="output")
    sch = s_tir.Schedule(te.create_prim_func([a, b, out]))
    loop = sch.get_loops(sch.get_sblock("output"))[0]
    for name in ("scaled", "scaled_1"):
        sch.compute_at(sch.get_sblock(name), loop)
    return sch.mod["main"]
