"""Float32 models (tests/models/float/, made by examples/make_float_zoo.py): every model compiled
and compared with LiteRT's reference kernels (BUILTIN_REF) on the host (two also with TFLM, and
the MLPerf Tiny float models where they are on the machine); two in QEMU on a
Cortex-M4F (hard float) and one on a Cortex-M3 (soft float, with the compile warning); the C of
every model warning-free; unsupported float forms refused with the operator's name and index.

The bound. A kernel whose arithmetic is + - * / min max does it in the reference's order, which
IEEE single precision rounds the same way on every core: those models must match bit for bit,
everywhere. LOGISTIC, TANH and SOFTMAX call expf / tanhf, and the target's C library may round
those differently from the host's (newlib on arm-none-eabi, glibc under LiteRT): models with
them must satisfy |ours - ref| <= ATOL + RTOL * |ref|. Measured on this zoo: identical on the
host (the same glibc); in QEMU at most 2.4e-7 absolute and 2.7e-7 relative (2 to 3 ulp), with
hard and soft float alike. The bound leaves a margin of over 30x for deeper networks.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import model_path
from tinycc import compile_model
from tinycc.errors import UnsupportedOpError
from tinycc.frontend import load_model
from tinycc.ir import Quant
from tinycc.lower import lower
from tinycc.verify import FLOAT_TOLERANCE, compare, model_inputs, verify

MODELS = Path(__file__).resolve().parent / "models" / "float"
ZOO = sorted(p.stem for p in MODELS.glob("*.tflite"))
ATOL, RTOL = 1e-6, 1e-5
LIBM_OPS = {"LOGISTIC", "TANH", "SOFTMAX"}
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _tolerance(name):
    """None (bit for bit) unless the model calls libm."""
    kinds = {op.kind for op in load_model(MODELS / f"{name}.tflite").operators}
    return (ATOL, RTOL) if kinds & LIBM_OPS else None


def _inputs(name):
    """verify's float inputs (two standard normal, then all -100 and all 100: past LOGISTIC's
    cutoffs) and one wider normal."""
    g = load_model(MODELS / f"{name}.tflite")
    wide = np.random.default_rng(1).normal(0, 10, g.tensor(g.inputs[0]).shape).astype(np.float32)
    return model_inputs(g) + [wide]


def _check(name, target, tmp_path):
    """verify() with its default tolerance, which must be the policy above."""
    report = verify(MODELS / f"{name}.tflite", target, inputs=_inputs(name), work_dir=tmp_path)
    assert report.tolerance == _tolerance(name)
    assert report.ok, report.summary()
    return report


def test_float_zoo_is_present():
    assert len(ZOO) >= 35, "run examples/make_float_zoo.py"
    for name in ZOO:
        g = load_model(MODELS / f"{name}.tflite")
        assert all(t.quant is None for t in g.tensors if t.dtype == "float32"), name
        assert g.tensor(g.inputs[0]).dtype == g.tensor(g.outputs[0]).dtype == "float32", name


@pytest.mark.parametrize("name", ZOO)
def test_host_matches_litert(name, tmp_path):
    _check(name, "host", tmp_path)


@pytest.mark.parametrize("name", ["tiny_kws", "mixed", "rearrange", "split"])
def test_host_under_asan_and_ubsan(name, tmp_path):
    """The plan's overlaps (traced on the float kernels) in an arena of exactly the planned size."""
    report = verify(MODELS / f"{name}.tflite", "host", inputs=_inputs(name), work_dir=tmp_path, sanitize=True)
    assert "ASan" in report.ran_on and report.ok, report.summary()


@pytest.mark.parametrize("name", ["gesture", "mixed"])
def test_host_matches_tflm(name, tmp_path):
    """TFLM's float kernels are the same reference code: --rounding double (which only changes
    integer requantization) checks a float model against the tflite-micro package."""
    report = verify(MODELS / f"{name}.tflite", "host", rounding="double", inputs=_inputs(name), work_dir=tmp_path)
    assert report.reference.startswith("TFLM") and report.ok, report.summary()


