"""Build and run the test/benchmark harness around a generated model library.

The harness (runtime/harness/main.c) runs the library's ``<name>_run`` on every
input compiled into the program and prints ``output <i> <hex>`` lines (and, on
Cortex-M, ``instructions <i> <n>`` and ``stack <i> <bytes>``), then ``done``.

* On the host it is an ordinary executable (optionally with AddressSanitizer
  and UndefinedBehaviorSanitizer); input, output and arena are malloc'ed with
  exactly their sizes.
* On Cortex-M it is a bare-metal ELF for one of QEMU's MPS2 boards
  (runtime/cortex_m/: start-up code and a linker script template filled in
  from the board's TOML), printing through semihosting.  Instructions are
  counted with SysTick under ``-icount shift=0``, where QEMU advances virtual
  time by 1 ns per guest instruction: one SysTick tick is
  ``1e9 / clock_hz`` instructions (40 on the 25 MHz MPS2 boards, 50 on the
  20 MHz AN505).  The count is deterministic and exact to one tick
  (+-40 instructions); the harness subtracts the cost of an empty measurement.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import cmsis_nn
from .errors import TargetError, ToolchainError
from .targets import Target

RUNTIME_DIR = Path(__file__).resolve().parent.parent / "runtime"
HARNESS_MAIN = RUNTIME_DIR / "harness" / "main.c"
CORTEX_M_DIR = RUNTIME_DIR / "cortex_m"
STARTUP_C = CORTEX_M_DIR / "startup.c"
LINK_TEMPLATE = CORTEX_M_DIR / "link.ld.in"

#: Flags for every C file: the library's own sources and the harness.
C_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")
HOST_OPT_FLAGS = ("-O2", "-g")
SANITIZE_FLAGS = (
    "-O1",
    "-g",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
)
ARM_CC = "arm-none-eabi-gcc"
ARM_SIZE = "arm-none-eabi-size"
QEMU = "qemu-system-arm"
#: Bytes that must stay free in RAM above .bss for the stack and the heap.
MIN_STACK_HEAP = 64 * 1024
#: Nanoseconds per guest instruction: QEMU's -icount shift.
ICOUNT_SHIFT = 0

_DEBIAN_PACKAGE = {
    ARM_CC: "gcc-arm-none-eabi",
    ARM_SIZE: "binutils-arm-none-eabi",
    QEMU: "qemu-system-arm",
    "gcc": "gcc",
    "clang": "clang",
}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass
class RunResult:
    """What one run of the harness printed."""

    outputs: list[bytes]
    instructions: list[int] | None
    stdout: str
    #: Stack bytes used by each run (Cortex-M only).
    stack_bytes: list[int] | None = None
    #: Instructions of an empty measurement, already subtracted (Cortex-M only).
    overhead: int | None = None


# ---------------------------------------------------------------- helpers


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        package = _DEBIAN_PACKAGE.get(Path(name).name)
        hint = f"; install the Debian package {package}" if package else ""
        raise ToolchainError(f"{name} is not installed (not found on PATH){hint}")
    return path


@lru_cache(maxsize=None)
def _check_rdimon(cc: str) -> None:
    out = subprocess.run([cc, "-print-file-name=rdimon.specs"], capture_output=True, text=True)
    if out.returncode != 0 or not Path(out.stdout.strip()).is_file():
        raise ToolchainError(
            "the newlib C library for arm-none-eabi (rdimon.specs) is missing; "
            "install the Debian package libnewlib-arm-none-eabi"
        )


def _run_compiler(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"the C compiler did not finish {what} within 900 s") from None
    except OSError as exc:
        raise ToolchainError(f"cannot run {cmd[0]}: {exc}") from None
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip()
        raise ToolchainError(f"{Path(cmd[0]).name} failed {what}:\n{msg}")


_IO_C_TYPES = {"int8": "int8_t", "int16": "int16_t", "float32": "float", "int32": "int32_t", "int64": "int64_t",
               "bool": "bool"}


def _io_c_type(dtype: str) -> str:
    if dtype not in _IO_C_TYPES:
        raise ToolchainError(f"the harness cannot pass {dtype} tensors")
    return _IO_C_TYPES[dtype]


def _as_bytes(x, index: int, dtype: str = "int8") -> bytes:
    """One harness input as the bytes of the model's input type (int8 also takes uint8 bytes
    and in-range integers; float32 takes any float array)."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    arr = np.asarray(x)
    want = np.dtype(dtype)
    if arr.dtype == want:
        pass
    elif dtype == "int8" and arr.dtype == np.uint8:
        arr = arr.view(np.int8)
    elif want.kind == "i" and np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(want)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise ToolchainError(f"harness input {index} has values outside {dtype} range")
        arr = arr.astype(want)
    elif want.kind == "b" and (arr.dtype.kind in "iu" and np.isin(arr, (0, 1)).all()):
        arr = arr.astype(want)
    elif want.kind == "f" and np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(want)
    else:
        raise ToolchainError(f"harness input {index} must be an {dtype} array, not {arr.dtype}")
    return np.ascontiguousarray(arr).tobytes()


