"""Verify: build a compiled library, run it (host or emulated Cortex-M), compare every output
byte with a reference interpreter run on the same inputs.

The reference is LiteRT's reference kernels (ai-edge-litert, BUILTIN_REF) for the default
rounding, and TFLM (the tflite-micro package) for `--rounding double`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import toolchain
from .compiler import CompileResult, compile_model
from .errors import TinyccError
from .targets import Target, load_target


def standard_inputs(shape, count_random: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Random int8 tensors, then all -128 and all 127: the saturating corners."""
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(count_random)]
    return xs + [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]


def reference_outputs(model: str | Path, inputs: list[np.ndarray], rounding: str = "litert"):
    data = Path(model).read_bytes()
    if rounding == "double":
        from tflite_micro.python.tflite_micro import runtime
        interp = runtime.Interpreter.from_bytes(data)
        outs = []
        for x in inputs:
            interp.set_input(x, 0)
            interp.invoke()
            outs.append(np.array(interp.get_output(0)).reshape(-1).astype(np.int8))
        return outs
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    outs = []
    for x in inputs:
        interp.set_tensor(i["index"], x.reshape(i["shape"]))
        interp.invoke()
        outs.append(interp.get_tensor(o["index"]).reshape(-1).astype(np.int8))
    return outs


@dataclass
class VerifyReport:
    model: str
    target: str  # what the code was compiled for
    ran_on: str  # host or the emulated board
    rounding: str
    reference: str
    mismatches: list[int]  # per input: output bytes that differ
    max_abs_diff: list[int]
    instructions: list[int] | None = None
    compile: CompileResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.mismatches)

    def summary(self) -> str:
        n = len(self.mismatches)
        lines = [f"{self.model} for {self.target}, run on {self.ran_on}, {self.rounding} rounding, "
                 f"against {self.reference}:"]
        for k in range(n):
            ins = f", {self.instructions[k]:,} instructions" if self.instructions else ""
            status = "bit-exact" if not self.mismatches[k] else \
                f"{self.mismatches[k]} bytes differ (max {self.max_abs_diff[k]})"
            lines.append(f"  input {k}: {status}{ins}")
        lines.append("OK: every output byte matches" if self.ok else "FAILED: outputs differ")
        return "\n".join(lines)


def verify(model: str | Path, target: str | Target = "mps2-an386", rounding: str = "litert",
           inputs: list[np.ndarray] | None = None, work_dir: str | Path | None = None,
           sanitize: bool = False, opt: str = "-O2", fuse_rows: bool = False,
           knobs: dict | None = None) -> VerifyReport:
    target = load_target(target) if isinstance(target, str) else target
    with tempfile.TemporaryDirectory(prefix="tinycc-verify-") as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        result = compile_model(model, target, work / "lib", rounding=rounding, measure_code=False,
                               fuse_rows=fuse_rows, knobs=knobs)
        lib = result.library
        if inputs is None:
            inputs = standard_inputs(lib.input.shape)
        ref = reference_outputs(model, inputs, rounding)
        if target.is_host:
            exe = toolchain.build_host(work / "lib", lib.name, inputs, work / "build", sanitize=sanitize)
            run = toolchain.run_host(exe)
            ran_on = "host" + (" (ASan+UBSan)" if sanitize else "")
        else:
            emu = target.emulator()
            elf = toolchain.build_target(work / "lib", lib.name, inputs, work / "build", target, opt=opt)
            run = toolchain.run_qemu(elf, emu)
            ran_on = f"{emu.name} (QEMU)"
    if len(run.outputs) != len(inputs):
        raise TinyccError(f"the harness printed {len(run.outputs)} outputs for {len(inputs)} inputs")
    ours = [np.frombuffer(b, dtype=np.int8) for b in run.outputs]
    diffs = [np.abs(a.astype(np.int32) - b.astype(np.int32)) for a, b in zip(ours, ref)]
    return VerifyReport(
        model=Path(model).name, target=target.name, ran_on=ran_on, rounding=rounding,
        reference="TFLM (tflite-micro)" if rounding == "double" else "LiteRT BUILTIN_REF",
        mismatches=[int((d > 0).sum()) for d in diffs], max_abs_diff=[int(d.max()) for d in diffs],
        instructions=run.instructions, compile=result)
