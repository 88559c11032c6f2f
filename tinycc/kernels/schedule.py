"""Schedule knobs of the convolution, depthwise and fully-connected kernels, as data.

Each kernel family has a small frozen dataclass of the choices its builder in
`tinycc.kernels.gemm` makes (micro-kernel variant, weight layout, requantization form), a
default per CPU (`DEFAULTS`), and per-layer overrides from tuning records: JSON files in
`autotune_logs/` named after the target's CPU (`cortex-m4.json`), each record keyed by the
layer's op signature (operator, shapes, stride, dilation, padding). `tinycc compile` applies
the records of its target's CPU by default; `compile_model(..., tuning=False)` ignores them,
`knobs={"FULLY_CONNECTED": {"weights": "int16"}}` (the command line's `--knob
FULLY_CONNECTED.weights=int16`) sets a knob on every layer of a kind, and $TINYCC_AUTOTUNE_LOGS names another
folder of records (what a tuner uses to measure a candidate).
Every knob value gives the same output bytes: knobs change instructions, arena scratch and
flash only, so a tuner may try any of them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import TinyccError

LOGS_DIR = Path(__file__).resolve().parent.parent.parent / "autotune_logs"


@dataclass(frozen=True)
class ConvKnobs:
    """CONV_2D (im2col + tiles of tinycc_conv_s16_2x3_out or tinycc_conv_s8_2x2_out)."""

    # "constants": per-channel rounding constants and SMMULR where the layer qualifies
    # (fixedpoint.rounding_constants); "plain": the shift array as TFLite computes it
    requant: str = "constants"
    # "int8": windows gathered as bytes on the stack (a 1x1 convolution reads its input in
    # place), every 2x2 tile unpacks them; "int16": three windows sign-extended once into arena
    # scratch (6 bytes per window value), 2x3 tiles in assembly load halfword pairs (windows of
    # taps that are not whole words are gathered as bytes first, up to 1 KiB; above, int8)
    im2col: str = "int8"
    # layers over 1 to 4 input channels (first layers, tinycc.kernels.first_layer): "band": the
    # input rows sign-extended once into an int16 band in arena scratch, windows read from it in
    # place by 2x3 tiles with int16 weights; "im2col": as the other layers (the im2col knob)
    few_channels: str = "im2col"
    # int16 im2col of whole-word taps: how many pixels a block sign-extends at once, for its
    # channel pairs to run int16 weights over (tinycc_conv_s16_block_out; the weights are
    # expanded once per pair and block, so the larger the block the cheaper). "fit": the
    # largest block whose scratch leaves the planned arena unchanged (tinycc.plan.grow_scratch;
    # the one-tile form where there is no room); "tile": 3 pixels at a time, int8 weights in
    # the tiles (tinycc_conv_s16_2x3_out); "plane": every pixel in one block, whatever the arena
    block: str = "fit"
    # "int16": weights stored pre-extended in the int16 tiles' order (gemm.wide_pair_weights;
    # twice the flash), no run-time expansion, blocks of any size (int16 im2col, whole-word taps)
    weights: str = "int8"


@dataclass(frozen=True)
class DepthwiseKnobs:
    """DEPTHWISE_CONV_2D, depth multiplier 1, channels a multiple of 4."""

    requant: str = "constants"
    # "pairs": 3x3 (stride 1 or 2) from channel-planar int16 line buffers in arena scratch, two
    # outputs of one channel per step with SMLAD over neighbouring taps, along rows or columns
    # (tinycc_depthwise3x3_pairs_s8x4; Kx1 and 1xK windows: tinycc_depthwise_kx1_pairs_s8x4;
    # other layers as "lines");
    # "lines": 3x3 windows from line buffers in arena scratch, a group of 4 channels over the
    # whole plane (tinycc_depthwise3x3_lines_s8x4); "rows": one output pixel at a time, all
    # channels, 3x3 row spans plus edge pixels (tinycc_depthwise3x3_row / _edge), no scratch
    variant: str = "lines"


@dataclass(frozen=True)
class FullyConnectedKnobs:
    """FULLY_CONNECTED (4-row blocks of tinycc_fc_s8_out; tinycc_dot_s8_1x4 for depths that
    are not a multiple of 4)."""

    requant: str = "constants"
    # "int16": weights stored pre-extended for SMLAD (gemm.expand_weights; twice the flash),
    # one LDRD per 4 weights instead of half an LDRD and 2 SXTB16 (depth % 4 == 0)
    weights: str = "int8"


KNOBS = {"CONV_2D": ConvKnobs, "DEPTHWISE_CONV_2D": DepthwiseKnobs, "FULLY_CONNECTED": FullyConnectedKnobs}
CHOICES = {"requant": ("constants", "plain"), "variant": ("pairs", "lines", "rows"), "im2col": ("int8", "int16"),
           "weights": ("int8", "int16"), "few_channels": ("band", "im2col"), "block": ("fit", "tile", "plane")}

# Defaults per CPU, measured with `tinycc profile` (instructions per layer in QEMU): on the
# Cortex-M3 (no DSP: the line buffer holds int16 and each tap is four scalar MACs) the line
# buffers do not pay for their copies (KWS's depthwise: 636K -> 855K instructions), so
# depthwise keeps the row kernel there, and on the host, which has no DSP either.
# On the DSP cores the int16 im2col pays for its expansion on every convolution measured
# (KWS pointwise 891K -> 744K instructions, ResNet-8 3x3 layers 13-26% fewer), and blocks of
# int16 windows with int16 weights ('fit') beat the one-tile form wherever 3 tiles fit in the
# arena's free bytes (M4: VWW 9.91M -> 8.89M, KWS 3.36M -> 3.26M, ResNet-8 14.31M -> 13.61M;
# VWW's 3x3-plane layers, 3 tiles a block, 280K -> 267K and 538K -> 515K). The weights knob
# stays int8: int16 weights save the run-time expansion for twice the weights' flash
# (VWW -171K instructions for +196 KB).
# On the DSP cores the 'pairs' depthwise kernel beats the line buffers on every MLPerf Tiny
# layer measured but VWW's 3x3-plane stride-2 one (KWS 309K -> 201K instructions per layer;
# VWW's depthwise layers 3.70M -> 2.58M), which its tuning record keeps on the row kernel.
# The band kernel of first layers (few_channels) on the DSP cores: VWW's first layer 969,520 ->
# 603,920 instructions on the M4 (967,080 -> 604,040 on the M7), ResNet-8's 732,000 -> 555,600,
# KWS's 433,760 -> 352,520; on the M3 its C loop is slower (KWS's 1.04M -> 1.23M): im2col there.
_DSP = {"CONV_2D": ConvKnobs(im2col="int16", few_channels="band"),
        "DEPTHWISE_CONV_2D": DepthwiseKnobs(variant="pairs")}
_SCALAR = {"DEPTHWISE_CONV_2D": DepthwiseKnobs(variant="rows")}
DEFAULTS = {
    "cortex-m3": _SCALAR,
    "cortex-m0plus": _SCALAR,
    "host": _SCALAR,
    "cortex-m4": _DSP,
    "cortex-m7": _DSP,
    "cortex-m33": _DSP,
}


def signature(kind: str, in_shape, w_shape, out_shape, stride=(1, 1), dilation=(1, 1), pad=(0, 0)) -> str:
    """A layer's key in the tuning records: what the kernel's code depends on."""
    def dims(s):
        return "x".join(str(int(d)) for d in s)
    return (f"{kind} in={dims(in_shape)} w={dims(w_shape)} out={dims(out_shape)} "
            f"stride={dims(stride)} dilation={dims(dilation)} pad={dims(pad)}")


@dataclass
class Schedules:
    """The knobs for one compile: per-CPU defaults, then the tuning records' overrides."""

    cpu: str = "host"
    records: dict = dataclasses.field(default_factory=dict)  # signature -> {knob: value}
    source: Path | None = None
    applied: list = dataclasses.field(default_factory=list)  # signatures a record changed

    seen: dict = dataclasses.field(default_factory=dict)  # op index -> signature, as lowered
    overrides: dict = dataclasses.field(default_factory=dict)  # kind -> {knob: value}, every layer

    def knobs(self, kind: str, sig: str, index: int = -1):
        self.seen[index] = sig
        base = DEFAULTS.get(self.cpu, {}).get(kind, KNOBS[kind]())
        override = self.records.get(sig)
        if override:
            self.applied.append(sig)
            base = dataclasses.replace(base, **override)
        return dataclasses.replace(base, **self.overrides.get(kind, {}))


