"""The 'pairs' depthwise kernels (tinycc_depthwise3x3_pairs_s8x4 and, for Kx1 and 1xK windows,
tinycc_depthwise_kx1_pairs_s8x4; the default on cores with DSP): bit-exact with LiteRT on the
host and Cortex-M3 (their plain C) and Cortex-M4 (SMLAD), on the shapes of tests/models/dw/
(examples/make_dw_zoo.py): odd and even lines, stride 1, 2 and 3, SAME and VALID padding,
sweeps along rows and columns, 2 to 10 taps."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tinycc import compile_model
from tinycc.kernels import depthwise
from tinycc.verify import verify

DW = Path(__file__).resolve().parent / "models" / "dw"
MODELS = sorted(p.stem for p in DW.glob("*.tflite"))
KNOBS = {"DEPTHWISE_CONV_2D": {"variant": "pairs"}}


@pytest.mark.parametrize("target", ["host", "mps2-an385", "mps2-an386"])
@pytest.mark.parametrize("name", MODELS)
def test_pairs_bit_exact(name, target, tmp_path):
    if target != "host" and shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")
    report = verify(DW / f"{name}.tflite", target, work_dir=tmp_path, knobs=KNOBS)
    assert report.ok, report.summary()


def test_pairs_is_the_m4_default(tmp_path):
    """Every depthwise layer of the zoo takes the 'pairs' kernel on the M4 but the one whose
    stride across and along every axis is above 2 (none here), with its scratch planned."""
    res = compile_model(DW / "dw_columns.tflite", "mps2-an386", tmp_path / "c", measure_code=False)
    src = (res.out_dir / "src" / "dw_columns_kernels.c").read_text()
    assert src.count("tinycc_depthwise3x3_pairs_s8x4(") == 3
    assert "variant pairs" in src
    res = compile_model(DW / "dw_kx1.tflite", "mps2-an386", tmp_path / "k", measure_code=False)
    src = (res.out_dir / "src" / "dw_kx1_kernels.c").read_text()
    assert src.count("tinycc_depthwise_kx1_pairs_s8x4(") == 3


def test_sweep_and_weights():
    # KWS's 25x5 planes: lines along the 25 (13 pairs) rather than 25 lines of 3 pairs
    assert depthwise.pairs_sweep((1, 25, 5, 64), (1, 25, 5, 64), (1, 1)) == "columns"
    assert depthwise.pairs_sweep((1, 48, 48, 8), (1, 48, 48, 8), (1, 1)) == "rows"
    assert depthwise.pairs_sweep((1, 9, 9, 8), (1, 3, 3, 8), (3, 3)) is None
    assert depthwise.pairs_line((1, 4, 5, 8), (2, 2), "rows") == 2 * 2 * 3 + 2
    # small planes are extended whole (8 lines of 8 int16 for 4 channels), long lines keep the ring
    assert depthwise.pairs_plane((1, 6, 6, 128), (1, 1), "rows")
    assert depthwise.pairs_scratch_bytes((1, 6, 6, 128), (1, 1), "rows") == 8 * 8 * 8
    assert not depthwise.pairs_plane((1, 48, 48, 8), (1, 1), "rows")
    assert depthwise.pairs_scratch_bytes((1, 48, 48, 8), (1, 1), "rows") == 24 * 50
    w = np.arange(1, 1 + 9 * 4, dtype=np.int8).reshape(1, 3, 3, 4)
    rows = depthwise.pair_weights(w, "rows").reshape(4, 3, 4)
    cols = depthwise.pair_weights(w, "columns").reshape(4, 3, 4)
    k = w[0, :, :, 1]  # channel 1: ky, kx
    assert rows[1, 2].tolist() == [k[2, 0], k[2, 1], k[2, 1], k[2, 2]]
    assert cols[1, 2].tolist() == [k[0, 2], k[1, 2], k[1, 2], k[2, 2]]


@pytest.mark.parametrize("name", ["dw_rows", "dw_columns", "dw_kx1"])
def test_pairs_sanitized_in_an_exact_arena(name, tmp_path):
    """The plain C path under ASan and UBSan in an arena of exactly the planned size: the line
    buffers stay inside the kernel's scratch, and the traced in-place overlap holds."""
    report = verify(DW / f"{name}.tflite", "host", sanitize=True, knobs=KNOBS, work_dir=tmp_path)
    assert report.ok, report.summary()


def test_kx1_weights():
    w = np.arange(1, 1 + 5 * 4, dtype=np.int8).reshape(1, 5, 1, 4)  # 5 taps along the height
    assert depthwise.kx1_axis(w.shape, (1, 1), (1, 1), (2, 0)) == "columns"
    assert depthwise.kx1_axis(w.shape, (2, 1), (1, 1), (0, 0)) is None  # stride along the taps
    k = depthwise.kx1_weights(w, "columns").reshape(4, -1)[2]  # channel 2: 3 + 3 pairs
    taps = w[0, :, 0, 2].tolist()
    assert k.tolist() == taps + [0] + [0] + taps
    assert depthwise.kx1_weights(w, "columns", doubled=True).reshape(4, -1)[2].tolist() == [2 * v for v in k.tolist()]


VWW = Path("/work/shared/models/mlperf-tiny/vww_96_int8.tflite")
if not VWW.exists():
    VWW = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf-tiny" / "vww_96_int8.tflite"


@pytest.mark.parametrize("rounding,opt", [("litert", "-O2"), ("double", "-Os"), ("double", "-Og")])
def test_assembly_lines_on_vww(rounding, opt, tmp_path):
    """tinycc_dw_lines_asm on every form it takes: VWW's ring layers (48 and 24 outputs a line,
    strides 1 and 2), whole planes of 24, 12, 6 and 3 (4 outputs a step, then a pair and a
    single), single rounding (SMMLA) and double (SMMLAR), and the C loops where -Og leaves a
    shape unknown: bit-exact on the M4."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")
    if not VWW.exists():
        pytest.skip(f"{VWW} is absent (the MLPerf Tiny models)")
    report = verify(VWW, "mps2-an386", rounding=rounding, opt=opt, work_dir=tmp_path)
    assert report.ok, report.summary()
