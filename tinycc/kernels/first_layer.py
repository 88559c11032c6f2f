"""First layers: convolutions over few input channels (C = 1..4: an RGB or grey image, a
spectrogram), the `CONV_2D.few_channels = "band"` schedule (tinycc.kernels.schedule).

There a window row is only KW * C values, so gathering each window (the im2col of
tinycc.kernels.gemm) costs as much as the arithmetic. Instead the whole layer is one call of
tinycc_first_conv_s8 (runtime/kernels/tinycc_nn.h): each input row is sign-extended once into a
band of int16 rows in arena scratch (a ring of KH rows, written twice so that a window's rows
are always at a fixed pitch), and 2x3 tiles (2 output channels x 3 pixels of a row, inline
assembly on the DSP cores) read the windows from it in place with int16 weights expanded here
at compile time (with the biases and requantization constants, one stream per channel pair).
Each window row is W2 = ceil(KW * C / 2) halfword pairs: an odd row length meets a zero
weight. What it costs: the scratch (band_scratch_bytes; VWW's first layer 3,504 bytes, under
that step's share of the arena: VWW's arena stays 38,064 B) and the weights twice over in
flash plus 32 bytes per channel pair (VWW +384 B, KWS +3,584 B). M4: VWW's first layer
969,520 -> 603,920 instructions, ResNet-8's 732,000 -> 555,600, KWS's 433,760 -> 352,520.
"""

from __future__ import annotations

import numpy as np
from tvm.script import tirx as T

from .fixedpoint import Requant
from .gemm import _double_flag

MAX_CHANNELS = 4
MAX_SCRATCH_BYTES = 12 * 1024


def words_per_row(w_shape) -> int:
    """W2: halfword pairs per window row (KW * C values, rounded up to even)."""
    return (w_shape[2] * w_shape[3] + 1) // 2


def band_len(w_shape, out_shape, stride) -> int:
    """int16 values per band row (as tinycc_first_conv_s8 computes it): the last pixel's window
    row ends there, rounded up to even."""
    ow, sw, c = out_shape[2], stride[1], w_shape[3]
    return ((ow - 1) * sw * c + 2 * words_per_row(w_shape) + 1) // 2 * 2


def band_scratch_bytes(w_shape, out_shape, stride) -> int:
    """The ring of KH band rows, written twice, 2 bytes a value."""
    return 2 * w_shape[1] * band_len(w_shape, out_shape, stride) * 2


def applies(in_shape, w_shape, out_shape, stride, dilation) -> bool:
    """Layers the band kernel takes: one image of 1 to 4 channels, no dilation, rows of at least
    3 output pixels, and offsets that the assembly's immediates reach (a pixel step under 256
    values, a band row under 2 KiB values), scratch up to MAX_SCRATCH_BYTES."""
    n, _, _, c = in_shape
    oc, ow = out_shape[3], out_shape[2]
    if n != 1 or not 1 <= c <= MAX_CHANNELS or tuple(dilation) != (1, 1) or ow < 3:
        return False
    length = band_len(w_shape, out_shape, stride)
    return (stride[1] * c < 256 and 2 * length - 4 * words_per_row(w_shape) < 4096 and 2 * oc < 4000
            and band_scratch_bytes(w_shape, out_shape, stride) <= MAX_SCRATCH_BYTES)


def doubles(rq: Requant) -> bool:
    """Mode 4 (double rounding, |acc| < 2^30) takes doubled weights and bias: the tiles then
    accumulate 2 acc, which the requantization's SMMLAR wants (mode 6, one shift fewer)."""
    return _double_flag(rq) == 4


def pair_block_words(w_shape) -> int:
    """32-bit words per channel pair in band_weights' stream."""
    return 8 + 2 * w_shape[1] * words_per_row(w_shape)


