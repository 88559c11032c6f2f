"""CMSIS-NN (`--kernels cmsis-nn`): its sources, its scratch sizes, its library for a target.

No package registry serves CMSIS-NN, so its sources come from a checkout named by the
environment variable CMSIS_NN_PATH (github.com/ARM-software/CMSIS-NN; it needs no other CMSIS
header). Three things are built from that one tree, each cached under
``~/.cache/tinycc/cmsis-nn/<hash of the sources and flags>``:

- for the compiler, on the host: a shared library of CMSIS-NN's own ``*_get_buffer_sizes_s8.c``
  files, called through ctypes. The scratch size of a layer is what CMSIS-NN's
  ``<function>_get_buffer_size_dsp`` (cores with the DSP extension), ``..._mve`` (Helium) or,
  for cores with neither, the generic ``<function>_get_buffer_size`` built without either
  extension returns: no copy of its formulas to drift from the release in use.
- for a harness build (QEMU or host): ``libcmsis-nn.a`` of every integer source file, built
  with the library's compiler and flags, linked after the library.
- the generated CMakeLists.txt finds it through CMSIS_NN_PATH or Zephyr's cmsis-nn module.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from .errors import TinyccError

ENV = "CMSIS_NN_PATH"
#: How CMSIS-NN requantizes for each --rounding: TFLM's double rounding by default, LiteRT's
#: single rounding (of its FULLY_CONNECTED) when built with CMSIS_NN_USE_SINGLE_ROUNDING.
REQUANTIZATION = {"double": "double", "litert": "single"}
DEFINES = {"double": [], "single": ["-DCMSIS_NN_USE_SINGLE_ROUNDING"]}
KERNELS = ("tinycc", "cmsis-nn")
#: Cores with Helium (MVE): CMSIS-NN's third code path.
MVE_CPUS = ("cortex-m55", "cortex-m85")


class CmsisNNError(TinyccError):
    pass


def source_dir() -> Path:
    """The CMSIS-NN checkout named by CMSIS_NN_PATH, checked."""
    value = os.environ.get(ENV)
    if not value:
        raise CmsisNNError(f"--kernels cmsis-nn needs CMSIS-NN's sources: set {ENV} to a checkout of "
                           "https://github.com/ARM-software/CMSIS-NN (no package registry serves it)")
    root = Path(value).expanduser().resolve()
    if not (root / "Include" / "arm_nnfunctions.h").is_file() or not (root / "Source").is_dir():
        raise CmsisNNError(f"{ENV}={value} is not a CMSIS-NN checkout (no Include/arm_nnfunctions.h "
                           "and Source/ there)")
    return root


def include_flags() -> list[str]:
    return ["-I", str(source_dir() / "Include")]


def variant(target) -> str:
    """Which of CMSIS-NN's code paths the target's CPU compiles: mve, dsp or plain C. CMSIS-NN
    picks it from the compiler's __ARM_FEATURE_MVE / __ARM_FEATURE_DSP, so the cross compiler
    is asked with the target's flags; without one, the target's data decides."""
    if target.is_host:
        return "plain"
    cc = shutil.which("arm-none-eabi-gcc")
    if cc is None:
        return "mve" if target.cpu in MVE_CPUS else "dsp" if target.has_dsp else "plain"
    return _compiler_variant(cc, tuple(target.cflags))


def _integer_sources(root: Path) -> list[Path]:
    """Every C file but the float16/float32 ones (off by default in CMSIS-NN's own CMake)."""
    return sorted(p for p in (root / "Source").rglob("*.c")
                  if not any(t in p.stem for t in ("_f16", "_f32", "_flt")))


def _digest(key_parts: list[str], files: list[Path]) -> str:
    h = hashlib.sha256("\0".join(key_parts).encode())
    root = source_dir()
    for p in sorted(files) + sorted((root / "Include").rglob("*.h")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _cache_dir(key_parts: list[str], files: list[Path]) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinycc" / "cmsis-nn"
    return base / _digest(key_parts, files)[:24]


def metadata(target, rounding: str) -> dict:
    """What the library was compiled against: CMSIS-NN's code path, release and sources (the
    scratch sizes are those of this code path of these sources), and how it must requantize."""
    root = source_dir()
    pdsc = root / "ARM.CMSIS-NN.pdsc"
    m = re.search(r'<release version="([^"]+)"', pdsc.read_text()) if pdsc.is_file() else None
    return {"code_path": variant(target), "requantization": REQUANTIZATION[rounding],
            "defines": [d[2:] for d in DEFINES[REQUANTIZATION[rounding]]],
            "release": m.group(1) if m else None, "sources_sha256": _digest([], _integer_sources(root))}


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished build into the cache; another process may have been first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise


def _run(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise CmsisNNError(f"building CMSIS-NN failed {what}:\n{' '.join(cmd)}\n{res.stderr.strip()}")


# --- scratch sizes: CMSIS-NN's own functions, on the host -------------------------------------

class Dims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class Tile(ctypes.Structure):
    _fields_ = [("w", ctypes.c_int32), ("h", ctypes.c_int32)]


class Activation(ctypes.Structure):
    _fields_ = [("min", ctypes.c_int32), ("max", ctypes.c_int32)]


class ConvParams(ctypes.Structure):
    _fields_ = [("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32), ("stride", Tile),
                ("padding", Tile), ("dilation", Tile), ("activation", Activation)]


class DwConvParams(ctypes.Structure):
    _fields_ = [("input_offset", ctypes.c_int32), ("output_offset", ctypes.c_int32),
                ("ch_mult", ctypes.c_int32), ("stride", Tile), ("padding", Tile), ("dilation", Tile),
                ("activation", Activation)]


#: The structures passed to the size functions, as this module lays them out (and the
#: generated C initializes them): checked against CMSIS-NN's headers field by field.
_STRUCTS = {"cmsis_nn_dims": Dims, "cmsis_nn_tile": Tile, "cmsis_nn_activation": Activation,
            "cmsis_nn_conv_params": ConvParams, "cmsis_nn_dw_conv_params": DwConvParams}


def _layout_source() -> str:
    """C that reports sizeof and every field's offset of _STRUCTS, as CMSIS-NN declares them."""
    values = [f"sizeof({c}), " + ", ".join(f"offsetof({c}, {f})" for f, _ in py._fields_)
              for c, py in _STRUCTS.items()]
    return ("#include <stddef.h>\n#include \"arm_nnfunctions.h\"\n"
            "static const long tinycc_layout_values[] = {" + ", ".join(values) + "};\n"
            "long tinycc_layout(int i) { return tinycc_layout_values[i]; }\n")


def _expected_layout() -> list[int]:
    return [v for py in _STRUCTS.values()
            for v in [ctypes.sizeof(py), *(getattr(py, f).offset for f, _ in py._fields_)]]


@lru_cache(maxsize=None)
def _sizes_library(root: str) -> ctypes.CDLL:
    files = sorted(Path(root, "Source").rglob("*_get_buffer_sizes_s8.c"))
    if not files:
        raise CmsisNNError(f"{root} has no *_get_buffer_sizes_s8.c sources")
    cc = shutil.which("gcc")
    if cc is None:
        raise CmsisNNError("gcc is needed to build CMSIS-NN's buffer-size functions for the host")
    cache = _cache_dir(["host-sizes", cc, _layout_source()], files)
    so = cache / "libcmsis_nn_sizes.so"
    if not so.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache.parent))
        (tmp / "layout.c").write_text(_layout_source())
        _run([cc, "-std=c99", "-O1", "-shared", "-fPIC", "-I", str(Path(root) / "Include"), *map(str, files),
              str(tmp / "layout.c"), "-Wl,--no-undefined", "-o", str(tmp / so.name)], "for the host (buffer sizes)")
        _publish(tmp, cache)
    lib = ctypes.CDLL(str(so))
    lib.tinycc_layout.restype = ctypes.c_long
    expected = _expected_layout()
    if [lib.tinycc_layout(i) for i in range(len(expected))] != expected:
        raise CmsisNNError(f"the CMSIS-NN at {root} declares its parameter structures ({', '.join(_STRUCTS)}) "
                           "differently from the release tinycc knows; use a CMSIS-NN with the current API")
    return lib


def buffer_size(function: str, variant_: str, *args) -> int:
    """Bytes of scratch CMSIS-NN's `function` needs on the given code path: the value of
    `<function>_get_buffer_size_<variant>` (the generic one, built without DSP or MVE, for
    plain C), called with `args` (ctypes structures by reference, ints by value)."""
    lib = _sizes_library(str(source_dir()))
    name = f"{function}_get_buffer_size" + ("" if variant_ == "plain" else f"_{variant_}")
    fn = getattr(lib, name)
    fn.restype = ctypes.c_int32
    size = fn(*[ctypes.byref(a) if isinstance(a, ctypes.Structure) else ctypes.c_int(a) for a in args])
    if size < 0:
        raise CmsisNNError(f"{name} returned {size}")
    return int(size)


# --- the library for a target -------------------------------------------------------------------

def static_library(cc: str, cflags: list[str]) -> Path:
    """libcmsis-nn.a of every integer source, compiled by `cc` with `cflags` (the target's CPU
    flags and optimization level, as the generated library gets them); cached."""
    root = source_dir()
    files = _integer_sources(root)
    cache = _cache_dir(["target", cc, *cflags], files)
    lib = cache / "libcmsis-nn.a"
    if lib.is_file():
        return lib
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache.parent))
    objs = [tmp / f"{p.parent.name}_{p.stem}.o" for p in files]
    # CMSIS-NN's own code: compiled warning-tolerant (its warnings are not ours to fix)
    flags = ["-std=c99", *cflags, "-ffunction-sections", "-fdata-sections", "-I", str(root / "Include")]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda so: _run([cc, *flags, "-c", str(so[0]), "-o", str(so[1])], f"on {so[0].name}"),
                      zip(files, objs)))
    ar = str(Path(cc).with_name(Path(cc).name.replace("gcc", "ar"))) if "gcc" in Path(cc).name else "ar"
    if not shutil.which(ar):
        ar = "ar"
    _run([ar, "rcs", str(tmp / lib.name), *map(str, objs)], "(archive)")
    for o in objs:
        o.unlink()
    _publish(tmp, cache)
    return lib


