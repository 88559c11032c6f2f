"""Fold at import the operators whose result is known at compile time: FILL of constants,
ZEROS_LIKE (shapes are static, so its zeros always are), BROADCAST_ARGS of constant shapes and
BROADCAST_TO of a constant. Their output tensors become constants and the operators go away;
the operators that read them see constant operands (which every binary lowering takes). One
that is the model's output stays an operator (a kernel must write the output).
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir import Graph, Operator


def _fill(graph: Graph, op: Operator, out):
    value = graph.tensor(op.inputs[1]).data
    if value.size != 1:
        raise UnsupportedOpError(op.kind, op.index, f"the value has {value.size} elements, not one")
    return np.full(out.shape, value.reshape(-1)[0], dtype=out.dtype)


def _broadcast_args(graph: Graph, op: Operator, out):
    a, b = (graph.tensor(i).data.reshape(-1).tolist() for i in op.inputs[:2])
    try:
        shape = np.broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        raise UnsupportedOpError(op.kind, op.index, f"shapes {a} and {b} do not broadcast") from None
    return np.array(shape, dtype=out.dtype)


def _broadcast_to(graph: Graph, op: Operator, out):
    return np.broadcast_to(graph.tensor(op.inputs[0]).data, out.shape).astype(out.dtype)


# kind -> (inputs that must be constant, the folded value)
FOLDS = {
    "FILL": ((0, 1), _fill),
    "ZEROS_LIKE": ((), lambda graph, op, out: np.zeros(out.shape, dtype=out.dtype)),
    "BROADCAST_ARGS": ((0, 1), _broadcast_args),
    "BROADCAST_TO": ((0, 1), _broadcast_to),
}


def fold_constants(graph: Graph) -> None:
    """Rewrite `graph` in place (an importer's last step)."""
    kept = []
    for op in graph.operators:
        fold = FOLDS.get(op.kind)
        out = graph.tensor(op.outputs[0]) if op.outputs else None
        if fold is None or out is None or out.index in graph.outputs or \
                not all(graph.tensor(op.inputs[k]).is_const for k in fold[0]):
            kept.append(op)
            continue
        out.data = fold[1](graph, op, out)
    graph.operators[:] = kept