def _header_dtype(lib_dir: Path, name: str, what: str) -> str:
    """<NAME>_<WHAT>_DTYPE of the library header ("int8" when it does not say)."""
    header = lib_dir / "include" / f"{name}.h"
    m = re.search(rf'^\s*#\s*define\s+{name.upper()}_{what}_DTYPE\s+"(\w+)"', header.read_text(errors="replace"),
                  re.MULTILINE)
    return m.group(1) if m else "int8"


def _header_size(lib_dir: Path, name: str, what: str) -> int | None:
    """The value of <NAME>_<WHAT> in the library header, if it is a plain number."""
    header = lib_dir / "include" / f"{name}.h"
    m = re.search(
        rf"^\s*#\s*define\s+{name.upper()}_{what}\s+\(?\s*(\d+)\s*[uU]?[lL]*\s*\)?\s*(?:/[*/].*)?$",
        header.read_text(errors="replace"),
        re.MULTILINE,
    )
    return int(m.group(1)) if m else None


def _check_library(lib_dir: Path, name: str, inputs) -> tuple[list[Path], tuple[str, str]]:
    if not _IDENT.match(name):
        raise ToolchainError(f"model name {name!r} is not a C identifier")
    lib_dir = Path(lib_dir)
    header = lib_dir / "include" / f"{name}.h"
    if not header.is_file():
        raise ToolchainError(f"the library {lib_dir} has no header include/{name}.h")
    sources = sorted((lib_dir / "src").glob("*.c"))
    if not sources:
        raise ToolchainError(f"the library {lib_dir} has no C sources in src/")
    dtypes = (_header_dtype(lib_dir, name, "INPUT"), _header_dtype(lib_dir, name, "OUTPUT"))
    size = _header_size(lib_dir, name, "INPUT_SIZE")
    if size is not None:
        for i, x in enumerate(inputs):
            n = len(_as_bytes(x, i, dtypes[0]))
            if n != size:
                raise ToolchainError(
                    f"harness input {i} has {n} bytes but the model {name} takes {size}"
                )
    return sources, dtypes


def _compile_all(jobs: list[tuple[list[str], str]]) -> None:
    if not jobs:
        return
    workers = min(len(jobs), os.cpu_count() or 1, 8)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run_compiler, cmd, what) for cmd, what in jobs]
        for f in futures:
            f.result()


def _object_jobs(
    cc: str,
    flags: Sequence[str],
    harness_flags: Sequence[str],
    lib_dir: Path,
    sources: list[Path],
    build_dir: Path,
    harness_sources: list[tuple[Path, str]],
    harness_includes: Sequence[Path],
) -> tuple[list[tuple[list[str], str]], list[Path]]:
    obj_dir = build_dir / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    jobs, objects = [], []
    lib_inc = ["-I", str(lib_dir / "include")]
    for src in sources:
        obj = obj_dir / f"lib_{src.stem}.o"
        cmd = [cc, *flags, *lib_inc, "-c", str(src), "-o", str(obj)]
        jobs.append((cmd, f"to compile {src}"))
        objects.append(obj)
    harness_inc = [a for d in harness_includes for a in ("-I", str(d))]
    for src, stem in harness_sources:
        obj = obj_dir / f"{stem}.o"
        cmd = [cc, *flags, *harness_flags, *harness_inc, *lib_inc, "-c", str(src), "-o", str(obj)]
        jobs.append((cmd, f"to compile {src}"))
        objects.append(obj)
    return jobs, objects


# ---------------------------------------------------------------- sources


