"""`tinycc.compile_model`: a model file in, a C library folder out. The stages, in order."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import cmsis_nn, emit, package, plan
from .kernels import schedule
from .errors import FitError, TinyccError
from .frontend import load_model
from .lower import Kernel, c_identifier, lower
from .quant import ROUNDINGS
from .targets import Target, load_target


@dataclass
class CompileResult:
    library: package.Library
    out_dir: Path
    seconds: float
    code_bytes: int | None
    warnings: list[str] = field(default_factory=list)

    @property
    def arena_bytes(self) -> int:
        return self.library.plan.arena_size

    @property
    def weight_bytes(self) -> int:
        return self.library.weight_bytes

    @property
    def flash_bytes(self) -> int:
        return self.weight_bytes + (self.code_bytes or 0)

    def summary(self) -> str:
        t = self.library.target
        ram, flash = t.ram_bytes, t.flash_bytes
        code = f"{self.code_bytes:,} B code" if self.code_bytes is not None else "code not measured"
        io = ", input and output inside" if self.library.plan.io_in_arena else ""
        if self.library.plan.state_bytes:
            io += f"; the first {self.library.plan.state_bytes:,} B are state, kept between runs"
        return (f"{self.library.name}: {len(self.library.kernels)} kernels, compiled in {self.seconds:.1f} s\n"
                f"  arena  {self.arena_bytes:>9,} B  ({100 * self.arena_bytes / ram:.1f}% of {t.name} RAM {ram:,} B; "
                f"lower bound {self.library.plan.lower_bound:,} B{io})\n"
                f"  flash  {self.flash_bytes:>9,} B  ({100 * self.flash_bytes / flash:.1f}% of flash {flash:,} B: "
                f"{self.weight_bytes:,} B weights, {code})\n"
                f"  output {self.out_dir}")


def default_rounding(kernels: str = "tinycc") -> str:
    """LiteRT's rounding, but TFLM's with CMSIS-NN (which rounds as TFLM does)."""
    return "double" if kernels == "cmsis-nn" else "litert"


def compile_model(model: str | Path, target: str | Target = "host", out_dir: str | Path | None = None,
                  name: str | None = None, rounding: str | None = None,
                  measure_code: bool = True, io_in_arena: bool = False,
                  fuse_rows: bool = False, kernels: str = "tinycc", tuning: bool = True,
                  knobs: dict | None = None) -> CompileResult:
    """io_in_arena: the model's input and output live in the arena too (see the header).
    fuse_rows: row-streamed fused kernels for convolution chains (see tinycc.fuse).
    kernels: "cmsis-nn" hands the layers CMSIS-NN takes to it (tinycc.lower.cmsis_nn).
    tuning: apply the target CPU's records in autotune_logs/; knobs: {kind: {knob: value}} for
    every layer of a kind (see tinycc.kernels.schedule)."""
    start = time.monotonic()
    target = load_target(target) if isinstance(target, str) else target
    rounding = rounding or default_rounding(kernels)
    if rounding not in ROUNDINGS:
        raise TinyccError(f"unknown rounding '{rounding}'; choose one of {', '.join(ROUNDINGS)}")
    graph = load_model(model)
    rounding = reference_rounding(graph, rounding, kernels)
    _check_io(graph)
    name = c_identifier(name or Path(model).stem)
    out_dir = Path(out_dir) if out_dir is not None else Path("build") / name
    schedules = schedule.load(target.cpu) if tuning else schedule.Schedules(target.cpu)
    schedules.overrides = knobs or {}
    steps = lower(graph, name, rounding, kernels, target, schedules)
    if fuse_rows:
        from .fuse import fuse_rows as fuse
        steps = fuse(graph, steps, name, rounding)
    kernel_c = emit.generate_kernels_c([s for s in steps if isinstance(s, Kernel)])
    memory = plan.plan_memory(graph, steps, kernel_c, io_in_arena)  # traces kernels for overlaps

    def replan(new_steps):  # the kernels lowered again by plan.grow_scratch, then planned
        known = {id(s) for s in memory.steps}
        c = {**kernel_c, **emit.generate_kernels_c([s for s in new_steps
                                                    if isinstance(s, Kernel) and id(s) not in known])}
        return plan.plan_memory(graph, new_steps, c, io_in_arena), c
    grown = plan.grow_scratch(memory, replan)
    if grown is not None:
        memory, kernel_c = grown
    lib = package.Library(name, graph, memory.steps, memory, kernel_c, target, rounding, kernels)
    code_bytes = _measure_code(lib) if measure_code and not target.is_host else None
    _check_fit(lib, code_bytes)
    package.write_library(lib, out_dir, {"code_bytes": code_bytes, "plan": memory.to_json()})
    return CompileResult(lib, out_dir, time.monotonic() - start, code_bytes, _soft_float_warning(lib))


def _soft_float_warning(lib: package.Library) -> list[str]:
    t = lib.target
    floats = package.float_kernels(lib)
    if not floats or t.is_host or t.has_fpu:
        return []
    return [f"{t.name} ({t.cpu}) has no FPU: this float32 model ({len(floats)} float kernel"
            f"{'s' if len(floats) != 1 else ''}) will run in software floating point (libgcc) and be slow, "
            "many times slower than the same model quantized to int8"]


IO_DTYPES = ("int8", "int16", "float32", "int32", "int64", "bool")
#: element types taken as they are, without quantization (indices, masks, arg-max results)
PLAIN_IO_DTYPES = ("float32", "int32", "int64", "bool")


def reference_rounding(graph, rounding: str, kernels: str = "tinycc") -> str:
    """An ONNX model is matched against onnxruntime (whatever the TFLite default), a TFLite
    model against LiteRT or TFLM."""
    if graph.source_format == "onnx":
        if kernels != "tinycc":
            raise TinyccError(f"--kernels {kernels} rounds as TFLite does; an ONNX model is compiled "
                              "with tinycc's kernels to match onnxruntime")
        if rounding not in ("litert", "onnxruntime"):
            raise TinyccError(f"--rounding {rounding} is for .tflite models; an ONNX model is "
                              "compiled to match onnxruntime")
        return "onnxruntime"
    if rounding == "onnxruntime":
        raise TinyccError("--rounding onnxruntime is for .onnx models")
    return rounding


def _check_io(graph) -> None:
    for kind, ids in (("input", graph.inputs), ("output", graph.outputs)):
        if len(ids) != 1:
            raise TinyccError(f"the model has {len(ids)} {kind}s; tinycc supports one {kind} tensor")
        t = graph.tensor(ids[0])
        if t.dtype not in IO_DTYPES or (t.dtype not in PLAIN_IO_DTYPES and t.quant is None):
            raise TinyccError(f"the model's {kind} '{t.name}' is {t.dtype}"
                              f"{'' if t.quant else ' without quantization'}; tinycc takes int8 or "
                              "int16 quantized, or float32, int32, int64 or bool, inputs and outputs")


def _check_fit(lib: package.Library, code_bytes: int | None) -> None:
    t = lib.target
    if lib.plan.arena_size > t.ram_bytes:
        raise FitError(f"the model needs an arena of {lib.plan.arena_size:,} bytes but {t.name} has "
                       f"{t.ram_bytes:,} bytes of RAM")
    flash = lib.weight_bytes + (code_bytes or 0)
    if flash > t.flash_bytes:
        raise FitError(f"the library needs {flash:,} bytes of flash ({lib.weight_bytes:,} of weights) "
                       f"but {t.name} has {t.flash_bytes:,} bytes")


def _measure_code(lib: package.Library) -> int | None:
    """Code bytes (.text) of the kernels and the entry function for the target's CPU, built with
    arm-none-eabi-gcc -Os; None when the cross compiler is not installed."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        return None
    n = lib.name
    sources = {f"{n}.h": package.header(lib), f"{n}_kernels.h": package.kernels_header(lib),
               f"{n}_weights.h": package.weights_header(lib), f"{n}.c": package.entry_source(lib),
               f"{n}_kernels.c": package.kernels_source(lib)}
    cmsis = lib.kernel_set == "cmsis-nn"
    flags = ["-std=c99", "-Os", *lib.target.cflags]
    objs = []
    with tempfile.TemporaryDirectory() as tmp:
        for fname, text in sources.items():
            (Path(tmp) / fname).write_text(text)
        shutil.copy(package.MICROKERNELS, tmp)
        for fname in (f"{n}.c", f"{n}_kernels.c"):
            objs.append(fname + ".o")
            cmd = [gcc, *flags, *(cmsis_nn.include_flags() if cmsis else []), "-c", fname, "-o", objs[-1]]
            res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            if res.returncode != 0:
                raise TinyccError(f"arm-none-eabi-gcc failed on the generated {fname}:\n{res.stderr}")
        if cmsis:  # with the CMSIS-NN functions the kernels call (archive members pulled in)
            defines = cmsis_nn.DEFINES[cmsis_nn.REQUANTIZATION[lib.rounding]]
            cmd = [gcc, *flags, "-nostdlib", "-r", *objs, str(cmsis_nn.static_library(gcc, flags[1:] + defines)),
                   "-o", "all.o"]
            res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            if res.returncode != 0:
                raise TinyccError(f"linking the kernels with CMSIS-NN failed:\n{res.stderr}")
            objs = ["all.o"]
        total = 0
        for obj in objs:
            size = subprocess.run(["arm-none-eabi-size", "-A", obj], cwd=tmp,
                                  capture_output=True, text=True).stdout
            total += sum(int(line.split()[1]) for line in size.splitlines()
                         if line.startswith(".text"))
    return total
