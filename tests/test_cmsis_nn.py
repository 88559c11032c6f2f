"""`--kernels cmsis-nn`: the example models and the op zoo with the layers CMSIS-NN takes handed
to it, run in QEMU on mps2-an386 (Cortex-M4: CMSIS-NN's DSP code path) and mps2-an385
(Cortex-M3: its plain C path), every output byte compared with TFLM (the tflite-micro
package); the scratch buffers checked in the arena plan; the host build under ASan + UBSan in
an arena of exactly the planned size.

With --rounding litert (CMSIS-NN built with CMSIS_NN_USE_SINGLE_ROUNDING) the reference is
LiteRT's reference kernels, and CMSIS-NN gets only the layers it then rounds alike.

CMSIS-NN's sources come from CMSIS_NN_PATH (a checkout of github.com/ARM-software/CMSIS-NN);
without it these tests skip, saying so, except those that check the refusals.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinycc import cmsis_nn, compile_model, toolchain
from tinycc.cli import main
from tinycc.errors import TinyccError
from tinycc.lower import CKernel
from tinycc.targets import load_target
from tinycc.verify import reference_outputs, standard_inputs, verify

from conftest import EXAMPLE_MODELS, model_path
from test_plan import check_plan

ZOO_DIR = Path(__file__).resolve().parent / "models"
#: zoo models with at least one operator of those CMSIS-NN takes (the rest are tinycc's anyway)
ZOO = ["add_bcast", "concat", "depthwise_multiplier", "dilated_conv", "max_pool", "maximum_minimum", "mean",
       "mixed", "mul", "mul_bcast", "prelu", "quantize", "reduce_max", "split", "squeeze_expand", "sub"]
#: CMSIS-NN code paths the zoo does not reach (examples/make_cmsis_nn_models.py)
PATHS = sorted(p.stem for p in (ZOO_DIR / "cmsis_nn").glob("*.tflite"))
BOARDS = ["mps2-an386", "mps2-an385"]
CMSIS_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "SOFTMAX",
             "ADD", "MUL"}

needs_cmsis = pytest.mark.skipif(
    not os.environ.get(cmsis_nn.ENV),
    reason="CMSIS_NN_PATH is not set: point it at a checkout of https://github.com/ARM-software/CMSIS-NN "
           "(no package registry serves it)")


def _path(name: str) -> Path:
    if name in PATHS:
        return ZOO_DIR / "cmsis_nn" / f"{name}.tflite"
    return ZOO_DIR / f"{name}.tflite" if name in ZOO else model_path(name)


# --- refusals (no CMSIS-NN needed) ----------------------------------------------------------

def test_without_cmsis_nn_path_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(cmsis_nn.ENV, raising=False)
    with pytest.raises(TinyccError, match="CMSIS_NN_PATH"):
        compile_model(model_path("gesture"), "mps2-an386", tmp_path / "out", kernels="cmsis-nn")
    assert not (tmp_path / "out").exists()


def test_cli_says_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(cmsis_nn.ENV, str(tmp_path))  # not a CMSIS-NN checkout
    code = main(["compile", str(model_path("gesture")), "-t", "nrf52840", "--kernels", "cmsis-nn",
                 "-o", str(tmp_path / "out")])
    assert code == 1 and "is not a CMSIS-NN checkout" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- bit-exact in QEMU ----------------------------------------------------------------------

@needs_cmsis
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", EXAMPLE_MODELS + ZOO + PATHS)
def test_qemu_matches_tflm(name, board, tmp_path):
    path = _path(name)
    report = verify(path, board, kernels="cmsis-nn", work_dir=tmp_path)
    assert report.ok, report.summary()
    lib = report.compile.library
    calls = [k for k in lib.kernels if isinstance(k, CKernel)]
    assert calls, "no layer went to CMSIS-NN"
    source = (tmp_path / "lib" / "src" / f"{lib.name}_kernels.c").read_text()
    for k in calls:
        assert k.op.kind in CMSIS_OPS and f"void {k.name}(" in source
        assert "CMSIS-NN arm_" in k.notes[1]  # the layer comment names the function
    check_plan(lib)  # scratch buffers and tensors: no two live ones share a byte


def test_cmsis_nn_models_are_present():
    assert len(PATHS) >= 6, "run examples/make_cmsis_nn_models.py"


@needs_cmsis
def test_broadcasting_falls_back_to_tinycc(tmp_path):
    lib = compile_model(_path("mul_bcast"), "mps2-an386", tmp_path / "lib", kernels="cmsis-nn",
                        measure_code=False).library
    kinds = {k.op.kind: isinstance(k, CKernel) for k in lib.kernels}
    assert kinds["FULLY_CONNECTED"] and not kinds["MUL"]


@needs_cmsis
@pytest.mark.parametrize("name", ["ad01_int8", "kws_ref_model"])
def test_mlperf_on_m4_matches_tflm(name, tmp_path):
    """ad01_int8: TFLM differs from LiteRT by 1 or 2 on some outputs; CMSIS-NN matches TFLM there."""
    path = model_path(name)
    report = verify(path, "mps2-an386", kernels="cmsis-nn", work_dir=tmp_path)
    assert report.ok, report.summary()
    if name == "ad01_int8":
        xs = standard_inputs(report.compile.library.input.shape)
        litert, tflm = reference_outputs(path, xs, "litert"), reference_outputs(path, xs, "double")
        assert any(not np.array_equal(a, b) for a, b in zip(litert, tflm))


# --- --rounding litert: CMSIS-NN built with CMSIS_NN_USE_SINGLE_ROUNDING ----------------------

@needs_cmsis
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", ["gesture", "tiny_ae", "mixed", "max_pool", "fc_per_channel", "fc_batch",
                                  "avg_pool_same"])
def test_litert_rounding_hands_cmsis_nn_what_rounds_alike(name, board, tmp_path):
    """LiteRT rounds FULLY_CONNECTED once (CMSIS-NN's single rounding), its convolutions, ADD and
    MUL twice and its softmax in float: those stay tinycc's; pools have no rounding to disagree on."""
    report = verify(_path(name), board, rounding="litert", kernels="cmsis-nn", work_dir=tmp_path)
    assert report.ok and report.reference == "LiteRT BUILTIN_REF", report.summary()
    kernels = report.compile.library.kernels
    alike = {k.op.kind for k in kernels} & {"FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D"}
    assert alike and {k.op.kind for k in kernels if isinstance(k, CKernel)} == alike
    meta = json.loads((tmp_path / "lib" / "metadata.json").read_text())
    assert meta["cmsis_nn"]["defines"] == ["CMSIS_NN_USE_SINGLE_ROUNDING"]
    assert "CMSIS_NN_USE_SINGLE_ROUNDING" in (tmp_path / "lib" / "CMakeLists.txt").read_text()


@needs_cmsis
def test_ad01_all_cmsis_nn_and_exact_with_litert(tmp_path):
    """ad01_int8 is fully-connected layers only: all of them CMSIS-NN's, every byte LiteRT's."""
    report = verify(model_path("ad01_int8"), "mps2-an386", rounding="litert", kernels="cmsis-nn",
                    work_dir=tmp_path)
    assert report.ok, report.summary()
    fcs = [k for k in report.compile.library.kernels if k.op.kind == "FULLY_CONNECTED"]
    assert fcs and all(isinstance(k, CKernel) for k in fcs)


# --- scratch: sizes from CMSIS-NN, buffers in the arena --------------------------------------

@needs_cmsis
def test_scratch_follows_the_cpu(tmp_path):
    """gesture's 5x1 depthwise layer: CMSIS-NN's DSP path (M4) wants an im2col buffer, its plain
    C path (M3) none; each library's arena has room for what its CPU's path asks for."""
    m4 = compile_model(model_path("gesture"), "mps2-an386", tmp_path / "m4", kernels="cmsis-nn",
                       measure_code=False).library
    m3 = compile_model(model_path("gesture"), "mps2-an385", tmp_path / "m3", kernels="cmsis-nn",
                       measure_code=False).library
    dw4, dw3 = ([k for k in lib.kernels if k.op.kind == "DEPTHWISE_CONV_2D"][0] for lib in (m4, m3))
    assert dw4.scratch_bytes > 0 and dw3.scratch_bytes == 0
    assert dw4.name in m4.plan.scratch and dw3.name not in m3.plan.scratch
    entry = (tmp_path / "m4" / "src" / "gesture.c").read_text()
    assert f"arena8 + {m4.plan.scratch[dw4.name]}, " in entry
    for lib in (m4, m3):
        for k in lib.kernels:
            if getattr(k, "scratch_bytes", 0):
                off = lib.plan.scratch[k.name]
                assert off + k.scratch_bytes <= lib.plan.arena_size


@needs_cmsis
@pytest.mark.parametrize("name", ["tiny_kws", "tiny_resnet"])
def test_host_sanitized_in_an_exact_arena(name, tmp_path):
    """CMSIS-NN's plain C path on the host, the harness's arena a heap block of exactly
    ARENA_SIZE bytes (ASan; UBSan on tinycc's code)."""
    report = verify(model_path(name), "host", sanitize=True, kernels="cmsis-nn", work_dir=tmp_path)
    assert report.ok, report.summary()


@needs_cmsis
@pytest.mark.parametrize("cc", ["gcc", "arm-none-eabi-gcc"])
def test_generated_c_is_warning_free(cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    res = compile_model(model_path("tiny_kws"), "mps2-an386", tmp_path / "lib", kernels="cmsis-nn",
                        measure_code=False)
    flags = ["-mcpu=cortex-m4", "-mthumb"] if cc.startswith("arm") else []
    for src in (tmp_path / "lib" / "src").glob("*.c"):
        cmd = [cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", *flags, *cmsis_nn.include_flags(),
               "-I", str(tmp_path / "lib" / "include"), "-c", str(src), "-o", os.devnull]
        res_cc = subprocess.run(cmd, capture_output=True, text=True)
        assert res_cc.returncode == 0, res_cc.stderr
    assert res.library.kernel_set == "cmsis-nn"


@needs_cmsis
def test_a_library_builds_only_for_its_code_path(tmp_path):
    """Scratch sizes are per code path: an M3 (plain C) library is not linked for an M4."""
    res = compile_model(model_path("gesture"), "mps2-an385", tmp_path / "lib", kernels="cmsis-nn",
                        measure_code=False)
    meta = json.loads((tmp_path / "lib" / "metadata.json").read_text())
    assert meta["kernels"] == "cmsis-nn" and meta["cmsis_nn"]["code_path"] == "plain"
    xs = standard_inputs(res.library.input.shape, 1)
    with pytest.raises(TinyccError, match="plain code path"):
        toolchain.build_target(tmp_path / "lib", res.library.name, xs, tmp_path / "b", load_target("mps2-an386"))


@needs_cmsis
def test_a_cmsis_nn_with_other_structures_is_refused(tmp_path, monkeypatch):
    """The scratch sizes are asked through ctypes structures: a CMSIS-NN whose headers lay them
    out otherwise (another release's API) is refused instead of miscounted."""
    src = Path(os.environ[cmsis_nn.ENV])
    for part in ("Include", "Source"):
        shutil.copytree(src / part, tmp_path / part)
    types = tmp_path / "Include" / "arm_nn_types.h"
    text = types.read_text()
    assert "    int32_t ch_mult;" in text
    types.write_text(text.replace("    int32_t ch_mult;", "    int32_t ch_mult;\n    int32_t extra;", 1))
    monkeypatch.setenv(cmsis_nn.ENV, str(tmp_path))
    with pytest.raises(TinyccError, match="declares its parameter structures"):
        compile_model(model_path("gesture"), "mps2-an386", tmp_path / "out", kernels="cmsis-nn")
    assert not (tmp_path / "out").exists()


@needs_cmsis
def test_generated_cmake_builds_with_cmsis_nn_path(tmp_path):
    """The library's CMakeLists.txt adds CMSIS-NN from CMSIS_NN_PATH; the program it links
    prints TFLM's output."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    res = compile_model(model_path("tiny_ae"), "host", tmp_path / "ae", kernels="cmsis-nn")
    app = tmp_path / "app"
    app.mkdir()
    (app / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.15)\nproject(app C CXX)\n"
        f"add_subdirectory({res.out_dir} ae)\n"
        "add_executable(app main.c)\ntarget_link_libraries(app PRIVATE tiny_ae)\n")
    (app / "main.c").write_text(
        '#include <stdio.h>\n#include "tiny_ae.h"\n'
        "static int8_t arena[TINY_AE_ARENA_SIZE] __attribute__((aligned(TINY_AE_ARENA_ALIGN)));\n"
        "int main(void) { int8_t in[TINY_AE_INPUT_SIZE] = {0}; int8_t out[TINY_AE_OUTPUT_SIZE]; int i;\n"
        "  if (tiny_ae_run(in, out, arena) != 0) return 1;\n"
        "  for (i = 0; i < TINY_AE_OUTPUT_SIZE; i++) printf(\"%02x\", (unsigned char)out[i]);\n"
        "  return 0; }\n")
    build = tmp_path / "build"
    unused = [f"-D{part}=OFF" for part in ("SVDF", "LSTM", "CONCATENATION", "RESHAPE", "PAD", "TRANSPOSE")]
    subprocess.run(["cmake", "-S", app, "-B", build, "-DCMSIS_OPTIMIZATION_LEVEL=-O1", *unused], check=True,
                   capture_output=True)
    subprocess.run(["cmake", "--build", build, "-j", "2"], check=True, capture_output=True)
    out = subprocess.run([build / "app"], capture_output=True, text=True, check=True).stdout.strip()
    ref = reference_outputs(model_path("tiny_ae"), [np.zeros(res.library.input.shape, np.int8)], "double")[0]
    assert out == bytes(ref.astype(np.uint8)).hex()


@needs_cmsis
def test_profile_counts_every_cmsis_nn_layer(tmp_path):
    from tinycc.profile import profile
    report = profile(model_path("tiny_kws"), "mps2-an386", kernels="cmsis-nn", work_dir=tmp_path)
    assert report.exact and report.layers and all(r.instructions > 0 for r in report.layers)
    assert {r.op for r in report.layers} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"}
