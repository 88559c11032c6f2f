#!/usr/bin/env python3
"""Instructions per inference of the MLPerf Tiny int8 models on emulated Cortex-M, against the
floor (MACs / 2 with SMLAD on M4/M7, MACs on M3), and host time per inference next to TFLM's.

    python3 benchmarks/speed.py [--models DIR] [--boards mps2-an386,mps2-an500,mps2-an385]

Instructions: QEMU with -icount shift=0, SysTick, library at -O2, one inference, outputs
checked against LiteRT's reference kernels. Host: the same library built with gcc -O2 and the
tflite-micro package's interpreter, each timed over repeated inferences in this one run.
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tinycc import compile_model  # noqa: E402
from tinycc.targets import load_target  # noqa: E402
from tinycc.verify import standard_inputs, verify  # noqa: E402

MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model"]
# TFLM on mps2-an386 (issue 5: TFLM built for Cortex-M4 at -O2, same QEMU method)
TFLM_M4 = {"kws_ref_model": (43_039_840, 7_697_840), "vww_96_int8": (100_241_120, 24_101_920),
           "pretrainedResnet_quant": (107_406_040, 29_861_640), "ad01_int8": (1_952_320, 582_920),
           "str_ww_ref_model": (8_286_280, 2_227_000)}


def host_seconds(model: Path, reps: int) -> tuple[float, float]:
    """(tinycc, TFLM) seconds per inference on this host."""
    with tempfile.TemporaryDirectory() as tmp:
        res = compile_model(model, "host", Path(tmp) / "lib", name="m", measure_code=False)
        so = Path(tmp) / "libm.so"
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-I", str(res.out_dir / "include"),
                        *map(str, (res.out_dir / "src").glob("*.c")), "-o", str(so)], check=True)
        lib = ctypes.CDLL(str(so))
        x = standard_inputs(res.library.input.shape, 1)[0]
        y = np.zeros(res.library.output.nbytes, np.int8)
        arena = np.zeros(res.arena_bytes + 16, np.int8)
        base = arena.ctypes.data
        ptr = ctypes.c_void_p((base + 15) // 16 * 16)
        px, py = x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p)
        lib.m_run(px, py, ptr)
        t0 = time.perf_counter()
        for _ in range(reps):
            lib.m_run(px, py, ptr)
        ours = (time.perf_counter() - t0) / reps
    from tflite_micro.python.tflite_micro import runtime
    interp = runtime.Interpreter.from_bytes(model.read_bytes())
    interp.set_input(x, 0)
    interp.invoke()
    t0 = time.perf_counter()
    for _ in range(reps):
        interp.invoke()
    return ours, (time.perf_counter() - t0) / reps


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(REPO.parent / "shared" / "models" / "mlperf-tiny"))
    ap.add_argument("--boards", default="mps2-an386,mps2-an500,mps2-an385")
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args()
    boards = args.boards.split(",")
    print(f"{'model':<24}{'board':<12}{'MACs':>12}{'instr/inf':>13}{'floor':>12}{'x floor':>9}"
          f"{'TFLM+CMSIS':>12}{'ours/CMSIS':>11}  exact")
    ok = True
    for name in MODELS:
        model = Path(args.models) / f"{name}.tflite"
        if not model.is_file():
            print(f"skip {name}: {model} not found")
            continue
        for board in boards:
            target = load_target(board)
            inputs = None
            report = verify(model, target, inputs=inputs)
            macs = sum(k.macs for k in report.compile.library.kernels)
            floor = macs // 2 if target.has_dsp else macs
            n = report.instructions[0]
            cmsis = TFLM_M4[name][1] if board == "mps2-an386" else None
            ok &= report.ok
            print(f"{name:<24}{board:<12}{macs:>12,}{n:>13,}{floor:>12,}{n / floor:>9.2f}"
                  f"{(f'{cmsis:,}' if cmsis else '-'):>12}{(f'{n / cmsis:.2f}' if cmsis else '-'):>11}  {report.ok}")
    print(f"\n{'model':<24}{'tinycc us':>11}{'TFLM us':>10}{'ratio':>8}   (host, gcc -O2 vs tflite-micro package)")
    for name in MODELS:
        model = Path(args.models) / f"{name}.tflite"
        if model.is_file():
            ours, tflm = host_seconds(model, args.reps)
            print(f"{name:<24}{ours * 1e6:>11.1f}{tflm * 1e6:>10.1f}{ours / tflm:>8.3f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
