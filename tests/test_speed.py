"""Issue 5's speed work: the requantization with compile-time rounding constants against the
Python port of TFLite's arithmetic, and the schedule knobs (per-CPU defaults, tuning records
applied by compile, every knob value bit-exact)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from tinycc import compile_model, quant
from tinycc.errors import TinyccError
from tinycc.kernels import Requant, rounding_constants, schedule
from tinycc.toolchain import RUNTIME_DIR
from tinycc.verify import verify

from conftest import model_path


def _fast_cases(rounding: str, seed: int):
    """(acc, multiplier, shift, zp, lo, hi) within what rounding_constants accepts."""
    rng = np.random.default_rng(seed)
    n = 3000
    lim = (1 << 30) - 1 if rounding == "double" else (1 << 31) - 1
    accs = [int(v) for v in rng.integers(-lim, lim, n // 2)] + \
        [int(v) for v in rng.integers(-(1 << 16), 1 << 16, n // 2)]
    accs[:8] = [-lim, lim, 0, -1, 1, -(1 << 15), (1 << 15), -3]
    cases = []
    for i, acc in enumerate(accs):
        m = [1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31))][i % 3]
        shift = int(rng.integers(-21, 0)) if rounding == "double" else int(rng.integers(-22, -1))
        zp = int(rng.integers(-128, 128))
        lo, hi = [(-128, 127), (zp, 127), (max(-128, zp - 20), min(127, zp + 30))][i % 3]
        cases.append((acc, m, shift, zp, lo, hi))
    return cases


@pytest.mark.parametrize("rounding,mode", [("double", 4), ("single", 5)])
def test_fast_requantization_matches_tflite(rounding, mode, tmp_path):
    cases = _fast_cases(rounding, seed=mode)
    rows = []
    for acc, m, shift, zp, lo, hi in cases:
        rq = Requant(True, out_zp=zp, act_min=lo, act_max=hi, rounding=rounding, right_shifts_only=True,
                     small_accumulator=True)
        e, r = (int(v) for v in rounding_constants(rq, [shift]))
        rows.append(f"{{{acc}, {m}, {e}, {r}, {lo}, {hi}}}")
    (tmp_path / "f.c").write_text(f"""#include <stdio.h>
#include "tinycc_nn.h"
static const int32_t cases[][6] = {{ {", ".join(rows)} }};
int main(void) {{
    unsigned i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {{
        const int32_t *c = cases[i];
        printf("%d\\n", (int)tinycc_requant_fast(c[0], c[1], c[2], c[3], {mode}, c[4], c[5]));
    }}
    return 0;
}}
""")
    exe = tmp_path / "f"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", "-I", str(RUNTIME_DIR / "kernels"), str(tmp_path / "f.c"),
                    "-o", str(exe)], check=True)
    got = [int(v) for v in subprocess.run([exe], check=True, capture_output=True, text=True).stdout.split()]
    want = [min(hi, max(lo, quant.mul_by_quantized_multiplier(acc, m, s, rounding) + zp))
            for acc, m, s, zp, lo, hi in cases]
    assert got == want


def test_rounding_constants_only_where_exact():
    rq = Requant(True, out_zp=3, rounding="double", right_shifts_only=True, small_accumulator=True)
    assert rounding_constants(rq, [-1, -5]).tolist() == [1, 1 + 3 * 2, 5, 16 + 3 * 32]
    assert rounding_constants(rq, [0, -5]) is None  # e = 0: RoundingDivideByPOT is the identity
    assert rounding_constants(Requant(True, rounding="double", right_shifts_only=True), [-3]) is None
    assert rounding_constants(Requant(True, rounding="single"), [-1]) is None  # s = 32
    assert rounding_constants(Requant(True, rounding="single"), [-2]).tolist() == [1, 1]


def _records(tmp_path, cpu: str, kind: str, knobs: dict, model) -> None:
    s = schedule.Schedules(cpu)
    from tinycc.frontend import load_model
    from tinycc.lower import lower
    lower(load_model(model), "t", "litert", schedules=s)
    sigs = sorted({sig for sig in s.seen.values() if sig.startswith(kind + " ")})
    assert sigs, kind
    (tmp_path / f"{cpu}.json").write_text(json.dumps(
        {"records": [{"signature": sig, "knobs": knobs} for sig in sigs]}))


def test_records_change_the_kernel_and_keep_outputs(tmp_path, monkeypatch):
    """A record for the target's CPU switches tiny_kws's depthwise layers from the 'pairs'
    kernel (M4 default) to the row kernel and plain requantization; compile applies it
    unless told not to, and the outputs stay bit-exact in QEMU."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")
    model = model_path("tiny_kws")
    _records(tmp_path, "cortex-m4", "DEPTHWISE_CONV_2D", {"variant": "rows", "requant": "plain"}, model)
    monkeypatch.setenv("TINYCC_AUTOTUNE_LOGS", str(tmp_path))
    tuned = compile_model(model, "mps2-an386", tmp_path / "tuned", measure_code=False)
    plain = compile_model(model, "mps2-an386", tmp_path / "plain", measure_code=False, tuning=False)
    src_t = (tuned.out_dir / "src" / "tiny_kws_kernels.c").read_text()
    src_p = (plain.out_dir / "src" / "tiny_kws_kernels.c").read_text()
    assert "tinycc_depthwise3x3_row(" in src_t and "tinycc_depthwise3x3_pairs_s8x4(" not in src_t
    assert "tinycc_depthwise3x3_pairs_s8x4(" in src_p
    report = verify(model, "mps2-an386", work_dir=tmp_path / "v")
    assert report.ok, report.summary()


