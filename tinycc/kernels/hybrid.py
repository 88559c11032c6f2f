"""Hybrid (dynamic-range quantized) kernels: float32 activations, int8 weights. Each run
quantizes its float input to int8 per batch, accumulates int8 x int8 in int32 (exact, so the
order does not matter) and scales the sums back to float, as LiteRT's kernels do:

- the input's quantization is tensor_utils' Symmetric- / AsymmetricQuantizeFloats in the form
  LiteRT's x86 build runs (its NEON code through NEON_2_SSE): the minimum and maximum (capped
  at zero for the asymmetric one), the scale and zero point in float / double exactly as
  written there, the first multiple of 8 values rounded as `(int)(v + (v < 0 ? -0.5f : 0.5f))`
  and the rest with TfLiteRound (half away from zero), clamped;
- FULLY_CONNECTED (EvalHybridDense): output = bias + (float)(acc - zp * row_sum) * (scale[u] *
  sf), the bias alone when the input is all zeros (IsZeroVector);
- CONV_2D with per-tensor weights (optimized_ops::HybridConv, symmetric input): (float)acc *
  (sf * filter_scale) + bias; with per-channel weights (reference_ops::HybridConvPerChannel,
  asymmetric input): (float)acc * scale[c] * sf + bias, left to right;
- DEPTHWISE_CONV_2D (reference_integer_ops::DepthwiseConvHybridPerChannel, asymmetric input):
  (float)acc * (scale[c] * sf) + bias;

then the activation's clamp. Double precision is used where LiteRT uses it (the asymmetric
scale and zero point): soft-float on a Cortex-M4F, no libm. The quantized input is the
kernel's scratch buffer in the arena.
"""

from __future__ import annotations

from tvm.script import tirx as T

from .float32 import F32, _bounds

CLIP = 1000.0  # |v| beyond this quantizes to the int8 ends either way (and stays a valid int cast)


def _quantize(asymmetric: bool):
    """A macro: x[x0 : x0 + n] -> q[0 : n] (int8), fs[2] = the scale, iv[0] = the zero point.
    fs, ds, iv: float32 (5), float64 (3) and int32 (2) scalars."""
    lo, hi = (-128, 127) if asymmetric else (-127, 127)

    @T.macro
    def round_store(x, x0, n, q, fs, iv, i):
        """q[i] from fs[4] = x * inverse scale (clamped to +-CLIP)."""
        if i < n // 8 * 8:  # the vector loop: (int)(v + (v < 0 ? -0.5f : 0.5f)), truncated
            iv[1] = T.Cast("int32", fs[4] + T.Select(fs[4] < T.float32(0), T.float32(-0.5), T.float32(0.5)))
        else:  # TfLiteRound: half away from zero
            iv[1] = T.Cast("int32", fs[4])
            if fs[4] - T.Cast(F32, iv[1]) >= T.float32(0.5):
                iv[1] = iv[1] + 1
            if fs[4] - T.Cast(F32, iv[1]) <= T.float32(-0.5):
                iv[1] = iv[1] - 1
        q[i] = T.Cast("int8", T.max(T.min(iv[1] + iv[0], hi), lo))

    @T.macro
    def quantize(x, x0, n, q, fs, ds, iv):
        iv[0] = 0
        if asymmetric:  # NeonMinMax: both capped at zero
            fs[0] = T.float32(0)
            fs[1] = T.float32(0)
        else:  # std::minmax_element
            fs[0] = x[x0]
            fs[1] = x[x0]
        for i in range(n):
            fs[0] = T.min(fs[0], x[x0 + i])
            fs[1] = T.max(fs[1], x[x0 + i])
        if asymmetric:
            if fs[0] == fs[1]:
                fs[3] = T.float32(0)
                fs[2] = T.float32(1)
            else:
                ds[0] = T.Cast("float64", fs[1] - fs[0]) / T.float64(255)
                ds[1] = T.Cast("float64", fs[0]) / ds[0]
                ds[2] = T.Cast("float64", fs[1]) / ds[0]
                if T.float64(128) + T.max(ds[1], -ds[1]) < T.float64(127) + T.max(ds[2], -ds[2]):
                    ds[1] = T.float64(-128) - ds[1]
                else:
                    ds[1] = T.float64(127) - ds[2]
                if ds[1] <= T.float64(-128):
                    iv[0] = -128
                elif ds[1] >= T.float64(127):
                    iv[0] = 127
                else:  # round(): half away from zero
                    iv[0] = T.Cast("int32", ds[1])
                    if ds[1] - T.Cast("float64", iv[0]) >= T.float64(0.5):
                        iv[0] = iv[0] + 1
                    if ds[1] - T.Cast("float64", iv[0]) <= T.float64(-0.5):
                        iv[0] = iv[0] - 1
                fs[2] = T.Cast(F32, ds[0])
                if fs[2] == T.float32(0):
                    fs[3] = T.float32(0)
                else:
                    fs[3] = T.Cast(F32, T.float64(1) / T.Cast("float64", fs[2]))
        else:
            fs[2] = T.max(T.max(fs[0], -fs[0]), T.max(fs[1], -fs[1]))  # the range
            if fs[2] == T.float32(0):
                fs[3] = T.float32(0)
                fs[2] = T.float32(1)
            else:
                fs[3] = T.float32(127) / fs[2]
                fs[2] = fs[2] / T.float32(127)
        for i in range(n):
            fs[4] = T.max(T.min(x[x0 + i] * fs[3], T.float32(CLIP)), T.float32(-CLIP))
            round_store(x, x0, n, q, fs, iv, i)
    return quantize


