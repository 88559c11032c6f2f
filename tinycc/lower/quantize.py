"""QUANTIZE and DEQUANTIZE at a model's float edges (float32 -> int8/int16 at an input,
int8 -> float32 at an output); QUANTIZE int8 -> int8 stays a table (activations.py)."""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from ..errors import UnsupportedOpError
from ..ir import Operator
from . import activations
from .common import Const, Kernel, LoweringContext, describe, kernel_name


def _scalar_quant(op, t):
    if t.quant is None or t.quant.per_channel:
        raise UnsupportedOpError(op.kind, op.index, f"tensor '{t.name}' needs one scale and zero point")
    return t.quant.scalar()


def lower_quantize(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if x.dtype != "float32":
        return activations.lower_unary(ctx, op)
    if out.dtype not in ("int8", "int16"):
        raise UnsupportedOpError(op.kind, op.index, f"float32 -> {out.dtype}")
    scale, zp = _scalar_quant(op, out)
    half_even = op.options.get("rounding") == "half_to_even"  # ONNX QuantizeLinear
    name = kernel_name(ctx, op)
    notes = [describe(g, op),
             f"x / {float(scale)!r} rounded half {'to even' if half_even else 'away from zero'}, + {zp}"]
    return Kernel(name, op, K.quantize(x.size, out.dtype, zp, half_even),
                  [x.index, Const(f"{name}_scale", np.array([scale], np.float32))], out.index, 0, notes)


def dequantize_table(scale: np.float32, zero_point: int) -> np.ndarray:
    """float32(double(scale) * (q - zero_point)) for q = -128..127."""
    q = np.arange(-128, 128, dtype=np.float64)
    return (np.float64(scale) * (q - zero_point)).astype(np.float32)


def lower_dequantize(ctx: LoweringContext, op: Operator) -> Kernel:
    g = ctx.graph
    x, out = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    if x.dtype != "int8" or out.dtype != "float32":
        raise UnsupportedOpError(op.kind, op.index, f"{x.dtype} -> {out.dtype} (tinycc dequantizes int8)")
    scale, zp = _scalar_quant(op, x)
    name = kernel_name(ctx, op)
    notes = [describe(g, op), f"256-entry float32 table: {float(scale)!r} * (q - {zp})"]
    return Kernel(name, op, K.dequantize_lut(x.size),
                  [x.index, Const(f"{name}_table", dequantize_table(scale, zp))], out.index, 0, notes)


LOWERINGS = {"QUANTIZE": lower_quantize, "DEQUANTIZE": lower_dequantize}
