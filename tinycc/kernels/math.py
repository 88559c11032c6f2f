"""Float32 kernels of the math operators (tinycc.lower.math) that the float32 module has no
builder for: SUM, ADD_N, and the element-wise libm calls TVM's C generator does not know."""

from __future__ import annotations

from tvm import te, tirx

from .conv import schedule_reduction
from .float32 import F32, clamp, f32
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


def _row_op(outer: int, depth: int, rows, finish, dtype=F32):
    """A per-row computation (softmax-like): `rows(x, k)` -> {name: te.compute over (outer,)}
    in order, `finish(x, named, i, c)` -> the output; each row's values computed at its row."""
    from tvm import s_tir
    x = te.placeholder((outer, depth), dtype, name="input")
    named = {}
    def row(fn, k):
        return lambda i: fn(x, named, i, k)
    for name, fn in rows:
        named[name] = te.compute((outer,), row(fn, te.reduce_axis((0, depth), name=f"k_{name}")), name=name)
    out = te.compute((outer, depth), lambda i, c: finish(x, named, i, c), name="output")
    sch = s_tir.Schedule(te.create_prim_func([x, out]))
    row = sch.get_loops(sch.get_sblock("output"))[0]
    for name, _ in reversed(rows):
        sch.compute_at(sch.get_sblock(name), row)
    return sch.mod["main"]


def l2_normalization(outer: int, depth: int, epsilon: float):
    """reference_ops::L2Normalization (float): x / max(sqrtf(sum of squares), epsilon)."""
    rows = [("squares", lambda x, n, i, k: te.sum(x[i, k] * x[i, k], axis=k))]

    def finish(x, n, i, c):
        return x[i, c] / tirx.max(tirx.sqrt(n["squares"][i]), f32(epsilon))
    return _row_op(outer, depth, rows, finish)


def log_softmax(outer: int, depth: int):
    """reference_ops::LogSoftmax (float): x - max - logf(sum of expf(x - max))."""
    rows = [("max", lambda x, n, i, k: te.max(x[i, k], axis=k)),
            ("sum", lambda x, n, i, k: te.sum(tirx.exp(x[i, k] - n["max"][i]), axis=k))]

    def finish(x, n, i, c):
        return x[i, c] - n["max"][i] - tirx.log(n["sum"][i])
    return _row_op(outer, depth, rows, finish)


def cumsum(outer: int, depth: int, inner: int, exclusive: bool, reverse: bool):
    """TFLite's CumSum (Eigen's scan): a running sum from 0 along the axis, in order (from the
    end when reverse); exclusive stores the sum before adding the element."""
    from tvm.script import tirx as T
    D, I = depth, inner

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((outer * D * I,), F32), out: T.Buffer((outer * D * I,), F32)):
        acc = T.alloc_buffer((1,), F32)
        for o, i in T.grid(outer, I):
            acc[0] = T.float32(0)
            for k in range(D):
                if exclusive:
                    out[(o * D + (D - 1 - k if reverse else k)) * I + i] = acc[0]
                acc[0] = acc[0] + x[(o * D + (D - 1 - k if reverse else k)) * I + i]
                if not exclusive:
                    out[(o * D + (D - 1 - k if reverse else k)) * I + i] = acc[0]
    return kernel


def resize_bilinear(in_shape, out_shape, dtype: str, combine):
    """Bilinear resize with the sample rows and columns and their weights computed at compile
    time: `ys`/`xs` (int32, [lower, upper] per output row / column) and `wy`/`wx` ([weight of
    the lower, of the upper]); combine(a, b, c, d, wy0, wy1, wx0, wx1) is the reference's sum."""
    _, oh, ow, _ = out_shape
    wdt = F32 if dtype == F32 else "int32"
    x = te.placeholder(in_shape, dtype, name="input")
    ys = te.placeholder((oh * 2,), "int32", name="ys")
    wy = te.placeholder((oh * 2,), wdt, name="wy")
    xs = te.placeholder((ow * 2,), "int32", name="xs")
    wx = te.placeholder((ow * 2,), wdt, name="wx")

    def body(b, i, j, c):
        y0, y1, x0, x1 = ys[2 * i], ys[2 * i + 1], xs[2 * j], xs[2 * j + 1]
        return combine(x[b, y0, x0, c], x[b, y1, x0, c], x[b, y0, x1, c], x[b, y1, x1, c],
                       wy[2 * i], wy[2 * i + 1], wx[2 * j], wx[2 * j + 1])
    out = te.compute(out_shape, body, name="output")
    return te.create_prim_func([x, ys, wy, xs, wx, out])


def batch_matmul(lhs_shape, rhs_shape, out_shape, adj_x: bool, adj_y: bool, dtype: str, finish):
    """out[..., i, j] = finish(sum over k of product(lhs[..., i, k], rhs[..., k, j])), k in
    order from 0, the batch dimensions broadcast; adj_x / adj_y: that operand is stored
    transposed. finish = (term(a, b): what is summed, done(acc): the output value)."""
    rank = len(out_shape)
    a_shape = (1,) * (rank - len(lhs_shape)) + tuple(lhs_shape)
    b_shape = (1,) * (rank - len(rhs_shape)) + tuple(rhs_shape)
    depth = a_shape[-2] if adj_x else a_shape[-1]
    a = te.placeholder(a_shape, dtype, name="lhs")
    b = te.placeholder(b_shape, dtype, name="rhs")
    term, done = finish
    # depth 1: no reduction (TVM 0.27 lowers a one-step reduction reading the accumulator
    # before its update)
    k = te.reduce_axis((0, depth), name="k") if depth > 1 else 0

    def batch(shape, idx):
        return tuple(0 if d == 1 else v for d, v in zip(shape[:-2], idx[:-2]))

    def body(*idx):
        i, j = idx[-2], idx[-1]
        av = a[batch(a_shape, idx) + ((k, i) if adj_x else (i, k))]
        bv = b[batch(b_shape, idx) + ((j, k) if adj_y else (k, j))]
        return te.sum(term(av, bv), axis=k) if depth > 1 else term(av, bv)
    acc = te.compute(out_shape, body, name="acc")
    out = te.compute(out_shape, lambda *i: done(acc[i]), name="output")
    return schedule_reduction(te.create_prim_func([a, b, out]))


