"""Reads an int8 .onnx model (through the `onnx` package) into a Graph; a float32 model (no
QuantizeLinear or QLinear operator) goes to onnx_float, which shares this reader's helpers.

Two quantized forms are read, as onnxruntime's `quantize_static` writes them:

- QDQ: float operators between DequantizeLinear and QuantizeLinear nodes. Each group
  DQ -> op -> Q becomes one quantized operator: the DQ of a constant gives a quantized
  constant (weights, int32 biases), the DQ of an activation is the int8 tensor itself, and the
  Q consuming the operator's output gives the output's quantization. This is the grouping
  onnxruntime's graph optimizer makes when it fuses QDQ groups into QLinear kernels.
- QOperator: QLinearConv, QLinearMatMul and com.microsoft QGemm, QLinearAdd, QLinearMul,
  QLinearAveragePool, QLinearGlobalAveragePool, QLinearConcat, QLinearLeakyRelu,
  QLinearSoftmax, with their
  scales and zero points as inputs.

Operators get TFLite builtin names and TFLite-style options, so the integer lowerings are
shared; tinycc.lower.onnxruntime supplies onnxruntime's arithmetic where it differs.

Layout: ONNX tensors are NCHW, tinycc's lowerings NHWC. Weights are transposed here; every 4-D
activation is kept NHWC inside the model. The library's input and output keep the ONNX
model's own shape, dtype and byte order (the bytes onnxruntime takes and returns): a 4-D
input is quantized then transposed NCHW -> NHWC by a kernel, a 4-D output transposed back,
and a Flatten or Reshape of a 4-D activation with a spatial extent first restores the NCHW
order that it flattens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir import Graph, Operator, Quant, Tensor

TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)
SAME, VALID = 0, 1


def load(path: Path) -> Graph:
    import onnx
    from google.protobuf.message import DecodeError

    data = path.read_bytes()
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{path.name} is truncated or corrupt: cannot parse it as ONNX "
                         f"({type(exc).__name__}: {exc})") from None
    if not model.graph.node:
        raise ModelError(f"{path.name} has no ONNX graph (no nodes): the file is corrupt or of "
                         "another format")
    return _Reader(model, path.stem, Graph.digest(data)).read()


@dataclass
class _QConst:
    """A quantized constant: the integer data in ONNX layout and its quantization."""

    data: np.ndarray
    quant: Quant | None


class _Reader:
    def __init__(self, model, name: str, digest: str):
        import onnx.numpy_helper as nh

        self.model, self.g = model, model.graph
        self.name, self.digest = name, digest
        self.tensors: list[Tensor] = []
        self.ops: list[Operator] = []
        self.consts: dict[str, np.ndarray] = {i.name: nh.to_array(i) for i in self.g.initializer}
        self.acts: dict[str, int] = {}  # ONNX value name -> IR tensor (int8 activations)
        self.qconsts: dict[str, _QConst] = {}  # ONNX value name -> quantized constant
        self.consumers: dict[str, list[int]] = {}
        for k, node in enumerate(self.g.node):
            for i in node.input:
                self.consumers.setdefault(i, []).append(k)
        self.done: set[int] = set()
        self.node_index = 0
        self.inputs: list[int] = []
        self.quantized_inputs: dict = {}
        self.aliases: dict[str, list[str]] = {}
        self.uint8_model = any(self.consts.get(n.input[2], np.zeros(0, np.int8)).dtype == np.uint8
                               for n in self.g.node if n.op_type == "QuantizeLinear" and len(n.input) > 2)
        self.outputs: list[int] = []
        self.act_dtype = "int8"  # float32 in a float model (see onnx_float)

    # --- the graph -----------------------------------------------------------------------

    def read(self) -> Graph:
        graph_inputs = {i.name for i in self.g.input} - set(self.consts)
        self.float_inputs = {i.name: i for i in self.g.input if i.name in graph_inputs}
        self.graph_outputs = {o.name for o in self.g.output}
        kinds = {n.op_type for n in self.g.node}
        if not any(k == "QuantizeLinear" or k.startswith("QLinear") for k in kinds):
            from .onnx_float import read_float  # a float32 model: no QuantizeLinear or QLinear operator
            return read_float(self)
        for k, node in enumerate(self.g.node):
            if k in self.done:
                continue
            self.node_index = k
            handler = _HANDLERS.get(node.op_type)
            if handler is None:
                raise UnsupportedOpError(node.op_type, k, "tinycc has no ONNX import for it")
            handler(self, node)
        missing = [o for o in self.graph_outputs if not any(self.tensors[t].name == o for t in self.outputs)]
        if missing:
            raise UnsupportedOpError("(graph output)", len(self.g.node),
                                     f"output '{missing[0]}' is not a DequantizeLinear of an int8 "
                                     "tensor; tinycc compiles quantized (QDQ or QOperator) models")
        return Graph(name=self.name, tensors=self.tensors, operators=self.ops, inputs=self.inputs,
                     outputs=self.outputs, source_sha256=self.digest, source_format="onnx")

    def unsupported(self, node, detail: str):
        return UnsupportedOpError(node.op_type, self.node_index, detail)

    def tensor(self, name, shape, dtype, quant=None, data=None) -> int:
        t = Tensor(index=len(self.tensors), name=name, shape=tuple(int(d) for d in shape),
                   dtype=dtype, quant=quant, data=data)
        self.tensors.append(t)
        return t.index

    def op(self, kind: str, inputs: list[int], outputs: list[int], node, **options) -> Operator:
        options.setdefault("onnx_node", f"{node.op_type} node {self.node_index} ('{node.name}')")
        options.setdefault("onnx_op", (node.op_type, self.node_index))  # what errors name
        # onnxruntime on x86 runs a QDQ model's int8 activations as uint8 (QDQS8ToU8Transformer),
        # and a uint8 model as it is: where a zero point enters float arithmetic, the uint8
        # kernels round differently from the int8 ones
        options.setdefault("uint8_kernel", self.uint8_model or node.op_type not in _INT8_KERNELS)
        op = Operator(index=len(self.ops), kind=kind, inputs=inputs, outputs=outputs, options=options)
        self.ops.append(op)
        return op

    def const_tensor(self, name: str, data: np.ndarray, quant=None) -> int:
        return self.tensor(name, data.shape, str(data.dtype), quant, np.ascontiguousarray(data))

    # --- values ------------------------------------------------------------------------------

    def const(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.unsupported(node, f"its {what} '{name}' is not a constant")
        return self.consts[name]

    def quant_of(self, node, scale_name: str, zp_name: str | None, axis: int | None = None) -> Quant:
        scale = np.asarray(self.const(node, scale_name, "scale"), dtype=np.float32).reshape(-1)
        if zp_name:
            zp_arr = self.const(node, zp_name, "zero point")
            if zp_arr.dtype not in (np.int8, np.int32, np.uint8):
                raise self.unsupported(node, f"zero point of type {zp_arr.dtype}; tinycc compiles int8 "
                                       "and uint8 models")
            # uint8 activations are held as int8 with values and zero point moved down by 128:
            # the same real numbers, and the same results (see uint8_kernel)
            zp = zp_arr.astype(np.int64).reshape(-1) - (128 if zp_arr.dtype == np.uint8 else 0)
        else:
            zp = np.zeros(1, np.int64)
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
            raise self.unsupported(node, "a scale that is not a positive finite number")
        return Quant(scale=scale, zero_point=np.broadcast_to(zp, scale.shape).copy(),
                     axis=int(axis or 0))

    def act(self, node, name: str) -> int:
        if name not in self.acts:
            if name in self.qconsts or name in self.consts:
                raise self.unsupported(node, f"constant operand '{name}' where tinycc needs an activation")
            raise self.unsupported(node, f"input '{name}' is not an int8 tensor (a float operator "
                                   "outside QuantizeLinear/DequantizeLinear?)")
        return self.acts[name]

    def qconst(self, node, name: str) -> _QConst:
        if name in self.qconsts:
            return self.qconsts[name]
        raise self.unsupported(node, f"'{name}' is not a quantized constant")

    def shape(self, t: int) -> tuple[int, ...]:
        return self.tensors[t].shape

    def quant(self, t: int) -> Quant:
        return self.tensors[t].quant

    def new_act(self, name: str, shape, quant: Quant | None) -> int:
        t = self.tensor(name, shape, self.act_dtype, quant)
        self.acts[name] = t
        for other in self.aliases.pop(name, []):  # the duplicated Qs of DedicatedQDQPair
            self.acts[other] = t
        return t

    def output_of(self, node) -> tuple[str, Quant]:
        """The QDQ output: the QuantizeLinear that consumes the float result (or its identical
        copies, one per consumer with DedicatedQDQPair), which this operator then absorbs
        (onnxruntime's fusion of the group)."""
        out = node.output[0]
        users = self.consumers.get(out, [])
        qs = [self.g.node[u] for u in users]
        if out in self.graph_outputs or not qs or any(q.op_type != "QuantizeLinear" for q in qs):
            raise self.unsupported(node, "its float output does not go to QuantizeLinear only; "
                                   "tinycc compiles quantized models only")
        quants = [self.quant_of(q, q.input[1], q.input[2] if len(q.input) > 2 else None) for q in qs]
        if any(q.scalar() != quants[0].scalar() for q in quants):
            raise self.unsupported(node, "its output is quantized in two different ways")
        self.done.update(users)
        self.aliases[qs[0].output[0]] = [q.output[0] for q in qs[1:]]
        return qs[0].output[0], quants[0]

    def transpose(self, node, src: int, perm, name: str) -> int:
        shape = tuple(self.shape(src)[p] for p in perm)
        out = self.tensor(name, shape, self.tensors[src].dtype, self.quant(src))
        perm_t = self.const_tensor(f"{name}/perm", np.array(perm, np.int32))
        self.op("TRANSPOSE", [src, perm_t], [out], node)
        return out

    def to_onnx_layout(self, node, t: int, name: str) -> int:
        """The bytes of t in ONNX's order: NHWC -> NCHW for a 4-D tensor with H*W > 1."""
        shape = self.shape(t)
        if len(shape) == 4 and shape[1] * shape[2] > 1 and shape[3] > 1:
            return self.transpose(node, t, TO_NCHW, name)
        return t


# --- the node handlers ----------------------------------------------------------------------

def _attrs(node) -> dict:
    import onnx.helper as oh
    return {a.name: oh.get_attribute_value(a) for a in node.attribute}


def _quantize_linear(r: _Reader, node):
    x, y = node.input[0], node.output[0]
    quant = r.quant_of(node, node.input[1], node.input[2] if len(node.input) > 2 else None)
    if quant.per_channel:
        raise r.unsupported(node, "per-channel quantization of an activation")
    if (x, quant.scalar()) in r.quantized_inputs:  # a duplicated QuantizeLinear (DedicatedQDQPair)
        r.acts[y] = r.quantized_inputs[(x, quant.scalar())]
        return
    if x in r.float_inputs:
        if r.inputs:
            raise r.unsupported(node, "a second quantization of the model's input")
        vi = r.float_inputs[x]
        ttype = vi.type.tensor_type
        if ttype.elem_type != 1:
            raise r.unsupported(node, "a model input that is not float32")
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in ttype.shape.dim]
        if any(d <= 0 for d in dims):
            raise r.unsupported(node, f"input '{x}' has a dynamic shape {dims}; export with fixed shapes")
        src = r.tensor(x, dims, "float32")
        r.inputs.append(src)
        if len(dims) == 4:
            q = r.tensor(y + "/nchw", dims, "int8", quant)
            r.op("QUANTIZE", [src], [q], node)
            r.acts[y] = r.transpose(node, q, TO_NHWC, y)
        else:
            r.op("QUANTIZE", [src], [r.new_act(y, dims, quant)], node)
        r.quantized_inputs[(x, quant.scalar())] = r.acts[y]
        return
    if x in r.acts:  # DQ -> Q: a requantization, or nothing with the same quantization
        src = r.acts[x]
        if r.quant(src).scalar() == quant.scalar():
            r.acts[y] = src
        else:
            r.op("QUANTIZE", [src], [r.new_act(y, r.shape(src), quant)], node)
        return
    if x in r.consts and r.consts[x].dtype == np.float32:  # a quantized float constant
        scale, zp = quant.scalar()
        with np.errstate(over="ignore", invalid="ignore"):
            q = np.rint(r.consts[x].astype(np.float32) / np.float32(scale)) + zp
        r.consts[y] = np.clip(q, -128, 127).astype(np.int8)
        return
    raise r.unsupported(node, f"input '{x}' is neither the model's float input nor an int8 tensor")


