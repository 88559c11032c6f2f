"""Float32 TRANSPOSE_CONV, SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM (kernels in
tinycc.kernels.float_extra), and the routing of hybrid FULLY_CONNECTED / CONV_2D /
DEPTHWISE_CONV_2D (int8 weights in a float operator) to tinycc.lower.hybrid. TRANSPOSE_CONV is bit-exact with LiteRT's reference kernel; SVDF
too with a clamping activation (NONE, RELU, RELU_N1_TO_1, RELU6); the LSTM calls expf and
tanhf and is within the float bound of tinycc.verify. The two stateful ones keep their state
in variable tensors at the start of the arena, as the int8 ones do (lower/recurrent.py).
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Operator
from ..kernels import float_extra as KX
from .common import Const, Kernel, LoweringContext, describe, kernel_name
from .float32 import _activation, _clamp_note, _tensor, _weights
from .recurrent import (_LSTM_BIAS, _LSTM_CELL_STATE, _LSTM_INPUT, _LSTM_OUTPUT_STATE, _LSTM_W_INPUT,
                        _LSTM_W_RECURRENT, lstm_inputs, lstm_steps)


def lower_transpose_conv(ctx: LoweringContext, op: Operator) -> Kernel:
    from .transpose_conv import geometry
    x, out = _tensor(ctx, op, op.inputs[2]), _tensor(ctx, op, op.outputs[0])
    w = _weights(ctx, op, op.inputs[1])
    (sh, sw), (pt, pl) = geometry(ctx, op, x, w, out)
    _, h, wd, c = x.shape
    oc = out.shape[3]
    kh, kw = w.shape[1], w.shape[2]
    has_bias = len(op.inputs) > 3 and op.inputs[3] >= 0
    bias = np.zeros(oc, np.float32)
    if has_bias:
        b = _tensor(ctx, op, op.inputs[3])
        if not b.is_const or b.size != oc:
            raise UnsupportedOpError(op.kind, op.index, f"bias '{b.name}' is not a constant of {oc} values")
        bias = b.data.reshape(-1).astype(np.float32)
    lo, hi = _activation(op)
    name = kernel_name(ctx, op)
    func = KX.transpose_conv(x.shape, w.shape, out.shape, (sh, sw), (pt, pl), has_bias, lo, hi)
    args = [x.index, Const(f"{name}_weights", w.data.astype(np.float32)), Const(f"{name}_bias", bias)]
    notes = [describe(ctx.graph, op), f"float32; kernel {kh}x{kw}, stride {sh}x{sw}, padding top {pt} left {pl}; "
             f"each output gathers its taps in the reference's order; {_clamp_note(lo, hi)}"]
    return Kernel(name, op, func, args, out.index, h * wd * kh * kw * c * oc, notes)


def _state(ctx, op, index: int, size: int):
    t = _tensor(ctx, op, index)
    if not t.is_variable or t.size != size:
        raise UnsupportedOpError(op.kind, op.index, f"its state '{t.name}' is not a float32 variable tensor of "
                                 f"{size} values")
    return t


def _float_bias(ctx, op, index: int, size: int):
    if index < 0:
        return None
    b = _tensor(ctx, op, index)
    if not b.is_const or b.size != size:
        raise UnsupportedOpError(op.kind, op.index, f"bias '{b.name}' is not a constant of {size} values")
    return b.data.reshape(-1).astype(np.float32)


def lower_svdf(ctx: LoweringContext, op: Operator) -> Kernel:
    """EvalFloatSVDF: one kernel, the state updated in place, then the output."""
    if len(op.inputs) != 5:
        raise UnsupportedOpError(op.kind, op.index, f"{len(op.inputs)} inputs, expected 5")
    from . import hybrid
    x, out = _tensor(ctx, op, op.inputs[0]), _tensor(ctx, op, op.outputs[0])
    if hybrid.is_hybrid(ctx, op):
        return _lower_hybrid_svdf(ctx, op, x, out)
    wf, wt = _weights(ctx, op, op.inputs[1]), _weights(ctx, op, op.inputs[2])
    rank = int(op.options.get("rank", 0))
    if len(x.shape) != 2 or len(wf.shape) != 2 or len(wt.shape) != 2:
        raise UnsupportedOpError(op.kind, op.index, f"input {x.shape}, weights {wf.shape} and {wt.shape}")
    (batch, depth), (filters, memory) = x.shape, wt.shape
    if rank <= 0 or filters % rank or wf.shape != (filters, depth) or out.size != batch * filters // rank:
        raise UnsupportedOpError(op.kind, op.index, f"inconsistent shapes (rank {rank}, input {x.shape}, "
                                 f"weights {wf.shape} and {wt.shape}, output {out.shape})")
    code = op.options.get("fused_activation_function", 0)
    if code not in (0, 1, 2, 3):  # ApplyActivationToVector's tanh / sigmoid are Eigen's
        raise UnsupportedOpError(op.kind, op.index, f"fused activation code {code} (tinycc takes the clamping ones)")
    state = _state(ctx, op, op.inputs[4], batch * filters * memory)
    units = filters // rank
    bias = _float_bias(ctx, op, op.inputs[3], units)
    tflm = ctx.mode == "double"
    if tflm and bias is None:
        raise UnsupportedOpError(op.kind, op.index, "a float SVDF without a bias under --rounding double: TFLM's "
                                 "float SVDF reads the bias regardless (it crashes); compile with --rounding litert")
    lo, hi = _activation(op)
    name = kernel_name(ctx, op)
    func = KX.svdf(batch, depth, filters, memory, rank, bias is not None, lo, hi, tflm)
    args = [x.index, Const(f"{name}_feature_weights", wf.data.astype(np.float32)),
            Const(f"{name}_time_weights", wt.data.astype(np.float32)),
            Const(f"{name}_bias", np.zeros(units, np.float32) if bias is None else bias), state.index]
    order = "TFLM's order: plain sums, the bias first" if tflm else "LiteRT's order: four-lane sums, the bias last"
    notes = [describe(ctx.graph, op), f"float32; {filters} filters of memory {memory}, rank {rank}: state shifted "
             f"left, newest entry the feature dot product; output the time-weight dot products summed over the "
             f"rank, and the bias ({order}); {_clamp_note(lo, hi)}"]
    return Kernel(name, op, func, args, out.index, batch * filters * (depth + memory), notes, state=[state.index])


def _lower_hybrid_svdf(ctx: LoweringContext, op: Operator, x, out) -> Kernel:
    """EvalHybridSVDF: int8 feature and time weights (per tensor) in a float SVDF, batch 1."""
    from ..fuse import Scratch
    g = ctx.graph
    wf, wt = g.tensor(op.inputs[1]), g.tensor(op.inputs[2])
    if wt.dtype != "int8" or wt.quant is None or any(t.quant.per_channel or np.any(t.quant.zero_point != 0)
                                                      for t in (wf, wt)):
        raise UnsupportedOpError(op.kind, op.index, "hybrid weights other than int8, per tensor and symmetric")
    rank = int(op.options.get("rank", 0))
    (batch, depth), (filters, memory) = x.shape, wt.shape
    if batch != 1 or rank <= 0 or filters % rank or wf.shape != (filters, depth) or out.size != filters // rank:
        raise UnsupportedOpError(op.kind, op.index, f"a hybrid SVDF other than batch 1 (rank {rank}, input "
                                 f"{x.shape}, weights {wf.shape} and {wt.shape})")
    if op.options.get("fused_activation_function", 0) not in (0, 1, 2, 3):
        raise UnsupportedOpError(op.kind, op.index, "a fused activation other than the clamping ones")
    state = _state(ctx, op, op.inputs[4], filters * memory)
    units = filters // rank
    bias = _float_bias(ctx, op, op.inputs[3], units)
    asym = bool(op.options.get("asymmetric_quantize_inputs", False))
    lo, hi = _activation(op)
    name = kernel_name(ctx, op)
    func = KX.svdf(1, depth, filters, memory, rank, bias is not None, lo, hi,
                   hybrid="asymmetric" if asym else "symmetric")
    time_weights = wt.data.astype(np.float32) * np.float32(wt.quant.scale[0])  # Eval's float_weights_time
    args = [x.index, Const(f"{name}_feature_weights", wf.data), Const(f"{name}_time_weights", time_weights),
            Const(f"{name}_bias", np.zeros(units, np.float32) if bias is None else bias),
            Const(f"{name}_scale", np.array([wf.quant.scale[0]], np.float32)),
            Const(f"{name}_row_sums", wf.data.astype(np.int32).sum(axis=1).astype(np.int32)),
            Scratch(f"{name}_scratch", np.zeros(depth, np.int8)), state.index]
    notes = [describe(g, op), f"hybrid SVDF: {filters} filters of memory {memory}, rank {rank}; the input quantized "
             f"({'asymmetric' if asym else 'symmetric'}), int8 feature weights, int32 sums scaled to float; float "
             f"time weights; LiteRT's four-lane sums; {_clamp_note(lo, hi)}"]
    k = Kernel(name, op, func, args, out.index, filters * (depth + memory), notes, state=[state.index])
    k.scratch_bytes = depth
    return k


def lower_lstm(ctx: LoweringContext, op: Operator) -> Kernel:
    """lstm_eval's float LSTM, batch 1, no CIFG, peephole, projection or layer norm."""
    ins = lstm_inputs(op)
    x, out = _tensor(ctx, op, ins[_LSTM_INPUT]), _tensor(ctx, op, op.outputs[0])
    wx = [_weights(ctx, op, ins[_LSTM_W_INPUT + k]) for k in range(4)]
    wh = [_weights(ctx, op, ins[_LSTM_W_RECURRENT + k]) for k in range(4)]
    n_cell, n_input = wx[0].shape
    steps, batch = lstm_steps(op, x)
    if batch != 1 or x.shape[-1] != n_input or out.size != steps * n_cell or \
            any(w.shape != (n_cell, n_input) for w in wx) or any(w.shape != (n_cell, n_cell) for w in wh):
        raise UnsupportedOpError(op.kind, op.index, f"shapes other than batch 1 without projection "
                                 f"(input {x.shape}, {n_cell} cells, output {out.shape})")
    bias = [_float_bias(ctx, op, ins[_LSTM_BIAS + k], n_cell) for k in range(4)]
    if any(b is None for b in bias):
        raise UnsupportedOpError(op.kind, op.index, "an LSTM without gate biases")
    h = _state(ctx, op, ins[_LSTM_OUTPUT_STATE], n_cell)
    c = _state(ctx, op, ins[_LSTM_CELL_STATE], n_cell)
    clip = float(np.float32(op.options.get("cell_clip", 0.0)))
    name = kernel_name(ctx, op)
    args = [x.index, Const(f"{name}_input_weights", np.concatenate([w.data for w in wx]).astype(np.float32)),
            Const(f"{name}_recurrent_weights", np.concatenate([w.data for w in wh]).astype(np.float32)),
            Const(f"{name}_bias", np.concatenate(bias)), h.index, c.index]
    notes = [describe(ctx.graph, op), f"float32; {steps} steps, {n_cell} cells; sigmoid and tanh from libm "
             f"(expf, tanhf){f'; cell clip {clip:g}' if clip > 0 else ''}"]
    return Kernel(name, op, KX.lstm(steps, n_input, n_cell, clip), args, out.index,
                  steps * 4 * n_cell * (n_input + n_cell), notes, state=[h.index, c.index])


def _hybrid_or_float(hybrid_fn, kind: str):
    """The hybrid lowering when the weights are int8 (dynamic-range quantization), else the
    float32 one."""
    from . import float32, hybrid

    def lower(ctx: LoweringContext, op: Operator) -> Kernel:
        return hybrid_fn(ctx, op) if hybrid.is_hybrid(ctx, op) else float32.LOWERINGS[kind](ctx, op)
    return lower


def _hybrid_table():
    from . import hybrid
    return {"FULLY_CONNECTED": _hybrid_or_float(hybrid.lower_fully_connected, "FULLY_CONNECTED"),
            "CONV_2D": _hybrid_or_float(hybrid.lower_conv, "CONV_2D"),
            "DEPTHWISE_CONV_2D": _hybrid_or_float(hybrid.lower_conv, "DEPTHWISE_CONV_2D")}


LOWERINGS = {"TRANSPOSE_CONV": lower_transpose_conv, "SVDF": lower_svdf,
             "UNIDIRECTIONAL_SEQUENCE_LSTM": lower_lstm, **_hybrid_table()}