def parse_knobs(specs) -> dict:
    """["FULLY_CONNECTED.weights=int16", ...] (the command line's --knob) -> {kind: {knob: value}}."""
    out: dict = {}
    for spec in specs or []:
        m = re.fullmatch(r"(\w+)\.(\w+)=(\w+)", spec)
        kind, knob, value = m.groups() if m else (None, None, None)
        if kind not in KNOBS or knob not in {f.name for f in dataclasses.fields(KNOBS[kind])} \
                or value not in CHOICES[knob]:
            choices = "; ".join(f"{k}.{f.name}={'|'.join(CHOICES[f.name])}" for k, c in KNOBS.items()
                                for f in dataclasses.fields(c))
            raise TinyccError(f"bad knob '{spec}'; the knobs are {choices}")
        out.setdefault(kind, {})[knob] = value
    return out


def load(cpu: str, logs_dir: Path | None = None) -> Schedules:
    """The defaults for `cpu` with the records of `<logs_dir>/<cpu>.json`, if the file exists
    (logs_dir: $TINYCC_AUTOTUNE_LOGS, else the repository's autotune_logs/)."""
    path = Path(logs_dir or os.environ.get("TINYCC_AUTOTUNE_LOGS") or LOGS_DIR) / f"{cpu}.json"
    if not path.is_file():
        return Schedules(cpu)
    try:
        doc = json.loads(path.read_text())
        records = {}
        for rec in doc["records"]:
            sig, knobs = rec["signature"], dict(rec["knobs"])
            kind = sig.split(" ", 1)[0]
            fields = {f.name for f in dataclasses.fields(KNOBS[kind])}
            for k, v in knobs.items():
                if k not in fields or v not in CHOICES[k]:
                    raise ValueError(f"knob {k}={v!r} for {kind}")
            records[sig] = knobs
    except (ValueError, KeyError, TypeError) as e:  # json.JSONDecodeError is a ValueError
        raise TinyccError(f"bad tuning record file {path}: {e}") from None
    return Schedules(cpu, records, path)