def l2_pool(in_shape, out_shape, filt, stride, pad, lo, hi):
    """reference_ops::L2Pool: sqrtf(sum of squares over the in-bounds window / its size),
    clamped (taps outside the input add 0 * 0, which changes no sum of squares)."""
    from .pool import _window
    _, h, w, _ = in_shape
    (fh, fw), (sh, sw), (pt, pl) = filt, stride, pad
    x = te.placeholder(in_shape, F32, name="input")
    acc = _window(x, in_shape, out_shape, filt, stride, pad, lambda v, axis: te.sum(v * v, axis=axis), 0.0, F32)
    if fh == fw == 1:  # no reduction: the tap itself, squared here
        acc = te.compute(out_shape, lambda *i: acc[i] * acc[i], name="acc2")

    def finish(b, i, j, ch):
        y0, x0 = i * sh - pt, j * sw - pl
        count = (tirx.min(fh, h - y0) - tirx.max(0, -y0)) * (tirx.min(fw, w - x0) - tirx.max(0, -x0))
        return clamp(tirx.sqrt(acc[b, i, j, ch] / count.astype(F32)), lo, hi)
    out = te.compute(out_shape, finish, name="output")
    return schedule_reduction(te.create_prim_func([x, out]))


def int8_div(shape_a, shape_b, out_shape, za: int, zb: int, zo: int, multiplier: int, shift: int, lo: int, hi: int):
    """reference_ops::DivElementwise (int8, double rounding), broadcast as TFLite broadcasts.
    The divisor's reciprocal (GetReciprocal: a Q0.31 multiplier and a shift) is a table over
    its 256 int8 values, computed at compile time; the dividend is normalised by its leading
    sign bits (|a - za| <= 255: counted by comparisons), multiplied by the reciprocal, then
    requantized."""
    from .binary import broadcast_index
    from .fixedpoint import I32, I64, clamp_i8, rounding_divide_by_pot, srdhm
    sa, sb, so = tuple(shape_a) or (1,), tuple(shape_b) or (1,), tuple(out_shape) or (1,)
    a = te.placeholder(sa, "int8", name="input1")
    b = te.placeholder(sb, "int8", name="input2")
    inv = te.placeholder((256,), I32, name="reciprocal")
    rshift = te.placeholder((256,), I32, name="shift")

    def divisor(i):
        return b[tuple(broadcast_index(sb, so, i))].astype(I32)

    # stages, each its own block computed inside the output's loop: one whole formula makes
    # TVM's simplifier take minutes (see kernels.binary)
    def dividend(*i):
        n = a[tuple(broadcast_index(sa, so, i))].astype(I32) - tirx.const(za, I32)
        return tirx.Select(divisor(i) < zb, -n, n)
    num = te.compute(so, dividend, name="dividend")

    def leading_sign_bits(*i):
        magnitude = tirx.Select(num[i] < 0, -num[i] - 1, num[i])  # 31 - its bit length
        return tirx.const(31, I32) - sum((tirx.Select(magnitude >= (1 << k), 1, 0) for k in range(9)),
                                         tirx.const(0, I32))
    head = te.compute(so, leading_sign_bits, name="headroom")

    def quotient(*i):
        # n * 2^headroom, not n << headroom: shifting a negative value is undefined in C
        scaled = tirx.Cast(I32, tirx.Cast(I64, num[i]) * (tirx.const(1, I64) << tirx.Cast(I64, head[i])))
        return srdhm(scaled, inv[divisor(i) + 128])
    quo = te.compute(so, quotient, name="quotient")

    def divide(*i):
        e = head[i] + rshift[divisor(i) + 128] - tirx.const(shift, I32)  # the right shift
        x = srdhm(quo[i], multiplier)
        # A right shift of 32 or more (a small or zero dividend) is outside RoundingDivideByPOT's
        # range: LiteRT (x86) then computes mask -1, and shifts by e mod 32, so
        # (x >> (e - 32)) + (x >= 0): 1 for a zero dividend. Reproduced, without C's undefined shift.
        wide = (x >> tirx.min(e - 32, 31)) + tirx.Select(x >= 0, 1, 0)
        return tirx.Select(e >= 32, wide, rounding_divide_by_pot(x, tirx.min(e, 31)))
    res = te.compute(so, divide, name="result")
    # the clamp in its own block: with the shift above in view, TVM 0.27's bound analysis
    # drops it (wrongly: a shift by 32 or more leaves x as large as it was)
    out = te.compute(so, lambda *i: clamp_i8(res[i] + tirx.const(zo, I32), lo, hi), name="output")
    from tvm import s_tir
    sch = s_tir.Schedule(te.create_prim_func([a, b, inv, rshift, out]))
    loop = sch.get_loops(sch.get_sblock("output"))[-1]
    for name in ("result", "quotient", "headroom", "dividend"):
        sch.compute_at(sch.get_sblock(name), loop)
    return sch.mod["main"]