def _dequantize_linear(r: _Reader, node):
    q, y = node.input[0], node.output[0]
    a = _attrs(node)
    if q in r.consts:
        data = r.consts[q]
        if data.dtype == np.uint8 and data.size == 1:  # a uint8 model's scalar, held as int8
            data = (data.astype(np.int16) - 128).astype(np.int8)
        if data.dtype not in (np.int8, np.int32):
            raise r.unsupported(node, f"constant of type {data.dtype}; int8 weights and int32 biases only "
                                "(quantize weights with QuantType.QInt8)")
        axis = a.get("axis", 1)
        quant = r.quant_of(node, node.input[1], node.input[2] if len(node.input) > 2 else None,
                           axis % max(data.ndim, 1))
        r.qconsts[y] = _QConst(data, quant)
        return
    src = r.act(node, q)
    if y in r.graph_outputs:
        onnx_order = r.to_onnx_layout(node, src, q + "/nchw")
        out = r.tensor(y, _onnx_shape(r, src), "float32")
        r.op("DEQUANTIZE", [onnx_order], [out], node)
        r.outputs.append(out)
        return
    r.acts[y] = src  # the int8 tensor stands for its dequantized value


def _onnx_shape(r: _Reader, t: int) -> tuple[int, ...]:
    s = r.shape(t)
    return (s[0], s[3], s[1], s[2]) if len(s) == 4 else s


