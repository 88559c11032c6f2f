"""The convolution and fully-connected tiles of issue 5: the 2x3 convolution tiles over
interleaved int16 windows and the 4-row fully-connected blocks (runtime/kernels/tinycc_nn.h),
their compile-time weight layouts, the hand-scheduled loops on the DSP cores and the C loops
elsewhere, all against LiteRT's reference kernels (tests/models/gemm/, built by
examples/make_gemm_zoo.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinycc import compile_model, quant
from tinycc.kernels import Requant
from tinycc.kernels.gemm import expand_weights, pair_weights, quad_weights
from tinycc.lower.conv import fast_requantization
from tinycc.lower.common import Const
from tinycc.verify import verify

MODEL = Path(__file__).resolve().parent / "models" / "gemm" / "gemm_tiles.tflite"
# the first layers of these models (1 and 4 input channels) would take the band kernel
# (tests/test_first_layer.py) on the DSP cores: kept on the 2x3 tiles that these tests are about
TILES = {"CONV_2D": {"few_channels": "im2col"}}
INT16_IM2COL = {"CONV_2D": {"im2col": "int16", "few_channels": "im2col"}}


def _need_arm():
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")


def test_pair_weights_feed_the_2x3_tiles():
    """pair_weights' stream, read as tinycc_conv_s16_2x3_out reads it (per channel pair and group
    of 4 values: row o0's 4 bytes, row o1's), gives each channel's dot product; an odd channel
    count repeats the last row."""
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (5, 3, 3, 4)).astype(np.int8)  # OHWI, 36 values per row
    x = rng.integers(-128, 128, 36).astype(np.int64)
    stream = pair_weights(w).astype(np.int64).reshape(3, 9, 2, 4)  # pair, group, row, value
    got = np.einsum("pgrv,gv->pr", stream, x.reshape(9, 4)).reshape(-1)
    want = w.reshape(5, -1).astype(np.int64) @ x
    assert got.tolist() == [*want.tolist(), want[4]]


def test_quad_weights_feed_the_fc_blocks():
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, (7, 12)).astype(np.int8)
    x = rng.integers(-128, 128, 12).astype(np.int64)
    stream = quad_weights(w).astype(np.int64).reshape(2, 3, 4, 4)  # block, group, row, value
    got = np.einsum("bgrv,gv->br", stream, x.reshape(3, 4)).reshape(-1)
    assert got.tolist() == [*(w.astype(np.int64) @ x).tolist(), 0]
    assert expand_weights(w).size == 8 * 12  # int16 blocks of 4 rows too


@pytest.mark.parametrize("rounding", ["single", "double"])
def test_constant_channels_keep_the_fast_requantization(rounding):
    """A pruned channel (zero weights, bias 2^30, tiny multiplier: as in VWW) no longer keeps
    its layer from the rounding constants: it gets multiplier 0, bias 0 and (e, r) = (1, 2v + 1),
    v its one output, which is what TFLite computes for it."""
    rq = Requant(True, out_zp=-128, act_min=-128, act_max=127, rounding=rounding, right_shifts_only=True,
                 small_accumulator=False)
    mult = np.array([1 << 30, 1073741824], np.int32)
    shift = np.array([-8, -31], np.int32)
    bias = np.array([1000, 1 << 30], np.int32)
    wabs = np.array([3000, 0])
    consts = [Const("m", mult), Const("s", shift)]
    rq2, consts2, bias2 = fast_requantization(rq, consts, bias, wabs)
    assert rq2.rounding_constants and bias2.tolist() == [1000, 0]
    v = quant.mul_by_quantized_multiplier(1 << 30, 1 << 30, -31, rounding) - 128
    assert consts2[0].array.tolist()[1] == 0 and consts2[1].array.tolist()[2:] == [1, 2 * v + 1]
    # the kernels' (r + high product) >> e with a zero multiplier
    assert (2 * v + 1) >> 1 == v and (2 * v + 1 - 1) >> 1 == v


@pytest.mark.parametrize("target,knobs", [
    ("host", INT16_IM2COL),                                   # the tiles' C loops, sanitized
    ("mps2-an386", TILES),                                    # Cortex-M4: the assembly loops
    ("mps2-an386", {**TILES, "FULLY_CONNECTED": {"weights": "int16"}}),
    ("mps2-an500", TILES),                                    # Cortex-M7
    ("mps2-an385", INT16_IM2COL),                             # Cortex-M3: C loops, no DSP
])
def test_tiles_match_litert(target, knobs, tmp_path):
    if target != "host":
        _need_arm()
    report = verify(MODEL, target, work_dir=tmp_path, knobs=knobs, sanitize=target == "host")
    assert report.ok, report.summary()
    src = (tmp_path / "lib" / "src" / "gemm_tiles_kernels.c").read_text()
    assert src.count("tinycc_conv_s16_2x3_out(") == 6  # 3 layers, each with its last pixels apart
    fc = "tinycc_fc_s8s16_out(" if knobs and "FULLY_CONNECTED" in knobs else "tinycc_fc_s8_out("
    assert src.count(fc) == 2 and src.count("tinycc_dot_s8_1x4(") == 1  # depth 117 keeps the C tiles


@pytest.mark.parametrize("target", ["host", "mps2-an386"])
def test_taps_of_one_and_six_channels(target, tmp_path):
    """Windows whose taps are not whole groups of 4 (1 and 6 input channels, padding on every
    side) are gathered as bytes, then expanded: the 2x3 tiles on both."""
    if target != "host":
        _need_arm()
    model = MODEL.with_name("gemm_taps.tflite")
    report = verify(model, target, work_dir=tmp_path, knobs=INT16_IM2COL, sanitize=target == "host")
    assert report.ok, report.summary()
    assert (tmp_path / "lib" / "src" / "gemm_taps_kernels.c").read_text().count("tinycc_conv_s16_2x3_out(") == 4


@pytest.mark.parametrize("cpu,fpu", [("cortex-m4", "-mfloat-abi=hard -mfpu=fpv4-sp-d16"),
                                     ("cortex-m4", "-mfloat-abi=soft"), ("cortex-m7", "-mfloat-abi=hard -mfpu=fpv5-d16"),
                                     ("cortex-m33", "-mfloat-abi=softfp -mfpu=fpv5-sp-d16")])
def test_assembly_loops_compile_at_every_level(cpu, fpu, tmp_path):
    """The loops take all 14 registers: they must still get them at every optimization level
    and float ABI a firmware may use (-O0 takes the C loops), with a frame pointer asked for too."""
    _need_arm()
    res = compile_model(MODEL, "mps2-an386", tmp_path / "lib", measure_code=False,
                        knobs={"FULLY_CONNECTED": {"weights": "int16"}})
    src = res.out_dir / "src" / "gemm_tiles_kernels.c"
    for opt in ("-O0", "-O1", "-O2", "-O3", "-Os", "-Og", "-O2 -fno-omit-frame-pointer", "-Os -fno-omit-frame-pointer"):
        cmd = ["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", *fpu.split(), *opt.split(), "-std=c99", "-Wall", "-Wextra",
               "-Werror", "-pedantic", "-c", str(src), "-o", str(tmp_path / "k.o")]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"
