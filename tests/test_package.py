"""What `compile` writes: a plain C99 library a firmware project can take as it is."""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinycc import compile_model
from tinycc.targets import load_target

from conftest import EXAMPLE_MODELS, model_path

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


@pytest.fixture(scope="module", params=EXAMPLE_MODELS + ["kws_ref_model"])
def library(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / request.param
    return compile_model(model_path(request.param), "nrf52840", out)


def _compile_all(cc: list[str], lib_dir, tmp_path):
    for src in sorted((lib_dir / "src").glob("*.c")):
        cmd = [*cc, *STRICT, "-I", str(lib_dir / "include"), "-c", str(src), "-o", str(tmp_path / "x.o")]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"


@pytest.mark.parametrize("cc", ["gcc", "clang", "arm-none-eabi-gcc"])
def test_warning_free_c99(library, cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed (scripts/setup.sh installs it)")
    flags = list(load_target("nrf52840").cflags) if cc.startswith("arm") else []
    _compile_all([cc, "-O2", *flags], library.out_dir, tmp_path)


@pytest.fixture(scope="module", params=["vww_96_int8", "pretrainedResnet_quant", "str_ww_ref_model"])
def mlperf_library(request, tmp_path_factory):
    """MLPerf Tiny models that take every assembly kernel (first-layer band, blocks, 2x3 tiles
    with and without activation, depthwise planes, rings and Kx1 lines, FC blocks); ResNet-8's
    and str_ww's once failed at -O1."""
    out = tmp_path_factory.mktemp(request.param) / request.param
    return compile_model(model_path(request.param), "nrf52840", out, measure_code=False)


@pytest.mark.parametrize("opt", ["-O0", "-O1", "-O3", "-Os", "-Og", "-O1 -fno-omit-frame-pointer",
                                 "-O2 -fno-omit-frame-pointer", "-Os -fno-omit-frame-pointer"])
@pytest.mark.parametrize("cpu", ["nrf52840", "mps2-an500", "mps2-an505"])
def test_every_optimization_level(mlperf_library, opt, cpu, tmp_path):
    """A firmware builds at the optimization level it likes: the kernels' inline assembly (up to
    14 registers) must get its registers at every one, frame pointer or not, on the M4F, M7 and
    M33 (gcc 12 once found no registers for the 2x3 tiles' requantization at plain -O1 with a
    hard-float ABI)."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")
    _compile_all(["arm-none-eabi-gcc", *load_target(cpu).cflags, *opt.split()], mlperf_library.out_dir, tmp_path)


def _newlib_includes() -> list[str]:
    """The C library's include directories of arm-none-eabi-gcc (newlib's; not gcc's own, whose
    arm_acle.h clang cannot read: clang has its own)."""
    res = subprocess.run(["arm-none-eabi-gcc", "-xc", "-E", "-v", "-"], input="", capture_output=True, text=True)
    lines = res.stderr.splitlines()
    if "#include <...> search starts here:" not in lines:
        return []
    first = lines.index("#include <...> search starts here:") + 1
    dirs = [Path(ln.strip()) for ln in lines[first:lines.index("End of search list.")]]
    return [str(d) for d in dirs if (d / "string.h").is_file() and not (d / "arm_acle.h").is_file()]


@pytest.mark.parametrize("opt", ["-O0", "-O1", "-O2", "-Os", "-Oz", "-O2 -fno-omit-frame-pointer"])
def test_clang_for_cortex_m(library, opt, tmp_path):
    """clang (the compiler of armclang and of Zephyr's LLVM toolchain) for the M4F: it keeps
    the frame pointer by default, so the kernels must not need r7 (the assembly loops are gcc's)."""
    if shutil.which("clang") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs clang and arm-none-eabi-gcc's newlib headers (scripts/setup.sh installs them)")
    flags = [f for f in load_target("nrf52840").cflags if f.startswith(("-mcpu", "-mthumb", "-mfloat-abi", "-mfpu"))]
    includes = [f"-isystem{d}" for d in _newlib_includes()]
    _compile_all(["clang", "--target=arm-none-eabi", *flags, *includes, *opt.split()], library.out_dir, tmp_path)


def test_layout_and_plain_c(library):
    d, n = library.out_dir, library.library.name
    assert (d / "include" / f"{n}.h").is_file() and (d / "CMakeLists.txt").is_file()
    text = "\n".join(p.read_text() for p in (d / "src").glob("*") ) + (d / "include" / f"{n}.h").read_text()
    assert "malloc" not in text and "free(" not in text
    assert "tvm" not in text.lower().replace("tvm's", "")  # no TVM header, macro or symbol
    assert "TVM_DLL" not in text and "#include <math.h>" not in text


def test_one_commented_function_per_kernel(library):
    src = (library.out_dir / "src" / f"{library.library.name}_kernels.c").read_text()
    for k in library.library.kernels:
        m = re.search(rf"/\* {k.op.kind} #{k.op.index}: .*?\*/\nvoid {k.name}\(", src, re.S)
        assert m, f"no commented definition of {k.name}"
    assert len(re.findall(r"^void \w+\(", src, re.M)) == len(library.library.kernels)


def test_header_api(library):
    n, N = library.library.name, library.library.name.upper()
    h = (library.out_dir / "include" / f"{n}.h").read_text()
    for macro in ("ARENA_SIZE", "ARENA_ALIGN", "INPUT_SIZE", "OUTPUT_SIZE", "INPUT_DIMS", "OUTPUT_DIMS",
                  "INPUT_SCALE", "INPUT_ZERO_POINT", "OUTPUT_SCALE", "OUTPUT_ZERO_POINT"):
        assert f"#define {N}_{macro} " in h
    assert f"int {n}_run(const int8_t *input, int8_t *output, void *arena);" in h
    assert f"#define {N}_ARENA_SIZE {library.arena_bytes}\n" in h


def test_metadata(library):
    meta = json.loads((library.out_dir / "metadata.json").read_text())
    assert meta["arena_bytes"] == library.arena_bytes
    assert meta["weight_bytes"] == library.weight_bytes > 0
    assert len(meta["model"]["sha256"]) == 64
    assert meta["target"] == "nrf52840" and meta["versions"]["tvm"].startswith("0.27")
    assert {op["op"] for op in meta["ops"]} <= {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
                                                 "AVERAGE_POOL_2D", "ADD", "RESHAPE", "SOFTMAX"}
    assert all(t["quantization"] for t in meta["tensors"])
    assert meta["code_bytes"] > 0


@pytest.mark.parametrize("rounding", ["litert", "double"])
def test_integer_only(rounding, tmp_path):
    """No float type or literal in the code of an int8 library, with either rounding: LiteRT's
    float softmax is reproduced with integer arithmetic on float32 bit patterns."""
    res = compile_model(model_path("tiny_kws"), "nrf52840", tmp_path / rounding, rounding=rounding)
    text = "\n".join(p.read_text() for p in (res.out_dir / "src").glob("*"))
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    assert not re.search(r"\b(float|double)\b", code)
    assert not re.search(r"\d\.\d*(e[-+]?\d+)?f?\b", code)


def test_cmake_builds_the_library(tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    res = compile_model(model_path("gesture"), "host", tmp_path / "gesture")
    app = tmp_path / "app"
    app.mkdir()
    (app / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nproject(app C)\n"
        f"add_subdirectory({res.out_dir} gesture)\n"
        "add_executable(app main.c)\ntarget_link_libraries(app PRIVATE gesture)\n")
    (app / "main.c").write_text(
        '#include <stdio.h>\n#include "gesture.h"\n'
        "static int8_t arena[GESTURE_ARENA_SIZE] __attribute__((aligned(GESTURE_ARENA_ALIGN)));\n"
        "int main(void) { int8_t in[GESTURE_INPUT_SIZE] = {0}; int8_t out[GESTURE_OUTPUT_SIZE];\n"
        "  int rc = gesture_run(in, out, arena); printf(\"%d %d\\n\", rc, out[0]); return rc; }\n")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", app, "-B", build], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", build], check=True, capture_output=True)
    out = subprocess.run([build / "app"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("0 ")


def test_run_rejects_bad_arguments(tmp_path):
    res = compile_model(model_path("tiny_ae"), "host", tmp_path / "ae")
    so = tmp_path / "libae.so"
    srcs = [str(p) for p in (res.out_dir / "src").glob("*.c")]
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-I", str(res.out_dir / "include"), *srcs, "-o", str(so)],
                   check=True)
    lib = ctypes.CDLL(str(so))
    size = res.arena_bytes
    arena = (ctypes.c_int8 * (size + 32))()
    base = ctypes.addressof(arena)
    aligned = (base + 15) // 16 * 16
    x = np.zeros(res.library.input.nbytes, np.int8)
    y = np.zeros(res.library.output.nbytes, np.int8)
    px, py = x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p)
    assert lib.tiny_ae_run(px, py, ctypes.c_void_p(aligned)) == 0
    assert lib.tiny_ae_run(None, py, ctypes.c_void_p(aligned)) == -1
    assert lib.tiny_ae_run(px, None, ctypes.c_void_p(aligned)) == -1
    assert lib.tiny_ae_run(px, py, None) == -1
    assert lib.tiny_ae_run(px, py, ctypes.c_void_p(aligned + 1)) == -2


def test_repository_cmake_demo(tmp_path):
    """The repository's CMakeLists.txt builds the demo around a compiled library; its output
    equals the reference interpreter's on the same (all-zero) input."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    from tinycc.verify import reference_outputs
    repo = model_path("tiny_ae").parents[2]
    res = compile_model(model_path("tiny_ae"), "host", tmp_path / "ae")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", repo, "-B", build, f"-DTINYCC_LIBRARY={res.out_dir}"], check=True,
                   capture_output=True)
    subprocess.run(["cmake", "--build", build], check=True, capture_output=True)
    out = subprocess.run([build / "tinycc_demo"], capture_output=True, text=True, check=True).stdout.strip()
    ref = reference_outputs(model_path("tiny_ae"), [np.zeros(res.library.input.shape, np.int8)])[0]
    assert out == bytes(ref.astype(np.uint8)).hex()
