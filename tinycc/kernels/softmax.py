"""Softmax kernels: LiteRT's float-table algorithm and TFLite's fixed-point one (TFLM)."""

from __future__ import annotations

from tvm.script import tirx as T
from tvm import s_tir, te, tirx

from .fixedpoint import (
    I32,
    I64,
    clamp_i8,
    i64,
    rounding_divide_by_pot,
    sat_shl,
    sel,
    srdhm,
)


def softmax_litert(outer: int, depth: int, out_zp: int):
    """LiteRT's int8 softmax, row by row through tinycc_softmax_litert_row (runtime): its float
    arithmetic reproduced bit for bit on float32 bit patterns, with integer instructions."""

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((outer * depth,), "int8"), table: T.Buffer((256,), "uint32"),
               out: T.Buffer((outer * depth,), "int8")):
        for i in range(outer):
            T.evaluate(T.call_extern("void", "tinycc_softmax_litert_row", T.address_of(x[i * depth]), depth,
                                     T.address_of(table[0]), out_zp, T.address_of(out[i * depth])))
    return kernel


def softmax_fixed_point(outer: int, depth: int):
    """TFLite's reference integer softmax (gemmlowp fixed point), as TFLM runs it. The
    per-diff exponentials come from a compile-time table; the reciprocal of the row sum is
    gemmlowp's Newton-Raphson in Q2.29."""
    x = te.placeholder((outer, depth), "int8", name="input")
    table = te.placeholder((256,), I32, name="exp_table")
    j = te.reduce_axis((0, depth), name="j")
    mx = te.compute((outer,), lambda i: te.max(x[i, j].astype(I32), axis=j), name="row_max")

    def lookup(i, c):
        return table[mx[i] - x[i, c].astype(I32)]
    j2 = te.reduce_axis((0, depth), name="j")
    total = te.compute((outer,), lambda i: te.sum(rounding_divide_by_pot(lookup(i, j2), 12),
                                                  axis=j2), name="row_sum")
    # headroom_plus_one = clz(sum); for sum > 0, clz = #{k in 1..31 : sum < 2^k}
    clz = te.compute((outer,), lambda i: sum(
        sel(total[i] < tirx.const(1 << k, I32), tirx.const(1, I32), tirx.const(0, I32))
        for k in range(1, 31)) + 1, name="row_clz")
    # shifted_sum_minus_one = (sum << clz) - 2^31, computed in uint32
    shifted = te.compute((outer,), lambda i: tirx.Cast(I32, (tirx.Cast("uint32", total[i])
                         << tirx.Cast("uint32", clz[i])) - tirx.const(1 << 31, "uint32")),
                         name="row_shifted")
    half_den = te.compute((outer,), lambda i: tirx.Cast(I32, tirx.truncdiv(
        i64(shifted[i]) + tirx.const((1 << 31) - 1, I64) + sel(
            i64(shifted[i]) + tirx.const((1 << 31) - 1, I64) >= tirx.const(0, I64),
            tirx.const(1, I64), tirx.const(-1, I64)), tirx.const(2, I64))), name="half_den")
    est = te.compute((outer,), lambda i: tirx.const(1515870810, I32) +
                     srdhm(half_den[i], tirx.const(-1010580540, I32)), name="nr0")
    def newton_step(prev, step):
        # x += Rescale<2>(x * (1 - half_den * x)), every product in Q-format via srdhm
        hdx = te.compute((outer,), lambda i: srdhm(half_den[i], prev[i]), name=f"nr{step}_hdx")
        prod = te.compute((outer,), lambda i: srdhm(prev[i], tirx.const(1 << 29, I32) - hdx[i]),
                          name=f"nr{step}_prod")
        return te.compute((outer,), lambda i: prev[i] + sat_shl(prod[i]), name=f"nr{step}")
    for step in range(3):
        est = newton_step(est, step + 1)
    recip = te.compute((outer,), lambda i: sat_shl(est[i], 1), name="row_recip")

    def scaled(i, c):
        bits = tirx.const(12, I32) - clz[i]
        return rounding_divide_by_pot(srdhm(recip[i], lookup(i, c)), bits + 23) - 128
    # Kept in its own stage: TVM's simplifier wrongly drops the upper clamp when it sees the
    # whole formula, and 128 would wrap to -128.
    unsat = te.compute((outer, depth), scaled, name="unsaturated")
    out = te.compute((outer, depth), lambda i, c: clamp_i8(unsat[i, c], -128, 127), name="output")
    sch = s_tir.Schedule(te.create_prim_func([x, table, out]))
    sch.compute_at(sch.get_sblock("unsaturated"), sch.get_loops(sch.get_sblock("output"))[-1])
    return sch.mod["main"]


def _schedule_softmax(func):
    return func
