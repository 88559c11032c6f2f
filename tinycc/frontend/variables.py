"""Resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, CALL_ONCE) as variable tensors.

A streaming converter keeps state in resource variables: CALL_ONCE runs an init subgraph on the
first invoke (VAR_HANDLE + ASSIGN_VARIABLE of constants), then every invoke reads the variables
(READ_VARIABLE) and writes their new values (ASSIGN_VARIABLE). Each variable is named by its
VAR_HANDLE's (container, shared_name), whatever subgraph the handle is made in.

This pass evaluates the init subgraph at compile time and replaces every variable by one
variable tensor of the main graph (`Tensor.is_variable`, its value before the first run in
`Tensor.initial`). CALL_ONCE and VAR_HANDLE disappear; READ_VARIABLE reads the variable tensor
(inputs [variable]) and ASSIGN_VARIABLE writes it (inputs [variable, value]). Later stages see
only tensors: the memory planner keeps variable tensors for the whole run, at the start of the
arena, and the package writes `<name>_reset`, which stores the initial values.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir import Graph, Operator, Tensor


def _key(op: Operator) -> tuple[str, str]:
    def text(v):
        return v.decode(errors="replace") if isinstance(v, bytes) else str(v or "")
    return text(op.options.get("container")), text(op.options.get("shared_name"))


def _init_values(graph: Graph, read_subgraph) -> dict:
    """{variable key: constant tensor} from the init subgraph(s) that CALL_ONCE runs."""
    values = {}
    for call in [op for op in graph.operators if op.kind == "CALL_ONCE"]:
        tensors, ops = read_subgraph(int(call.options.get("init_subgraph_index", 0)))
        handles = {}
        for op in ops:
            if op.kind == "VAR_HANDLE":
                handles[op.outputs[0]] = _key(op)
            elif op.kind == "ASSIGN_VARIABLE" and op.inputs[0] in handles and \
                    tensors[op.inputs[1]].is_const:
                values[handles[op.inputs[0]]] = tensors[op.inputs[1]]
            else:
                raise UnsupportedOpError(
                    "CALL_ONCE", call.index,
                    f"its init subgraph runs {op.kind} (operator {op.index}); tinycc evaluates init "
                    "subgraphs that assign constants to variables")
    return values


def resolve_resource_variables(graph: Graph, read_subgraph) -> None:
    """Rewrite `graph` in place (the importer's last step); read_subgraph(k) -> (tensors, ops)."""
    init = _init_values(graph, read_subgraph)
    handle_key = {op.outputs[0]: _key(op) for op in graph.operators if op.kind == "VAR_HANDLE"}
    variables: dict[tuple, Tensor] = {}
    ops = []
    for op in graph.operators:
        if op.kind in ("CALL_ONCE", "VAR_HANDLE"):
            continue
        if op.kind in ("READ_VARIABLE", "ASSIGN_VARIABLE"):
            key = handle_key.get(op.inputs[0])
            if key is None:
                raise UnsupportedOpError(op.kind, op.index, "its resource does not come from a VAR_HANDLE")
            value = graph.tensor(op.outputs[0] if op.kind == "READ_VARIABLE" else op.inputs[1])
            var = variables.get(key) or _new_variable(graph, key, value, init, op)
            variables[key] = var
            if (var.shape, var.dtype) != (value.shape, value.dtype) or not _same_quant(var, value):
                raise UnsupportedOpError(op.kind, op.index,
                                         f"variable '{key[1]}' is {var.dtype} {var.shape} with one "
                                         f"quantization, '{value.name}' {value.dtype} {value.shape} "
                                         "with another")
            op.inputs = [var.index] + op.inputs[1:]
        elif any(graph.tensor(t).dtype == "resource" for t in op.inputs if t >= 0):
            raise UnsupportedOpError(op.kind, op.index, "it takes a resource variable")
        ops.append(op)
    graph.operators = ops


def _new_variable(graph: Graph, key, value: Tensor, init: dict, op: Operator) -> Tensor:
    start = init.get(key)
    if start is None:
        raise ModelError(f"variable '{key[1]}' (read by {op.kind} at index {op.index}) is never "
                         "initialised by a CALL_ONCE init subgraph")
    if start.shape != value.shape or start.dtype != value.dtype or not _same_quant(start, value):
        raise UnsupportedOpError("CALL_ONCE", op.index,
                                 f"variable '{key[1]}' starts as {start.dtype} {start.shape} but is "
                                 f"used as {value.dtype} {value.shape} (or with another quantization)")
    var = Tensor(index=len(graph.tensors), name=key[1] or f"variable_{len(graph.tensors)}",
                 shape=value.shape, dtype=value.dtype, quant=value.quant, is_variable=True,
                 initial=np.array(start.data, dtype=value.dtype).reshape(value.shape))
    graph.tensors.append(var)
    return var


def _same_quant(a: Tensor, b: Tensor) -> bool:
    if a.quant is None or b.quant is None:
        return a.quant is None and b.quant is None
    return (np.array_equal(a.quant.scale, b.quant.scale)
            and np.array_equal(a.quant.zero_point, b.quant.zero_point))
