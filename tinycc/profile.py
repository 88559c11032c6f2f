"""Profile: instructions per layer on an emulated Cortex-M.

The library is built with its layer hooks (`-D<NAME>_HOOKS`, compiled out of normal builds);
the hooks read the SysTick-based instruction counter of the harness (QEMU with
-icount shift=0: deterministic) around every kernel call.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import toolchain
from .compiler import compile_model, default_rounding
from .errors import TinyccError
from .lower import Kernel
from .targets import Target, load_target
from .verify import compare, default_tolerance, model_inputs, reference_outputs

_HOOKS_C = """/* Layer hooks of the profiler: instructions between begin and end of each kernel. */
#include <stdio.h>
#include <stdint.h>
#include "harness_port.h"

static uint64_t layer_start;

void {name}_hook_begin(int op)
{{
    (void)op;
    layer_start = port_ticks();
}}

void {name}_hook_end(int op, const int8_t *output, int bytes)
{{
    uint64_t ticks = port_ticks() - layer_start;
    (void)output;
    (void)bytes;
    printf("layer %d %lu\\n", op, (unsigned long)(ticks * HARNESS_INSNS_PER_TICK));
}}
"""


@dataclass
class LayerProfile:
    index: int
    op: str
    kernel: str
    shape: list[int]
    macs: int
    instructions: int

    @property
    def macs_per_instruction(self) -> float:
        return self.macs / self.instructions if self.instructions else 0.0


@dataclass
class ProfileReport:
    model: str
    target: str
    ran_on: str
    layers: list[LayerProfile]
    total_instructions: int
    floor: int  # MACs / 2 with the DSP extension's SMLAD, else MACs
    exact: bool
    notes: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def table(self) -> str:
        lines = [f"{self.model} on {self.ran_on} (compiled for {self.target})",
                 f"{'op':>4} {'layer':<28} {'output':<14} {'MACs':>11} {'instructions':>13} {'MAC/instr':>9}"]
        for r in self.layers:
            shape = "x".join(map(str, r.shape))
            lines.append(f"{r.index:>4} {r.kernel[-28:]:<28} {shape:<14} {r.macs:>11,} "
                         f"{r.instructions:>13,} {r.macs_per_instruction:>9.2f}")
        lines.append(f"total {self.total_instructions:,} instructions for {self.macs:,} MACs; "
                     f"floor {self.floor:,}; {self.total_instructions / max(self.floor, 1):.2f} x floor; "
                     f"outputs {'bit-exact' if self.exact else 'DIFFER from the reference'}")
        return "\n".join(lines)

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=2)

    def chart(self, path: str | Path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        names = [f"{r.index} {r.op}" for r in self.layers]
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(names) + 1.5))
        ax.barh(names, [r.instructions for r in self.layers], color="tab:blue", label="instructions")
        ax.barh(names, [r.macs / (2 if self.floor * 2 == self.macs else 1) for r in self.layers],
                color="tab:orange", alpha=0.6, label="floor")
        ax.invert_yaxis()
        ax.set_xlabel("instructions")
        ax.set_title(f"{self.model} on {self.ran_on}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


def profile(model: str | Path, target: str | Target = "mps2-an386", rounding: str | None = None,
            work_dir: str | Path | None = None, fuse_rows: bool = False,
            kernels: str = "tinycc", knobs: dict | None = None) -> ProfileReport:
    target = load_target(target) if isinstance(target, str) else target
    rounding = rounding or default_rounding(kernels)
    emu = target.emulator()
    with tempfile.TemporaryDirectory(prefix="tinycc-profile-") as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        res = compile_model(model, target, work / "lib", rounding=rounding, measure_code=False,
                            fuse_rows=fuse_rows, kernels=kernels, knobs=knobs)
        lib = res.library
        inputs = model_inputs(lib.graph, count_random=1)[:1]
        hooks = work / "hooks.c"
        hooks.write_text(_HOOKS_C.format(name=lib.name))
        elf = toolchain.build_target(work / "lib", lib.name, inputs, work / "build", target,
                                     extra_cflags=[f"-D{lib.name.upper()}_HOOKS"], extra_sources=[hooks])
        run = toolchain.run_qemu(elf, emu)
    # one line per kernel, in the order they run (an operator may have several kernels)
    counts = [int(m.group(2)) for m in re.finditer(r"^layer (\d+) (\d+)$", run.stdout, re.M)]
    ran = [k for k in lib.kernels if isinstance(k, Kernel)]
    if len(counts) != len(ran):
        raise TinyccError(f"the profiled run printed {len(counts)} layers for {len(ran)} kernels")
    layers = [LayerProfile(k.op.index, k.op.kind, k.name, list(lib.graph.tensor(k.output).shape), k.macs, n)
              for k, n in zip(ran, counts)]
    ref = reference_outputs(model, inputs, lib.rounding)[0]
    import numpy as np
    exact = compare(np.frombuffer(run.outputs[0], lib.output.dtype), ref, default_tolerance(lib.graph))[0] == 0
    macs = sum(layer.macs for layer in layers)
    floor = macs // 2 if target.has_dsp else macs
    return ProfileReport(Path(model).name, target.name, emu.name, layers, sum(counts), floor, exact)