def fully_connected(batch: int, depth: int, units: int, asymmetric: bool, has_bias: bool, lo, hi):
    """EvalHybridDense: `scale` per unit (the filter's per-tensor scale repeated, or its
    per-channel scales), `row_sums` the weights' row sums (for the asymmetric zero point)."""
    quantize = _quantize(asymmetric)
    LO, HI = _bounds(lo, hi)
    BIAS = 1 if has_bias else 0

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((batch * depth,), F32), w: T.Buffer((units * depth,), "int8"),
               bias: T.Buffer((units,), F32), scale: T.Buffer((units,), F32), row_sums: T.Buffer((units,), "int32"),
               q: T.Buffer((depth,), "int8"), out: T.Buffer((batch * units,), F32)):
        fs = T.alloc_buffer((5,), F32)  # min, max, scale, inverse scale, a scaled value
        ds = T.alloc_buffer((3,), "float64")
        iv = T.alloc_buffer((3,), "int32")  # zero point, a rounded value, the input's zero count
        for b in range(batch):
            iv[2] = 0
            for k in range(depth):
                if x[b * depth + k] != T.float32(0):
                    iv[2] = iv[2] + 1
            if iv[2] == 0:  # IsZeroVector: the bias alone
                for u in range(units):
                    out[b * units + u] = T.min(T.max(T.Select(BIAS > 0, bias[u], T.float32(0)), LO), HI)
            else:
                quantize(x, b * depth, depth, q, fs, ds, iv)
                for u in range(units):
                    iv[1] = 0
                    for k in range(depth):
                        iv[1] = iv[1] + T.Cast("int32", w[u * depth + k]) * T.Cast("int32", q[k])
                    iv[1] = iv[1] - iv[0] * row_sums[u]
                    if BIAS > 0:
                        out[b * units + u] = T.min(T.max(bias[u] + T.Cast(F32, iv[1]) * (scale[u] * fs[2]), LO), HI)
                    else:
                        out[b * units + u] = T.min(T.max(T.float32(0) + T.Cast(F32, iv[1]) * (scale[u] * fs[2]), LO),
                                                   HI)
    return kernel


def conv2d(in_shape, w_shape, out_shape, stride, dilation, pad, depth_multiplier: int, per_channel: bool,
           lo, hi):
    """NHWC input, OHWI (1HWO depthwise) int8 weights, float bias and per-channel `scale`.
    depth_multiplier 0: CONV_2D, per-tensor (symmetric input) or per-channel (asymmetric);
    else DEPTHWISE_CONV_2D (asymmetric). Taps outside the input are skipped."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (DH, DW), (PT, PL) = stride, dilation, pad
    N = H * W * C
    DEPTHWISE = 1 if depth_multiplier else 0
    M = max(depth_multiplier, 1)
    CIN = 1 if depth_multiplier else C  # channels per tap
    LEFT = 1 if (per_channel and not depth_multiplier) else 0  # (acc * scale) * sf, left to right
    quantize = _quantize(per_channel or bool(depth_multiplier))
    LO, HI = _bounds(lo, hi)

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((N,), F32), w: T.Buffer((OC * KH * KW * CIN,), "int8"), bias: T.Buffer((OC,), F32),
               scale: T.Buffer((OC,), F32), q: T.Buffer((N,), "int8"), out: T.Buffer((OH * OW * OC,), F32)):
        fs = T.alloc_buffer((5,), F32)
        ds = T.alloc_buffer((3,), "float64")
        iv = T.alloc_buffer((3,), "int32")  # zero point, a rounded value / the accumulator
        quantize(x, 0, N, q, fs, ds, iv)
        for oy, ox, o in T.grid(OH, OW, OC):
            iv[1] = 0
            for ky, kx, c in T.grid(KH, KW, CIN):
                if (oy * SH - PT + ky * DH >= 0 and oy * SH - PT + ky * DH < H
                        and ox * SW - PL + kx * DW >= 0 and ox * SW - PL + kx * DW < W):
                    if DEPTHWISE > 0:
                        iv[1] = iv[1] + T.Cast("int32", w[(ky * KW + kx) * OC + o]) * (T.Cast("int32", q[
                            ((oy * SH - PT + ky * DH) * W + ox * SW - PL + kx * DW) * C + o // M]) - iv[0])
                    else:
                        iv[1] = iv[1] + T.Cast("int32", w[((o * KH + ky) * KW + kx) * C + c]) * (T.Cast("int32", q[
                            ((oy * SH - PT + ky * DH) * W + ox * SW - PL + kx * DW) * C + c]) - iv[0])
            if LEFT > 0:
                out[(oy * OW + ox) * OC + o] = T.min(T.max(
                    T.Cast(F32, iv[1]) * scale[o] * fs[2] + bias[o], LO), HI)
            else:
                out[(oy * OW + ox) * OC + o] = T.min(T.max(
                    T.Cast(F32, iv[1]) * (scale[o] * fs[2]) + bias[o], LO), HI)
    return kernel