def band_weights(w, bias, mult, shift, doubled: bool = False):
    """The stream tinycc_first_tile reads, as int16: per pair of output channels (o0, o1; the
    last one twice for an odd count) one block of 32-bit words: both biases (`bias` as the
    kernel gets it, doubled too when `doubled`), the pair's weights as int16 (OHWI rows of KH
    window rows, each zero-padded to 2 * W2 values; per window row and pair of words o0's 4
    values then o1's, for an odd W2 o0's last 2 values then o1's; doubled for mode 6), then per
    channel its multiplier and shift pair (e, r), or (shift, 0) for the plain shift array."""
    oc, kh, kw, c = w.shape
    w2 = words_per_row(w.shape)
    rows = np.zeros((oc, kh, 2 * w2), np.int16)
    rows[:, :, :kw * c] = w.reshape(oc, kh, kw * c)
    if doubled:
        rows *= 2
    order = np.minimum(np.arange((oc + 1) // 2 * 2), oc - 1)
    rows = rows[order].reshape(-1, 2, kh, 2 * w2)
    pairs = rows.shape[0]
    full = w2 // 2 * 4
    quads = rows[:, :, :, :full].reshape(pairs, 2, kh, w2 // 2, 4).transpose(0, 2, 3, 1, 4)  # pair, ky, j, ch, v
    tail = rows[:, :, :, full:].transpose(0, 2, 1, 3)  # pair, ky, ch, v (2 or 0 values)
    weights = np.concatenate([quads.reshape(pairs, kh, 2 * full), tail.reshape(pairs, kh, 2 * (2 * w2 - full))],
                             axis=2).reshape(pairs, -1)
    shift = np.asarray(shift, np.int64).reshape(oc, -1)
    if shift.shape[1] == 1:
        shift = np.concatenate([shift, np.zeros_like(shift)], axis=1)
    consts = np.concatenate([np.asarray(mult, np.int64).reshape(oc, 1), shift], axis=1)[order]
    head = np.asarray(bias, np.int64)[order].reshape(pairs, 2).astype(np.int32).view(np.int16)
    tail_words = consts.reshape(pairs, 6).astype(np.int32).view(np.int16)
    return np.ascontiguousarray(np.concatenate([head, weights, tail_words], axis=1)).reshape(-1)


def conv2d_band(in_shape, w_shape, out_shape, stride, pad, in_zp: int, rq: Requant):
    """The layer as one call of tinycc_first_conv_s8 (its weights: band_weights' stream, doubled
    when doubles(rq); its scratch: band_scratch_bytes)."""
    _, H, W, C = in_shape
    _, OH, OW, OC = out_shape
    KH, KW = w_shape[1], w_shape[2]
    (SH, SW), (PT, PL) = stride, pad
    MODE = 6 if doubles(rq) else _double_flag(rq)
    SW_ = 2 if rq.rounding_constants else 1
    ZP, LO, HI = rq.out_zp, rq.act_min, rq.act_max
    NW = (OC + 1) // 2 * 2 * pair_block_words(w_shape)
    SB = band_scratch_bytes(w_shape, out_shape, stride)

    @T.prim_func(private=True)
    def band(x: T.Buffer((H * W * C,), "int8"), w: T.Buffer((NW,), "int16"), bias: T.Buffer((OC,), "int32"),
             mult: T.Buffer((OC,), "int32"), shift: T.Buffer((OC * SW_,), "int32"),
             scratch: T.Buffer((SB,), "int8"), out: T.Buffer((OH * OW * OC,), "int8")):
        T.evaluate(T.call_extern(
            "void", "tinycc_first_conv_s8", T.address_of(x[0]), H, W, C, KH, KW, SH, SW, PT, PL, in_zp, OH, OW,
            OC, T.address_of(w[0]), T.address_of(bias[0]), T.address_of(mult[0]), T.address_of(shift[0]), MODE,
            ZP, LO, HI, T.address_of(out[0]), scratch.access_ptr("w", offset=0, extent=SB)))

    return band