@pytest.mark.parametrize("name", ["gesture", "mixed"])
def test_qemu_hard_float_matches_litert(name, tmp_path):
    """Cortex-M4F: the FPU's instructions, no software float calls."""
    _check(name, "mps2-an386", tmp_path)
    code = _disassembly(tmp_path, name, "mps2-an386")
    assert "vmul.f32" in code and "vadd.f32" in code
    assert "__aeabi_fmul" not in code and "__aeabi_fadd" not in code
    assert not re.search(r"\bv(fma|fms|mla|mls)\.f32", code)  # no contraction: C99 rounds each operation


def test_qemu_soft_float_warns_and_matches_litert(tmp_path):
    """Cortex-M3 (no FPU): libgcc's software float, the same results, and a warning."""
    report = _check("tiny_kws", "mps2-an385", tmp_path)
    assert any("has no FPU" in w and "slow" in w for w in report.compile.warnings)
    code = _disassembly(tmp_path, "tiny_kws", "mps2-an385")
    assert "__aeabi_fmul" in code and "vmul.f32" not in code
    cli = subprocess.run(["python3", "-m", "tinycc", "compile", str(MODELS / "conv.tflite"), "-t", "rp2040",
                          "-o", str(tmp_path / "cli")], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "tinycc: warning: rp2040 (cortex-m0plus) has no FPU" in cli.stderr


def test_hard_float_target_has_no_warning(tmp_path):
    assert compile_model(MODELS / "conv.tflite", "nrf52840", tmp_path / "c", measure_code=False).warnings == []


def _disassembly(tmp_path, name, board) -> str:
    """The kernels as built for the board (the library's own object file, not libm's)."""
    obj = tmp_path / "build" / "obj" / f"lib_{name}_kernels.o"
    return subprocess.run(["arm-none-eabi-objdump", "-dr", str(obj)], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """Every float zoo model compiled once for the host: {name: output folder}."""
    root = tmp_path_factory.mktemp("float-libs")
    return {name: compile_model(MODELS / f"{name}.tflite", "host", root / name, measure_code=False).out_dir
            for name in ZOO}


@pytest.mark.parametrize("cc", ["gcc", "clang", "arm-none-eabi-gcc"])
def test_float_c_is_warning_free(cc, libraries, tmp_path):
    """Every file of every float library, strict C99; single precision throughout: no double,
    no double-precision libm call, every constant a float literal."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"] if cc.startswith("arm") else []
    for name, out in libraries.items():
        kernels = (out / "src" / f"{name}_kernels.c").read_text()
        assert "malloc" not in kernels and not re.search(r"\bdouble\b|\b(exp|tanh)\(", kernels), name
        assert not re.search(r"[0-9]e[+-][0-9]+(?!f)\b", kernels), name
        for obj in tmp_path.glob("*.o"):
            obj.unlink()
        cmd = [cc, "-O2", *flags, *STRICT, "-Wdouble-promotion", "-I", str(out / "include"), "-c",
               *map(str, sorted((out / "src").glob("*.c")))]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0 and len(list(tmp_path.glob("*.o"))) == 3, f"{name}: {' '.join(cmd)}\n{res.stderr}"


def test_float_header_says_what_it_needs(tmp_path):
    res = compile_model(MODELS / "gesture.tflite", "host", tmp_path / "g", measure_code=False)
    header = (res.out_dir / "include" / "gesture.h").read_text()
    assert "int gesture_run(const float *input, float *output, void *arena);" in header
    assert "float32 model" in header and "-lm" in header
    assert "#include <math.h>" in (res.out_dir / "src" / "gesture_kernels.c").read_text()
    assert "target_link_libraries(gesture PUBLIC m)" in (res.out_dir / "CMakeLists.txt").read_text()
    res = compile_model(MODELS / "conv.tflite", "host", tmp_path / "c", measure_code=False)
    assert "<math.h>" not in (res.out_dir / "src" / "conv_kernels.c").read_text()
    # an int8 model with float input and output (QUANTIZE, DEQUANTIZE) is not a float model
    res = compile_model(MODELS.parent.parent.parent / "examples" / "models" / "gesture_float_io.tflite",
                        "rp2040", tmp_path / "io", measure_code=False)
    assert res.warnings == [] and "float32 model" not in (res.out_dir / "include" / "gesture_float_io.h").read_text()


def test_unsupported_float_forms_name_the_operator():
    g = load_model(MODELS / "conv.tflite")
    g.operators[1].options["fused_activation_function"] = 4  # TANH: no fused form in TFLite's float conv
    with pytest.raises(UnsupportedOpError, match=r"CONV_2D at index 1.*fused activation code 4"):
        lower(g, "conv")
    g = load_model(MODELS / "conv.tflite")  # int8 weights with a zero point in a float (hybrid) operator
    w = g.tensor(g.operators[0].inputs[1])
    w.dtype, w.data, w.quant = "int8", np.zeros(w.shape, np.int8), Quant(np.ones(1, np.float32), np.ones(1, np.int64))
    with pytest.raises(UnsupportedOpError, match=r"CONV_2D at index 0.*int8 weights .* with a zero point"):
        lower(g, "conv")
    g = load_model(MODELS / "relu.tflite")
    g.operators[0].kind = "WHILE"
    with pytest.raises(UnsupportedOpError, match=r"WHILE at index 0"):
        lower(g, "relu")


def test_float_constants_survive_c_printing():
    """TVM prints float constants with 7 digits; emit rewrites those that would come back as
    another float (LOGISTIC's cutoff, the lowest float, an arbitrary LEAKY_RELU alpha)."""
    from tinycc import emit
    from tinycc.kernels import float32 as KF
    from tinycc.lower import Kernel
    from tvm import tirx
    values = [16.619047164916992, KF.LOWEST, 0.123456789, -2.7182817, 3.0, 1e-30]
    for v in values:
        k = Kernel("k", None, KF.unary(4, lambda x, v=v: tirx.max(x, KF.f32(v))), [0], 1)
        body = emit.generate_kernels_c([k])["k"][1]
        literals = re.findall(r"-?\d[\d.]*(?:e[+-]?\d+)?f\b", body)
        assert literals and all(np.float32(float(s[:-1])) == np.float32(v) for s in literals), (v, body)


@pytest.mark.parametrize("name", ["ad01_fp32", "pretrainedResnet", "vww_96_float"])
def test_mlperf_float_models_match_litert(name, tmp_path):
    """The MLPerf Tiny float models (skipped, saying so, where they are not on the machine)."""
    report = verify(model_path(name), "host", work_dir=tmp_path)
    assert report.ok, report.summary()


def test_mlperf_hybrid_kws_is_refused_under_double_rounding(tmp_path):
    """kws_ref_model_float32 is hybrid: it compiles (tests/test_float_extra.py), but not against
    TFLM, which has no hybrid kernels."""
    with pytest.raises(UnsupportedOpError, match=r"CONV_2D at index 0.*hybrid"):
        compile_model(model_path("kws_ref_model_float32"), "host", tmp_path / "k", rounding="double",
                      measure_code=False)
    assert not (tmp_path / "k").exists()


def test_compare_of_infinities_and_nans():
    """EXP and DIV overflow to infinity: equal infinities (and NaN against NaN) match, an
    infinity against anything else differs, with or without a tolerance."""
    ref = np.array([np.inf, -np.inf, np.nan, 1.0, np.inf], np.float32)
    same = ref.copy()
    other = np.array([np.inf, np.inf, np.nan, 1.0, 3e38], np.float32)
    for tolerance in (None, FLOAT_TOLERANCE):
        assert compare(same, ref, tolerance) == (0, 0.0)
        bad, largest = compare(other, ref, tolerance)
        assert bad == 2 and largest == np.inf
