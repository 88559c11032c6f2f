"""`--fuse-rows`: row-streamed execution of chains of layers (patch-based inference, as
MCUNetV2 does), a pass over the lowered step list.

It looks for convolution A -> convolution B (-> ADD with a shortcut), where A's output feeds
only B, and replaces the chain by one fused kernel (tinycc.kernels.fused) that computes A's
output a few rows at a time into a ring buffer and consumes them at once with B, storing B's
output rows (with the residual ADD applied) as soon as they are complete. A's full output,
and B's when an ADD follows, never exist: the peak of such a block falls from its input plus
two activations to about its input plus a few rows, since the output may take the input's
place (the planner proves that on the kernel's access trace, as for every kernel).

The shortcut of the ADD may be the chain's input itself (identity) or a 1x1 convolution of
it without padding (projection, as in ResNet's downsampling blocks), computed one output row
at a time inside the fused kernel too.

The ring, the im2col windows and the shortcut's row are the kernel's scratch buffer, which
the memory planner places in the arena for the duration of that one step (the `Scratch`
parameter; `scratch_bytes` on the kernel). What it costs: the fused kernel recomputes
nothing (each row of A is computed once) and calls the unfused layers' micro-kernels, so the
extra instructions are the ring's bookkeeping and the window rows' separate dot products
(ResNet-8 on the M4: 1.4% more than unfused).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import quant
from .kernels.fused import AddParams, ConvGeom, conv_conv_rows
from .lower import Alias, Const, Kernel
from .lower.conv import DoubledBias
from .lower.common import (
    LoweringContext,
    Scratch,
    activation_code,
    describe,
    padding,
    requant,
    snake,
)


@dataclass
class FusedKernel(Kernel):
    scratch_bytes: int = 0
    fused: list = field(default_factory=list)  # the kernels it replaces, in model order


def fuse_rows(graph, steps: list, prefix: str, rounding: str = "litert") -> list:
    """The step list with every eligible chain replaced by its fused kernel."""
    ctx = LoweringContext(graph, prefix, rounding)
    steps = list(steps)
    while True:
        chain = _find_chain(graph, steps)
        if chain is None:
            return steps
        fused = _build(ctx, graph, *chain)
        ids = {id(k) for k in fused.fused}
        last = max(i for i, s in enumerate(steps) if id(s) in ids)
        steps = [fused if i == last else s for i, s in enumerate(steps) if id(s) not in ids or i == last]


# --- pattern --------------------------------------------------------------------------------

def _readers(steps) -> dict:
    out: dict[int, list] = {}
    for s in steps:
        reads = [s.source] if isinstance(s, Alias) else [x for x in s.inputs if isinstance(x, int)]
        for t in dict.fromkeys(reads):
            out.setdefault(t, []).append(s)
    return out


def _plain_conv(graph, k, kernel_1x1: bool = False) -> bool:
    """A CONV_2D kernel this pass can stream: dilation 1, per-channel arrays (as lower_conv makes
    them); for the projection shortcut a 1x1 without padding."""
    if not isinstance(k, Kernel) or isinstance(k, FusedKernel) or k.func is None or k.op.kind != "CONV_2D":
        return False
    o = k.op.options
    if o.get("dilation_h_factor", 1) != 1 or o.get("dilation_w_factor", 1) != 1:
        return False
    if len([i for i in k.inputs if not isinstance(i, Scratch)]) != 5 or not isinstance(k.inputs[0], int):
        return False
    w = graph.tensor(k.op.inputs[1])
    if kernel_1x1:
        return w.shape[1] == 1 and w.shape[2] == 1 and _pads(graph, k) == (0, 0)
    return True


def _pads(graph, k) -> tuple[int, int]:
    x, w, out = (graph.tensor(k.op.inputs[0]), graph.tensor(k.op.inputs[1]), graph.tensor(k.op.outputs[0]))
    o = k.op.options
    pad = o.get("padding", 0)
    if o.get("explicit_padding"):  # ONNX pads
        return tuple(o["explicit_padding"])
    return (padding(pad, x.shape[1], w.shape[1], o.get("stride_h", 1), 1, out.shape[1]),
            padding(pad, x.shape[2], w.shape[2], o.get("stride_w", 1), 1, out.shape[2]))


def _find_chain(graph, steps):
    """(A, B, projection or None, ADD or None) of the first eligible chain, or None."""
    readers = _readers(steps)
    producer = {s.output: s for s in steps if isinstance(s, Kernel)}
    outputs = set(graph.outputs)

    def only_reader(t):
        r = readers.get(t, [])
        return r[0] if len(r) == 1 and t not in outputs else None
    for a in steps:
        if not _plain_conv(graph, a):
            continue
        b = only_reader(a.output)
        if not _plain_conv(graph, b) or b.inputs[0] != a.output:
            continue
        x = a.inputs[0]
        d = only_reader(b.output)
        if not isinstance(d, Kernel) or d.op.kind != "ADD" or isinstance(d, FusedKernel) or not _same_shape_add(graph, d):
            return a, b, None, None
        other = d.inputs[1] if d.inputs[0] == b.output else d.inputs[0]
        if other == b.output:
            return a, b, None, None
        if other == x:
            return a, b, None, d
        p = producer.get(other)
        if p is not None and _plain_conv(graph, p, kernel_1x1=True) and p.inputs[0] == x \
                and only_reader(p.output) is d:
            return a, b, p, d
        return a, b, None, None
    return None


def _same_shape_add(graph, d) -> bool:
    ts = [graph.tensor(i) for i in (*d.op.inputs[:2], d.op.outputs[0])]
    return (len(d.inputs) == 2 and all(isinstance(i, int) for i in d.inputs)
            and ts[0].shape == ts[1].shape == ts[2].shape and not any(t.is_const for t in ts))


# --- the fused kernel -----------------------------------------------------------------------

def _requant(ctx, graph, k):
    """(rq, [multipliers, shifts]) of a lowered CONV_2D as lower_conv computes them: TFLite's
    arrays, with the per-channel rounding constants where the lowered kernel has them."""
    from .lower.conv import small_accumulator, with_rounding_constants

    op = k.op
    x, w, out = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0]))
    rq, rq_consts, _ = requant(ctx, op, x, w, out, out.shape[3], arrays=True)
    if k.inputs[4].array.size == 2 * out.shape[3]:  # the lowered shift array holds (e, r) pairs
        wabs = np.abs(w.data.astype(np.int64)).sum(axis=(1, 2, 3))
        rq = small_accumulator(rq, wabs, k.inputs[2].array)
        rq, rq_consts = with_rounding_constants(rq, rq_consts)
    return rq, rq_consts


def _consts(ctx, graph, k) -> list:
    """Weights as in the model, the folded bias as lowered, multipliers and shifts in the
    lowered kernel's form (its weights may be padded rows, and it may have a scratch buffer)."""
    w = graph.tensor(k.op.inputs[1])
    weights = Const(k.inputs[1].name, w.data)  # OHWI as in the model, not the lowered layout
    bias = k.inputs[2]
    if isinstance(bias, DoubledBias):  # the lowered tiles' doubled windows: the fused kernel's are not
        bias = bias.halved()
    return [weights, bias, *_requant(ctx, graph, k)[1]]


