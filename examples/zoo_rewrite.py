"""Flatbuffer rewrites for zoo models whose operators today's converter will not emit.

`quantize_float_islands`: the converter leaves some operators in float (DEQUANTIZE -> ELU ->
QUANTIZE) although TFLite has int8 kernels for them; the rewrite runs them on the int8
tensors directly.

TFLiteConverter turns a SPACE_TO_BATCH_ND -> DEPTHWISE_CONV_2D -> BATCH_TO_SPACE_ND chain into
one dilated DEPTHWISE_CONV_2D (and trips over some of them), but older converters and
tf.nn.atrous_conv2d graphs still carry the chain. `unfold_dilation` writes it back: every
dilated convolution of a converted model becomes the chain TensorFlow's
SpaceToBatchND-based dilation uses (required_space_to_batch_paddings: the SAME padding
plus whatever makes the padded size a multiple of the block, cropped again afterwards),
with the batched intermediate tensors quantized like the tensors they stand for. The
rewritten model is checked by the reference interpreter like any other zoo model.
"""

from __future__ import annotations

import copy

import flatbuffers
import numpy as np
from tensorflow.lite.python import schema_py_generated as fb

CONVS = {fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.DEPTHWISE_CONV_2D}


def _opcode(model, code: int) -> int:
    for k, oc in enumerate(model.operatorCodes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
            return k
    oc = fb.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), 1
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _const(model, sg, name: str, values) -> int:
    buf = fb.BufferT()
    buf.data = np.asarray(values, np.int32).tobytes()
    model.buffers.append(buf)
    t = fb.TensorT()
    t.name, t.type, t.buffer = name.encode(), fb.TensorType.INT32, len(model.buffers) - 1
    t.shape = list(np.asarray(values).shape)
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _like(sg, index: int, name: str, shape) -> int:
    t = copy.deepcopy(sg.tensors[index])
    t.name, t.shape, t.shapeSignature = name.encode(), list(shape), None
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _pack(model) -> bytes:
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def quantize_float_islands(data: bytes) -> bytes:
    """DEQUANTIZE -> op -> QUANTIZE, which the converter writes for an operator it will not
    quantize (ELU, ABS, ...), becomes the op itself on the int8 tensors: its input is the
    DEQUANTIZE's input, its output the QUANTIZE's output."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    sg = model.subgraphs[0]

    def code(op):
        oc = model.operatorCodes[op.opcodeIndex]
        return max(oc.builtinCode, oc.deprecatedBuiltinCode)
    producer = {o: op for op in sg.operators for o in op.outputs}
    drop = set()
    for op in sg.operators:
        if code(op) in (fb.BuiltinOperator.DEQUANTIZE, fb.BuiltinOperator.QUANTIZE):
            continue
        deq = [producer.get(i) for i in op.inputs]
        users = [u for u in sg.operators if op.outputs[0] in u.inputs]
        if (not deq or any(d is None or code(d) != fb.BuiltinOperator.DEQUANTIZE for d in deq)
                or len(users) != 1 or code(users[0]) != fb.BuiltinOperator.QUANTIZE):
            continue
        op.inputs = [d.inputs[0] for d in deq]
        op.outputs = list(users[0].outputs)
        oc = model.operatorCodes[op.opcodeIndex]
        oc.version = max(oc.version, 2)  # the int8 version of these operators
        drop.update(id(d) for d in deq)
        drop.add(id(users[0]))
    sg.operators = [op for op in sg.operators if id(op) not in drop]
    return _pack(model)


def unfold_dilation(data: bytes) -> bytes:
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    sg = model.subgraphs[0]
    s2b_code = _opcode(model, fb.BuiltinOperator.SPACE_TO_BATCH_ND)
    b2s_code = _opcode(model, fb.BuiltinOperator.BATCH_TO_SPACE_ND)
    ops = []
    for k, op in enumerate(sg.operators):
        oc = model.operatorCodes[op.opcodeIndex]
        opts = op.builtinOptions
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) not in CONVS or \
                (opts.dilationHFactor, opts.dilationWFactor) == (1, 1):
            ops.append(op)
            continue
        x, w, y = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]], sg.tensors[op.outputs[0]]
        block = [opts.dilationHFactor, opts.dilationWFactor]
        pads, crops = [], []
        for a in range(2):
            size, k_size = x.shape[1 + a], w.shape[1 + a]
            total = (k_size - 1) * block[a] if opts.padding == fb.Padding.SAME else 0
            before, after = total // 2, total - total // 2
            extra = -(size + total) % block[a]
            pads.append([before, after + extra])
            crops.append([0, extra])
        hb = [(x.shape[1 + a] + sum(pads[a])) // block[a] for a in range(2)]
        nb = block[0] * block[1]
        conv_out = [hb[a] - w.shape[1 + a] + 1 for a in range(2)]
        if opts.padding != fb.Padding.SAME:  # VALID: crop what the padding added
            crops = [[0, conv_out[a] * block[a] - y.shape[1 + a]] for a in range(2)]
        s2b_out = _like(sg, op.inputs[0], f"s2b_{k}", [nb, *hb, x.shape[3]])
        conv_y = _like(sg, op.outputs[0], f"batched_{k}", [nb, *conv_out, y.shape[3]])
        s2b = fb.OperatorT()
        s2b.opcodeIndex = s2b_code
        s2b.inputs = [op.inputs[0], _const(model, sg, f"block_{k}", block), _const(model, sg, f"pads_{k}", pads)]
        s2b.outputs = [s2b_out]
        s2b.builtinOptionsType = fb.BuiltinOptions.SpaceToBatchNDOptions
        s2b.builtinOptions = fb.SpaceToBatchNDOptionsT()
        conv = copy.deepcopy(op)
        conv.inputs = [s2b_out, *op.inputs[1:]]
        conv.outputs = [conv_y]
        conv.builtinOptions.dilationHFactor = conv.builtinOptions.dilationWFactor = 1
        conv.builtinOptions.padding = fb.Padding.VALID
        b2s = fb.OperatorT()
        b2s.opcodeIndex = b2s_code
        b2s.inputs = [conv_y, _const(model, sg, f"block2_{k}", block), _const(model, sg, f"crops_{k}", crops)]
        b2s.outputs = list(op.outputs)
        b2s.builtinOptionsType = fb.BuiltinOptions.BatchToSpaceNDOptions
        b2s.builtinOptions = fb.BatchToSpaceNDOptionsT()
        ops += [s2b, conv, b2s]
    sg.operators = ops
    return _pack(model)


def _int32_tensor(sg, name: str, shape) -> int:
    t = fb.TensorT()
    t.name, t.type, t.shape = name.encode(), fb.TensorType.INT32, list(shape)
    t.buffer = 0
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _op(model, code: int, inputs, outputs, options_type=0, options=None):
    op = fb.OperatorT()
    op.opcodeIndex = _opcode(model, code)
    op.inputs, op.outputs = list(inputs), list(outputs)
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def restore_shape_ops(data: bytes) -> bytes:
    """The converter writes tf.expand_dims, tf.squeeze and a reshape to [tf.shape(x)[0], ...]
    as plain RESHAPEs with constant shapes. The rewrite gives each RESHAPE that adds a unit axis
    back as EXPAND_DIMS, each that drops one as SQUEEZE, and the last one's shape is computed
    again as a SHAPE -> STRIDED_SLICE -> PACK chain (the batch taken from the tensor's own
    shape), which tinycc must fold to a constant."""
    model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    sg = model.subgraphs[0]
    ops = []
    for k, op in enumerate(sg.operators):
        oc = model.operatorCodes[op.opcodeIndex]
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) != fb.BuiltinOperator.RESHAPE:
            ops.append(op)
            continue
        src, dst = list(sg.tensors[op.inputs[0]].shape), list(sg.tensors[op.outputs[0]].shape)
        if len(dst) == len(src) + 1:
            axis = next(a for a in range(len(dst)) if dst[:a] + dst[a + 1:] == src and dst[a] == 1)
            ops.append(_op(model, fb.BuiltinOperator.EXPAND_DIMS,
                           [op.inputs[0], _const(model, sg, f"axis_{k}", [axis])], op.outputs,
                           fb.BuiltinOptions.ExpandDimsOptions, fb.ExpandDimsOptionsT()))
        elif len(src) == len(dst) + 1:
            axis = next(a for a in range(len(src)) if src[:a] + src[a + 1:] == dst and src[a] == 1)
            options = fb.SqueezeOptionsT()
            options.squeezeDims = [axis]
            ops.append(_op(model, fb.BuiltinOperator.SQUEEZE, [op.inputs[0]], op.outputs,
                           fb.BuiltinOptions.SqueezeOptions, options))
            squeezed = op.outputs[0]
        else:
            ops.append(op)
    # the output again, reshaped to [shape(y)[0], rest...] through the shape chain
    y = squeezed
    rest = list(sg.tensors[y].shape[1:])
    shape = _int32_tensor(sg, "shape", [len(sg.tensors[y].shape)])
    batch = _int32_tensor(sg, "batch", [])
    packed = _int32_tensor(sg, "packed_shape", [1 + len(rest)])
    out = _like(sg, y, "reshaped", sg.tensors[y].shape)
    shape_options = fb.ShapeOptionsT()
    shape_options.outType = fb.TensorType.INT32
    slice_options = fb.StridedSliceOptionsT()
    slice_options.shrinkAxisMask = 1
    pack_options = fb.PackOptionsT()
    pack_options.valuesCount, pack_options.axis = 1 + len(rest), 0
    ops += [
        _op(model, fb.BuiltinOperator.SHAPE, [y], [shape], fb.BuiltinOptions.ShapeOptions, shape_options),
        _op(model, fb.BuiltinOperator.STRIDED_SLICE,
            [shape, _const(model, sg, "begin", [0]), _const(model, sg, "end", [1]), _const(model, sg, "strides", [1])],
            [batch], fb.BuiltinOptions.StridedSliceOptions, slice_options),
        _op(model, fb.BuiltinOperator.PACK, [batch] + [_const(model, sg, f"dim_{a}", d) for a, d in enumerate(rest)],
            [packed], fb.BuiltinOptions.PackOptions, pack_options),
        _op(model, fb.BuiltinOperator.RESHAPE, [y, packed], [out]),
    ]
    sg.operators = ops
    sg.outputs = [out]
    return _pack(model)
