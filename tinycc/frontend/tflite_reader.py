"""Reads a .tflite flatbuffer (through the `tflite` package's generated classes) into a Graph."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from ..errors import ModelError, TinyccError
from ..ir import Graph, Operator, Quant, Tensor
from .control_flow import inline_if
from .fold import fold_constants
from .variables import resolve_resource_variables

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_OPTION_CLASSES = {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}
_DTYPES = {
    TensorType.FLOAT32: "float32", TensorType.FLOAT16: "float16", TensorType.INT32: "int32",
    TensorType.UINT8: "uint8", TensorType.INT64: "int64", TensorType.BOOL: "bool",
    TensorType.INT16: "int16", TensorType.INT8: "int8", TensorType.FLOAT64: "float64",
    TensorType.UINT32: "uint32", TensorType.UINT16: "uint16", TensorType.RESOURCE: "resource",
}
_SKIP_GETTERS = ("GetRootAs",)


def load(path: Path) -> Graph:
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{path.name} is not a TFLite model (no 'TFL3' identifier); "
                         "the file is corrupt or of another format")
    try:
        return _read(data, path.stem)
    except TinyccError:  # a clear error of ours (ModelError, UnsupportedOpError)
        raise
    except Exception as exc:  # the flatbuffer reader fails in many ways on damaged input
        raise ModelError(f"{path.name} is truncated or corrupt: cannot read its flatbuffer "
                         f"({type(exc).__name__}: {exc})") from None


def _read(data: bytes, name: str) -> Graph:
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise ModelError("the model has no subgraph")
    sub = model.Subgraphs(0)
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
    tensors = [_tensor(sub.Tensors(i), i, buffers, data) for i in range(sub.TensorsLength())]
    ops = [_operator(model, sub.Operators(i), i) for i in range(sub.OperatorsLength())]
    n = len(tensors)
    for op in ops:
        for t in op.inputs + op.outputs:
            if t >= n:
                raise ModelError(f"operator {op.kind} at index {op.index} refers to tensor {t}, "
                                 f"but the model has {n}: the file is corrupt")
    graph = Graph(
        name=name, tensors=tensors, operators=ops,
        # older converters list an LSTM's state tensors among the inputs: they are state, not input
        inputs=[int(i) for i in sub.InputsAsNumpy() if not tensors[int(i)].is_variable],
        outputs=[int(i) for i in sub.OutputsAsNumpy()],
        source_sha256=Graph.digest(data), source_format="tflite",
    )
    if model.SubgraphsLength() > 1:
        graph.extra_subgraphs = model.SubgraphsLength() - 1
    if any(op.kind == "VAR_HANDLE" for op in ops):
        resolve_resource_variables(graph, lambda k: _subgraph(model, k, buffers, data))
    inline_if(graph, lambda k: _subgraph(model, k, buffers, data, with_io=True))
    fold_constants(graph)
    return graph


def _subgraph(model, k: int, buffers, data: bytes, with_io: bool = False) -> tuple:
    """Tensors and operators of subgraph k (CALL_ONCE's init subgraph, an IF's branch), and
    with_io, its input and output tensor indices."""
    if not 0 <= k < model.SubgraphsLength():
        raise ModelError(f"an operator names subgraph {k}, but the model has {model.SubgraphsLength()}")
    sub = model.Subgraphs(k)
    parts = ([_tensor(sub.Tensors(i), i, buffers, data) for i in range(sub.TensorsLength())],
             [_operator(model, sub.Operators(i), i) for i in range(sub.OperatorsLength())])
    if with_io:
        parts += ([int(i) for i in sub.InputsAsNumpy()], [int(i) for i in sub.OutputsAsNumpy()])
    return parts


def _tensor(t, index: int, buffers, data: bytes) -> Tensor:
    dtype = _DTYPES.get(t.Type())
    if dtype is None:
        raise ModelError(f"tensor {index} has an unknown element type code {t.Type()}")
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    q = t.Quantization()
    quant = None
    if q is not None and q.ScaleLength() > 0:
        quant = Quant(scale=q.ScaleAsNumpy().astype(np.float32),
                      zero_point=q.ZeroPointAsNumpy().astype(np.int64),
                      axis=int(q.QuantizedDimension()))
    const = None
    buf = buffers[t.Buffer()] if t.Buffer() < len(buffers) else None
    if buf is not None:
        raw = _buffer_bytes(buf, data)
        if raw is not None and len(raw):
            expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
            if len(raw) != expected:
                raise ModelError(f"tensor {index} ('{t.Name().decode(errors='replace')}') has "
                                 f"{len(raw)} bytes of data but its shape {shape} needs {expected}")
            const = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    variable = bool(t.IsVariable())
    if variable:  # TFLite's interpreter resets a variable tensor to its zero point, not to its buffer
        zp = int(quant.zero_point[0]) if quant is not None else 0
        const, initial = None, np.full(shape, zp, dtype=dtype)
    return Tensor(index=index, name=t.Name().decode(errors="replace"), shape=shape, dtype=dtype,
                  quant=quant, data=const, is_variable=variable,
                  initial=initial if variable else None)


def _buffer_bytes(buf, data: bytes) -> bytes | None:
    if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
        start, size = buf.Offset(), buf.Size()
        if start + size > len(data):
            raise ModelError("a weight buffer lies beyond the end of the file: the file is truncated")
        return data[start:start + size]
    if buf.DataLength() == 0:
        return None
    return buf.DataAsNumpy().tobytes()


def _operator(model, op, index: int) -> Operator:
    code = model.OperatorCodes(op.OpcodeIndex())
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    kind = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
    if kind == "CUSTOM":
        kind = f"CUSTOM({code.CustomCode().decode(errors='replace')})"
    options = _options(op)
    if op.IntermediatesLength():  # the integer LSTM's gate and hidden quantization
        options["intermediates"] = [int(i) for i in op.IntermediatesAsNumpy()]
    return Operator(index=index, kind=kind,
                    inputs=[int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else [],
                    outputs=[int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                    options=options)


def _options(op) -> dict:
    """Every scalar field of the operator's builtin options, as snake_case keys."""
    cls_name = _OPTION_CLASSES.get(op.BuiltinOptionsType())
    table = op.BuiltinOptions()
    if not cls_name or cls_name == "NONE" or table is None:
        return {}
    cls = getattr(getattr(tflite, cls_name), cls_name, None) or getattr(tflite, cls_name)
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    out = {}
    for attr in dir(cls):
        if attr.startswith("_") or attr == "Init" or attr.startswith(_SKIP_GETTERS) or attr.endswith(
                ("AsNumpy", "Length", "IsNone", "BufferHasIdentifier")):
            continue
        try:
            value = getattr(opts, attr)()
        except TypeError:
            continue
        out[re.sub(r"(?<!^)(?=[A-Z])", "_", attr).lower()] = value
    return out
