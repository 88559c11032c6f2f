"""Kernels with onnxruntime's float32 arithmetic (QuantizeLinear, DequantizeLinear, QLinearAdd,
QLinearSoftmax), computed exactly on float32 bit patterns by the integer helpers of
runtime/kernels/tinycc_nn.h, so that the library has no float instruction."""

from __future__ import annotations

from tvm import te, tirx
from tvm.script import tirx as T

from .fixedpoint import I32


def quantize_f32(size: int, scale_bits: int, zp: int):
    """float32 -> int8: clamp(round_half_even(x / scale) + zp)."""

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((size,), "float32"), out: T.Buffer((size,), "int8")):
        T.evaluate(T.call_extern("void", "tinycc_quantize_f32_row", T.address_of(x[0]), size,
                                 T.uint32(scale_bits), zp, T.address_of(out[0])))
    return kernel


def dequantize_f32(size: int, zp: int, scale_bits: int):
    """int8 -> float32: (q - zp) * scale."""

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((size,), "int8"), out: T.Buffer((size,), "float32")):
        T.evaluate(T.call_extern("void", "tinycc_dequantize_f32_row", T.address_of(x[0]), size, zp,
                                 T.uint32(scale_bits), T.address_of(out[0])))
    return kernel


def qlinear_add(size: int, ra: tuple[int, int], offset: int):
    """onnxruntime's QLinearAdd of two same-shaped int8 tensors: fma(a, ra, t[b]) with the
    inner fma of every b from two tables (mantissa, exponent); ra passed unpacked as
    (signed mantissa, exponent); offset 128 for its uint8 kernel."""
    a = te.placeholder((size,), "int8", name="a")
    b = te.placeholder((size,), "int8", name="b")
    tm = te.placeholder((256,), I32, name="t_mantissa")
    tx = te.placeholder((256,), I32, name="t_exponent")
    out = te.compute((size,), lambda i: tirx.call_extern(
        "int8", "tinycc_qlinear_add", a[i].astype(I32), tm[b[i].astype(I32) + 128], tx[b[i].astype(I32) + 128],
        ra[0], ra[1], offset), name="output")
    return te.create_prim_func([a, b, tm, tx, out])


def qlinear_softmax(outer: int, depth: int, y_scale_bits: int, zp: int):
    """onnxruntime's int8 QLinearSoftmax, row by row."""

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((outer * depth,), "int8"), table: T.Buffer((256,), "uint32"),
               out: T.Buffer((outer * depth,), "int8")):
        for i in range(outer):
            T.evaluate(T.call_extern("void", "tinycc_qlinear_softmax_row", T.address_of(x[i * depth]), depth,
                                     T.address_of(table[0]), T.uint32(y_scale_bits), zp,
                                     T.address_of(out[i * depth])))
    return kernel


def qlinear_average_pool(in_shape, out_shape, window, stride, pad, y_scale_bits: int, zp: int, offset: int):
    """onnxruntime's QLinearAveragePool (NHWC, count_include_pad = 0), one output value per
    call: the window's dequantized values summed and averaged in float32, then quantized."""
    _, H, W, C = in_shape
    _, OH, OW, _ = out_shape
    (FH, FW), (SH, SW), (PT, PL) = window, stride, pad

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((H * W * C,), "int8"), table: T.Buffer((256,), "uint32"),
               out: T.Buffer((OH * OW * C,), "int8")):
        for oy, ox, c in T.grid(OH, OW, C):
            out[(oy * OW + ox) * C + c] = T.call_extern(
                "int8", "tinycc_qlinear_average", T.address_of(x[c]), H, W, C, oy * SH - PT, ox * SW - PL,
                FH, FW, T.address_of(table[0]), T.uint32(y_scale_bits), zp, offset)
    return kernel
