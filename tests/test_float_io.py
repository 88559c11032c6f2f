"""Models with float32 inputs and outputs: QUANTIZE float32 -> int8/int16 at the input and
DEQUANTIZE int8 -> float32 at the output, bit for bit with TFLite's reference kernels.

The QUANTIZE kernel is checked on its own against TFLite's formula (one float32 division,
std::round) on exact ties, random values and saturating ones, with both roundings; the
bundled gesture_float_io model end to end on the host and in QEMU."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinycc import emit
from tinycc import kernels as K
from tinycc.ir import Operator
from tinycc.lower import Const, Kernel
from tinycc.lower.quantize import dequantize_table
from tinycc.toolchain import C_FLAGS
from tinycc.verify import verify

MODEL = Path(__file__).resolve().parent.parent / "examples" / "models" / "gesture_float_io.tflite"


def _tflite_quantize(x: np.ndarray, scale: np.float32, zp: int, dtype: str, half_even: bool):
    with np.errstate(over="ignore"):  # 3e38 / 0.0123 is inf: it saturates all the same
        q = (x.astype(np.float32) / np.float32(scale)).astype(np.float64)
    r = np.round(q) if half_even else np.sign(q) * np.floor(np.abs(q) + 0.5)
    info = np.iinfo(dtype)
    return np.clip(r + zp, info.min, info.max).astype(dtype)


def _run_quantize(tmp_path, x, scale, zp, dtype, half_even):
    op = Operator(0, "QUANTIZE", [0], [1])
    k = Kernel("q", op, K.quantize(x.size, dtype, zp, half_even),
               [0, Const("q_scale", np.array([scale], np.float32))], 1)
    params, body = emit.generate_kernels_c([k])["q"]
    params = emit.constify(params)
    floats = ", ".join(float(v).hex() + "f" for v in x)
    ctype = {"int8": "int8_t", "int16": "int16_t"}[dtype]
    src = (f"#include <stdint.h>\n#include <stdbool.h>\n#include <stdio.h>\n"
           f"static void q({params}) {{\n{body}}}\n"
           f"static const float xs[{x.size}] = {{{floats}}};\n"
           f"static const float sc[1] = {{{float(np.float32(scale)).hex()}f}};\n"
           f"static {ctype} out[{x.size}];\n"
           f"int main(void) {{ int i; q(xs, sc, out); for (i = 0; i < {x.size}; ++i) "
           f"printf(\"%d\\n\", (int)out[i]); return 0; }}\n")
    (tmp_path / "q.c").write_text(src)
    exe = tmp_path / "q"
    subprocess.run(["gcc", *C_FLAGS, "-O2", str(tmp_path / "q.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    return np.array([int(v) for v in out], dtype=dtype)


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("half_even", [False, True], ids=["half-away", "half-even"])
def test_quantize_kernel_matches_tflite_formula(dtype, half_even, tmp_path):
    rng = np.random.default_rng(7)
    lim = 130 if dtype == "int8" else 33000
    ties = (np.arange(-lim, lim, 1, dtype=np.float64) + 0.5) * 0.25  # exact ties at scale 0.25
    scale = np.float32(0.0123)
    rand = (rng.uniform(-1.1 * lim, 1.1 * lim, 4000) * scale).astype(np.float32)
    near = ((np.arange(-200, 200) + 0.5) * np.float64(scale)).astype(np.float32)  # near ties
    huge = np.array([-3e38, -1e9, -0.0, 0.0, 1e9, 3e38], np.float32)
    for sc, zp, x in ((np.float32(0.25), 3, ties.astype(np.float32)), (scale, -5, rand),
                      (scale, 0, near), (scale, 7, huge)):
        got = _run_quantize(tmp_path, x, sc, zp, dtype, half_even)
        want = _tflite_quantize(x, sc, zp, dtype, half_even)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{bad.size} differ, e.g. x={x[bad[:3]]}: {got[bad[:3]]} vs {want[bad[:3]]}"


def test_dequantize_table_is_tflite_formula():
    # reference_ops::Dequantize: static_cast<float>(double(scale) * (q - zero_point))
    t = dequantize_table(np.float32(0.1), -3)
    assert t.dtype == np.float32 and t.shape == (256,)
    assert t[128 + 5] == np.float32(np.float64(np.float32(0.1)) * 8)
    assert t[128 - 3] == 0.0


@pytest.mark.parametrize("target,rounding", [("host", "litert"), ("host", "double"),
                                             ("mps2-an386", "litert"), ("mps2-an385", "litert")])
def test_float_io_model_is_bit_exact(target, rounding, tmp_path):
    report = verify(MODEL, target, rounding=rounding, work_dir=tmp_path)
    assert report.ok, report.summary()
    header = (tmp_path / "lib" / "include" / "gesture_float_io.h").read_text()
    assert "int gesture_float_io_run(const float *input, float *output, void *arena);" in header
    assert '#define GESTURE_FLOAT_IO_INPUT_DTYPE "float32"' in header
    assert "_SCALE" not in header  # a float input has no quantization to report


def test_float_io_in_arena_on_cortex_m(tmp_path):
    """--io-in-arena with float input and output, run by the Cortex-M harness through the
    typed accessors <name>_input(arena) / <name>_output(arena)."""
    from tinycc import compile_model, toolchain
    from tinycc.targets import load_target
    from tinycc.verify import compare, model_inputs, reference_outputs

    target = load_target("mps2-an386")
    res = compile_model(MODEL, target, tmp_path / "lib", measure_code=False, io_in_arena=True)
    header = (tmp_path / "lib" / "include" / "gesture_float_io.h").read_text()
    assert "static inline float *gesture_float_io_input(void *arena)" in header
    xs = model_inputs(res.library.graph)
    elf = toolchain.build_target(tmp_path / "lib", "gesture_float_io", xs, tmp_path / "build", target)
    run = toolchain.run_qemu(elf, target.emulator())
    for got, want in zip(run.outputs, reference_outputs(MODEL, xs)):
        assert compare(np.frombuffer(got, np.float32), want) == (0, 0.0)
