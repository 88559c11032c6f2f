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

from tinycc import compile_model
from tinycc.frontend import load_model
from tinycc.verify import FLOAT_TOLERANCE, model_inputs, verify

MODELS = Path(__file__).resolve().parent / "models" / "float_extra"
ZOO = sorted(p.stem for p in MODELS.glob("*.tflite"))
STATEFUL = {"float_svdf", "float_lstm"}
LIBM = {"float_lstm"}
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _inputs(name, n=None):
    """verify's inputs (two standard normal, all -100, all 100), a wider normal; for a stateful
    model a sequence of n runs (normal, then the extremes)."""
    g = load_model(MODELS / f"{name}.tflite")
    shape = g.tensor(g.inputs[0]).shape
    rng = np.random.default_rng(1)
    if n is None:
        return model_inputs(g) + [rng.normal(0, 10, shape).astype(np.float32)]
    return [rng.normal(0, 1.5, shape).astype(np.float32) for _ in range(n - 2)] + \
        [np.full(shape, -4.0, np.float32), np.full(shape, 4.0, np.float32)]


def _check(name, target, tmp_path, n=None):
    report = verify(MODELS / f"{name}.tflite", target, inputs=_inputs(name, n), work_dir=tmp_path)
    assert report.tolerance == (FLOAT_TOLERANCE if name in LIBM else None)
    assert report.ok, report.summary()
    return report


def test_zoo_is_present():
    assert {"float_transpose_conv", "float_svdf", "float_lstm", "hybrid_mlp", "hybrid_cnn"} <= set(ZOO), "run examples/make_extra_zoo.py"


@pytest.mark.parametrize("name", ZOO)
def test_host_matches_litert(name, tmp_path):
    _check(name, "host", tmp_path, 24 if name in STATEFUL else None)


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


@pytest.mark.parametrize("name", ["float_transpose_conv", "float_svdf", "float_lstm"])
def test_in_qemu_on_cortex_m4f(name, tmp_path):
    """Hard float on the M4F: bit for bit where no libm is called; the LSTM (newlib's expf and
    tanhf) within the bound over the whole sequence."""
    report = _check(name, "mps2-an386", tmp_path, 12 if name in STATEFUL else None)
    assert report.ran_on.startswith("mps2-an386")
