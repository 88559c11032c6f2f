"""Reads a float32 .onnx model (no QuantizeLinear or QLinear operator) into a Graph of float32
operators, which tinycc.lower.float32 compiles (TFLite's reference float kernels).

The reader is onnx_reader's, with float32 activations: the same layout rules (weights
transposed to OHWC / 1HWC, 4-D activations NHWC inside the model, the library's input and
output in the ONNX model's own NCHW shape, a Flatten or Reshape restoring ONNX's order) and the
same window geometry (explicit pads). Operators: Conv (plain, or depthwise: group = channels),
Gemm / MatMul with a constant B, Add / Sub / Mul (of two activations, or an activation and a
constant that broadcasts), Relu, Clip to [0, 6] / [-1, 1] / [0, inf), LeakyRelu, Sigmoid, Tanh,
MaxPool, AveragePool, GlobalAveragePool, Softmax over the last axis, Reshape, Flatten, Squeeze,
Unsqueeze, Concat. Anything else is refused by name and index.

onnxruntime's float kernels (MLAS) sum in another order, with fused multiply-adds, and compute
exp / tanh / logistic with their own polynomials: the outputs agree within
verify.ONNX_FLOAT_TOLERANCE, not bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph
from .onnx_reader import (TO_NHWC, VALID, _attrs, _gemm_attrs, _onnx_shape, _Reader, _reshape,
                          _reshape_shape, _window)

F32 = "float32"


def read_float(r: _Reader) -> Graph:
    r.act_dtype = F32
    for k, node in enumerate(r.g.node):
        r.node_index = k
        handler = _HANDLERS.get(node.op_type)
        if handler is None:
            raise UnsupportedOpError(node.op_type, k, "tinycc has no float32 ONNX import for it")
        handler(r, node)
    for name in [o.name for o in r.g.output]:
        if name not in r.acts:
            raise UnsupportedOpError("(graph output)", len(r.g.node), f"output '{name}' is not computed "
                                     "from the model's input")
        r.outputs.append(_output(r, r.acts[name], name))
    return Graph(name=r.name, tensors=r.tensors, operators=r.ops, inputs=r.inputs,
                 outputs=r.outputs, source_sha256=r.digest, source_format="onnx")


def _output(r: _Reader, t: int, name: str) -> int:
    """The graph output in ONNX's shape and order (a 4-D one transposed back to NCHW)."""
    shape = r.shape(t)
    if len(shape) != 4:
        return t
    r.tensors[t].name = name + "/nhwc"
    node = r.g.node[-1]
    r.node_index = len(r.g.node) - 1
    src = r.to_onnx_layout(node, t, name + "/nchw") if len(shape) == 4 else t
    out = r.tensor(name, _onnx_shape(r, t) if len(shape) == 4 else shape, F32)
    r.op("RESHAPE", [src], [out], node)
    return out


def _act(r: _Reader, node, name: str) -> int:
    if name in r.acts:
        return r.acts[name]
    if name in r.consts:
        raise r.unsupported(node, f"constant operand '{name}' where tinycc needs an activation")
    vi = next((i for i in r.g.input if i.name == name), None)
    if vi is None:
        raise r.unsupported(node, f"input '{name}' is not computed by an earlier node")
    if r.inputs:
        raise r.unsupported(node, "a second model input (tinycc compiles models with one input)")
    ttype = vi.type.tensor_type
    if ttype.elem_type != 1:
        raise r.unsupported(node, f"model input '{name}' is not float32")
    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in ttype.shape.dim]
    if any(d <= 0 for d in dims):
        raise r.unsupported(node, f"input '{name}' has a dynamic shape {dims}; export with fixed shapes")
    src = r.tensor(name, dims, F32)
    r.inputs.append(src)
    r.acts[name] = r.transpose(node, src, TO_NHWC, name + "/nhwc") if len(dims) == 4 else src
    return r.acts[name]


def _float_const(r: _Reader, node, name: str, what: str) -> np.ndarray:
    c = r.const(node, name, what)
    if c.dtype != np.float32:
        raise r.unsupported(node, f"its {what} '{name}' is {c.dtype}, not float32")
    return c


