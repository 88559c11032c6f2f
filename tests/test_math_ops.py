"""The math-operator zoo (tests/models/math/, made by examples/make_math_zoo.py): every model
compiled and compared with LiteRT's reference kernels (BUILTIN_REF) on the host, with TFLM
(--rounding double) where TFLM has the operator, one int8 and one float32 model in QEMU on a
Cortex-M4F; the C strict-C99 clean; the unsupported forms refused by name.

int8 models must match bit for bit. Float32 ones too, except that models calling expf, logf,
cosf or sinf must be within verify's FLOAT_TOLERANCE (|d| <= 1e-6 + 1e-5 |ref|): identical on
the host (glibc on both sides), newlib's in QEMU (measured in test_qemu_float_libm_within_bound).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinycc import compile_model, quant, toolchain
from tinycc.errors import UnsupportedOpError
from tinycc.frontend import load_model
from tinycc.lower import lower
from tinycc.lower import math as LM
from tinycc.verify import FLOAT_TOLERANCE, model_inputs, verify

MODELS = Path(__file__).resolve().parent / "models" / "math"
ZOO = sorted(p.stem for p in MODELS.glob("*.tflite"))
INT8 = [n for n in ZOO if not n.endswith("_float")]
FLOAT = [n for n in ZOO if n.endswith("_float")]
NOT_IN_LITERT_REF = {"ceil_round_float"}  # no CEIL, no ROUND in LiteRT's reference resolver
# SUM int8: LiteRT's BUILTIN_REF reads the int8 data as uint8 (see test_int8_sum_references);
# TFLM is the reference. TFLM has no int8 EXP, LOG or SQRT.
NOT_LITERT_ORACLE = {"sum"}
TFLM_INT8 = ["rsqrt", "sum", "l2_norm", "resize_bilinear", "batch_matmul", "log_softmax", "div"]
# TFLM's ROUND (reference RoundToNearest: floor, then + 1) gives +0 where C's nearbyintf, and
# LiteRT's optimized kernel, give -0 (x in (-0.5, 0)): equal values, another sign bit
TFLM_SIGNED_ZERO = {"ceil_round_float"}
LIBM = {"exp_float", "log_float", "trig_float", "log_softmax_float"}
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _inputs(path):
    """verify's inputs; every int8 value once (the tables entry by entry); a wide normal for
    float models."""
    g = load_model(path)
    xs = model_inputs(g)
    shape = g.tensor(g.inputs[0]).shape
    n = int(np.prod(shape))
    if xs[0].dtype == np.int8 and n >= 256:
        xs.append(np.resize(np.arange(-128, 128, dtype=np.int8), n).reshape(shape))
    if xs[0].dtype == np.float32:
        xs.append(np.random.default_rng(1).normal(0, 10, shape).astype(np.float32))
    return xs


def _check(name, tmp_path, rounding="litert", target="host"):
    path = MODELS / f"{name}.tflite"
    report = verify(path, target, rounding=rounding, inputs=_inputs(path), work_dir=tmp_path)
    assert report.tolerance == (FLOAT_TOLERANCE if name in LIBM else None), name
    assert report.ok, report.summary()
    return report


def test_math_zoo_is_present():
    assert len(INT8) >= 6 and len(FLOAT) >= 8, "run examples/make_math_zoo.py"
    kinds = {op.kind for n in ZOO for op in load_model(MODELS / f"{n}.tflite").operators}
    assert set(LM.FLOAT) <= kinds and set(LM.INT8) <= kinds, set(LM.FLOAT) - kinds


@pytest.mark.parametrize("name", [n for n in ZOO if n not in NOT_IN_LITERT_REF | NOT_LITERT_ORACLE])
def test_host_matches_litert(name, tmp_path):
    _check(name, tmp_path)


@pytest.mark.parametrize("name", TFLM_INT8 + [n for n in FLOAT if n not in TFLM_SIGNED_ZERO])
def test_host_matches_tflm(name, tmp_path):
    _check(name, tmp_path, rounding="double")


@pytest.mark.parametrize("name", ["div", "l2_norm", "log_softmax", "resize_bilinear", "batch_matmul", "sum",
                                  "cumsum_float", "l2_pool_float"])
def test_host_under_asan_and_ubsan(name, tmp_path):
    """No undefined behaviour (DIV's and the fixed-point kernels' shifts), no access outside
    an arena of exactly the planned size."""
    path = MODELS / f"{name}.tflite"
    rounding = "double" if name in NOT_LITERT_ORACLE else "litert"
    report = verify(path, "host", rounding=rounding, inputs=_inputs(path), work_dir=tmp_path, sanitize=True)
    assert "ASan" in report.ran_on and report.ok, report.summary()


def _ours_and(path, tmp_path, resolver, xs):
    from ai_edge_litert.interpreter import Interpreter
    res = compile_model(path, "host", tmp_path / "lib", measure_code=False)
    ours = toolchain.run_host(toolchain.build_host(tmp_path / "lib", res.library.name, xs, tmp_path / "b")).outputs
    interp = Interpreter(model_content=path.read_bytes(), experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    theirs = []
    for x in xs:
        interp.set_tensor(i["index"], x)
        interp.invoke()
        theirs.append(interp.get_tensor(o["index"]).reshape(-1).copy())
    return [np.frombuffer(b, t.dtype) for b, t in zip(ours, theirs, strict=True)], theirs


def test_ceil_round_match_litert_optimized_resolver(tmp_path):
    """CEIL and ROUND (halves to even) bit for bit with the only LiteRT kernels there are."""
    from ai_edge_litert.interpreter import OpResolverType
    path = MODELS / "ceil_round_float.tflite"
    xs = _inputs(path)
    halves = np.round(np.linspace(-6, 6, xs[0].size) * 2) / 8  # x * 4 lands on every half
    xs.append(halves.astype(np.float32).reshape(xs[0].shape))
    ours, theirs = _ours_and(path, tmp_path, OpResolverType.BUILTIN, xs)
    for a, b in zip(ours, theirs):
        assert a.tobytes() == b.tobytes()
    assert ((theirs[-1] == 0) & np.signbit(theirs[-1])).any()  # the -0 that TFLM's ROUND loses


def test_int8_sum_references(tmp_path):
    """int8 SUM: TFLM's integer kernel (checked bit for bit above) is the oracle. LiteRT's
    BUILTIN_REF passes the int8 data to QuantizedMeanOrSum as uint8 (reduce.cc): it equals
    that reading, which saturates, not ours; its optimized SUM requantizes in float32 and is
    within one step of ours (measured: 52 of 912 values differ, by 1, on 24 inputs)."""
    from ai_edge_litert.interpreter import OpResolverType
    path = MODELS / "sum.tflite"
    xs = _inputs(path)
    ours, opt = _ours_and(path, tmp_path / "opt", OpResolverType.BUILTIN, xs)
    for a, b in zip(ours, opt):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    _, ref = _ours_and(path, tmp_path / "ref", OpResolverType.BUILTIN_REF, xs[:1])
    # the first output reduces the raw input over H and W (keepdims): model REF's uint8 reading
    g = load_model(path)
    op = g.operators[0]
    (si, zi), (so, zo) = g.tensor(op.inputs[0]).quant.scalar(), g.tensor(op.outputs[0]).quant.scalar()
    m, s = quant.quantize_multiplier(float(si) / float(so), "double")
    raw = xs[0].astype(np.int64).reshape(6 * 5, 8)
    for signed, want in ((False, ref[0][:8]), (True, ours[0][:8])):
        sums = (raw if signed else raw & 255).sum(axis=0)
        got = [quant.mul_by_quantized_multiplier(int(v) - zi * 30, m, s, "double") + zo for v in sums]
        lo, hi = (-128, 127) if signed else (0, 255)
        assert np.array_equal(np.array([min(hi, max(lo, v)) for v in got]).astype(np.uint8).view(np.int8), want)
    assert not np.array_equal(ref[0][:8], ours[0][:8])


def test_rsqrt_port():
    """GetInvSqrtQuantizedMultiplierExp against 1/sqrt(x), and the table the same with either
    rounding for the zoo's and other scales (which LiteRT picks cannot change the bytes)."""
    for x in [2, 3, 7, 100, 255, 1 << 20, (1 << 29) + 5, quant.INT32_MAX]:
        m, s = LM.inv_sqrt_multiplier(x)
        assert abs(m * 2.0 ** (s - 31) * np.sqrt(x) - 1) < 1e-5, x  # Q31, 5 Newton steps
    for si, zi, so, zo in [(0.015684014, -128, 0.21133848, -128), (0.01, -5, 0.05, -100), (0.2, 3, 0.01, 0)]:
        single = LM.rsqrt_table(np.float32(si), zi, np.float32(so), zo, "single")
        assert np.array_equal(single, LM.rsqrt_table(np.float32(si), zi, np.float32(so), zo, "double"))


