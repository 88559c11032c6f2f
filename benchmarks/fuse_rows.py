#!/usr/bin/env python3
"""What `--fuse-rows` saves in arena bytes and costs in instructions.

    python3 benchmarks/fuse_rows.py [--models DIR] [--target mps2-an386] [--no-profile]

Per model (the examples with convolution chains, and the MLPerf Tiny models): the arena
without and with the flag, input and output outside and inside the arena (--io-in-arena,
what TFLM's arena holds, hence the ratio to TFLM's arena on Cortex-M4), and the instructions
per inference on the emulated Cortex-M4 (QEMU, `tinycc.profile`) without and with it; then,
per fused kernel, its instructions next to the sum of the unfused layers it replaces.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tinycc import compile_model  # noqa: E402
from tinycc.fuse import FusedKernel  # noqa: E402
from tinycc.profile import profile  # noqa: E402
from tinycc.targets import load_target  # noqa: E402

EXAMPLES = ["tiny_resnet", "gesture"]
MLPERF = ["pretrainedResnet_quant", "kws_ref_model", "vww_96_int8", "ad01_int8", "str_ww_ref_model"]
TFLM_M4 = {"kws_ref_model": 22820, "vww_96_int8": 100708, "pretrainedResnet_quant": 54996,
           "ad01_int8": 2580, "str_ww_ref_model": 16596}


def arenas(model: Path, target) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for fuse in (False, True):
            for io in (False, True):
                res = compile_model(model, target, Path(tmp) / f"{fuse}{io}", measure_code=False,
                                    io_in_arena=io, fuse_rows=fuse)
                out[fuse, io] = res.arena_bytes
                if fuse:
                    out["fused"] = [k for k in res.library.kernels if isinstance(k, FusedKernel)]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(REPO.parent / "shared" / "models" / "mlperf-tiny"))
    ap.add_argument("--target", default="mps2-an386")
    ap.add_argument("--no-profile", action="store_true", help="arena only, no QEMU runs")
    args = ap.parse_args()
    target = load_target(args.target)
    models = [(n, REPO / "examples" / "models" / f"{n}.tflite") for n in EXAMPLES]
    models += [(n, Path(args.models) / f"{n}.tflite") for n in MLPERF]
    rows = [f"{'model':<24}{'arena':>8}{'fused':>8}{'saved':>7}{'arena io':>10}{'fused io':>10}"
            f"{'TFLM M4':>9}{'ratio':>6}{'fused':>6}{'instructions':>14}{'fused':>12}{'cost':>8}"]
    details = []
    for name, model in models:
        if not model.is_file():
            rows.append(f"{name:<24}skipped: {model} not found")
            continue
        a = arenas(model, target)
        tflm = TFLM_M4.get(name)
        ratio = f"{a[False, True] / tflm:>6.2f}{a[True, True] / tflm:>6.2f}" if tflm else f"{'':>6}{'':>6}"
        saved = 1 - a[True, False] / a[False, False]
        line = (f"{name:<24}{a[False, False]:>8,}{a[True, False]:>8,}{saved:>7.0%}{a[False, True]:>10,}"
                f"{a[True, True]:>10,}{tflm or 0:>9,}{ratio}")
        if not a["fused"]:
            rows.append(line + "  (no convolution chain: unchanged)")
            continue
        if not args.no_profile:
            plain = profile(model, target, fuse_rows=False)
            fused = profile(model, target, fuse_rows=True)
            cost = fused.total_instructions / plain.total_instructions - 1
            line += f"{plain.total_instructions:>14,}{fused.total_instructions:>12,}{cost:>+8.1%}"
            assert plain.exact and fused.exact, f"{name}: outputs differ from the reference"
            by_op = {layer.index: layer.instructions for layer in plain.layers}
            for k in a["fused"]:
                before = sum(by_op.get(f.op.index, 0) for f in k.fused)
                after = next(layer.instructions for layer in fused.layers if layer.kernel == k.name)
                details.append(f"  {name}: {'fused_' + k.name.split('_fused_', 1)[1]:<40}"
                               f"{before:>12,} -> {after:>12,} ({after / before - 1:+.1%}), "
                               f"scratch {k.scratch_bytes:,} B")
        rows.append(line)
    print("\n".join(rows))
    if details:
        print("\nper fused kernel: instructions of the unfused layers -> the fused kernel (Cortex-M4, QEMU)")
        print("\n".join(details))
    print("\narena = activations only; io = with --io-in-arena (input and output inside, as TFLM's arena);"
          "\nratio = tinycc io arena / TFLM's arena on Cortex-M4, without and with --fuse-rows;"
          "\ncost = instructions per inference with --fuse-rows relative to without.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
