"""Kernels of stateful layers: int8 SVDF (state update, output), the integer LSTM, variable
copies.

A kernel updates a variable tensor in one of two ways. SVDF's state update takes the state as
its last input *and* as its output: the entry function passes the same arena bytes twice, and
the kernel computes the new state element by element in increasing order, each from the old
one after it (a shift left by one) or from a value it computed before touching the state, so
every byte is read before it is overwritten (by construction; the planner's traced overlaps
prove the same property for other kernels). The LSTM, whose output is another tensor, gets its
two states as `state` parameters (`Kernel.state`), which the library declares writable.
"""

from __future__ import annotations

from tvm import te, tirx
from tvm.script import tirx as T

from .fixedpoint import I32, requantize


def copy(shape, dtype: str):
    """READ_VARIABLE / ASSIGN_VARIABLE: the variable's bytes to a tensor, or back."""
    x = te.placeholder(tuple(shape) or (1,), dtype, name="input")
    out = te.compute(x.shape, lambda *i: x[i], name="output")
    return te.create_prim_func([x, out])


def svdf_state(batch: int, depth: int, filters: int, memory: int, multiplier: int, shift: int,
               rounding: str):
    """The state of TFLite's integer SVDF, one step on: every filter's memory shifted left by
    one, its newest entry the feature matmul requantized to int16 (EvalIntegerSVDF's first
    stage; TFLM's order: shift, then write). `offset` is -input_zp * sum(weights) per filter."""
    x = te.placeholder((batch, depth), "int8", name="input")
    wf = te.placeholder((filters, depth), "int8", name="weights")
    off = te.placeholder((filters,), I32, name="offset")
    old = te.placeholder((batch, filters * memory), "int16", name="state")
    k = te.reduce_axis((0, depth), name="k")
    acc = te.compute((batch, filters), lambda b, f: te.sum(
        x[b, k].astype(I32) * wf[f, k].astype(I32), axis=k), name="acc")
    total = _scaled(lambda b, f: acc[b, f] + off[f], (batch, filters), shift)
    newest = te.compute((batch, filters), lambda b, f: tirx.max(tirx.min(
        requantize(total[b, f], multiplier, min(shift, 0), rounding), tirx.const(32767, I32)),
        tirx.const(-32768, I32)).astype("int16"), name="newest")
    last = memory - 1
    # old[b, j + 1] is read at j only when j is not a filter's last entry, so j + 1 stays in bounds
    out = te.compute((batch, filters * memory), lambda b, j: tirx.if_then_else(
        j % memory == last, newest[b, j // memory],
        old[b, tirx.min(j + 1, filters * memory - 1)]), name="output")
    return schedule_reduction_at(te.create_prim_func([x, wf, off, old, out]))


def _scaled(fn, shape, shift: int):
    """The accumulator times 2^shift (TFLite's left shift before the high multiply) in a stage
    of its own: seeing through it, TVM's simplifier folds 2^shift into the multiplier as a
    wrapped int32 and gets the rounding's sign test wrong."""
    left = 1 << max(shift, 0)
    return te.compute(shape, lambda *i: fn(*i) * tirx.const(left, I32) if left > 1 else fn(*i),
                      name="scaled")


def schedule_reduction_at(func, block: str = "newest"):
    """Accumulate in a register inside `block`'s loops (for the state update: the feature
    matmul runs whole, into `newest`, before the state is touched)."""
    from tvm import s_tir
    sch = s_tir.Schedule(func)
    loop = sch.get_loops(sch.get_sblock(block))[-1]
    sch.compute_at(sch.get_sblock("scaled"), loop)
    acc = sch.get_sblock("acc")
    sch.compute_at(acc, loop)
    red = sch.get_loops(acc)[2:]
    if red:
        sch.decompose_reduction(acc, red[0])
    return sch.mod["main"]


def svdf_output(batch: int, filters: int, memory: int, rank: int, multiplier: int, shift: int,
                out_zp: int, rounding: str):
    """EvalIntegerSVDF's second stage: state . time weights per filter, summed over each unit's
    `rank` filters, plus bias, requantized to int8 (no activation: TFLite's integer SVDF only
    clamps)."""
    units = filters // rank
    st = te.placeholder((batch, filters * memory), "int16", name="state")
    wt = te.placeholder((filters, memory), "int16", name="weights")
    bias = te.placeholder((units,), I32, name="bias")
    r = te.reduce_axis((0, rank), name="r")
    m = te.reduce_axis((0, memory), name="m")
    acc = te.compute((batch, units), lambda b, u: te.sum(
        st[b, (u * rank + r) * memory + m].astype(I32) * wt[u * rank + r, m].astype(I32),
        axis=[r, m]), name="acc")
    total = _scaled(lambda b, u: acc[b, u] + bias[u], (batch, units), shift)
    out = te.compute((batch, units), lambda b, u: tirx.max(tirx.min(
        requantize(total[b, u], multiplier, min(shift, 0), rounding) + tirx.const(out_zp, I32),
        tirx.const(127, I32)), tirx.const(-128, I32)).astype("int8"), name="output")
    return schedule_reduction_at(te.create_prim_func([st, wt, bias, out]), "output")


def _gates(n_input: int, n_cell: int, mode: int):
    """A macro: the four gates' int16 pre-activations of time step t (input, forget, cell,
    output), each two int8 matrix-vector products requantized and added (tinycc_lstm_gate_s16)."""
    n4 = 4 * n_cell

    @T.macro
    def gates(x, wx, wh, bias, quant, h, gate, t):
        for g in range(4):
            T.evaluate(T.call_extern(
                "void", "tinycc_lstm_gate_s16", T.address_of(x[t * n_input]), n_input,
                T.address_of(h[0]), n_cell, T.address_of(wx[g * n_cell * n_input]),
                T.address_of(wh[g * n_cell * n_cell]), T.address_of(bias[g * n_cell]),
                T.address_of(bias[n4 + g * n_cell]), T.address_of(quant[g * 4]), mode, n_cell,
                T.address_of(gate[g * n_cell])))
    return gates


def lstm(steps: int, n_input: int, n_cell: int, mode: int, cell_shift: int, tanh_bits: int,
         cell_clip: int, hidden_multiplier: int, hidden_shift: int, hidden_zp: int):
    """TFLite's integer LSTM (lstm_eval's 8x8_16 step, no CIFG, peephole, projection or layer
    norm), one time step after the other. The gates' pre-activations come from
    tinycc_lstm_gate_s16 (two int8 matrix-vector products, int16 saturation); then per cell,
    in the reference's order: sigmoid / tanh in gemmlowp's int16 fixed point, the cell state
    c = sat16(rdbpot(f * c, 15) + rdbpot(i * g, cell_shift)) (clipped when cell_clip > 0), and
    the output state h = int8(rq(o * tanh(c)) + hidden_zp), also the step's output. The
    states h (int8) and c (int16) are the kernel's `state` parameters, updated in place; h
    is written only once every gate of the step has read it. The gates (4 x n_cell int16) are
    the kernel's scratch buffer in the arena."""
    n4 = 4 * n_cell
    gates = _gates(n_input, n_cell, mode)

    def requant(v, m, s):
        return T.call_extern("int32", "tinycc_requant_out32", v, m, s, mode)

    def rdbpot(a, b, exponent):  # TFLite's CwiseMul of two int16 vectors
        return T.call_extern("int32", "tinycc_rounding_divide_by_pot",
                             T.Cast("int32", a) * T.Cast("int32", b), exponent)

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((steps * n_input,), "int8"), wx: T.Buffer((n4 * n_input,), "int8"),
               wh: T.Buffer((n4 * n_cell,), "int8"), bias: T.Buffer((2 * n4,), "int32"),
               quant: T.Buffer((16,), "int32"), scratch: T.Buffer((2 * n4,), "int8"),
               h: T.Buffer((n_cell,), "int8"), c: T.Buffer((n_cell,), "int16"),
               out: T.Buffer((steps * n_cell,), "int8")):
        gate = T.decl_buffer((n4,), "int16", data=scratch.data)  # the four gates, in the arena
        for t in range(steps):
            gates(x, wx, wh, bias, quant, h, gate, t)
            for j in range(n_cell):
                gate[j] = T.call_extern("int16", "tinycc_sigmoid16", gate[j])
                gate[n_cell + j] = T.call_extern("int16", "tinycc_sigmoid16", gate[n_cell + j])
                gate[2 * n_cell + j] = T.call_extern("int16", "tinycc_tanh16", gate[2 * n_cell + j], 3)
                gate[3 * n_cell + j] = T.call_extern("int16", "tinycc_sigmoid16", gate[3 * n_cell + j])
                c[j] = T.call_extern("int16", "tinycc_sat16",
                                     T.Cast("int32", T.Cast("int16", rdbpot(gate[n_cell + j], c[j], 15)))
                                     + T.Cast("int32", T.Cast("int16", rdbpot(gate[j], gate[2 * n_cell + j],
                                                                              cell_shift))))
                if cell_clip > 0:
                    c[j] = T.Cast("int16", T.max(T.min(T.Cast("int32", c[j]), cell_clip), -cell_clip))
                h[j] = T.Cast("int8", T.max(T.min(requant(
                    T.Cast("int32", gate[3 * n_cell + j]) * T.Cast("int32", T.call_extern(
                        "int16", "tinycc_tanh16", c[j], tanh_bits)), hidden_multiplier, hidden_shift)
                    + hidden_zp, 127), -128))
                out[t * n_cell + j] = h[j]
    return kernel