@pytest.mark.parametrize("name", ["mixed", "l2_norm", "log_softmax", "resize_bilinear", "div"])
def test_qemu_int8_matches_litert(name, tmp_path):
    """On a Cortex-M4: SQRT, EXP, LOG, RSQRT tables (and the conv, MUL, ADD, MEAN around them);
    the hand-written L2 normalization and log-softmax (int64 fixed point); the integer
    bilinear resize; DIV's variable shifts."""
    _check(name, tmp_path, target="mps2-an386")


def test_qemu_float_libm_within_bound(tmp_path):
    """expf, logf, cosf, sinf, sqrtf from newlib on a Cortex-M4F: within the bound; the
    bit-exact float operators bit for bit."""
    report = _check("trig_float", tmp_path / "trig", target="mps2-an386")
    assert report.ran_on.startswith("mps2-an386") and max(report.mismatches) == 0
    print(report.summary())
    _check("elementwise_float", tmp_path / "ew", target="mps2-an386")
    _check("log_softmax_float", tmp_path / "ls", target="mps2-an386")


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """Every math zoo model compiled once for the host: {name: output folder}."""
    root = tmp_path_factory.mktemp("math-libs")
    return {name: compile_model(MODELS / f"{name}.tflite", "host", root / name, measure_code=False).out_dir
            for name in ZOO}