@pytest.mark.parametrize("target", ["host", "mps2-an385"])
def test_line_buffer_depthwise_without_dsp(target, tmp_path):
    """The line-buffer depthwise kernel's scalar path (not the default without DSP) stays
    bit-exact when a knob asks for it."""
    if target != "host" and shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")
    knobs = {"DEPTHWISE_CONV_2D": {"variant": "lines"}, "CONV_2D": {"im2col": "int16"}}
    report = verify(model_path("tiny_kws"), target, work_dir=tmp_path, knobs=knobs)
    assert report.ok, report.summary()


def test_defaults_per_cpu():
    m3 = schedule.Schedules("cortex-m3").knobs("DEPTHWISE_CONV_2D", "x")
    m4 = schedule.Schedules("cortex-m4").knobs("DEPTHWISE_CONV_2D", "x")
    assert (m3.variant, m4.variant) == ("rows", "pairs")
    assert schedule.Schedules("cortex-m7").knobs("CONV_2D", "x").im2col == "int16"
    assert schedule.Schedules("cortex-m3").knobs("CONV_2D", "x").im2col == "int8"


def test_bad_record_file_is_refused(tmp_path):
    (tmp_path / "cortex-m4.json").write_text(json.dumps(
        {"records": [{"signature": "CONV_2D in=1", "knobs": {"variant": "lines"}}]}))
    with pytest.raises(TinyccError, match="bad tuning record"):
        schedule.load("cortex-m4", tmp_path)
    (tmp_path / "cortex-m4.json").write_text("{")
    with pytest.raises(TinyccError, match="bad tuning record"):
        schedule.load("cortex-m4", tmp_path)


def test_shipped_records_load():
    for path in schedule.LOGS_DIR.glob("*.json"):
        s = schedule.load(path.stem)
        assert s.records and all(k.split(" ", 1)[0] in schedule.KNOBS for k in s.records)


def test_expanded_fc_weights_keep_the_dot_products():
    """expand_weights' blocks, read as tinycc_fc_s8s16_out reads them (activations in SXTB16
    order), give the same dot products as the int8 rows, padding rows included."""
    from tinycc.kernels.gemm import expand_weights
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (6, 12)).astype(np.int8)
    x = rng.integers(-128, 128, 12).astype(np.int64)
    blocks = expand_weights(w).astype(np.int64).reshape(2, 3, 4, 4)  # row block, k/4, row, value
    xs = x.reshape(3, 4)[:, [0, 2, 1, 3]]
    got = np.einsum("bkrv,kv->br", blocks, xs).reshape(-1)[:6]
    assert got.tolist() == (w.astype(np.int64) @ x).tolist()


@pytest.mark.parametrize("target", ["host", "mps2-an386", "mps2-an385"])
def test_fc_int16_weights_bit_exact(target, tmp_path):
    if target != "host" and shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")
    knobs = schedule.parse_knobs(["FULLY_CONNECTED.weights=int16"])
    model = model_path("tiny_ae")
    res = compile_model(model, target, tmp_path / "lib", measure_code=False, knobs=knobs)
    assert "tinycc_fc_s8s16_out(" in (res.out_dir / "src" / "tiny_ae_kernels.c").read_text()
    assert "int16_t" in (res.out_dir / "src" / "tiny_ae_weights.c").read_text()
    report = verify(model, target, work_dir=tmp_path / "v", knobs=knobs)
    assert report.ok, report.summary()


def test_bad_knob_is_refused():
    with pytest.raises(TinyccError, match=re.escape("FULLY_CONNECTED.weights=int8|int16")):
        schedule.parse_knobs(["FULLY_CONNECTED.weights=int4"])
    assert schedule.parse_knobs(["CONV_2D.im2col=int8", "CONV_2D.requant=plain"]) == \
        {"CONV_2D": {"im2col": "int8", "requant": "plain"}}
