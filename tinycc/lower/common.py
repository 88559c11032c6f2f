"""What every lowering shares: the kernel records and TFLite's Prepare-time helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .. import kernels as K
from .. import quant
from ..errors import UnsupportedOpError
from ..ir import Graph, Operator, Tensor

SAME, VALID = 0, 1


@dataclass
class Const:
    """A compile-time array the kernel reads (weights, folded bias, multipliers, tables)."""

    name: str
    array: np.ndarray


@dataclass
class Kernel:
    name: str  # C function name
    op: Operator
    func: object  # tvm.tirx.PrimFunc
    inputs: list  # tensor indices and Const objects, in parameter order
    output: int  # tensor index
    macs: int = 0
    notes: list[str] = field(default_factory=list)
    state: list[int] = field(default_factory=list)  # variable tensors among the inputs it also writes
    scratch_bytes: int = 0  # an arena scratch buffer for this step only (a Scratch input)
    # budget bytes -> the same layer lowered with the largest scratch up to budget (a Kernel
    # with more scratch_bytes, or None), for kernels that go faster with more: plan.grow_scratch
    regrow: object = None


@dataclass
class Scratch(Const):
    """A kernel's scratch buffer: a parameter of the C function that points into the arena
    (planned like a tensor live for one step), not a constant. `array` is its size in zeros,
    so that tools that run a kernel on its own (the access tracer) pass it a buffer."""


@dataclass
class CKernel(Kernel):
    """A kernel whose C function tinycc writes itself, a call into a C library (CMSIS-NN),
    instead of TVM's code generator: `func` is None; `params` and `body` are its C text. It
    is not traced for in-place overlaps (its access order is the library's)."""

    params: str = ""
    body: str = ""
    includes: tuple[str, ...] = ()


@dataclass
class Alias:
    """An operator that only reinterprets its input (RESHAPE): no kernel, same bytes."""

    op: Operator
    source: int
    target: int


# How LiteRT 2.3's BUILTIN_REF kernels requantize, measured layer by layer against it: its
# convolutions round twice (gemmlowp), its fully-connected layer once (ruy's rounding), and
# its int8 softmax computes in float. "double" is TFLM and CMSIS-NN everywhere. TRANSPOSE_CONV
# rounds twice too (single rounding differs from BUILTIN_REF on tests/models/transpose_conv).
LITERT_ROUNDING = {"CONV_2D": "double", "DEPTHWISE_CONV_2D": "double", "TRANSPOSE_CONV": "double",
                   "FULLY_CONNECTED": "single", "ADD": "double", "SOFTMAX": "float"}


@dataclass
class LoweringContext:
    graph: Graph
    prefix: str
    mode: str = "litert"
    target: object = None  # tinycc.targets.Target; the CMSIS-NN lowerings need its CPU
    schedules: object = None  # tinycc.kernels.schedule.Schedules: knobs per layer (None: defaults)

    def rounding(self, op: Operator) -> str:
        if self.mode == "litert":
            return LITERT_ROUNDING.get(op.kind, "double")
        return self.mode


# --- helpers --------------------------------------------------------------------------------

def snake(kind: str) -> str:
    return {"CONV_2D": "conv2d", "DEPTHWISE_CONV_2D": "depthwise_conv2d",
            "AVERAGE_POOL_2D": "average_pool2d"}.get(kind, kind.lower())


def kernel_name(ctx: LoweringContext, op: Operator) -> str:
    return f"{ctx.prefix}_{snake(op.kind)}_{op.index}"


def act(ctx, op, t: Tensor) -> Tensor:
    if t.dtype != "int8" or t.quant is None:
        raise UnsupportedOpError(op.kind, op.index,
                                 f"tensor '{t.name}' is {t.dtype}{'' if t.quant else ' without quantization'}; "
                                 "only int8 quantized activations are supported")
    if t.quant.per_channel:
        raise UnsupportedOpError(op.kind, op.index, f"activation '{t.name}' is quantized per channel")
    return t


def const(ctx, op, index: int, what: str, dtype: str) -> Tensor:
    t = ctx.graph.tensor(index)
    if not t.is_const:
        raise UnsupportedOpError(op.kind, op.index, f"its {what} '{t.name}' is not a constant")
    if t.dtype != dtype:
        raise UnsupportedOpError(op.kind, op.index, f"its {what} is {t.dtype}, expected {dtype}")
    return t


def activation_code(op) -> int:
    code = op.options.get("fused_activation_function", 0)
    if code not in (0, 1, 2, 3):
        raise UnsupportedOpError(op.kind, op.index, f"fused activation code {code}")
    return code


def window_padding(op, in_hw, filt, stride, dilation, out_hw) -> tuple[int, int]:
    """(top, left) padding of a convolution or pool: the operator's `explicit_padding` (an ONNX
    window, a folded SPACE_TO_BATCH_ND: see dilate.py), else TFLite's SAME/VALID rule."""
    if op.options.get("explicit_padding"):
        return tuple(op.options["explicit_padding"])
    kind = op.options.get("padding", SAME)
    return tuple(padding(kind, in_hw[k], filt[k], stride[k], dilation[k], out_hw[k]) for k in (0, 1))


def padding(kind: int, in_size: int, filt: int, stride: int, dilation: int, out_size: int) -> int:
    """TFLite's ComputePadding: the leading pad; the rest of any SAME pad goes at the end."""
    if kind == VALID:
        return 0
    effective = (filt - 1) * dilation + 1
    return max(((out_size - 1) * stride + effective - in_size) // 2, 0)


def requant(ctx, op, in_t, w_t, out_t, channels: int,
            arrays: bool = False) -> tuple[K.Requant, list[Const], str]:
    """Per-channel multipliers from input scale * filter scale / output scale (in double,
    as PopulateConvolutionQuantizationParams does); one pair of ints when all agree, unless
    the kernel wants `arrays` anyway."""
    in_scale, _ = in_t.quant.scalar()
    out_scale, out_zp = out_t.quant.scalar()
    w_scales = w_t.quant.scale
    if np.any(w_t.quant.zero_point != 0):
        raise UnsupportedOpError(op.kind, op.index, "weights with a non-zero zero point")
    if w_scales.size not in (1, channels):
        raise UnsupportedOpError(op.kind, op.index, f"{w_scales.size} weight scales for {channels} channels")
    if ctx.rounding(op) == "onnxruntime":  # float32 scale, its bit pattern as the multiplier
        pairs = [(quant.f32_bits(quant.ort_scale(in_scale, s, divisor=out_scale)), 0)
                 for s in np.broadcast_to(w_scales, (channels,))]
    else:
        pairs = [quant.quantize_multiplier(float(in_scale) * float(s) / float(out_scale), ctx.rounding(op))
                 for s in np.broadcast_to(w_scales, (channels,))]
    lo, hi = quant.activation_range(activation_code(op), out_scale, out_zp)
    name = kernel_name(ctx, op)
    if len(set(pairs)) == 1 and not arrays:
        m, s = pairs[0]
        return K.Requant(False, m, s, out_zp, lo, hi, ctx.rounding(op)), [], f"multiplier {m}, shift {s}"
    mult = np.array([p[0] for p in pairs], dtype=np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int32)
    rq = K.Requant(True, 0, 0, out_zp, lo, hi, ctx.rounding(op), bool(np.all(shift <= 0)))
    note = "per-channel multipliers" if len(set(pairs)) > 1 else f"multiplier {pairs[0][0]}, shift {pairs[0][1]}"
    return rq, [Const(f"{name}_multiplier", mult), Const(f"{name}_shift", shift)], note


def folded_bias(ctx, op, bias_index: int, weights: np.ndarray, in_zp: int, channels: int) -> np.ndarray:
    """bias - input_zero_point * sum(weights) per output channel, checked to fit int32."""
    bias = np.zeros(channels, dtype=np.int64)
    if bias_index >= 0:
        bias += const(ctx, op, bias_index, "bias", "int32").data.astype(np.int64).reshape(-1)
    folded = bias - in_zp * weights
    if np.any(folded > quant.INT32_MAX) or np.any(folded < quant.INT32_MIN):
        raise UnsupportedOpError(op.kind, op.index, "the folded bias overflows int32")
    return folded.astype(np.int32)


def describe(graph: Graph, op: Operator) -> str:
    def t(i):
        ten = graph.tensor(i)
        name = ten.name.split(";")[0].replace("*/", "* /")  # TFLite joins fused names with ';'
        return f"{name} {'x'.join(map(str, ten.shape))}"
    ins = [i for i in op.inputs if i >= 0 and not graph.tensor(i).is_const]
    return f"{op.kind} #{op.index}: " + ", ".join(t(i) for i in ins) + " -> " + t(op.outputs[0])




def c_identifier(text: str) -> str:
    ident = re.sub(r"\W", "_", text).strip("_").lower() or "model"
    return ident if not ident[0].isdigit() else f"m_{ident}"