def _geom(ctx, graph, k) -> ConvGeom:
    op = k.op
    x, w, out = (graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0]))
    # int16 windows where the lowered layer has them (its scratch: the int16 im2col) and
    # every run of a window is whole words
    wide = any(isinstance(i, Scratch) for i in k.inputs) and x.shape[3] % 4 == 0
    return ConvGeom(tuple(x.shape), tuple(w.shape), tuple(out.shape),
                    (op.options.get("stride_h", 1), op.options.get("stride_w", 1)), _pads(graph, k),
                    x.quant.scalar()[1], _requant(ctx, graph, k)[0], wide)


def _add_params(ctx, graph, d, conv_out: int) -> AddParams:
    """TFLite's ADD Prepare, as tinycc.lower.elementwise.lower_add computes it."""
    op = d.op
    a, b, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    (sa, za), (sb, zb), (so, zo) = a.quant.scalar(), b.quant.scalar(), out.quant.scalar()
    twice_max = float(np.float32(2) * max(sa, sb))
    r = ctx.rounding(op)
    m1, s1 = quant.quantize_multiplier(float(sa) / twice_max, r)
    m2, s2 = quant.quantize_multiplier(float(sb) / twice_max, r)
    mo, so_ = quant.quantize_multiplier(twice_max / ((1 << 20) * float(so)), r)
    lo, hi = quant.activation_range(activation_code(op), so, zo)
    return AddParams(za, zb, m1, s1, m2, s2, mo, so_, zo, lo, hi, r, op.inputs[0] == conv_out)


def _build(ctx, graph, a, b, p, d) -> FusedKernel:
    parts = [k for k in (a, b, p, d) if k is not None]
    name = ctx.prefix + "_fused_" + "_".join(f"{snake(k.op.kind)}_{k.op.index}" for k in parts)
    ga, gb = _geom(ctx, graph, a), _geom(ctx, graph, b)
    gp = _geom(ctx, graph, p) if p is not None else None
    add = _add_params(ctx, graph, d, b.output) if d is not None else None
    func, scratch_bytes = conv_conv_rows(ga, gb, gp, add)
    scratch = Scratch(f"{name}_scratch", np.zeros(scratch_bytes, np.int8))
    inputs = [a.inputs[0], *_consts(ctx, graph, a), *_consts(ctx, graph, b), *(_consts(ctx, graph, p) if p else []),
              scratch]
    last = d or b
    mid = graph.tensor(a.output)
    kh = gb.w_shape[1]
    gone = f"{mid.nbytes} bytes" + (f"; nor does #{b.op.index}'s, {graph.tensor(b.output).nbytes} bytes" if d else "")
    ops = ", ".join(f"{k.op.kind} #{k.op.index}" for k in parts)
    extra = " and the shortcut row" if p else ""
    notes = [f"row-streamed fusion (--fuse-rows) of {ops}",
             (f"the output of #{a.op.index} never exists whole ({gone}): its rows go through a ring of {kh} "
              f"rows in the arena scratch ({scratch_bytes} bytes with the im2col windows{extra}), "
              f"consumed at once by #{b.op.index}")]
    for k in parts:
        notes += [f"{describe(graph, k.op)}"] + [f"  {n}" for n in k.notes[1:]]
    if d is not None:
        shortcut = "the chain input" if p is None else f"CONV_2D #{p.op.index}, one row at a time"
        notes.append(f"the ADD's shortcut: {shortcut}")
    return FusedKernel(name, last.op, func, inputs, last.output, sum(k.macs for k in parts), notes,
                       scratch_bytes=scratch_bytes, fused=parts)
