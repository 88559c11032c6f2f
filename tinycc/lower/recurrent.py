"""Stateful operators: READ_VARIABLE, ASSIGN_VARIABLE (resource variables, made variable tensors
by tinycc.frontend.variables), int8 SVDF and int8 UNIDIRECTIONAL_SEQUENCE_LSTM.

A variable tensor lives at the start of the arena for the whole run and keeps its value from
one run to the next (tinycc.plan, tinycc.package). A kernel that updates it takes it as its
last input and writes it as its output.
"""

from __future__ import annotations

import numpy as np

from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels import recurrent as R
from .common import Const, Kernel, LoweringContext, act, const, describe, kernel_name


def _label(t) -> str:
    return f"{t.name} {'x'.join(map(str, t.shape))}"


def lower_read_variable(ctx: LoweringContext, op: Operator) -> Kernel:
    var, out = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.outputs[0])
    notes = [f"{op.kind} #{op.index}: variable {_label(var)} -> {_label(out)}",
             "a copy: the variable may be assigned before this value's last use"]
    return Kernel(kernel_name(ctx, op), op, R.copy(var.shape, var.dtype), [var.index], out.index, 0, notes)


def lower_assign_variable(ctx: LoweringContext, op: Operator) -> Kernel:
    var, value = ctx.graph.tensor(op.inputs[0]), ctx.graph.tensor(op.inputs[1])
    if value.is_const:
        raise UnsupportedOpError(op.kind, op.index, "it assigns a constant in the main graph")
    notes = [f"{op.kind} #{op.index}: {_label(value)} -> variable {_label(var)}",
             "the variable keeps this value until the next run"]
    return Kernel(kernel_name(ctx, op), op, R.copy(var.shape, var.dtype), [value.index], var.index, 0, notes)