def write_harness_sources(build_dir: Path, name: str, inputs: list[np.ndarray],
                          dtypes: tuple[str, str] = ("int8", "int8")) -> None:
    """Write harness_model.h (maps MODEL_* to the library) and harness_inputs.c; `dtypes`
    are the model's input and output element types."""
    if not _IDENT.match(name):
        raise ToolchainError(f"model name {name!r} is not a C identifier")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    up = name.upper()
    input_dtype, output_dtype = dtypes
    (build_dir / "harness_model.h").write_text(
        "/* Generated by tinycc.toolchain: the model the harness runs. */\n"
        "#ifndef HARNESS_MODEL_H\n#define HARNESS_MODEL_H\n"
        f'#include "{name}.h"\n'
        f"#define MODEL_RUN {name}_run\n"
        f"#define MODEL_ARENA_SIZE {up}_ARENA_SIZE\n"
        f"#define MODEL_INPUT_SIZE {up}_INPUT_SIZE\n"
        f"#define MODEL_OUTPUT_SIZE {up}_OUTPUT_SIZE\n"
        f"#define MODEL_INPUT_T {_io_c_type(input_dtype)}\n"
        f"#define MODEL_OUTPUT_T {_io_c_type(output_dtype)}\n"
        f"#ifdef {up}_ARENA_ALIGN\n#define MODEL_ARENA_ALIGN {up}_ARENA_ALIGN\n#endif\n"
        # --io-in-arena libraries: the harness passes NULL and uses the arena accessors
        f"#ifdef {up}_IO_IN_ARENA\n#define MODEL_IO_IN_ARENA 1\n"
        f"#define MODEL_INPUT_PTR(arena) {name}_input(arena)\n"
        f"#define MODEL_OUTPUT_PTR(arena) {name}_output(arena)\n#endif\n"
        # stateful libraries: reset once, then the inputs in order with the state carried
        f"#ifdef {up}_STATEFUL\n#define MODEL_RESET(arena) {name}_reset(arena)\n#endif\n"
        "#endif\n"
    )
    data = [_as_bytes(x, i, input_dtype) for i, x in enumerate(inputs)]
    sizes = {len(d) for d in data}
    if len(sizes) > 1:
        raise ToolchainError(f"harness inputs differ in size: {sorted(sizes)} bytes")
    parts = [
        "/* Generated by tinycc.toolchain: the inputs the harness runs the model on. */\n",
        "#include <stdint.h>\n",
        '#include "harness_model.h"\n\n',
    ]
    if data:
        size = len(data[0])
        parts.append(
            "/* Fails to compile when the inputs do not have MODEL_INPUT_SIZE bytes. */\n"
            f"typedef char harness_input_size_check[(MODEL_INPUT_SIZE) == {size} ? 1 : -1];\n\n"
        )
        parts.append(f"const int8_t harness_inputs[{len(data)}][MODEL_INPUT_SIZE] = {{  /* the bytes */\n")
        for d in data:
            vals = np.frombuffer(d, dtype=np.int8).tolist()
            parts.append("    {\n")
            for k in range(0, len(vals), 24):
                parts.append("        " + ", ".join(map(str, vals[k : k + 24])) + ",\n")
            parts.append("    },\n")
        parts.append("};\n")
    else:
        parts.append("const int8_t harness_inputs[1][MODEL_INPUT_SIZE] = {{0}};\n")
    parts.append(f"const int harness_num_inputs = {len(data)};\n")
    (build_dir / "harness_inputs.c").write_text("".join(parts))


# ---------------------------------------------------------------- host


def build_host(
    lib_dir: Path,
    name: str,
    inputs,
    build_dir: Path,
    *,
    cc: str = "gcc",
    extra_cflags: Iterable[str] = (),
    sanitize: bool = False,
) -> Path:
    """Compile library + harness into a host executable; return its path."""
    lib_dir, build_dir = Path(lib_dir), Path(build_dir)
    inputs = list(inputs)
    sources, dtypes = _check_library(lib_dir, name, inputs)
    cc_path = _tool(cc)
    write_harness_sources(build_dir, name, inputs, dtypes)
    opt = SANITIZE_FLAGS if sanitize else HOST_OPT_FLAGS
    flags = [*C_FLAGS, *opt, *extra_cflags]
    lib_flags, lib_links = cmsis_nn.build_inputs(lib_dir, cc_path, list(opt))  # --kernels cmsis-nn
    flags += lib_flags
    jobs, objects = _object_jobs(
        cc_path,
        flags,
        (),
        lib_dir,
        sources,
        build_dir,
        [(HARNESS_MAIN, "harness_main"), (build_dir / "harness_inputs.c", "harness_inputs")],
        [build_dir],
    )
    _compile_all(jobs)
    exe = build_dir / f"{name}_harness"
    link = [cc_path, *flags, *map(str, objects), *lib_links, "-o", str(exe), "-lm"]
    _run_compiler(link, f"to link {exe.name}")
    return exe