@lru_cache(maxsize=None)
def _compiler_variant(cc: str, cflags: tuple[str, ...]) -> str:
    res = subprocess.run([cc, *cflags, "-dM", "-E", "-"], input="", capture_output=True, text=True)
    macros = res.stdout if res.returncode == 0 else ""
    return "mve" if "__ARM_FEATURE_MVE" in macros else "dsp" if "__ARM_FEATURE_DSP" in macros else "plain"


def build_inputs(lib_dir: Path, cc: str, cflags: list[str]) -> tuple[list[str], list[str]]:
    """(compile flags, link inputs) a harness build of `lib_dir` needs: none for a library
    of tinycc's own kernels; CMSIS-NN's headers and library otherwise."""
    meta = Path(lib_dir) / "metadata.json"
    info = json.loads(meta.read_text()).get("cmsis_nn") if meta.is_file() else None
    if not info:
        return [], []
    built_for = _compiler_variant(cc, tuple(cflags))
    if built_for != info["code_path"]:
        raise CmsisNNError(f"{lib_dir} was compiled for CMSIS-NN's {info['code_path']} code path (its scratch "
                           f"sizes are that path's) but this build compiles CMSIS-NN's {built_for} path: "
                           "compile the library for this target")
    if any(f.startswith("-fsanitize=") for f in cflags):
        # a sanitized host build: CMSIS-NN itself gets AddressSanitizer only, since it shifts
        # negative values left (undefined in C99, defined by every compiler it targets)
        cflags = [f for f in cflags if not f.startswith(("-fsanitize=", "-fno-sanitize"))] + ["-fsanitize=address"]
    defines = DEFINES[info["requantization"]]
    return include_flags() + defines, [str(static_library(cc, cflags + defines))]


