"""The 'pairs' depthwise kernels (tinycc_depthwise3x3_pairs_s8x4 and, for Kx1 and 1xK windows,
tinycc_depthwise_kx1_pairs_s8x4; the default on cores with DSP): bit-exact with LiteRT on the
host and Cortex-M3 (their plain C) and Cortex-M4 (SMLAD), on the shapes of tests/models/dw/
(examples/make_dw_zoo.py): odd and even lines, stride 1, 2 and 3, SAME and VALID padding,
sweeps along rows and columns, 2 to 10 taps."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinycc import compile_model
from tinycc.kernels import depthwise
from tinycc.verify import verify

import _cbuild

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
    # requantization mode 7 (no sign correction) for the ReLU6 layer only, 4 without activation
    res = compile_model(DW / "dw_rows.tflite", "mps2-an386", tmp_path / "r", measure_code=False)
    src = (res.out_dir / "src" / "dw_rows_kernels.c").read_text()
    modes = re.findall(r"\(&\(shift\[\(g \* 8\)\]\)\), (\d+),", src)
    assert modes == ["7", "4", "4"]


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


def test_pairs_mode_drops_the_sign_correction_only_under_a_clamp():
    """Mode 7 (no sign correction) for ReLU-like clamps (lo >= zp) with non-negative multipliers;
    a layer without activation (lo = -128 < zp) or with a negative multiplier keeps mode 4."""
    from tinycc.kernels.fixedpoint import Requant

    def rq(zp, lo, hi=127):
        return Requant(True, 0, 0, zp, lo, hi, "double", True, small_accumulator=True, rounding_constants=True)
    assert depthwise.pairs_mode(rq(-128, -128), True) == 7  # ReLU / ReLU6 with zp -128
    assert depthwise.pairs_mode(rq(-5, -5, 120), True) == 7
    assert depthwise.pairs_mode(rq(-5, 0), True) == 7  # floor above the zero point
    assert depthwise.pairs_mode(rq(-5, -128), True) == 4  # no activation
    assert depthwise.pairs_mode(rq(-128, -128), False) == 4  # a negative multiplier somewhere


def test_requant_without_sign_correction_on_host(tmp_path):
    """tinycc_requant_local's mode 7 against TFLite's double rounding (tinycc.quant) where the
    clamp floor is at or above the zero point, on accumulators around 0 (products that round to
    0, negative ties) and random ones; without activation (the last cases) mode 7 would be
    wrong on a negative tie, and mode 6 is right."""
    from tinycc import quant

    rng = np.random.default_rng(7)
    cases = []  # acc, m, shift, zp, lo, hi, mode
    for i in range(6000):
        m = [0, 1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31))][i % 4]
        shift = -int(rng.integers(1, 20))
        zp = int(rng.integers(-128, 128))
        lo = int(rng.integers(zp, 128)) if i % 3 else zp
        hi = int(rng.integers(lo, 128))
        acc = [int(rng.integers(-64, 64)), int(rng.integers(-(1 << 20), 1 << 20)),
               int(rng.integers(-(1 << 29), 1 << 29))][i % 3]
        cases.append((acc, m, shift, zp, lo, hi, 7))
    for acc in (-1, -2, -3, -(1 << 10), 1, 0):  # tiny negatives: the product rounds to 0 or ties
        cases.append((acc, 1 << 30, -1, -128, -128, 127, 7))
        cases.append((acc, (1 << 31) - 1, -1, 3, 3, 127, 7))
    # no activation: SRDHM(-1, 2^31 - 1) = -1, a tie at e = 1 that rounds away from zero to -1;
    # without the correction it would give 0
    tie = (-1, (1 << 31) - 1, -1, 0, -128, 127)
    cases += [(*tie, 6), (*tie, 7)]
    rows = ",\n".join("{%d, %d, %d, %d, %d, %d, %d}" % c for c in cases)
    (tmp_path / "r.c").write_text(f"""#include <stdio.h>
#include "tinycc_nn.h"
static const int32_t cases[][7] = {{ {rows} }};
int main(void) {{
    unsigned i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {{
        const int32_t *c = cases[i], e = -c[2], r = (1 << (e - 1)) + c[3] * (1 << e);
        printf("%d\\n", (int)tinycc_requant_local(2 * c[0], c[1], e, r, c[6], c[3], c[4], c[5]));
    }}
    return 0;
}}
""")
    got = _cbuild.run_runtime_program(tmp_path / "r.c")
    want = [min(hi, max(lo, quant.mul_by_quantized_multiplier(acc, m, s, "double") + zp))
            for acc, m, s, zp, lo, hi, _ in cases]
    assert want[-1] == -1
    assert got[:-1] == want[:-1]  # mode 7 under a clamp, and mode 6 without one
    assert got[-1] == 0  # mode 7 without a clamp: wrong, hence pairs_mode