def _parse_output(stdout: str, cortex_m: bool) -> RunResult:
    outputs: dict[int, bytes] = {}
    insns: dict[int, int] = {}
    stack: dict[int, int] = {}
    overhead = None
    done = False
    for line in stdout.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "done" and len(parts) == 1:
            done = True
        elif parts[0] == "output" and len(parts) in (2, 3):
            outputs[int(parts[1])] = bytes.fromhex(parts[2] if len(parts) == 3 else "")
        elif parts[0] == "instructions" and len(parts) == 3:
            insns[int(parts[1])] = int(parts[2])
        elif parts[0] == "stack" and len(parts) == 3:
            stack[int(parts[1])] = int(parts[2])
        elif parts[0] == "overhead" and len(parts) == 3:
            overhead = int(parts[2])
    if not done:
        raise ToolchainError("the harness stopped before printing 'done':\n" + _tail(stdout))
    n = len(outputs)
    if sorted(outputs) != list(range(n)):
        raise ToolchainError("the harness printed outputs out of order:\n" + _tail(stdout))
    result = RunResult(outputs=[outputs[i] for i in range(n)], instructions=None, stdout=stdout)
    if cortex_m:
        if sorted(insns) != list(range(n)):
            raise ToolchainError("the harness did not print an instruction count per input")
        result.instructions = [insns[i] for i in range(n)]
        result.stack_bytes = [stack[i] for i in range(n)] if sorted(stack) == list(range(n)) else None
        result.overhead = overhead
    return result


def _tail(text: str, lines: int = 40) -> str:
    rows = text.rstrip().splitlines()
    if len(rows) > lines:
        rows = ["..."] + rows[-lines:]
    return "\n".join(rows)