# --- the generated CMakeLists.txt ---------------------------------------------------------------

def cmake_lines(name: str, rounding: str) -> list[str]:
    """Link the library against CMSIS-NN: Zephyr's module when building in Zephyr (CONFIG_CMSIS_NN),
    else the `cmsis-nn` target of CMSIS_NN_PATH (a CMake or environment variable)."""
    defines = [d[2:] for d in DEFINES[REQUANTIZATION[rounding]]]
    single = [f"# Compiled with --rounding {rounding}: CMSIS-NN must requantize as LiteRT does, with "
              "single rounding", "# (this applies to every user of CMSIS-NN in the firmware)."] if defines else []
    return [
        "# The kernels call CMSIS-NN (--kernels cmsis-nn).", *single,
        "if(COMMAND zephyr_library)",
        "  # Zephyr: enable the module with CONFIG_CMSIS_NN=y (and the CONFIG_CMSIS_NN_* parts used)",
        "  if(NOT CONFIG_CMSIS_NN)",
        f'    message(FATAL_ERROR "{name} calls CMSIS-NN: set CONFIG_CMSIS_NN=y")',
        "  endif()",
        f"  target_link_libraries({name} PUBLIC zephyr_interface)",
        *[f"  zephyr_compile_definitions({d})" for d in defines],
        "else()",
        "  if(NOT CMSIS_NN_PATH)",
        "    set(CMSIS_NN_PATH $ENV{CMSIS_NN_PATH})",
        "  endif()",
        "  if(NOT TARGET cmsis-nn)",
        "    if(NOT CMSIS_NN_PATH)",
        f'      message(FATAL_ERROR "{name} calls CMSIS-NN: set CMSIS_NN_PATH to a CMSIS-NN checkout")',
        "    endif()",
        "    add_subdirectory(${CMSIS_NN_PATH} ${CMAKE_CURRENT_BINARY_DIR}/cmsis-nn)",
        "  endif()",
        f"  target_link_libraries({name} PUBLIC cmsis-nn)",
        *[f"  target_compile_definitions(cmsis-nn PUBLIC {d})" for d in defines],
        "endif()",
    ]
