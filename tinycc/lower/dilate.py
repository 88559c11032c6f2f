"""SPACE_TO_BATCH_ND -> CONV_2D / DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND as one dilated
convolution.

TensorFlow writes a dilated convolution this way (tf.nn.atrous_conv2d, older converters):
the input, padded with the zero point, is split into block_h x block_w interleaved
sub-images, each one convolved with a VALID, stride-1 convolution, and the results
interleaved back and cropped. Output (y, x) of that chain is
sum w[ky, kx] * padded[y + crop_top + ky * block_h, x + crop_left + kx * block_w]: a
convolution with dilation = block and padding top = pad_top - crop_top (left likewise), with
the zero point outside the input, which is what every convolution kernel here fills. The
chain is lowered as that one kernel at the convolution's place, reading the
SPACE_TO_BATCH_ND's input and writing the BATCH_TO_SPACE_ND's output: the two batched
tensors never exist. Any other arrangement is lowered operator by operator.
"""

from __future__ import annotations

import dataclasses

from ..ir import Graph, Operator

CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _producer(g: Graph, tensor: int) -> Operator | None:
    return next((op for op in g.operators if tensor in op.outputs), None)


def _only_consumer(g: Graph, tensor: int, kind) -> Operator | None:
    users = g.consumers(tensor)
    if len(users) != 1 or users[0].kind not in kind or users[0].inputs[0] != tensor or tensor in g.outputs:
        return None
    return users[0]


def _ints(g: Graph, index: int):
    t = g.tensor(index)
    return None if not t.is_const or t.dtype != "int32" else [int(v) for v in t.data.reshape(-1)]


def _same_quant(a, b) -> bool:
    return a.quant is not None and b.quant is not None and a.quant.scalar() == b.quant.scalar()


def chain(g: Graph, op: Operator):
    """(space_to_batch, conv, batch_to_space, (block_h, block_w), (pad_top, pad_left)) when
    `op` is part of a chain that folds into one dilated convolution, else None."""
    if op.kind == "SPACE_TO_BATCH_ND":
        s2b = op
    elif op.kind in CONVS:
        s2b = _producer(g, op.inputs[0])
    else:
        s2b = _producer(g, op.inputs[0])
        s2b = s2b and _producer(g, s2b.inputs[0])
    if s2b is None or s2b.kind != "SPACE_TO_BATCH_ND":
        return None
    conv = _only_consumer(g, s2b.outputs[0], CONVS)
    b2s = conv and _only_consumer(g, conv.outputs[0], ("BATCH_TO_SPACE_ND",))
    if b2s is None or op not in (s2b, conv, b2s):
        return None
    x, y = g.tensor(s2b.inputs[0]), g.tensor(b2s.outputs[0])
    block, pads, crops = _ints(g, s2b.inputs[1]), _ints(g, s2b.inputs[2]), _ints(g, b2s.inputs[2])
    o = conv.options
    if (len(x.shape) != 4 or x.shape[0] != 1 or y.shape[0] != 1 or block is None or len(block) != 2
            or block != _ints(g, b2s.inputs[1]) or pads is None or crops is None
            or (o.get("stride_h", 1), o.get("stride_w", 1), o.get("dilation_h_factor", 1),
                o.get("dilation_w_factor", 1), o.get("padding", 0)) != (1, 1, 1, 1, 1)
            or not _same_quant(x, g.tensor(s2b.outputs[0])) or not _same_quant(y, g.tensor(conv.outputs[0]))):
        return None
    top, left = pads[0] - crops[0], pads[2] - crops[2]
    if top < 0 or left < 0:
        return None
    return s2b, conv, b2s, tuple(block), (top, left)


def wrap(table: dict) -> dict:
    """The lowering table with the four operators of a chain folded (each one still lowered
    on its own when it is not part of a chain)."""
    def space_batch(ctx, op):
        return [] if chain(ctx.graph, op) else table[op.kind](ctx, op)

    def conv(ctx, op):
        found = chain(ctx.graph, op)
        if not found:
            return table[op.kind](ctx, op)
        s2b, _, b2s, (bh, bw), pad = found
        dilated = dataclasses.replace(
            op, inputs=[s2b.inputs[0], *op.inputs[1:]], outputs=list(b2s.outputs),
            options={**op.options, "dilation_h_factor": bh, "dilation_w_factor": bw, "explicit_padding": pad})
        kernel = table[op.kind](ctx, dilated)
        kernel.notes.append(f"{s2b.kind} #{s2b.index} and {b2s.kind} #{b2s.index} folded in: "
                            f"dilation {bh}x{bw}, padding top {pad[0]} left {pad[1]}")
        return kernel
    return {**table, "SPACE_TO_BATCH_ND": space_batch, "BATCH_TO_SPACE_ND": space_batch,
            "CONV_2D": conv, "DEPTHWISE_CONV_2D": conv}