def run_host(exe: Path, timeout: float = 120) -> RunResult:
    """Run a host harness executable built by build_host()."""
    exe = Path(exe)
    env = dict(os.environ)
    # Leak checking needs ptrace, which containers often forbid; the harness
    # frees what it allocates and the libraries allocate nothing.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    try:
        proc = subprocess.run(
            [str(exe)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"the host harness {exe.name} did not finish within {timeout} s") from None
    except OSError as exc:
        raise ToolchainError(f"cannot run {exe}: {exc}") from None
    if proc.returncode != 0:
        # Sanitizer reports start with what went wrong: keep their beginning.
        report = "\n".join(proc.stderr.strip().splitlines()[:40])
        raise ToolchainError(
            f"the host harness {exe.name} failed (exit status {proc.returncode}):\n"
            + (report or _tail(proc.stdout))
        )
    return _parse_output(proc.stdout, cortex_m=False)


# ---------------------------------------------------------------- Cortex-M


def _emulator(target: Target) -> Target:
    if target.is_host:
        raise TargetError("the host target is built with build_host(), not for an emulated board")
    emu = target.emulator()
    if emu.qemu is None:
        raise TargetError(f"target {emu.name} is not a QEMU board")
    return emu


def insns_per_tick(target: Target) -> int:
    """Guest instructions per SysTick tick on the board that emulates `target`."""
    emu = _emulator(target)
    ns_per_insn = 1 << ICOUNT_SHIFT
    per_tick, rest = divmod(1_000_000_000, emu.clock_hz * ns_per_insn)
    if rest or per_tick <= 0:
        raise TargetError(f"{emu.name}: clock_hz {emu.clock_hz} does not divide 1 GHz")
    return per_tick


def write_linker_script(path: Path, target: Target) -> None:
    emu = _emulator(target)
    text = LINK_TEMPLATE.read_text()
    for key, value in {
        "FLASH_ORIGIN": emu.qemu.flash_origin,
        "FLASH_LENGTH": emu.flash_bytes,
        "RAM_ORIGIN": emu.qemu.ram_origin,
        "RAM_LENGTH": emu.ram_bytes,
        "MIN_STACK_HEAP": MIN_STACK_HEAP,
    }.items():
        text = text.replace(f"@{key}@", f"0x{value:08X}")
    Path(path).write_text(text)


def build_target(
    lib_dir: Path,
    name: str,
    inputs,
    build_dir: Path,
    target: Target,
    *,
    opt: str = "-O2",
    extra_cflags: Iterable[str] = (),
    extra_sources: Iterable[Path] = (),
) -> Path:
    """Compile library + harness into a bare-metal ELF for target's emulated board.

    extra_sources are compiled like the harness (with its port header on the include path),
    e.g. the profiler's layer hooks."""
    lib_dir, build_dir = Path(lib_dir), Path(build_dir)
    inputs = list(inputs)
    sources, dtypes = _check_library(lib_dir, name, inputs)
    emu = _emulator(target)
    cc = _tool(ARM_CC)
    _check_rdimon(cc)
    write_harness_sources(build_dir, name, inputs, dtypes)
    link_ld = build_dir / "link.ld"
    write_linker_script(link_ld, target)
    flags = [*C_FLAGS, *target.cflags, opt, "-g", "-ffunction-sections", "-fdata-sections", *extra_cflags]
    lib_flags, lib_links = cmsis_nn.build_inputs(lib_dir, cc, [*target.cflags, opt])  # --kernels cmsis-nn
    flags += lib_flags
    harness_flags = ["-DHARNESS_CORTEX_M", f"-DHARNESS_INSNS_PER_TICK={insns_per_tick(emu)}u"]
    jobs, objects = _object_jobs(
        cc,
        flags,
        harness_flags,
        lib_dir,
        sources,
        build_dir,
        [
            (HARNESS_MAIN, "harness_main"),
            (build_dir / "harness_inputs.c", "harness_inputs"),
            (STARTUP_C, "startup"),
            *[(Path(src), f"extra_{Path(src).stem}") for src in extra_sources],
        ],
        [build_dir, CORTEX_M_DIR],
    )
    _compile_all(jobs)
    elf = build_dir / f"{name}_{emu.name}.elf"
    link = [
        cc,
        *flags,
        "-T",
        str(link_ld),
        "--specs=rdimon.specs",
        "-nostartfiles",
        "-Wl,--gc-sections",
        f"-Wl,-Map={build_dir / (elf.stem + '.map')}",
        *map(str, objects),
        *lib_links,
        "-lm",
        "-o",
        str(elf),
    ]
    try:
        _run_compiler(link, f"to link {elf.name} for {emu.name}")
    except ToolchainError as exc:
        if "will not fit in region" in str(exc) or "RAM too small" in str(exc):
            raise ToolchainError(
                f"the program does not fit the memory of the emulated board {emu.name} "
                f"({emu.flash_bytes} bytes flash, {emu.ram_bytes} bytes RAM):\n{exc}"
            ) from None
        raise
    return elf


def qemu_command(elf: Path, target: Target) -> list[str]:
    emu = _emulator(target)
    return [
        _tool(QEMU),
        "-M",
        emu.qemu.machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "null",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        f"shift={ICOUNT_SHIFT}",
        "-kernel",
        str(elf),
    ]


def run_qemu(elf: Path, target: Target, timeout: float = 600) -> RunResult:
    """Run a harness ELF built by build_target() on target's emulated board."""
    elf = Path(elf)
    cmd = qemu_command(elf, target)
    machine = cmd[cmd.index("-M") + 1]
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise ToolchainError(f"cannot run {QEMU}: {exc}") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise ToolchainError(
            f"the emulated board {machine} did not answer within {timeout} s "
            f"(running {elf.name}); the model may loop forever or be too slow to emulate"
            + (f"; it printed:\n{_tail(stdout)}" if stdout.strip() else "")
        ) from None
    if proc.returncode != 0:
        raise ToolchainError(
            f"the program failed on the emulated board {machine} (QEMU exit status "
            f"{proc.returncode}):\n" + _tail(stderr + stdout)
        )
    try:
        return _parse_output(stdout, cortex_m=True)
    except ToolchainError as exc:
        raise ToolchainError(f"{exc}\n{_tail(stderr)}".rstrip()) from None


def arm_size(elf_or_obj: Path) -> dict:
    """text, data and bss sizes in bytes (Berkeley format of arm-none-eabi-size)."""
    proc = subprocess.run(
        [_tool(ARM_SIZE), "-B", str(elf_or_obj)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise ToolchainError(f"{ARM_SIZE} failed on {elf_or_obj}:\n{proc.stderr.strip()}")
    lines = proc.stdout.strip().splitlines()
    if len(lines) < 2:
        raise ToolchainError(f"unexpected output from {ARM_SIZE}: {proc.stdout!r}")
    text, data, bss = (int(v) for v in lines[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}
