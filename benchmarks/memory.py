#!/usr/bin/env python3
"""RAM and flash of the MLPerf Tiny int8 models: tinycc's plan next to TFLM's arena.

    python3 benchmarks/memory.py [--models DIR] [--target mps2-an386]

Per model: the lower bound (the most bytes that must be live at one step, given the overlaps
the kernels allow), tinycc's arena (activations only) and with --io-in-arena (input and output
inside, which is what TFLM's arena holds), TFLM's arena (measured on Cortex-M4 with
arena_used_bytes(); and the tflite-micro package's print_allocations() on this host, 64-bit
pointers), the ratio of tinycc --io-in-arena to TFLM on Cortex-M4, and flash
(`arm-none-eabi-size` text + data of the library built for the target at -Os) next to the
weights.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tinycc import compile_model  # noqa: E402
from tinycc.targets import load_target  # noqa: E402

MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model"]
#: TFLM's arena_used_bytes() with TFLM built for mps2-an386 (Cortex-M4), from issue 3.
TFLM_M4 = {"kws_ref_model": 22820, "vww_96_int8": 100708, "pretrainedResnet_quant": 54996,
           "ad01_int8": 2580, "str_ww_ref_model": 16596}


def tflm_host_arena(model: Path) -> int | None:
    """print_allocations() writes from C++ to stdout: run it in a child process to capture it."""
    code = ("from tflite_micro.python.tflite_micro import runtime\n"
            f"runtime.Interpreter.from_bytes(open({str(model)!r}, 'rb').read()).print_allocations()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    m = re.search(r"Arena allocation total (\d+) bytes", proc.stdout + proc.stderr)
    return int(m.group(1)) if m else None


def library_flash(lib_dir: Path, target) -> int:
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted((lib_dir / "src").glob("*.c")):
            obj = Path(tmp) / (src.stem + ".o")
            subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-Os", *target.cflags, "-I", lib_dir / "include",
                            "-I", src.parent, "-c", src, "-o", obj], check=True)
            out = subprocess.run(["arm-none-eabi-size", obj], capture_output=True, text=True).stdout
            text, data = out.splitlines()[1].split()[:2]
            total += int(text) + int(data)
    return total


def measure(model: Path, target) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        plain = compile_model(model, target, Path(tmp) / "a", measure_code=False)
        io = compile_model(model, target, Path(tmp) / "b", measure_code=False, io_in_arena=True)
        flash = library_flash(plain.out_dir, target)
    return {"bound": plain.library.plan.lower_bound, "arena": plain.arena_bytes,
            "io_bound": io.library.plan.lower_bound, "io_arena": io.arena_bytes,
            "weights": plain.weight_bytes, "flash": flash}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(REPO.parent / "shared" / "models" / "mlperf-tiny"))
    ap.add_argument("--target", default="mps2-an386")
    args = ap.parse_args()
    target = load_target(args.target)
    head = (f"{'model':<24}{'bound':>8}{'arena':>8}{'bound io':>10}{'arena io':>10}{'TFLM M4':>9}"
            f"{'TFLM host':>11}{'ratio':>7}{'weights':>9}{'flash':>9}{'code':>7}")
    rows, worst = [head], 0.0
    for name in MODELS:
        model = Path(args.models) / f"{name}.tflite"
        if not model.is_file():
            rows.append(f"{name:<24}skipped: {model} not found")
            continue
        try:
            r = measure(model, target)
        except Exception as exc:  # noqa: BLE001 - one model's failure must not hide the others
            rows.append(f"{name:<24}failed: {str(exc).splitlines()[0][:90]}")
            continue
        ratio = r["io_arena"] / TFLM_M4[name]
        worst = max(worst, ratio)
        host = tflm_host_arena(model)
        rows.append(f"{name:<24}{r['bound']:>8,}{r['arena']:>8,}{r['io_bound']:>10,}{r['io_arena']:>10,}"
                    f"{TFLM_M4[name]:>9,}{host or 0:>11,}{ratio:>7.2f}{r['weights']:>9,}{r['flash']:>9,}"
                    f"{r['flash'] - r['weights']:>7,}")
    print("\n".join(rows))
    print(f"\nratio = tinycc arena with --io-in-arena / TFLM's arena on Cortex-M4 (goal <= 0.5); "
          f"worst {worst:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
