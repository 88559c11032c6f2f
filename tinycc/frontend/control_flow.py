"""IF as straight-line code (if-conversion).

An IF operator (inputs: a bool condition, then the values its branches take; options:
then_subgraph_index, else_subgraph_index) runs one of two subgraphs. This pass copies both
branch subgraphs into the main graph, their input tensors replaced by the IF's inputs, and turns
the IF into one IF_SELECT operator per output, which copies the taken branch's output (TFLite's
IF copies the branch output tensor into its own, bytes unchanged, whatever the quantization).

Both branches run on every invocation, so an IF costs the sum of its branches, not the larger
one; the outputs are those of the reference interpreter. A branch must be free of side effects:
one that assigns a variable, or holds a WHILE or CALL_ONCE, is refused. WHILE is refused: its
trip count is known only at run time.
"""

from __future__ import annotations

import dataclasses

from ..errors import ModelError, UnsupportedOpError
from ..ir import Graph, Operator

EFFECTS = ("ASSIGN_VARIABLE", "READ_VARIABLE", "VAR_HANDLE", "CALL_ONCE", "WHILE")
MAX_DEPTH = 8  # IFs nested in IF branches


def inline_if(graph: Graph, read_subgraph, depth: int = 0) -> None:
    """read_subgraph(k) -> (tensors, operators, inputs, outputs) of subgraph k."""
    if not any(op.kind == "IF" for op in graph.operators):
        return
    if depth > MAX_DEPTH:
        raise UnsupportedOpError("IF", -1, f"IFs nested more than {MAX_DEPTH} deep")
    ops = []
    next_index = max(op.index for op in graph.operators) + 1
    for op in graph.operators:
        if op.kind != "IF":
            ops.append(op)
            continue
        branches = []
        for key in ("then_subgraph_index", "else_subgraph_index"):
            k = op.options.get(key)
            if k is None:
                raise ModelError(f"IF at index {op.index} names no {key.split('_')[0]} subgraph")
            tensors, sub_ops, inputs, outputs = read_subgraph(k)
            for s in sub_ops:
                if s.kind in EFFECTS:
                    raise UnsupportedOpError("IF", op.index, f"its subgraph {k} holds {s.kind}: a branch with "
                                             "state or a loop cannot run unconditionally")
            if len(inputs) != len(op.inputs) - 1 or len(outputs) != len(op.outputs):
                raise ModelError(f"IF at index {op.index}: subgraph {k} takes {len(inputs)} inputs and gives "
                                 f"{len(outputs)} outputs, the IF {len(op.inputs) - 1} and {len(op.outputs)}")
            # the branch's tensors appended to the graph; its inputs are the IF's own
            where = {t.index: len(graph.tensors) + n for n, t in enumerate(tensors)}
            where.update({i: x for i, x in zip(inputs, op.inputs[1:])})
            for n, t in enumerate(tensors):
                graph.tensors.append(dataclasses.replace(t, index=len(graph.tensors),
                                                         name=f"if{op.index}_{key[:4]}/{t.name}"))
            for s in sub_ops:
                ops.append(Operator(next_index, s.kind, [where.get(i, -1) if i >= 0 else -1 for i in s.inputs],
                                    [where[i] for i in s.outputs], dict(s.options, branch=(op.index, k, s.index))))
                next_index += 1
            branches.append([where[o] for o in outputs])
        for j, out in enumerate(op.outputs):
            ops.append(Operator(next_index, "IF_SELECT", [op.inputs[0], branches[0][j], branches[1][j]], [out],
                                {"if_index": op.index}))
            next_index += 1
    graph.operators = ops
    inline_if(graph, read_subgraph, depth + 1)