def _pads(r, node, a, in_hw, kernel, strides, dilations):
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = list(a.get("pads", [0, 0, 0, 0]))
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i in range(2):
            out = -(-in_hw[i] // strides[i])
            total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_hw[i], 0)
            small = total // 2
            pads[i], pads[i + 2] = (small, total - small) if auto == "SAME_UPPER" else (total - small, small)
    else:
        raise r.unsupported(node, f"auto_pad {auto}")
    if len(pads) != 4 or min(pads) < 0:
        raise r.unsupported(node, f"pads {pads} (2-D operators only)")
    out = [(in_hw[i] + pads[i] + pads[i + 2] - ((kernel[i] - 1) * dilations[i] + 1)) // strides[i] + 1
           for i in range(2)]
    return pads, out


def _window(r, node, x: int, kernel):
    a = _attrs(node)
    if len(r.shape(x)) != 4:
        raise r.unsupported(node, f"{len(r.shape(x))}-D input (2-D images, NCHW, only)")
    strides = list(a.get("strides", [1, 1]))
    dilations = list(a.get("dilations", [1, 1]))
    if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2:
        raise r.unsupported(node, "only 2-D windows are supported")
    _, h, w, _ = r.shape(x)
    pads, out = _pads(r, node, a, (h, w), kernel, strides, dilations)
    if a.get("ceil_mode", 0):
        raise r.unsupported(node, "ceil_mode=1")
    if min(out) < 1:
        raise r.unsupported(node, f"empty output {out}")
    return a, strides, dilations, pads, out


