#!/usr/bin/env python3
"""`--kernels cmsis-nn` next to tinycc's own kernels: instructions per inference of the MLPerf
Tiny int8 models on an emulated board (default mps2-an386, Cortex-M4), with TFLM + CMSIS-NN's
figures from issue 5, and the arena each needs.

    CMSIS_NN_PATH=/path/to/CMSIS-NN python3 benchmarks/cmsis_nn.py [--models DIR] [--board B]

Both libraries are compiled with --rounding double (TFLM's and CMSIS-NN's arithmetic), built at
-O2, run once on each of verify()'s inputs in QEMU (-icount shift=0) and compared byte for byte
with TFLM (the tflite-micro package); the instruction count is the first input's. The last
column says how many output bytes of TFLM (so of both libraries) differ from LiteRT's reference
kernels on those inputs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tinycc.targets import load_target  # noqa: E402
from tinycc.verify import reference_outputs, standard_inputs, verify  # noqa: E402

MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model"]
#: TFLM with CMSIS-NN on mps2-an386, instructions per inference (issue 5)
TFLM_CMSIS_M4 = {"kws_ref_model": 7_697_840, "vww_96_int8": 24_101_920, "pretrainedResnet_quant": 29_861_640,
                 "ad01_int8": 582_920, "str_ww_ref_model": 2_227_000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=os.environ.get("TINYCC_MLPERF_DIR",
                                                       str(REPO.parent / "shared" / "models" / "mlperf-tiny")))
    ap.add_argument("--board", default="mps2-an386")
    args = ap.parse_args()
    if not os.environ.get("CMSIS_NN_PATH"):
        print("set CMSIS_NN_PATH to a CMSIS-NN checkout (github.com/ARM-software/CMSIS-NN)", file=sys.stderr)
        return 2
    target = load_target(args.board)
    tflm = TFLM_CMSIS_M4 if args.board == "mps2-an386" else {}
    print(f"{'model':<24}{'MACs':>11}{'floor':>11}{'tinycc':>12}{'cmsis-nn':>12}{'TFLM+CMSIS':>12}"
          f"{'cmsis/TFLM':>11}{'arena tinycc':>13}{'arena cmsis':>12}  exact  TFLM!=LiteRT")
    ok = True
    for name in MODELS:
        model = Path(args.models) / f"{name}.tflite"
        if not model.is_file():
            print(f"skip {name}: {model} not found")
            continue
        own = verify(model, target, rounding="double")
        cm = verify(model, target, kernels="cmsis-nn")
        macs = sum(k.macs for k in own.compile.library.kernels)
        floor = macs // 2 if target.has_dsp else macs
        inputs = standard_inputs(own.compile.library.input.shape)
        litert = reference_outputs(model, inputs, "litert")
        micro = reference_outputs(model, inputs, "double")
        differ = sum(int((a != b).sum()) for a, b in zip(litert, micro))
        total = sum(a.size for a in litert)
        ok &= own.ok and cm.ok
        n, t = cm.instructions[0], tflm.get(name)
        print(f"{name:<24}{macs:>11,}{floor:>11,}{own.instructions[0]:>12,}{n:>12,}"
              f"{(f'{t:,}' if t else '-'):>12}{(f'{n / t:.2f}' if t else '-'):>11}"
              f"{own.compile.arena_bytes:>13,}{cm.compile.arena_bytes:>12,}  {str(own.ok and cm.ok):<5}"
              f"  {differ} of {total}")
        sys.stdout.flush()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
