"""Integer lowering: each TFLite operator becomes one fused integer kernel.

`LOWERINGS` maps an operator name to a function that checks the operator, computes
everything TFLite's `Prepare` would compute (multipliers, shifts, folded biases, padding,
activation bounds, lookup tables) and returns a `Kernel` whose PrimFunc does only the
arithmetic. Adding an operator is one entry in one of this package's modules, a builder in
`tinycc.kernels` and a test.
"""

from __future__ import annotations

from ..errors import TinyccError, UnsupportedOpError
from ..ir import Graph
from . import (activations, arithmetic, control_flow, conv, data, dilate, elementwise, extra, float32, float_extra, int16, layout,
               logic, math, onnxruntime, pool, quantize, recurrent, reduce, shape, softmax, transpose_conv)
from .common import LITERT_ROUNDING, Alias, CKernel, Const, Kernel, LoweringContext, c_identifier  # noqa: F401

LOWERINGS = {**conv.LOWERINGS, **pool.LOWERINGS, **elementwise.LOWERINGS, **softmax.LOWERINGS,
             **shape.LOWERINGS, **activations.LOWERINGS,
             **reduce.LOWERINGS, **layout.LOWERINGS,
             **arithmetic.LOWERINGS, **quantize.LOWERINGS, **recurrent.LOWERINGS,
             **transpose_conv.LOWERINGS, **extra.LOWERINGS, **math.LOWERINGS,
             **logic.LOWERINGS, **data.LOWERINGS, **control_flow.LOWERINGS}


def _wrapped(table: dict) -> dict:
    """int16 activations (16x8) to their own lowerings; SPACE_TO_BATCH_ND -> convolution ->
    BATCH_TO_SPACE_ND folded into the convolution the table lowers."""
    return dilate.wrap(int16.wrap(table))


def lower(graph: Graph, prefix: str, rounding: str = "litert", kernels: str = "tinycc", target=None,
          schedules=None) -> list:
    """kernels: "tinycc" (its own kernels) or "cmsis-nn" (the layers CMSIS-NN takes call it,
    see tinycc.lower.cmsis_nn; the target's CPU picks its code path). schedules: the knobs per
    layer (tinycc.kernels.schedule; None: the defaults)."""
    ctx = LoweringContext(graph, prefix, rounding, target, schedules)
    table = _wrapped(LOWERINGS)
    if kernels == "cmsis-nn":
        from . import cmsis_nn
        cmsis_nn.check(ctx)
        table = _wrapped({**LOWERINGS, **cmsis_nn.LOWERINGS})
    elif kernels != "tinycc":
        raise TinyccError(f"unknown kernels '{kernels}'; choose tinycc or cmsis-nn")
    if rounding == "onnxruntime":  # an ONNX model: onnxruntime's arithmetic, see lower/onnxruntime.py
        table = {**{k: LOWERINGS[k] for k in onnxruntime.SHARED}, **onnxruntime.LOWERINGS}
    steps = []
    for op in graph.operators:
        fn = table.get(op.kind)
        if float32.is_float(graph, op):  # float32 arithmetic; byte-moving ops are dtype-agnostic
            fn = {**float32.LOWERINGS, **float_extra.LOWERINGS}.get(op.kind, fn)
        try:
            if fn is None:
                raise UnsupportedOpError(op.kind, op.index, "tinycc has no lowering for it")
            result = fn(ctx, op)
        except UnsupportedOpError as exc:
            if "branch" in op.options:  # an operator of an IF's branch (frontend/control_flow.py)
                i, k, n = op.options["branch"]
                raise UnsupportedOpError(op.kind, n, f"in subgraph {k}, a branch of IF at index {i}: {exc}") from None
            if "onnx_op" not in op.options:
                raise
            # an ONNX model: name the ONNX node the operator came from
            raise UnsupportedOpError(*op.options["onnx_op"], f"as {op.kind}: {exc}") from None
        # a list: an operator with several outputs (one kernel each), or none at all (an
        # operator folded to a constant at compile time)
        steps.extend(result if isinstance(result, list) else [result])
    return steps