def _conv(r: _Reader, node, x: int, w: _QConst, bias: _QConst | None, out_name: str, out_quant: Quant):
    if w.data.dtype != np.int8 or w.data.ndim != 4 or w.quant is None:
        raise r.unsupported(node, "weights that are not 4-D int8 (2-D convolutions only)")
    if np.any(w.quant.zero_point != 0):
        raise r.unsupported(node, "weights with a non-zero zero point (quantize weights symmetrically)")
    m, cg, kh, kw = w.data.shape
    a, strides, dilations, pads, (oh, ow) = _window(r, node, x, [kh, kw])
    c = r.shape(x)[3]
    group = int(a.get("group", 1))
    if group == 1 and cg == c:
        kind, weights, axis = "CONV_2D", w.data.transpose(0, 2, 3, 1), 0
    elif group == c and cg == 1 and m % c == 0:
        kind, weights, axis = "DEPTHWISE_CONV_2D", w.data.reshape(m, kh, kw).transpose(1, 2, 0)[None], 3
    else:
        raise r.unsupported(node, f"grouped convolution (group {group}, {c} input channels)")
    if w.quant.per_channel and w.quant.axis != 0:
        raise r.unsupported(node, f"weights quantized along axis {w.quant.axis}")
    wq = Quant(w.quant.scale, w.quant.zero_point, axis)
    inputs = [x, r.const_tensor(node.input[1] if node.op_type == "Conv" else node.input[3],
                                np.ascontiguousarray(weights), wq)]
    if bias is not None:
        inputs.append(r.const_tensor(f"{out_name}/bias", bias.data.astype(np.int32).reshape(-1), bias.quant))
    out = r.new_act(out_name, (1, oh, ow, m), out_quant)
    r.op(kind, inputs, [out], node, padding=VALID, explicit_padding=(pads[0], pads[1]),
         stride_h=strides[0], stride_w=strides[1], dilation_h_factor=dilations[0],
         dilation_w_factor=dilations[1], fused_activation_function=0, depth_multiplier=m // c)


def _fully_connected(r: _Reader, node, x: int, w: np.ndarray, wq: Quant, bias: _QConst | None,
                     out_name: str, out_quant: Quant):
    """x [..., K] times w [N, K]^T (+ bias) -> [..., N]."""
    if w.dtype != np.int8 or w.ndim != 2:
        raise r.unsupported(node, "weights that are not a 2-D int8 constant")
    if np.any(wq.zero_point != 0):
        raise r.unsupported(node, "weights with a non-zero zero point (quantize weights symmetrically)")
    n, k = w.shape
    xs = r.shape(x)
    if len(xs) == 4:
        raise r.unsupported(node, "a 4-D input (flatten it first)")
    if xs[-1] != k:
        raise r.unsupported(node, f"input {xs} against weights of depth {k}")
    inputs = [x, r.const_tensor(f"{out_name}/weights", np.ascontiguousarray(w), wq)]
    if bias is not None:
        if bias.data.size != n:
            raise r.unsupported(node, f"a bias of {bias.data.size} values for {n} outputs")
        inputs.append(r.const_tensor(f"{out_name}/bias", bias.data.astype(np.int32).reshape(-1), bias.quant))
    out = r.new_act(out_name, (*xs[:-1], n), out_quant)
    r.op("FULLY_CONNECTED", inputs, [out], node, fused_activation_function=0, weights_format=0,
         keep_num_dims=True)


def _gemm_attrs(r, node):
    a = _attrs(node)
    if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
        raise r.unsupported(node, "transA, alpha or beta other than 0, 1, 1")
    return a.get("transB", 0)


def _weights_nk(r, node, w: _QConst, trans_b: int) -> tuple[np.ndarray, Quant]:
    """Gemm/MatMul's B as [N, K] with its per-column quantization on axis 0."""
    data = w.data if trans_b else w.data.T
    q = w.quant
    if q.per_channel and q.axis != (0 if trans_b else 1):
        raise r.unsupported(node, "weights quantized along the reduction axis")
    return np.ascontiguousarray(data), Quant(q.scale, q.zero_point, 0)


def _pool(r: _Reader, node, x: int, out_name: str, out_quant: Quant):
    a = _attrs(node)
    kernel = list(a.get("kernel_shape", []))
    if list(a.get("dilations", [1, 1])) != [1, 1]:
        raise r.unsupported(node, "dilated pooling")
    a, strides, _, pads, (oh, ow) = _window(r, node, x, kernel)
    kind = "MAX_POOL_2D" if node.op_type == "MaxPool" else "AVERAGE_POOL_2D"
    if kind == "AVERAGE_POOL_2D" and a.get("count_include_pad", 0) and any(pads):
        raise r.unsupported(node, "count_include_pad=1 with padding")
    shape = (1, oh, ow, r.shape(x)[3])
    requantize = kind == "MAX_POOL_2D" and r.quant(x).scalar() != out_quant.scalar()
    # a DQ -> MaxPool -> Q group with a new scale, which onnxruntime runs in float: the
    # maximum, then the requantization of that value (a table; it is monotonic)
    out = (r.tensor(out_name + "/max", shape, "int8", r.quant(x)) if requantize
           else r.new_act(out_name, shape, out_quant))
    r.op(kind, [x], [out], node, padding=VALID, explicit_padding=(pads[0], pads[1]),
         filter_height=kernel[0], filter_width=kernel[1], stride_h=strides[0], stride_w=strides[1],
         fused_activation_function=0)
    if requantize:
        r.op("QUANTIZE", [out], [r.new_act(out_name, shape, out_quant)], node)


def _global_average_pool(r: _Reader, node, x: int, out_name: str, out_quant: Quant):
    if len(r.shape(x)) != 4:
        raise r.unsupported(node, "input that is not 4-D")
    n, _, _, c = r.shape(x)
    axes = r.const_tensor(f"{out_name}/axes", np.array([1, 2], np.int32))
    r.op("MEAN", [x, axes], [r.new_act(out_name, (n, 1, 1, c), out_quant)], node, keep_dims=True)


def _reshape(r: _Reader, node, x: int, out_name: str, shape):
    if len(shape) == 4 and any(d != 1 for d in shape[2:]):
        raise r.unsupported(node, f"a reshape to 4-D {list(shape)}")
    src = r.to_onnx_layout(node, x, out_name + "/nchw")
    if len(shape) == 4:
        shape = (shape[0], 1, 1, shape[1])  # NCHW with a 1x1 image: the same bytes in NHWC
    out = r.new_act(out_name, shape, r.quant(src))
    r.op("RESHAPE", [src], [out], node)


def _reshape_shape(r, node, x: int) -> tuple[int, ...]:
    onnx_shape = _onnx_shape(r, x)
    total = int(np.prod(onnx_shape))
    if node.op_type == "Flatten":
        axis = _attrs(node).get("axis", 1) % max(len(onnx_shape), 1)
        return (int(np.prod(onnx_shape[:axis])), int(np.prod(onnx_shape[axis:])))
    if node.op_type in ("Squeeze", "Unsqueeze"):
        axes = _attrs(node).get("axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = r.const(node, node.input[1], "axes").reshape(-1).tolist()
        if node.op_type == "Squeeze":
            axes = [a % len(onnx_shape) for a in (axes if axes is not None else
                                                  [i for i, d in enumerate(onnx_shape) if d == 1])]
            return tuple(d for i, d in enumerate(onnx_shape) if i not in axes)
        if axes is None:
            raise r.unsupported(node, "Unsqueeze without axes")
        rank = len(onnx_shape) + len(axes)
        axes = sorted(a % rank for a in axes)
        it = iter(onnx_shape)
        return tuple(1 if i in axes else next(it) for i in range(rank))
    target = [int(d) for d in r.const(node, node.input[1], "shape").reshape(-1)]
    target = [onnx_shape[i] if d == 0 else d for i, d in enumerate(target)]
    if target.count(-1) == 1:
        known = int(np.prod([d for d in target if d != -1]))
        target[target.index(-1)] = total // known
    if int(np.prod(target)) != total:
        raise r.unsupported(node, f"reshape {list(onnx_shape)} -> {target}")
    return tuple(target)


def _binary_add(r: _Reader, node, a: int, b: int, out_name: str, out_quant: Quant):
    if r.shape(a) != r.shape(b):
        raise r.unsupported(node, f"broadcasting {r.shape(a)} + {r.shape(b)}")
    r.op("ADD", [a, b], [r.new_act(out_name, r.shape(a), out_quant)], node, fused_activation_function=0)


def _operand(r: _Reader, node, name: str, scale_zp: tuple | None = None) -> int:
    """An activation, or a scalar int8 constant (a Mul by a constant)."""
    if name in r.acts:
        return r.acts[name]
    if scale_zp is not None and name in r.consts:  # QLinearMul: the constant with its scale inputs
        c = _QConst(r.consts[name], r.quant_of(node, *scale_zp))
    elif name in r.qconsts:
        c = r.qconsts[name]
    else:
        return r.act(node, name)
    if c.data.dtype == np.uint8 and c.quant is not None:  # a uint8 model's constant, held as int8
        c = _QConst((c.data.astype(np.int16) - 128).astype(np.int8), c.quant)
    if c.data.size != 1 or c.data.dtype != np.int8 or c.quant is None or c.quant.per_channel:
        raise r.unsupported(node, f"constant operand '{name}' other than an int8 scalar")
    return r.const_tensor(name, c.data.reshape(1).astype(np.int8), c.quant)


def _binary_mul(r: _Reader, node, a: int, b: int, out_name: str, out_quant: Quant):
    sa, sb = r.shape(a), r.shape(b)
    if sa != sb and sa != (1,) and sb != (1,):
        raise r.unsupported(node, f"broadcasting {sa} * {sb}")
    shape = sa if sa != (1,) else sb
    r.op("MUL", [a, b], [r.new_act(out_name, shape, out_quant)], node, fused_activation_function=0)


def _concat(r: _Reader, node, xs: list[int], out_name: str, out_quant: Quant):
    rank = len(r.shape(xs[0]))
    axis = _attrs(node).get("axis", 1) % rank
    if rank == 4:
        axis = {0: 0, 1: 3, 2: 1, 3: 2}[axis]
    parts = []
    for k, x in enumerate(xs):
        if r.quant(x).scalar() != (out_quant.scale[0], out_quant.zero_point[0]):
            y = r.tensor(f"{out_name}/requantized{k}", r.shape(x), "int8", out_quant)
            r.op("QUANTIZE", [x], [y], node)  # onnxruntime requantizes that input by table
            x = y
        parts.append(x)
    shape = list(r.shape(parts[0]))
    shape[axis] = sum(r.shape(p)[axis] for p in parts)
    r.op("CONCATENATION", parts, [r.new_act(out_name, shape, out_quant)], node, axis=axis,
         fused_activation_function=0)


def _unary(r: _Reader, node, x: int, out_name: str, out_quant: Quant):
    """Relu, Clip, LeakyRelu: one int8 -> int8 table, computed as onnxruntime computes the
    group in float (dequantize, the function, QuantizeLinear)."""
    a = _attrs(node)
    if node.op_type == "Relu":
        kind, opts = "RELU", {"min": 0.0, "max": None}
    elif node.op_type == "Clip":
        lo = float(r.const(node, node.input[1], "min")) if len(node.input) > 1 and node.input[1] else float("-inf")
        hi = float(r.const(node, node.input[2], "max")) if len(node.input) > 2 and node.input[2] else float("inf")
        kind, opts = "RELU", {"min": lo, "max": hi}
    elif node.op_type.endswith("Sigmoid"):
        kind, opts = "LOGISTIC", {}
    elif node.op_type == "Tanh":
        kind, opts = "TANH", {}
    else:
        kind, opts = "LEAKY_RELU", {"alpha": float(a.get("alpha", 0.01))}
    r.op(kind, [x], [r.new_act(out_name, r.shape(x), out_quant)], node, **opts)


def _softmax(r: _Reader, node, x: int, out_name: str, out_quant: Quant):
    axis = _attrs(node).get("axis", -1)
    rank = len(r.shape(x))
    if rank == 4 or axis % rank != rank - 1:
        raise r.unsupported(node, "softmax over an axis other than the last of a 2-D or 3-D tensor")
    r.op("SOFTMAX", [x], [r.new_act(out_name, r.shape(x), out_quant)], node, beta=1.0)


# QDQ: float operators whose operands are dequantized int8 tensors or constants


def _qdq_operands(r: _Reader, node):
    out_name, out_quant = r.output_of(node)
    return out_name, out_quant


def _qdq_conv(r, node):
    x = r.act(node, node.input[0])
    w = r.qconst(node, node.input[1])
    bias = r.qconst(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    _conv(r, node, x, w, bias, *_qdq_operands(r, node))


def _qdq_gemm(r, node):
    trans_b = _gemm_attrs(r, node) if node.op_type == "Gemm" else 0
    x = r.act(node, node.input[0])
    w, wq = _weights_nk(r, node, r.qconst(node, node.input[1]), trans_b)
    bias = r.qconst(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    _fully_connected(r, node, x, w, wq, bias, *_qdq_operands(r, node))


def _qdq_pool(r, node):
    _pool(r, node, r.act(node, node.input[0]), *_qdq_operands(r, node))


def _qdq_global_average_pool(r, node):
    _global_average_pool(r, node, r.act(node, node.input[0]), *_qdq_operands(r, node))


def _with_scalar(r, node) -> bool:
    """Add, Sub, Mul or Div of an activation and a scalar constant: onnxruntime folds the
    constant's DequantizeLinear and runs the group in float, a function of one int8 value (a
    table). Returns False when neither operand is a scalar constant."""
    scalars = [_float_scalar(r, i) for i in node.input]
    if scalars[0] is None and scalars[1] is None:
        return False
    k = 0 if scalars[1] is not None else 1  # the activation's position
    x = r.act(node, node.input[k])
    out_name, out_quant = _qdq_operands(r, node)
    kind = {"Add": "ADD", "Sub": "SUB", "Mul": "MUL", "Div": "DIV"}[node.op_type]
    r.op(kind, [x], [r.new_act(out_name, r.shape(x), out_quant)], node, float_scalar=scalars[1 - k],
         scalar_first=k == 1)
    return True


def _qdq_add(r, node):
    if _with_scalar(r, node):
        return
    _binary_add(r, node, r.act(node, node.input[0]), r.act(node, node.input[1]), *_qdq_operands(r, node))


def _qdq_sub_div(r, node):
    if not _with_scalar(r, node):
        raise r.unsupported(node, "only with a scalar constant operand")


def _float_scalar(r, name: str):
    """The float32 value of a scalar constant operand: as it is, or dequantized."""
    c = r.consts.get(name)
    if c is not None and c.dtype == np.float32 and c.size == 1:
        return float(c.reshape(-1)[0])
    q = r.qconsts.get(name)
    if q is not None and q.data.size == 1 and q.quant is not None and q.data.dtype == np.int8:
        scale, zp = q.quant.scalar()
        return float(np.float32(np.float32(int(q.data.reshape(-1)[0]) - zp) * scale))
    return None


def _qdq_mul(r, node):
    if _with_scalar(r, node):
        return
    _binary_mul(r, node, _operand(r, node, node.input[0]), _operand(r, node, node.input[1]), *_qdq_operands(r, node))


def _qlinear_mul(r, node):
    a = _operand(r, node, node.input[0], (node.input[1], node.input[2]))
    b = _operand(r, node, node.input[3], (node.input[4], node.input[5]))
    if node.input[0] in r.acts:
        _check_input_quant(r, node, a, 1, 2)
    if node.input[3] in r.acts:
        _check_input_quant(r, node, b, 4, 5)
    _binary_mul(r, node, a, b, node.output[0], r.quant_of(node, node.input[6], node.input[7]))


def _qdq_concat(r, node):
    _concat(r, node, [r.act(node, i) for i in node.input], *_qdq_operands(r, node))


def _qdq_unary(r, node):
    _unary(r, node, r.act(node, node.input[0]), *_qdq_operands(r, node))


def _qdq_softmax(r, node):
    _softmax(r, node, r.act(node, node.input[0]), *_qdq_operands(r, node))


def _reshape_node(r, node):
    """Reshape, Flatten: the same bytes (after restoring ONNX's order); in a QDQ model the
    DQ -> Reshape -> Q group keeps its quantization, as onnxruntime drops such pairs."""
    x = r.act(node, node.input[0])
    shape = _reshape_shape(r, node, x)
    out = node.output[0]
    users = r.consumers.get(out, [])
    if users and all(r.g.node[u].op_type == "QuantizeLinear" for u in users):
        q_out, q = r.output_of(node)
        if q.scalar() != r.quant(x).scalar():
            raise r.unsupported(node, "the QuantizeLinear after it changes the quantization")
        out = q_out
    _reshape(r, node, x, out, shape)


# QOperator: integer operators with their quantization as inputs


def _qlinear_conv(r, node):
    x = r.act(node, node.input[0])
    _check_input_quant(r, node, x, 1, 2)
    wq = r.quant_of(node, node.input[4], node.input[5], 0)
    w = _QConst(r.const(node, node.input[3], "weights"), wq)
    bias = None
    if len(node.input) > 8 and node.input[8]:
        b = r.const(node, node.input[8], "bias")
        bias = _QConst(b, None)
    _conv(r, node, x, w, bias, node.output[0], r.quant_of(node, node.input[6], node.input[7]))


def _qlinear_matmul(r, node):
    x = r.act(node, node.input[0])
    _check_input_quant(r, node, x, 1, 2)
    if node.op_type == "QGemm":
        trans_b = _gemm_attrs(r, node)
        bias_name = node.input[6] if len(node.input) > 6 else ""
        y_scale, y_zp = (node.input[7], node.input[8]) if len(node.input) > 8 else (None, None)
        if not y_scale:
            raise r.unsupported(node, "a float output (no output scale)")
    else:
        trans_b, bias_name, (y_scale, y_zp) = 0, "", (node.input[6], node.input[7])
    b = r.const(node, node.input[3], "weights")
    wq = r.quant_of(node, node.input[4], node.input[5], (0 if trans_b else 1) if b.ndim == 2 else 0)
    w, wq = _weights_nk(r, node, _QConst(b, wq), trans_b)
    bias = _QConst(r.const(node, bias_name, "bias"), None) if bias_name else None
    _fully_connected(r, node, x, w, wq, bias, node.output[0], r.quant_of(node, y_scale, y_zp))


def _check_input_quant(r, node, x: int, scale_i: int, zp_i: int):
    q = r.quant_of(node, node.input[scale_i], node.input[zp_i] if len(node.input) > zp_i else None)
    if q.scalar() != r.quant(x).scalar():
        raise r.unsupported(node, "its input quantization differs from its producer's")


def _qlinear_add(r, node):
    a, b = r.act(node, node.input[0]), r.act(node, node.input[3])
    _check_input_quant(r, node, a, 1, 2)
    _check_input_quant(r, node, b, 4, 5)
    _binary_add(r, node, a, b, node.output[0], r.quant_of(node, node.input[6], node.input[7]))


def _qlinear_global_average_pool(r, node):
    if _attrs(node).get("channels_last", 0):
        raise r.unsupported(node, "channels_last=1")
    x = r.act(node, node.input[0])
    _check_input_quant(r, node, x, 1, 2)
    _global_average_pool(r, node, x, node.output[0], r.quant_of(node, node.input[3], node.input[4]))


def _qlinear_average_pool(r, node):
    if _attrs(node).get("channels_last", 0):
        raise r.unsupported(node, "channels_last=1")
    x = r.act(node, node.input[0])
    _check_input_quant(r, node, x, 1, 2)
    _pool(r, node, x, node.output[0], r.quant_of(node, node.input[3], node.input[4]))


def _qlinear_concat(r, node):
    out_quant = r.quant_of(node, node.input[0], node.input[1])
    xs = []
    for k in range(2, len(node.input), 3):
        x = r.act(node, node.input[k])
        _check_input_quant(r, node, x, k + 1, k + 2)
        xs.append(x)
    _concat(r, node, xs, node.output[0], out_quant)


def _qlinear_softmax(r, node):
    x = r.act(node, node.input[0])
    _check_input_quant(r, node, x, 1, 2)
    _softmax(r, node, x, node.output[0], r.quant_of(node, node.input[3], node.input[4]))


def _qlinear_leaky_relu(r, node):
    x = r.act(node, node.input[0])
    _check_input_quant(r, node, x, 1, 2)
    _unary(r, node, x, node.output[0], r.quant_of(node, node.input[3], node.input[4]))


def _max_pool_int8(r, node):
    """MaxPool: on int8 directly (QOperator), or in a DQ -> MaxPool -> Q group."""
    x = r.act(node, node.input[0])
    users = r.consumers.get(node.output[0], [])
    if users and all(r.g.node[u].op_type == "QuantizeLinear" for u in users):
        _qdq_pool(r, node)
        return
    _pool(r, node, x, node.output[0], r.quant(x))


def _constant(r, node):
    import onnx.numpy_helper as nh
    a = {attr.name: attr for attr in node.attribute}
    if "value" not in a:
        raise r.unsupported(node, "a Constant without a tensor value")
    r.consts[node.output[0]] = nh.to_array(a["value"].t)


# QOperator nodes and the model's edges, which onnxruntime runs on int8 as they are
_INT8_KERNELS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd",
                 "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearConcat",
                 "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax"}

_HANDLERS = {
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
    "Constant": _constant,
    "Conv": _qdq_conv,
    "Gemm": _qdq_gemm,
    "MatMul": _qdq_gemm,
    "MaxPool": _max_pool_int8,
    "AveragePool": _qdq_pool,
    "GlobalAveragePool": _qdq_global_average_pool,
    "Add": _qdq_add,
    "Mul": _qdq_mul,
    "Sub": _qdq_sub_div,
    "Div": _qdq_sub_div,
    "QLinearMul": _qlinear_mul,
    "Concat": _qdq_concat,
    "Relu": _qdq_unary,
    "Clip": _qdq_unary,
    "LeakyRelu": _qdq_unary,
    "Sigmoid": _qdq_unary,
    "Tanh": _qdq_unary,
    "Softmax": _qdq_softmax,
    "Reshape": _reshape_node,
    "Flatten": _reshape_node,
    "Squeeze": _reshape_node,
    "Unsqueeze": _reshape_node,
    "QLinearConv": _qlinear_conv,
    "QLinearMatMul": _qlinear_matmul,
    "QGemm": _qlinear_matmul,
    "QLinearAdd": _qlinear_add,
    "QLinearGlobalAveragePool": _qlinear_global_average_pool,
    "QLinearConcat": _qlinear_concat,
    "QLinearAveragePool": _qlinear_average_pool,
    "QLinearLeakyRelu": _qlinear_leaky_relu,
    "QLinearSigmoid": _qlinear_leaky_relu,
    "QLinearSoftmax": _qlinear_softmax,
}