def _conv(r: _Reader, node):
    x = _act(r, node, node.input[0])
    w = _float_const(r, node, node.input[1], "weights")
    if w.ndim != 4:
        raise r.unsupported(node, "weights that are not 4-D (2-D convolutions only)")
    m, cg, kh, kw = w.shape
    a, strides, dilations, pads, (oh, ow) = _window(r, node, x, [kh, kw])
    c = r.shape(x)[3]
    group = int(a.get("group", 1))
    if group == 1 and cg == c:
        kind, weights = "CONV_2D", w.transpose(0, 2, 3, 1)
    elif group == c and cg == 1 and m % c == 0:
        kind, weights = "DEPTHWISE_CONV_2D", w.reshape(m, kh, kw).transpose(1, 2, 0)[None]
    else:
        raise r.unsupported(node, f"grouped convolution (group {group}, {c} input channels)")
    out_name = node.output[0]
    inputs = [x, r.const_tensor(node.input[1], np.ascontiguousarray(weights))]
    if len(node.input) > 2 and node.input[2]:
        inputs.append(r.const_tensor(f"{out_name}/bias", _float_const(r, node, node.input[2], "bias").reshape(-1)))
    r.op(kind, inputs, [r.new_act(out_name, (1, oh, ow, m), None)], node, padding=VALID,
         explicit_padding=(pads[0], pads[1]), stride_h=strides[0], stride_w=strides[1],
         dilation_h_factor=dilations[0], dilation_w_factor=dilations[1], fused_activation_function=0,
         depth_multiplier=m // c)


def _gemm(r: _Reader, node):
    trans_b = _gemm_attrs(r, node) if node.op_type == "Gemm" else 0
    x = _act(r, node, node.input[0])
    b = _float_const(r, node, node.input[1], "weights")
    if b.ndim != 2:
        raise r.unsupported(node, "weights that are not a 2-D constant")
    w = np.ascontiguousarray(b if trans_b else b.T)  # [N, K]
    n, k = w.shape
    xs = r.shape(x)
    if len(xs) == 4 or xs[-1] != k:
        raise r.unsupported(node, f"input {xs} against weights of depth {k} (flatten a 4-D input first)")
    out_name = node.output[0]
    inputs = [x, r.const_tensor(f"{out_name}/weights", w)]
    if len(node.input) > 2 and node.input[2]:
        bias = _float_const(r, node, node.input[2], "bias")
        if bias.size != n:
            raise r.unsupported(node, f"a bias of {bias.size} values for {n} outputs")
        inputs.append(r.const_tensor(f"{out_name}/bias", bias.reshape(-1)))
    r.op("FULLY_CONNECTED", inputs, [r.new_act(out_name, (*xs[:-1], n), None)], node,
         fused_activation_function=0, weights_format=0, keep_num_dims=True)


def _operand(r: _Reader, node, name: str, like: int) -> int:
    """An activation, or a float constant in the layout of the activation `like`."""
    if name in r.acts or name not in r.consts:
        return _act(r, node, name)
    c = _float_const(r, node, name, "operand")
    rank = len(r.shape(like))
    if c.size == 1:
        return r.const_tensor(name, c.reshape(1))
    if rank == 4:  # ONNX broadcasts NCHW: [C, 1, 1], [1, C, 1, 1], ... -> NHWC
        if c.ndim > 4:
            raise r.unsupported(node, f"constant {c.shape} against a 4-D activation")
        c = c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(TO_NHWC)
    return r.const_tensor(name, np.ascontiguousarray(c))


def _binary(r: _Reader, node):
    first = next((i for i in node.input if i not in r.consts), None)
    if first is None:
        raise r.unsupported(node, "two constant operands")
    like = _act(r, node, first)
    a, b = (_operand(r, node, i, like) for i in node.input)
    sa, sb = r.shape(a), r.shape(b)
    if len(sa) != len(sb) and 4 in (len(sa), len(sb)) and all(i in r.acts for i in node.input):
        raise r.unsupported(node, f"broadcasting a 4-D activation against {min(sa, sb, key=len)}")
    rank = max(len(sa), len(sb))
    pa, pb = (1,) * (rank - len(sa)) + sa, (1,) * (rank - len(sb)) + sb
    if any(p != q and 1 not in (p, q) for p, q in zip(pa, pb)):
        raise r.unsupported(node, f"broadcasting {sa} and {sb}")
    shape = tuple(max(p, q) for p, q in zip(pa, pb))
    kind = {"Add": "ADD", "Sub": "SUB", "Mul": "MUL"}[node.op_type]
    r.op(kind, [a, b], [r.new_act(node.output[0], shape, None)], node, fused_activation_function=0)


def _unary(r: _Reader, node):
    x = _act(r, node, node.input[0])
    opts = {}
    if node.op_type == "Clip":
        lo = float(_float_const(r, node, node.input[1], "min")) if len(node.input) > 1 and node.input[1] else None
        hi = float(_float_const(r, node, node.input[2], "max")) if len(node.input) > 2 and node.input[2] else None
        a = _attrs(node)  # opset < 11: the bounds are attributes
        lo, hi = float(a["min"]) if "min" in a else lo, float(a["max"]) if "max" in a else hi
        kind = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get((lo, hi))
        if kind is None:
            raise r.unsupported(node, f"Clip to [{lo}, {hi}] (float32: [0, 6], [-1, 1] or [0, inf) only)")
    elif node.op_type == "LeakyRelu":
        kind, opts = "LEAKY_RELU", {"alpha": float(_attrs(node).get("alpha", 0.01))}
    else:
        kind = {"Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH"}[node.op_type]
    r.op(kind, [x], [r.new_act(node.output[0], r.shape(x), None)], node, **opts)


def _pool(r: _Reader, node):
    x = _act(r, node, node.input[0])
    a = _attrs(node)
    kernel = list(a.get("kernel_shape", []))
    if list(a.get("dilations", [1, 1])) != [1, 1]:
        raise r.unsupported(node, "dilated pooling")
    if len(node.output) > 1 and node.output[1]:
        raise r.unsupported(node, "MaxPool's indices output")
    a, strides, _, pads, (oh, ow) = _window(r, node, x, kernel)
    kind = "MAX_POOL_2D" if node.op_type == "MaxPool" else "AVERAGE_POOL_2D"
    if kind == "AVERAGE_POOL_2D" and a.get("count_include_pad", 0) and any(pads):
        raise r.unsupported(node, "count_include_pad=1 with padding")
    r.op(kind, [x], [r.new_act(node.output[0], (1, oh, ow, r.shape(x)[3]), None)], node, padding=VALID,
         explicit_padding=(pads[0], pads[1]), filter_height=kernel[0], filter_width=kernel[1],
         stride_h=strides[0], stride_w=strides[1], fused_activation_function=0)


def _global_average_pool(r: _Reader, node):
    x = _act(r, node, node.input[0])
    if len(r.shape(x)) != 4:
        raise r.unsupported(node, "input that is not 4-D")
    n, _, _, c = r.shape(x)
    axes = r.const_tensor(f"{node.output[0]}/axes", np.array([1, 2], np.int32))
    r.op("MEAN", [x, axes], [r.new_act(node.output[0], (n, 1, 1, c), None)], node, keep_dims=True)


def _softmax(r: _Reader, node):
    x = _act(r, node, node.input[0])
    rank = len(r.shape(x))
    opset = next((o.version for o in r.model.opset_import if o.domain in ("", "ai.onnx")), 13)
    axis = _attrs(node).get("axis", -1 if opset >= 13 else 1)  # before 13: flattened from axis
    if rank == 4 or axis % rank != rank - 1:
        raise r.unsupported(node, "softmax over an axis other than the last of a 2-D or 3-D tensor")
    r.op("SOFTMAX", [x], [r.new_act(node.output[0], r.shape(x), None)], node, beta=1.0)


def _reshape_node(r: _Reader, node):
    x = _act(r, node, node.input[0])
    _reshape(r, node, x, node.output[0], _reshape_shape(r, node, x))


def _concat(r: _Reader, node):
    xs = [_act(r, node, i) for i in node.input]
    rank = len(r.shape(xs[0]))
    axis = _attrs(node).get("axis", 1) % rank
    if rank == 4:
        axis = {0: 0, 1: 3, 2: 1, 3: 2}[axis]
    shape = list(r.shape(xs[0]))
    shape[axis] = sum(r.shape(x)[axis] for x in xs)
    r.op("CONCATENATION", xs, [r.new_act(node.output[0], shape, None)], node, axis=axis,
         fused_activation_function=0)


def _constant(r: _Reader, node):
    from .onnx_reader import _constant as constant
    constant(r, node)


_HANDLERS = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _gemm,
    "Add": _binary, "Sub": _binary, "Mul": _binary,
    "Relu": _unary, "Clip": _unary, "LeakyRelu": _unary, "Sigmoid": _unary, "Tanh": _unary,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_average_pool,
    "Softmax": _softmax, "Reshape": _reshape_node, "Flatten": _reshape_node, "Squeeze": _reshape_node,
    "Unsqueeze": _reshape_node, "Concat": _concat, "Constant": _constant,
}