def lower_svdf(ctx: LoweringContext, op: Operator) -> list[Kernel]:
    """TFLite's full-integer SVDF (int8 input and feature weights, int16 time weights and
    state) as two kernels: the state update, then the output from the new state."""
    g = ctx.graph
    if len(op.inputs) != 5:
        raise UnsupportedOpError(op.kind, op.index, f"{len(op.inputs)} inputs, expected 5")
    x = act(ctx, op, g.tensor(op.inputs[0]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    wf = const(ctx, op, op.inputs[1], "feature weights", "int8")
    wt = const(ctx, op, op.inputs[2], "time weights", "int16")
    state = g.tensor(op.inputs[4])
    if not state.is_variable or state.dtype != "int16" or state.quant is None:
        raise UnsupportedOpError(op.kind, op.index, "its state is not an int16 quantized variable tensor")
    rank = int(op.options.get("rank", 0))
    (batch, depth), (filters, memory) = x.shape, wt.shape
    if rank <= 0 or filters % rank or wf.shape != (filters, depth) or \
            state.shape != (batch, filters * memory):
        raise UnsupportedOpError(op.kind, op.index, f"inconsistent shapes (rank {rank}, input {x.shape}, "
                                 f"weights {wf.shape} and {wt.shape}, state {state.shape})")
    for t in (wf, wt, state):
        if t.quant.per_channel or int(t.quant.zero_point[0]) != 0:
            raise UnsupportedOpError(op.kind, op.index, f"'{t.name}' is not quantized per tensor, symmetric")
    units = filters // rank
    bias = np.zeros(units, np.int32) if op.inputs[3] < 0 else \
        const(ctx, op, op.inputs[3], "bias", "int32").data.reshape(-1)
    (sx, zx), (so, zo) = x.quant.scalar(), out.quant.scalar()
    s_state, s_wf, s_wt = (float(t.quant.scale[0]) for t in (state, wf, wt))
    r = ctx.rounding(op)
    m1, e1 = quant.quantize_multiplier(float(sx) * s_wf / s_state, r)
    m2, e2 = quant.quantize_multiplier(s_state * s_wt / float(so), r)
    name = kernel_name(ctx, op)
    offset = (-zx * wf.data.astype(np.int64).sum(axis=1)).astype(np.int32)
    update = Kernel(f"{name}_state", op, R.svdf_state(batch, depth, filters, memory, m1, e1, r),
                    [x.index, Const(f"{name}_feature_weights", wf.data), Const(f"{name}_offset", offset),
                     state.index], state.index, batch * filters * depth,
                    [describe(g, op) + ": state update",
                     f"{filters} filters of memory {memory}: shift left by one, newest entry = feature "
                     f"matmul requantized to int16 (multiplier {m1}, shift {e1})"])
    output = Kernel(name, op, R.svdf_output(batch, filters, memory, rank, m2, e2, zo, r),
                    [state.index, Const(f"{name}_time_weights", wt.data), Const(f"{name}_bias", bias)],
                    out.index, batch * filters * memory,
                    [describe(g, op) + ": output",
                     f"time weights . state per filter, summed over rank {rank}, plus bias, "
                     f"requantized (multiplier {m2}, shift {e2}); TFLite's integer SVDF only clamps"])
    return [update, output]


# UNIDIRECTIONAL_SEQUENCE_LSTM's inputs (TFLite's lstm::full indices)
_LSTM_INPUT, _LSTM_W_INPUT, _LSTM_W_RECURRENT, _LSTM_PEEPHOLE, _LSTM_BIAS = 0, 1, 5, 9, 12
_LSTM_PROJECTION, _LSTM_OUTPUT_STATE, _LSTM_CELL_STATE, _LSTM_LAYER_NORM = 16, 18, 19, 20
_MODES = {"single": 0, "double": 1}


def lstm_inputs(op: Operator) -> list[int]:
    """The 24 input indices (-1: absent), the LSTM forms tinycc takes checked: no peephole,
    projection or layer norm, an input gate (not CIFG), tanh as the cell activation."""
    ins = op.inputs + [-1] * (24 - len(op.inputs))

    def present(k, n=1):
        return any(i >= 0 for i in ins[k:k + n])
    for k, n, what in ((_LSTM_PEEPHOLE, 3, "peephole weights"), (_LSTM_PROJECTION, 2, "a projection"),
                       (_LSTM_LAYER_NORM, 4, "layer normalization")):
        if present(k, n):
            raise UnsupportedOpError(op.kind, op.index, f"an LSTM with {what}")
    if not present(_LSTM_W_INPUT) or not present(_LSTM_W_RECURRENT):
        raise UnsupportedOpError(op.kind, op.index, "a CIFG LSTM (no input gate)")
    if op.options.get("fused_activation_function") != 4:  # TANH
        raise UnsupportedOpError(op.kind, op.index, "a cell activation other than tanh")
    return ins


def lstm_steps(op: Operator, x) -> tuple[int, int]:
    """(time steps, batch) of the input, time-major or not."""
    if len(x.shape) == 3:
        return (x.shape[0], x.shape[1]) if op.options.get("time_major") else (x.shape[1], x.shape[0])
    return 1, x.shape[0]


def lower_lstm(ctx: LoweringContext, op: Operator) -> Kernel:
    """TFLite's integer LSTM, int8 activations and weights, int16 cell state (the 8x8_16 path of
    lstm_eval, as LiteRT's reference kernels run it), batch 1. All of Prepare's arithmetic here:
    the effective scales (in float32, as TFLite computes them), the zero points folded into the
    biases, the cell state's power-of-two scale."""
    g = ctx.graph
    ins = lstm_inputs(op)
    x = act(ctx, op, g.tensor(ins[_LSTM_INPUT]))
    out = act(ctx, op, g.tensor(op.outputs[0]))
    h, c = g.tensor(ins[_LSTM_OUTPUT_STATE]), g.tensor(ins[_LSTM_CELL_STATE])
    if not (h.is_variable and c.is_variable and h.dtype == "int8" and c.dtype == "int16"
            and h.quant is not None and c.quant is not None):
        raise UnsupportedOpError(op.kind, op.index, "its states are not int8 and int16 variable tensors "
                                 "(a float or hybrid LSTM)")
    wx = [const(ctx, op, ins[_LSTM_W_INPUT + k], "input weights", "int8") for k in range(4)]
    wh = [const(ctx, op, ins[_LSTM_W_RECURRENT + k], "recurrent weights", "int8") for k in range(4)]
    bias = [const(ctx, op, ins[_LSTM_BIAS + k], "gate bias", "int32").data.astype(np.int64) for k in range(4)]
    n_cell, n_input = wx[0].shape
    steps, batch = lstm_steps(op, x)
    if batch != 1 or x.shape[-1] != n_input or h.size != n_cell or c.size != n_cell or \
            out.size != steps * n_cell or any(w.shape != (n_cell, n_cell) for w in wh):
        raise UnsupportedOpError(op.kind, op.index, f"shapes other than batch 1 without projection "
                                 f"(input {x.shape}, {n_cell} cells, output {out.shape})")
    for w in wx + wh:
        if w.quant is None or w.quant.per_channel or int(w.quant.zero_point[0]) != 0:
            raise UnsupportedOpError(op.kind, op.index, f"weights '{w.name}' not quantized per tensor, symmetric")
    if ctx.mode == "double":
        return _lower_lstm_tflm(ctx, op, x, out, h, c, wx, wh, bias, steps)
    hidden = _lstm_hidden(ctx, op)
    f32 = np.float32
    sx, sh = x.quant.scalar()[0], h.quant.scalar()[0]
    gate_scale = f32(2.0 ** -12)  # Q3.12, the gates' input to sigmoid and tanh
    r = ctx.rounding(op)
    quant_params = []
    for k in range(4):
        eff_x = f32(f32(wx[k].quant.scale[0]) * sx) / gate_scale
        eff_h = f32(f32(wh[k].quant.scale[0]) * sh) / gate_scale
        quant_params += [*quant.quantize_multiplier(float(eff_x), r), *quant.quantize_multiplier(float(eff_h), r)]
    cell_scale = _cell_scale_power(op, c)
    hidden_scale, hidden_zp = hidden.quant.scalar()
    eff_hidden = f32(2.0 ** -15 / float(hidden_scale) * 2.0 ** -15)
    hm, hs = quant.quantize_multiplier(float(eff_hidden), r)
    clip = float(op.options.get("cell_clip", 0.0))
    cell_clip = int(np.clip(f32(clip) / f32(c.quant.scale[0]), -32768, 32767)) if clip > 0 else 0
    func = R.lstm(steps, n_input, n_cell, _MODES[r], 30 + cell_scale, 15 + cell_scale, cell_clip, hm, hs,
                  hidden_zp)
    note = (f"{steps} steps, {n_cell} cells; gates in Q3.12, sigmoid and tanh in gemmlowp's int16 fixed "
            f"point; cell state int16 at scale 2^{cell_scale}; output state int8 (multiplier {hm}, "
            f"shift {hs}, zero point {hidden_zp})")
    return _lstm_kernel(ctx, op, func, note, x, out, h, c, wx, wh, bias, quant_params, steps)


def _lstm_kernel(ctx, op, func, note, x, out, h, c, wx, wh, bias, quant_params, steps, table=None) -> Kernel:
    """The LSTM kernel's arguments: the weights, the biases with the zero points folded in,
    the gates' multipliers, (the sigmoid table,) the gates' scratch in the arena, the states."""
    (_, zx), (_, zh) = x.quant.scalar(), h.quant.scalar()
    n_cell, n_input = wx[0].shape
    folded = [b - zx * w.data.astype(np.int64).sum(axis=1) for b, w in zip(bias, wx)] + \
             [-zh * w.data.astype(np.int64).sum(axis=1) for w in wh]
    folded = np.concatenate(folded)
    if np.any(np.abs(folded) > quant.INT32_MAX):
        raise UnsupportedOpError(op.kind, op.index, "a folded bias overflows int32")
    name = kernel_name(ctx, op)
    from ..fuse import Scratch  # (tinycc.fuse imports this package)
    inputs = [x.index, Const(f"{name}_input_weights", np.concatenate([w.data for w in wx])),
              Const(f"{name}_recurrent_weights", np.concatenate([w.data for w in wh])),
              Const(f"{name}_bias", folded.astype(np.int32)),
              Const(f"{name}_quant", np.array(quant_params, np.int32)),
              *([] if table is None else [Const(f"{name}_sigmoid_table", table)]),
              Scratch(f"{name}_scratch", np.zeros(8 * n_cell, np.int8)), h.index, c.index]
    kernel = Kernel(name, op, func, inputs, out.index, steps * 4 * n_cell * (n_input + n_cell),
                    [describe(ctx.graph, op), note], state=[h.index, c.index])
    kernel.scratch_bytes = 8 * n_cell  # the gates, planned in the arena for this step
    return kernel


def _cell_scale_power(op, c) -> int:
    """The cell state's scale as a power of two (TFLite's integer LSTM needs one)."""
    log2 = float(np.log2(float(c.quant.scale[0])))
    power = int(round(log2))
    if abs(log2 - power) >= 1e-3 or int(c.quant.zero_point[0]) != 0:
        raise UnsupportedOpError(op.kind, op.index, "a cell state whose scale is not a power of two")
    return power


def _lower_lstm_tflm(ctx, op, x, out, h, c, wx, wh, bias, steps) -> Kernel:
    """TFLM's integer LSTM (--rounding double): the same gate pre-activations with TFLM's
    multipliers (effective scales in double, PrepareGateParametersInteger), then the int16
    LOGISTIC / TANH of reference_integer_ops with the interpolated sigmoid table (as the 16x8
    operators, lower/int16.py) and MulElementwise's requantizations (CreateInterGateMulParams)."""
    from .int16 import sigmoid_table_uint16
    sx, sh = x.quant.scalar()[0], h.quant.scalar()[0]
    gate_scale = 2.0 ** -12
    quant_params = []
    for k in range(4):  # GetQuantizedConvolutionMultipler: double(input scale) * double(weight scale)
        quant_params += [*quant.quantize_multiplier(float(sx) * float(wx[k].quant.scale[0]) / gate_scale, "double"),
                         *quant.quantize_multiplier(float(sh) * float(wh[k].quant.scale[0]) / gate_scale, "double")]
    cs = float(np.float32(c.quant.scale[0]))
    power = _cell_scale_power(op, c)
    shift = 15 + power - 3  # lstm_internal::Tanh
    tanh_scaling = (3 << shift, 0) if shift >= 0 else (3, -shift)
    out_scale, out_zp = h.quant.scalar()
    q15 = 2.0 ** -15
    forget_mul = quant.quantize_multiplier(q15 * cs / cs, "double")
    input_mul = quant.quantize_multiplier(q15 * q15 / cs, "double")
    hidden_mul = quant.quantize_multiplier(q15 * q15 / float(out_scale), "double")
    clip = float(np.float32(op.options.get("cell_clip", 0.0)))
    cell_clip = int(min(max(clip / cs, -32768.0), 32767.0)) if clip > 0 else 0
    n_cell, n_input = wx[0].shape
    func = R.lstm_tflm(steps, n_input, n_cell, tanh_scaling, cell_clip, forget_mul, input_mul, hidden_mul, int(out_zp))
    note = (f"TFLM's LSTM: {steps} steps, {n_cell} cells; gates in Q3.12, sigmoid and tanh from the interpolated "
            f"int16 table; cell state int16 at scale 2^{power}; output state int8 (multiplier {hidden_mul[0]}, "
            f"shift {hidden_mul[1]}, zero point {out_zp})")
    return _lstm_kernel(ctx, op, func, note, x, out, h, c, wx, wh, bias, quant_params, steps, sigmoid_table_uint16())


def _lstm_hidden(ctx, op):
    """The fifth intermediate tensor: the quantization of output_gate * tanh(cell)."""
    inter = op.options.get("intermediates", [])
    t = ctx.graph.tensor(inter[4]) if len(inter) >= 5 else None
    if t is None or t.quant is None:
        raise UnsupportedOpError(op.kind, op.index, "no quantized hidden-state intermediate (convert with a "
                                 "representative dataset for full-integer quantization)")
    return t


LOWERINGS = {"READ_VARIABLE": lower_read_variable, "ASSIGN_VARIABLE": lower_assign_variable,
             "SVDF": lower_svdf, "UNIDIRECTIONAL_SEQUENCE_LSTM": lower_lstm}
