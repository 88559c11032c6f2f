"""Float32 TRANSPOSE_CONV, SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM, and hybrid models
(tests/models/float_extra/, made by examples/make_extra_zoo.py), compared with LiteRT's
reference kernels: bit for bit where no libm function is called (TRANSPOSE_CONV, SVDF with a
clamping activation, the hybrid kernels), within tinycc.verify's FLOAT_TOLERANCE for the LSTM
(expf, tanhf), over sequences of runs for the stateful ones (one interpreter invoked on the
same sequence), on the host and in QEMU; the C of every model warning-free with -pedantic.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import model_path
from test_stateful import _edited
from tinycc import compile_model
from tinycc.errors import UnsupportedOpError
from tinycc.frontend import load_model
from tinycc.verify import FLOAT_TOLERANCE, model_inputs, verify

MODELS = Path(__file__).resolve().parent / "models" / "float_extra"
ZOO = sorted(p.stem for p in MODELS.glob("*.tflite"))
STATEFUL = {"float_svdf", "float_svdf_bias", "float_lstm", "float_streaming_var", "hybrid_svdf"}
LIBM = {"float_lstm"}
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _inputs(name, n=None):
    """verify's inputs (two standard normal, all -100, all 100), a wider normal; for a stateful
    model a sequence of n runs (normal, then zeros and the extremes)."""
    g = load_model(MODELS / f"{name}.tflite")
    shape = g.tensor(g.inputs[0]).shape
    rng = np.random.default_rng(1)
    if n is None:
        return model_inputs(g) + [rng.normal(0, 10, shape).astype(np.float32)]
    return [rng.normal(0, 1.5, shape).astype(np.float32) for _ in range(n - 3)] + \
        [np.zeros(shape, np.float32), np.full(shape, -4.0, np.float32), np.full(shape, 4.0, np.float32)]


def _check(name, target, tmp_path, n=None, rounding=None):
    report = verify(MODELS / f"{name}.tflite", target, rounding=rounding, inputs=_inputs(name, n), work_dir=tmp_path)
    assert report.tolerance == (FLOAT_TOLERANCE if name in LIBM else None)
    assert report.ok, report.summary()
    return report


def test_zoo_is_present():
    assert {"float_transpose_conv", "float_svdf", "float_svdf_bias", "float_lstm", "float_streaming_var", "hybrid_mlp",
            "hybrid_cnn", "hybrid_depthwise", "hybrid_conv_per_tensor", "hybrid_svdf"} <= set(ZOO), \
        "run examples/make_extra_zoo.py"


@pytest.mark.parametrize("name", ZOO)
def test_host_matches_litert(name, tmp_path):
    _check(name, "host", tmp_path, 24 if name in STATEFUL else None)


@pytest.mark.parametrize("name", ["float_transpose_conv", "float_svdf_bias", "float_lstm", "float_streaming_var"])
def test_host_double_rounding_matches_tflm(name, tmp_path):
    """--rounding double: TFLM's float kernels (its SVDF sums in plain order, the bias first)."""
    _check(name, "host", tmp_path, 24 if name in STATEFUL else None, rounding="double")


@pytest.mark.parametrize("name, why", [("float_svdf", "without a bias"), ("hybrid_mlp", "TFLM has no hybrid"),
                                       ("hybrid_cnn", "TFLM has no hybrid"), ("hybrid_svdf", "TFLM has no hybrid")])
