"""Float32 kernels for TRANSPOSE_CONV, SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM: TFLite's
reference float kernels (reference_ops::TransposeConv, EvalFloatSVDF, lstm_eval's float path
with the portable tensor_utils), each output summed in the reference's order, so that without
fused multiply-adds the results are LiteRT's wherever no libm function is called (the LSTM's
sigmoid and tanh are expf and tanhf).
"""

from __future__ import annotations

from tvm.script import tirx as T

from .float32 import F32, _bounds


def transpose_conv(in_shape, w_shape, out_shape, stride, pad, has_bias: bool, lo, hi):
    """NHWC input, OHWI weights. The reference scatters input pixels in row-major order into a
    zeroed output; each output here gathers the same products in the same order: input rows
    and columns increasing (filter taps decreasing), channels innermost; then the bias (when
    the model has one) and the clamp."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (PT, PL) = stride, pad
    NY, NX = (KH + SH - 1) // SH, (KW + SW - 1) // SW  # taps per output pixel, at most
    LO, HI = _bounds(lo, hi)
    B = 1.0 if has_bias else 0.0

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((H * W * C,), F32), w: T.Buffer((OC * KH * KW * C,), F32),
               bias: T.Buffer((OC,), F32), out: T.Buffer((OH * OW * OC,), F32)):
        acc = T.alloc_buffer((1,), F32)
        for oy, ox, o in T.grid(OH, OW, OC):
            acc[0] = T.float32(0)
            # filter row ky = (oy + PT) % SH + (NY - 1 - i) * SH reads input row (oy + PT - ky) / SH
            for i, j in T.grid(NY, NX):
                if ((oy + PT) % SH + (NY - 1 - i) * SH < KH and (oy + PT) % SH + (NY - 1 - i) * SH <= oy + PT
                        and (oy + PT - (oy + PT) % SH - (NY - 1 - i) * SH) // SH < H
                        and (ox + PL) % SW + (NX - 1 - j) * SW < KW and (ox + PL) % SW + (NX - 1 - j) * SW <= ox + PL
                        and (ox + PL - (ox + PL) % SW - (NX - 1 - j) * SW) // SW < W):
                    for c in range(C):
                        acc[0] = acc[0] + x[((oy + PT - (oy + PT) % SH - (NY - 1 - i) * SH) // SH * W
                                             + (ox + PL - (ox + PL) % SW - (NX - 1 - j) * SW) // SW) * C + c] \
                            * w[((o * KH + (oy + PT) % SH + (NY - 1 - i) * SH) * KW
                                 + (ox + PL) % SW + (NX - 1 - j) * SW) * C + c]
            if B > 0:
                acc[0] = acc[0] + bias[o]
            out[(oy * OW + ox) * OC + o] = T.min(T.max(acc[0], LO), HI)
    return kernel


def svdf(batch: int, depth: int, filters: int, memory: int, rank: int, has_bias: bool, lo, hi, tflm: bool = False,
         hybrid: str | None = None):
    """reference_ops::EvalFloatSVDF, one step: per filter, the state's memory shifted left by
    one and its newest entry the feature dot product; then per unit, the time-weight dot
    products of its `rank` filters summed, the bias, the clamp (lo = hi = None: none). The
    state is the `state` parameter, updated in place (the shift reads each entry before it is
    overwritten).

    Every sum is in the order of LiteRT's tensor_utils as its x86 build runs them (their NEON
    code, through NEON_2_SSE; measured: the plain loop's order differs from 8 values up): four
    lane sums over the first multiple of 4 values (lane l takes values l, l + 4, ...), added
    lane 0 to 3, then the remaining values one by one (ReductionSumVector over the rank too).
    tflm: TFLM's EvalFloatSvdfReference instead, plain sums in order and the output started
    at the bias, then each filter's dot product added.

    hybrid ("symmetric" / "asymmetric", batch 1): EvalHybridSVDF, int8 feature weights: the
    newest entries are the input quantized as the hybrid kernels do (tinycc.kernels.hybrid),
    int32 dot products minus zero point x row sum, times (input scale x weight scale); 0 for an
    all-zero input. The time weights are float (dequantized at compile time)."""
    from .hybrid import _quantize
    units = filters // rank
    FM = filters * memory
    L = 1 if tflm else 4  # lanes
    R4 = 0 if tflm else rank // 4 * 4
    LO, HI = _bounds(lo, hi)
    CLAMP = 0 if lo is None and hi is None else 1
    B = 1 if has_bias else 0
    TFLM = 1 if tflm else 0

    @T.macro
    def dot(lane, acc, a, a0, b, b0, n):
        """acc[0] = the dot product of a[a0:a0+n] and b[b0:b0+n] in the lane order."""
        for l in range(4):
            lane[l] = T.float32(0)
        for k4, l in T.grid(n // L, L):
            lane[l] = lane[l] + a[a0 + k4 * L + l] * b[b0 + k4 * L + l]
        if L == 4:
            acc[0] = lane[0] + lane[1] + lane[2] + lane[3]
        else:
            acc[0] = lane[0]
        for k in range(n // L * L, n):
            acc[0] = acc[0] + a[a0 + k] * b[b0 + k]

    @T.macro
    def shift(state, b, f):
        for m in range(memory - 1):
            state[b * FM + f * memory + m] = state[b * FM + f * memory + m + 1]

    @T.macro
    def output(lane, rlane, acc, wt, bias, state, out):
        for b, u in T.grid(batch, units):
            for l in range(4):
                rlane[l] = T.float32(0)
            for r4, l in T.grid(R4 // 4, 4):
                dot(lane, acc, wt, (u * rank + r4 * 4 + l) * memory, state, b * FM + (u * rank + r4 * 4 + l) * memory,
                    memory)
                rlane[l] = rlane[l] + acc[0]
            acc[1] = rlane[0] + rlane[1] + rlane[2] + rlane[3]
            if TFLM > 0 and B > 0:
                acc[1] = bias[u]
            for r in range(R4, rank):
                dot(lane, acc, wt, (u * rank + r) * memory, state, b * FM + (u * rank + r) * memory, memory)
                acc[1] = acc[1] + acc[0]
            if TFLM == 0 and B > 0:
                acc[1] = acc[1] + bias[u]
            if CLAMP > 0:
                acc[1] = T.min(T.max(acc[1], LO), HI)
            out[b * units + u] = acc[1]

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((batch * depth,), F32), wf: T.Buffer((filters * depth,), F32),
               wt: T.Buffer((filters * memory,), F32), bias: T.Buffer((units,), F32),
               state: T.Buffer((batch * FM,), F32), out: T.Buffer((batch * units,), F32)):
        lane = T.alloc_buffer((4,), F32)  # a dot product's lane sums
        rlane = T.alloc_buffer((4,), F32)  # the rank sum's
        acc = T.alloc_buffer((2,), F32)  # a dot product, a unit's sum
        for b, f in T.grid(batch, filters):
            shift(state, b, f)
            dot(lane, acc, wf, f * depth, x, b * depth, depth)
            state[b * FM + f * memory + memory - 1] = acc[0]
        output(lane, rlane, acc, wt, bias, state, out)

    if hybrid is None:
        return kernel
    quantize = _quantize(hybrid == "asymmetric")

    @T.prim_func(private=True)
    def hybrid_kernel(x: T.Buffer((depth,), F32), wf: T.Buffer((filters * depth,), "int8"),
                      wt: T.Buffer((filters * memory,), F32), bias: T.Buffer((units,), F32),
                      scale: T.Buffer((1,), F32), row_sums: T.Buffer((filters,), "int32"),
                      q: T.Buffer((depth,), "int8"), state: T.Buffer((FM,), F32), out: T.Buffer((units,), F32)):
        lane = T.alloc_buffer((4,), F32)
        rlane = T.alloc_buffer((4,), F32)
        acc = T.alloc_buffer((2,), F32)
        fs = T.alloc_buffer((5,), F32)  # min, max, input scale, its inverse, a scaled value
        ds = T.alloc_buffer((3,), "float64")
        iv = T.alloc_buffer((3,), "int32")  # zero point, a rounded value / a dot product, nonzero inputs
        for f in range(filters):
            shift(state, 0, f)
        iv[2] = 0
        for k in range(depth):
            if x[k] != T.float32(0):
                iv[2] = iv[2] + 1
        if iv[2] == 0:  # IsZeroVector: the newest entries stay 0
            for f in range(filters):
                state[f * memory + memory - 1] = T.float32(0)
        else:
            quantize(x, 0, depth, q, fs, ds, iv)
            for f in range(filters):
                iv[1] = 0
                for k in range(depth):
                    iv[1] = iv[1] + T.Cast("int32", wf[f * depth + k]) * T.Cast("int32", q[k])
                iv[1] = iv[1] - iv[0] * row_sums[f]
                state[f * memory + memory - 1] = T.float32(0) + T.Cast(F32, iv[1]) * (fs[2] * scale[0])
        output(lane, rlane, acc, wt, bias, state, out)
    return hybrid_kernel


def lstm(steps: int, n_input: int, n_cell: int, cell_clip: float):
    """lstm_eval's float LSTM (no CIFG, peephole, projection or layer norm), batch 1, one time
    step after the other: per cell, each gate = (recurrent weights . h) + ((input weights . x)
    + bias), sigmoid (tanh for the cell gate), c = f * c + g * i (clipped when cell_clip > 0),
    h = o * tanh(c). The step's h goes to the output first and into the `state` h only once
    every cell has read the old one; c is updated in place. expf and tanhf are the C
    library's (LiteRT's are Eigen's approximations): within tinycc.verify.FLOAT_TOLERANCE."""
    n4 = 4 * n_cell
    CLIP = T.float32(cell_clip)
    CLIPS = 1 if cell_clip > 0 else 0

    def sigmoid(v):
        return T.float32(1) / (T.float32(1) + T.exp(-v))

    @T.prim_func(private=True)
    def kernel(x: T.Buffer((steps * n_input,), F32), wx: T.Buffer((n4 * n_input,), F32),
               wh: T.Buffer((n4 * n_cell,), F32), bias: T.Buffer((n4,), F32),
               h: T.Buffer((n_cell,), F32), c: T.Buffer((n_cell,), F32), out: T.Buffer((steps * n_cell,), F32)):
        gate = T.alloc_buffer((4,), F32)
        acc = T.alloc_buffer((2,), F32)
        for t in range(steps):
            for j in range(n_cell):
                for g in range(4):  # input, forget, cell, output
                    acc[0] = T.float32(0)
                    for k in range(n_input):
                        acc[0] = acc[0] + wx[(g * n_cell + j) * n_input + k] * x[t * n_input + k]
                    acc[1] = T.float32(0)
                    for k in range(n_cell):
                        acc[1] = acc[1] + wh[(g * n_cell + j) * n_cell + k] * h[k]
                    gate[g] = acc[1] + (acc[0] + bias[g * n_cell + j])
                c[j] = sigmoid(gate[1]) * c[j]
                c[j] = c[j] + T.tanh(gate[2]) * sigmoid(gate[0])
                if CLIPS > 0:
                    c[j] = T.max(T.min(c[j], CLIP), -CLIP)
                out[t * n_cell + j] = sigmoid(gate[3]) * T.tanh(c[j])
            for j in range(n_cell):
                h[j] = out[t * n_cell + j]
    return kernel