def test_qemu_soft_float_bit_exact(tmp_path):
    """Cortex-M3 (no FPU): libgcc's soft float, FLOOR_DIV's double division and newlib's
    fmodf / floorf included, bit for bit."""
    _check("elementwise_float", tmp_path, target="mps2-an385")


@pytest.mark.parametrize("cc", ["gcc", "clang", "arm-none-eabi-gcc"])
def test_math_c_is_warning_free(cc, libraries, tmp_path):
    """Strict C99 with gcc, clang and for the M4F; the int8 models' kernels integer-only."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"] if cc.startswith("arm") else []
    for name, out in libraries.items():
        kernels = (out / "src" / f"{name}_kernels.c").read_text()
        assert "malloc" not in kernels, name
        if name in INT8:  # tables and integers only
            code = re.sub(r"/\*.*?\*/", "", kernels, flags=re.S)
            assert not re.search(r"\b(float|double)\b|math\.h", code), name
        for obj in tmp_path.glob("*.o"):
            obj.unlink()
        cmd = [cc, "-O2", *flags, *STRICT, "-I", str(out / "include"), "-c", *map(str, sorted((out / "src").glob("*.c")))]
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0 and len(list(tmp_path.glob("*.o"))) == 3, f"{name}: {res.stderr}"


def _retyped(name: str, kind: str, dtype: str = "int8"):
    """A zoo model with its first operator renamed (an int8 model: an int8 form of `kind`)."""
    g = load_model(MODELS / f"{name}.tflite")
    g.operators[0].kind = kind
    return g


@pytest.mark.parametrize("kind, why", [("NEG", r"raw \(unquantized\) integers"),
                                       ("SQUARE", "no int8 kernel"), ("FLOOR_MOD", "raw \\(unquantized\\)"),
                                       ("L2_POOL_2D", "float32 only"), ("CUMSUM", "no quantized form")])
def test_int8_forms_litert_lacks_are_refused(kind, why):
    with pytest.raises(UnsupportedOpError, match=rf"{kind} at index 0.*int8: .*{why}.*float32 only"):
        lower(_retyped("sqrt", kind), "m")


def test_unsupported_float_forms_are_refused():
    g = load_model(MODELS / "elementwise_float.tflite")
    add_n = next(op for op in g.operators if op.kind == "ADD_N")
    t = g.tensor(add_n.outputs[0])
    t.shape = (1, *t.shape[1:-1], 2 * t.shape[-1])  # an input would broadcast
    with pytest.raises(UnsupportedOpError, match=rf"ADD_N at index {add_n.index}.*does not broadcast"):
        lower(g, "m")
    for name, kind, want in (("l2_norm", "L2_NORMALIZATION", r"not \(1/128, 0\)"),
                             ("log_softmax", "LOG_SOFTMAX", r"not \(1/16, 127\)")):
        g = load_model(MODELS / f"{name}.tflite")  # an output quantization the kernel cannot produce
        op = next(o for o in g.operators if o.kind == kind)
        g.tensor(op.outputs[0]).quant.scale[...] = 0.05
        with pytest.raises(UnsupportedOpError, match=rf"{kind} at index {op.index}.*{want}"):
            lower(g, "m")
    g = load_model(MODELS / "sum.tflite")  # int16 SUM: not lowered
    for i in (g.operators[0].inputs[0], g.operators[0].outputs[0]):
        g.tensor(i).dtype = "int16"
    with pytest.raises(UnsupportedOpError, match=r"SUM at index 0.*int16"):
        lower(g, "m")