def test_double_rounding_refuses_what_tflm_cannot_run(name, why, tmp_path):
    with pytest.raises(UnsupportedOpError, match=why):
        compile_model(MODELS / f"{name}.tflite", "host", tmp_path / "out", rounding="double", measure_code=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cc", ["gcc", "clang", "arm-none-eabi-gcc"])
def test_c_is_warning_free(cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"] if cc.startswith("arm") else []
    for path in [*(MODELS / f"{n}.tflite" for n in ZOO), *sorted((MODELS.parent / "int16_extra").glob("*.tflite"))]:
        res = compile_model(path, "host", tmp_path / path.stem, measure_code=False)
        assert "malloc" not in "".join(p.read_text() for p in (res.out_dir / "src").glob("*"))
        for src in sorted((res.out_dir / "src").glob("*.c")):
            cmd = [cc, "-O2", *flags, *STRICT, "-I", str(res.out_dir / "include"), "-c", str(src),
                   "-o", str(tmp_path / "x.o")]
            out = subprocess.run(cmd, capture_output=True, text=True)
            assert out.returncode == 0, f"{path.stem}: {' '.join(cmd)}\n{out.stderr}"


@pytest.mark.parametrize("name", ["float_transpose_conv", "float_svdf", "float_lstm", "float_streaming_var",
                                  "hybrid_mlp", "hybrid_conv_per_tensor", "hybrid_svdf"])
def test_in_qemu_on_cortex_m4f(name, tmp_path):
    """Hard float on the M4F: bit for bit where no libm is called; the LSTM (newlib's expf and
    tanhf) within the bound over the whole sequence."""
    report = _check(name, "mps2-an386", tmp_path, 12 if name in STATEFUL else None)
    assert report.ran_on.startswith("mps2-an386")


def test_hybrid_in_qemu_on_cortex_m3(tmp_path):
    """No FPU: soft float (and soft double for the asymmetric input quantization)."""
    report = verify(MODELS / "hybrid_cnn.tflite", "mps2-an385", inputs=_inputs("hybrid_cnn")[:2], work_dir=tmp_path)
    assert report.ok, report.summary()


def test_kws_float32_is_hybrid_and_matches_litert(tmp_path):
    """MLPerf Tiny's float KWS is a hybrid model (int8 convolution weights, per-tensor): bit for
    bit with LiteRT but for its SOFTMAX (expf), on the host."""
    path = model_path("kws_ref_model_float32")
    g = load_model(path)
    assert any(g.tensor(op.inputs[1]).dtype == "int8" for op in g.operators if op.kind == "CONV_2D")
    xs = model_inputs(g) + [np.random.default_rng(2).normal(0, 10, g.tensor(g.inputs[0]).shape).astype(np.float32)]
    report = verify(path, "host", inputs=xs, work_dir=tmp_path)
    assert report.ok and not any(report.max_abs_diff), report.summary()


def test_hybrid_has_no_libm_and_no_float_weights(tmp_path):
    res = compile_model(MODELS / "hybrid_cnn.tflite", "host", tmp_path / "lib", measure_code=False)
    kernels = (res.out_dir / "src" / "hybrid_cnn_kernels.c").read_text()
    assert "expf" not in kernels and "round" not in kernels
    weights = (res.out_dir / "src" / "hybrid_cnn_weights.c").read_text()
    assert "const int8_t hybrid_cnn_conv2d_3_weights" in weights


def test_svdf_with_a_libm_activation_is_refused(tmp_path):
    def tanh(m, S):
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = S.ActivationFunctionType.TANH
    bad = _edited(MODELS / "float_svdf.tflite", tmp_path, tanh)
    with pytest.raises(UnsupportedOpError, match=r"SVDF at index 0.*activation"):
        compile_model(bad, "host", tmp_path / "out", measure_code=False)
    assert not (tmp_path / "out").exists()


def test_hybrid_depthwise_with_one_scale_is_refused(tmp_path):
    def one_scale(m, S):
        sg = m.subgraphs[0]
        q = sg.tensors[sg.operators[0].inputs[1]].quantization
        q.scale, q.zeroPoint = [float(q.scale[0])], [0]
    bad = _edited(MODELS / "hybrid_depthwise.tflite", tmp_path, one_scale)
    with pytest.raises(UnsupportedOpError, match=r"DEPTHWISE_CONV_2D at index 0.*one scale"):
        compile_model(bad, "host", tmp_path / "out", measure_code=False)


@pytest.mark.parametrize("name", sorted(STATEFUL))
def test_float_state_reset(name, tmp_path):
    """reset, run the sequence, reset, run it again: the same outputs (the state is float
    zeros after reset), and the state matters."""
    import ctypes
    path = MODELS / f"{name}.tflite"
    res = compile_model(path, "host", tmp_path / "lib", measure_code=False)
    lib = res.library
    so = tmp_path / f"lib{name}.so"
    subprocess.run(["gcc", *STRICT, "-O1", "-shared", "-fPIC", "-I", str(tmp_path / "lib" / "include"),
                    *map(str, sorted((tmp_path / "lib" / "src").glob("*.c"))), "-lm", "-o", str(so)], check=True)
    dll = ctypes.CDLL(str(so))
    arena = (ctypes.c_uint8 * (lib.plan.arena_size + 16))()
    base = (ctypes.addressof(arena) + 15) // 16 * 16
    out = np.zeros(lib.output.size, np.float32)
    runs = []
    for _ in range(2):
        getattr(dll, f"{name}_reset")(ctypes.c_void_p(base))
        got = []
        for x in _inputs(name, 6):
            assert getattr(dll, f"{name}_run")(x.ctypes.data_as(ctypes.c_void_p),
                                               out.ctypes.data_as(ctypes.c_void_p), ctypes.c_void_p(base)) == 0
            got.append(out.copy())
        runs.append(got)
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    x = _inputs(name, 6)[0]  # the same input twice: the second output differs (the state carried)
    getattr(dll, f"{name}_reset")(ctypes.c_void_p(base))
    twice = []
    for _ in range(2):
        getattr(dll, f"{name}_run")(x.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p),
                                    ctypes.c_void_p(base))
        twice.append(out.copy())
    assert np.array_equal(twice[0], runs[0][0]) and not np.array_equal(twice[0], twice[1])


@pytest.mark.parametrize("name", ["hybrid_cnn", "hybrid_mlp", "hybrid_svdf", "float_svdf_bias", "float_lstm",
                                  "float_transpose_conv"])
def test_plan_and_sanitizers(name, tmp_path):
    """test_plan's independent checker on the plan (the hybrid kernels' scratch, the float
    state), then a run under ASan and UBSan in an arena of exactly the planned size."""
    from test_plan import check_plan
    res = compile_model(MODELS / f"{name}.tflite", "host", tmp_path / "lib", measure_code=False)
    check_plan(res.library)
    report = verify(MODELS / f"{name}.tflite", "host", inputs=_inputs(name, 6 if name in STATEFUL else None),
                    work_dir=tmp_path / "v", sanitize=True)
    assert "ASan" in report.ran_on and report.ok, report.summary()


@pytest.mark.parametrize("name, scale_ends", [("hybrid_conv_per_tensor", (127.0, -127.0)),  # symmetric
                                              ("hybrid_mlp", (-128.0, 127.0))])  # asymmetric
def test_hybrid_input_rounding_edges(name, scale_ends, tmp_path):
    """The input quantization's two rounding rules: values +-(1/2 - 2^-25) at a scale of exactly
    1 round to +-1 in the first multiple of 8 values ((int)(v +- 0.5f): the float sum rounds up)
    and to 0 in the tail (TfLiteRound). LiteRT does so (its output changes when those values
    become 0 in the vector part, not in the tail), and tinycc matches it bit for bit."""
    from tinycc.verify import reference_outputs
    path = MODELS / f"{name}.tflite"
    shape = load_model(path).tensor(load_model(path).inputs[0]).shape
    n = int(np.prod(shape))
    edge = np.float32(0.5) - np.float32(2.0 ** -25)
    x = np.zeros(n, np.float32)
    x[:2] = scale_ends
    vector = np.arange(2, 8)
    tail = np.arange(n // 8 * 8, n)
    assert len(tail) > 0
    x[vector] = edge * np.where(vector % 2, 1, -1)
    x[tail] = edge * np.where(tail % 2, 1, -1)
    no_vector, no_tail = x.copy(), x.copy()
    no_vector[vector] = 0
    no_tail[tail] = 0
    xs = [v.reshape(shape) for v in (x, no_vector, no_tail)]
    ref = reference_outputs(path, xs)
    assert not np.array_equal(ref[0], ref[1]) and np.array_equal(ref[0], ref[2])
    report = verify(path, "host", inputs=xs, work_dir=tmp_path)
    assert report.ok and not any(report.max_abs_diff), report.summary()


def test_unsupported_float_recurrent_forms_name_the_operator():
    """A hybrid LSTM (int8 weights, float activations), a CIFG LSTM and a batch-2 SVDF."""
    from tinycc.ir import Quant
    from tinycc.lower import lower
    g = load_model(MODELS / "float_lstm.tflite")
    w = g.tensor(g.operators[0].inputs[2])
    w.dtype, w.data, w.quant = "int8", np.zeros(w.shape, np.int8), Quant(np.ones(1, np.float32), np.zeros(1, np.int64))
    with pytest.raises(UnsupportedOpError, match=r"UNIDIRECTIONAL_SEQUENCE_LSTM at index 0.*hybrid"):
        lower(g, "lstm")
    g = load_model(MODELS / "float_lstm.tflite")
    g.operators[0].inputs[1] = -1  # no input-to-input weights: CIFG
    with pytest.raises(UnsupportedOpError, match=r"UNIDIRECTIONAL_SEQUENCE_LSTM at index 0.*CIFG"):
        lower(g, "lstm")
    g = load_model(MODELS / "float_svdf.tflite")
    x = g.tensor(g.operators[0].inputs[0])
    x.shape = (2, x.shape[1])
    with pytest.raises(UnsupportedOpError, match=r"SVDF at index 0"):
        lower(g, "svdf")
