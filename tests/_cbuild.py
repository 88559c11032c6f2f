"""Run element-wise TE computes on the host: TVM's C codegen -> gcc -> one executable.

`Program` collects kernels, each an int32 element-wise compute over int32 input arrays,
builds them all in one IRModule with TVM's C target (as tinycc.emit does: plain C signatures,
`tirx.disable_assert`), keeps only each function's definition (TVM's headers are dropped),
and writes one C file with the inputs inlined as arrays and a `main` that runs the kernels
named on its command line (all of them by default) and writes their outputs, raw int32, to
stdout.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tvm
from tvm import te

from tinycc import emit
from tinycc.toolchain import C_FLAGS

I32 = "int32"
HOST_CC = "gcc"
OPT_FLAGS = ("-O2",)
UBSAN_FLAGS = ("-O1", "-g", "-fsanitize=undefined", "-fno-sanitize-recover=all")


@dataclass
class _Kernel:
    name: str
    params: list[str]
    inputs: list[np.ndarray]
    func: object  # PrimFunc with a plain C signature


def _c_int32(v: int) -> str:
    return "(-2147483647 - 1)" if v == -(1 << 31) else str(v)


def _c_array(name: str, arr: np.ndarray) -> str:
    items = [_c_int32(int(v)) for v in arr]
    lines = [", ".join(items[i:i + 12]) for i in range(0, len(items), 12)]
    return f"static int32_t {name}[{len(items)}] = {{\n  " + ",\n  ".join(lines) + "\n};\n"


class Program:
    def __init__(self) -> None:
        self.kernels: list[_Kernel] = []

    def add(self, name: str, fn: Callable, inputs: list[np.ndarray],
            params: list[str] | None = None) -> str:
        """Add `output[i] = fn(*(X[i] for X in inputs))` (int32 everywhere)."""
        arrays = [np.asarray(a, dtype=np.int64) for a in inputs]
        n = len(arrays[0])
        assert n > 0 and all(len(a) == n for a in arrays), name
        for a in arrays:
            assert a.min() >= -(1 << 31) and a.max() < (1 << 31), name
        params = params or [f"in{j}" for j in range(len(arrays))]
        holders = [te.placeholder((n,), I32, name=p) for p in params]
        out = te.compute((n,), lambda i: fn(*(h[i] for h in holders)), name="output")
        func = emit.to_plain_c_signature(te.create_prim_func([*holders, out]), [*params, "output"])
        self.kernels.append(_Kernel(name, params, [a.astype(np.int32) for a in arrays], func))
        return name

    def source(self) -> str:
        funcs = {k.name: k.func for k in self.kernels}
        if len(funcs) == 1:  # a lone function would become the module's packed entry point
            funcs["cbuild_unused"] = self.kernels[0].func
        with tvm.transform.PassContext(config={"tirx.disable_assert": True}):
            lib = tvm.tirx.build(tvm.IRModule(funcs), target=tvm.target.Target({"kind": "c"}))
        defs = emit._split_functions(lib.inspect_source(), [k.name for k in self.kernels])
        parts = ["#include <stdint.h>\n#include <stdbool.h>\n#include <stdio.h>\n#include <string.h>\n"]
        for k in self.kernels:
            params, body = defs[k.name]
            # a constant multiplier of 0 folds the input away: keep -Wunused-parameter quiet
            voids = "".join(f"  (void){p};\n" for p in k.params)
            parts.append(f"static void {k.name}({params}) {{\n{voids}{body}}}\n")
        biggest = max(len(k.inputs[0]) for k in self.kernels)
        main = ["int main(int argc, char **argv) {",
                f"  static int32_t out[{biggest}];",
                "  int all = argc < 2;"]
        for k in self.kernels:
            names = []
            for j, arr in enumerate(k.inputs):
                names.append(f"{k.name}_{k.params[j]}")
                parts.append(_c_array(names[-1], arr))
            n = len(k.inputs[0])
            main += [f"  if (all || !strcmp(argv[1], \"{k.name}\")) {{",
                     f"    {k.name}({', '.join(names)}, out);",
                     f"    if (fwrite(out, sizeof(int32_t), {n}, stdout) != {n}) return 2;",
                     "  }"]
        main += ["  return 0;", "}"]
        return "\n".join(parts) + "\n" + "\n".join(main) + "\n"

    def compile(self, workdir: Path, flag_sets: dict[str, tuple[str, ...]]) -> dict[str, Path]:
        """Write the C file once; build one executable per named flag set."""
        workdir.mkdir(parents=True, exist_ok=True)
        src = workdir / "kernels.c"
        src.write_text(self.source())
        exes, procs = {}, {}
        for label, flags in flag_sets.items():   # the builds run in parallel
            exes[label] = workdir / f"kernels_{label}"
            procs[label] = subprocess.Popen(
                [HOST_CC, *C_FLAGS, *flags, str(src), "-o", str(exes[label])],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for label, proc in procs.items():
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"{HOST_CC} {' '.join(flag_sets[label])} failed on {src}:\n"
                                   f"{err[-4000:]}")
        return exes

    def run(self, exe: Path) -> dict[str, np.ndarray]:
        """Run every kernel once; {kernel name: int32 output}."""
        proc = subprocess.run([str(exe)], capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        flat = np.frombuffer(proc.stdout, dtype=np.int32)
        outs, at = {}, 0
        for k in self.kernels:
            n = len(k.inputs[0])
            outs[k.name] = flat[at:at + n]
            at += n
        assert at == len(flat)
        return outs

    def run_one(self, exe: Path, name: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(exe), name], capture_output=True, timeout=60)


def run_runtime_program(src: Path) -> list[int]:
    """Build the C99 program `src` (which includes tinycc_nn.h) for the host with strict warnings
    and UBSan, run it, and return the integers it prints, in order."""
    from tinycc.toolchain import RUNTIME_DIR

    exe = src.with_suffix("")
    subprocess.run([HOST_CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", "-I", str(RUNTIME_DIR / "kernels"), str(src), "-o", str(exe)],
                   check=True)
    return [int(v) for v in subprocess.run([exe], check=True, capture_output=True, text=True).stdout.split()]
