"""The operator zoo (tests/models/, made by examples/make_op_zoo.py): every model compiled and
compared byte for byte with LiteRT's reference kernels (default rounding) and with TFLM
(--rounding double) on the host; one model mixing the new operators run in QEMU; the C of
every zoo model warning-free; unsupported forms rejected with the operator's name and index.

Inputs: verify()'s two random tensors, all -128 and all 127, and for models with at least 256
input values every int8 value once (the element-wise tables are checked entry by entry).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinycc import compile_model
from tinycc.errors import UnsupportedOpError
from tinycc.frontend import load_model
from tinycc.verify import model_inputs, reference_outputs, verify

MODELS = Path(__file__).resolve().parent / "models"
ZOO = sorted(p.stem for p in MODELS.glob("*.tflite"))
NOT_IN_TFLM = {"relu_n1_to_1", "tile"}  # TFLM's op resolver has no RELU_N1_TO_1, no TILE
# TFLM pads int8 SPACE_TO_BATCH_ND with 0 instead of the zero point (its Prepare never sets
# the pad value); tinycc pads with the zero point, as LiteRT and TensorFlow do
TFLM_PADS_WITH_ZERO = {"space_to_batch_dilated"}
# LiteRT's reference resolver has no int8 DEPTH_TO_SPACE or TILE: its optimized one is the
# reference for these byte moves
NOT_IN_LITERT_REF = {"depth_to_space", "tile"}
NOT_IN_LITERT = {"elu"}  # no int8 ELU kernel in LiteRT at all: TFLM is the reference
PENDING = set()  # zoo models of operators not lowered yet
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _inputs(path):
    g = load_model(path)
    xs = model_inputs(g)
    shape = g.tensor(g.inputs[0]).shape
    n = int(np.prod(shape))
    if n >= 256 and xs[0].dtype == np.int8:
        every = np.resize(np.arange(-128, 128, dtype=np.int8), n).reshape(shape)
        xs.append(every)
    return xs


def _check(name, rounding, tmp_path, target="host"):
    path = MODELS / f"{name}.tflite"
    report = verify(path, target, rounding=rounding, inputs=_inputs(path), work_dir=tmp_path)
    assert report.ok, report.summary()


def test_zoo_is_present():
    assert len(ZOO) >= 25, "run examples/make_op_zoo.py"


@pytest.mark.parametrize("name", [n for n in ZOO if n not in PENDING | NOT_IN_LITERT_REF | NOT_IN_LITERT])
def test_host_matches_litert(name, tmp_path):
    _check(name, "litert", tmp_path)


@pytest.mark.parametrize("name", [n for n in ZOO if n not in NOT_IN_TFLM | PENDING | TFLM_PADS_WITH_ZERO])
def test_host_double_rounding_matches_tflm(name, tmp_path):
    _check(name, "double", tmp_path)


@pytest.mark.parametrize("name", sorted(NOT_IN_LITERT_REF))
def test_host_matches_litert_optimized_resolver(name, tmp_path):
    """Byte moves that only LiteRT's optimized resolver runs in int8."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from tinycc import toolchain
    path = MODELS / f"{name}.tflite"
    xs = _inputs(path)
    res = compile_model(path, "host", tmp_path / "lib", measure_code=False)
    ours = toolchain.run_host(toolchain.build_host(tmp_path / "lib", res.library.name, xs, tmp_path / "b")).outputs
    interp = Interpreter(model_content=path.read_bytes(), experimental_op_resolver_type=OpResolverType.BUILTIN)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    for x, got in zip(xs, ours, strict=True):
        interp.set_tensor(i["index"], x)
        interp.invoke()
        assert got == interp.get_tensor(o["index"]).astype(np.int8).tobytes()


def test_tflm_pads_space_to_batch_with_zero(tmp_path):
    """Why space_to_batch_dilated is not compared with TFLM: TFLM and LiteRT disagree on the
    padding of SPACE_TO_BATCH_ND itself (the first operator of that model)."""
    x = [np.full((1, 12, 11, 4), 5, np.int8)]
    tflm = reference_outputs(MODELS / "space_to_batch_dilated.tflite", x, "double")[0]
    litert = reference_outputs(MODELS / "space_to_batch_dilated.tflite", x, "litert")[0]
    assert not np.array_equal(tflm, litert)


def test_mixed_in_qemu_matches_litert(tmp_path):
    _check("mixed", "litert", tmp_path, "mps2-an386")


def test_mixed_in_qemu_matches_tflm(tmp_path):
    _check("mixed", "double", tmp_path, "mps2-an386")


@pytest.mark.parametrize("name,rounding", [("mixed_new", "litert"), ("mixed_new", "double"),
                                           ("int16_cnn", "litert")])
def test_new_operators_in_qemu(name, rounding, tmp_path):
    """TRANSPOSE_CONV, the folded dilation chain, SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND,
    SPACE_TO_DEPTH; and the 16x8 kernels' int64 arithmetic on a Cortex-M4."""
    _check(name, rounding, tmp_path, "mps2-an386")


@pytest.mark.parametrize("cc", ["gcc", "arm-none-eabi-gcc"])
def test_zoo_c_is_warning_free(cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    flags = ["-mcpu=cortex-m4", "-mthumb"] if cc.startswith("arm") else []
    for name in ZOO:
        if name in PENDING:
            continue
        for rounding in ("litert", "double"):
            res = compile_model(MODELS / f"{name}.tflite", "host", tmp_path / name / rounding,
                                rounding=rounding, measure_code=False)
            text = "\n".join(p.read_text() for p in (res.out_dir / "src").glob("*"))
            assert "malloc" not in text
            for src in sorted((res.out_dir / "src").glob("*.c")):
                cmd = [cc, "-O2", *flags, *STRICT, "-I", str(res.out_dir / "include"), "-c", str(src),
                       "-o", str(tmp_path / "x.o")]
                out = subprocess.run(cmd, capture_output=True, text=True)
                assert out.returncode == 0, f"{name} ({rounding}): {' '.join(cmd)}\n{out.stderr}"


def test_no_float_in_new_kernels(tmp_path):
    """The new operators compute in integers only: LOGISTIC and TANH's float32 (LiteRT's
    table) is evaluated at compile time. The mixed model has no SOFTMAX, so its kernels have no
    float at all, with either rounding."""
    import re
    for rounding in ("litert", "double"):
        res = compile_model(MODELS / "mixed.tflite", "host", tmp_path / rounding, rounding=rounding,
                            measure_code=False)
        text = re.sub(r"/\*.*?\*/", "", (res.out_dir / "src" / "mixed_kernels.c").read_text(), flags=re.S)
        assert not re.search(r"\b(float|double)\b", text)


def test_unsupported_form_names_the_operator(tmp_path):
    """A batch-2 TRANSPOSE_CONV (the zoo model with every shape's batch doubled)."""
    import tflite
    data = bytearray((MODELS / "transpose_conv.tflite").read_bytes())
    sg = tflite.Model.GetRootAsModel(data, 0).Subgraphs(0)
    for k in range(sg.TensorsLength()):
        t = sg.Tensors(k)
        if t.ShapeLength() == 4 and t.Shape(0) == 1 and t.Type() == tflite.TensorType.INT8:
            pos = t.ShapeAsNumpy()  # a view into the buffer: patch the batch in place
            pos[0] = 2
    (tmp_path / "batch2.tflite").write_bytes(bytes(data))
    with pytest.raises(UnsupportedOpError, match=r"TRANSPOSE_CONV at index 0"):
        compile_model(tmp_path / "batch2.tflite", "host", tmp_path / "t", measure_code=False)
