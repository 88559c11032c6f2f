#!/usr/bin/env python3
"""MLPerf Tiny int8 models: compile time, arena (next to TFLM's), flash, instructions on Cortex-M4.

    python3 benchmarks/mlperf.py [--models DIR] [--target mps2-an386] [--rounding litert]

Flash is `arm-none-eabi-size` (text + data) of the library's objects built for the target's CPU
at -Os; instructions are per inference in QEMU with -icount shift=0 (SysTick), library at -O2;
every run is also checked against the reference interpreter. TFLM's arena is the
`print_allocations()` total of the tflite-micro package on this host (64-bit pointers, so a
little more than on a Cortex-M).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tinycc import compile_model  # noqa: E402
from tinycc.targets import load_target  # noqa: E402
from tinycc.verify import standard_inputs, verify  # noqa: E402

from memory import library_flash, tflm_host_arena  # noqa: E402  (benchmarks/memory.py)

MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(REPO.parent / "shared" / "models" / "mlperf-tiny"))
    ap.add_argument("--target", default="mps2-an386")
    ap.add_argument("--rounding", default="litert")
    args = ap.parse_args()
    target = load_target(args.target)
    rows = []
    for name in MODELS:
        model = Path(args.models) / f"{name}.tflite"
        if not model.is_file():
            print(f"skip {name}: {model} not found")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.monotonic()
            res = compile_model(model, target, Path(tmp) / "lib", rounding=args.rounding, measure_code=False)
            seconds = time.monotonic() - t0
            flash = library_flash(res.out_dir, target)
            inputs = standard_inputs(res.library.input.shape, count_random=1)[:1]
        report = verify(model, target, rounding=args.rounding, inputs=inputs)
        rows.append((name, seconds, res.arena_bytes, res.library.input.nbytes + res.library.output.nbytes,
                     tflm_host_arena(model), res.weight_bytes, flash, report.instructions[0], report.ok))
    print(f"\n{'model':<24}{'compile s':>10}{'arena B':>10}{'+io B':>8}{'TFLM arena B':>14}"
          f"{'weights B':>11}{'flash B':>10}{'instr/inf':>13}  exact")
    for r in rows:
        print(f"{r[0]:<24}{r[1]:>10.1f}{r[2]:>10,}{r[3]:>8,}{r[4]:>14,}{r[5]:>11,}{r[6]:>10,}{r[7]:>13,}  {r[8]}")
    return 0 if all(r[8] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