def lstm_tflm(steps: int, n_input: int, n_cell: int, tanh_scaling: tuple[int, int], cell_clip: int,
              forget_mul: tuple[int, int], input_mul: tuple[int, int], hidden_mul: tuple[int, int], hidden_zp: int):
    """TFLM's integer LSTM (lstm_eval.h's LstmStep, 8x8_16), one time step after the other:
    the gates' pre-activations as in `lstm` (TFLM's two int16 fully-connected outputs added
    with saturation are tinycc_lstm_gate_s16 with double rounding); then per cell the int16
    LOGISTIC / TANH of reference_integer_ops (the interpolated sigmoid table, see
    kernels/int16.sigmoid_value; the cell gate's tanh at Q3.12, the cell state's at its own
    power-of-two scale, `tanh_scaling` = (multiplier, right shift)); the cell state
    c = sat16(rq(f * c) + rq(i * g)) and the output state h = int8(rq(o * tanh(c)) + zp), each
    product requantized as MulElementwise does (double rounding, clamped to the output type)."""
    from .int16 import sigmoid_value
    n4 = 4 * n_cell
    TM, TS = tanh_scaling
    gates = _gates(n_input, n_cell, 1)  # double rounding

    def mul(a, b, params, lo, hi):
        return T.max(T.min(T.call_extern("int32", "tinycc_requantize_double", T.Cast("int32", a) * T.Cast("int32", b),
                                         params[0], params[1]), hi), lo)

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((steps * n_input,), "int8"), wx: T.Buffer((n4 * n_input,), "int8"),
               wh: T.Buffer((n4 * n_cell,), "int8"), bias: T.Buffer((2 * n4,), "int32"),
               quant: T.Buffer((16,), "int32"), table: T.Buffer((256,), "uint16"), scratch: T.Buffer((2 * n4,), "int8"),
               h: T.Buffer((n_cell,), "int8"), c: T.Buffer((n_cell,), "int16"),
               out: T.Buffer((steps * n_cell,), "int8")):
        gate = T.decl_buffer((n4,), "int16", data=scratch.data)  # the four gates, in the arena
        for t in range(steps):
            gates(x, wx, wh, bias, quant, h, gate, t)
            for j in range(n_cell):
                gate[j] = T.Cast("int16", sigmoid_value(T.Cast("int32", gate[j]), table, False, 3, 0))
                gate[n_cell + j] = T.Cast("int16", sigmoid_value(T.Cast("int32", gate[n_cell + j]), table, False, 3, 0))
                gate[2 * n_cell + j] = T.Cast("int16", sigmoid_value(T.Cast("int32", gate[2 * n_cell + j]), table,
                                                                     True, 3, 0))
                gate[3 * n_cell + j] = T.Cast("int16", sigmoid_value(T.Cast("int32", gate[3 * n_cell + j]), table,
                                                                     False, 3, 0))
                c[j] = T.call_extern("int16", "tinycc_sat16", mul(gate[n_cell + j], c[j], forget_mul, -32768, 32767)
                                     + mul(gate[j], gate[2 * n_cell + j], input_mul, -32768, 32767))
                if cell_clip > 0:
                    c[j] = T.Cast("int16", T.max(T.min(T.Cast("int32", c[j]), cell_clip), -cell_clip))
                h[j] = T.Cast("int8", T.max(T.min(T.call_extern(
                    "int32", "tinycc_requantize_double",
                    sigmoid_value(T.Cast("int32", c[j]), table, True, TM, TS) * T.Cast("int32", gate[3 * n_cell + j]),
                    hidden_mul[0], hidden_mul[1]) + hidden_zp, 127), -128))
                out[t * n_cell + j] = h[j]
    return kernel
