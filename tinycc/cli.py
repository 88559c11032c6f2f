"""The `tinycc` command: a thin shell over the library functions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import TinyccError
from .cmsis_nn import KERNELS
from .quant import ROUNDINGS

ROUNDING_HELP = ("requantization rounding: 'litert' matches LiteRT's reference kernels "
                 "(default), 'double' matches TFLM and CMSIS-NN (the default with --kernels cmsis-nn); "
                 ".onnx models always match onnxruntime ('onnxruntime')")
KERNELS_HELP = ("'tinycc' (default): tinycc's own kernels; 'cmsis-nn': convolutions, depthwise, fully-connected, "
                "pooling, softmax, add and mul call CMSIS-NN (sources from $CMSIS_NN_PATH), the rest tinycc's; "
                "with --rounding litert only the layers CMSIS-NN then rounds as LiteRT (see README)")
FUSE_ROWS_HELP = ("row-streamed execution of convolution chains (conv -> conv [-> ADD]): one fused kernel "
                  "per chain keeps a few rows of the intermediate tensor instead of all of it (smaller "
                  "arena, see README)")


KNOB_HELP = ("a kernel schedule knob for every layer of a kind, e.g. FULLY_CONNECTED.weights=int16 "
             "(weights stored as int16 for SMLAD: fewer instructions, twice the weights' flash); repeatable")


def _knobs(args) -> dict:
    from .kernels.schedule import parse_knobs
    return parse_knobs(args.knob)


def _compile(args) -> int:
    from .compiler import compile_model
    result = compile_model(args.model, args.target, args.output, name=args.name, rounding=args.rounding,
                           io_in_arena=args.io_in_arena, fuse_rows=args.fuse_rows, kernels=args.kernels,
                           knobs=_knobs(args))
    for warning in result.warnings:
        print(f"tinycc: warning: {warning}", file=sys.stderr)
    print(result.summary())
    if args.report:
        from .report import write_report
        print(f"  report {write_report(result.out_dir)} (and memory.png)")
    return 0


def _report(args) -> int:
    from .report import write_report
    md = write_report(args.folder)
    print(md.read_text().split("\n\n![arena]")[0])
    print(f"wrote {md} and {md.with_name('memory.png')}")
    return 0


def _verify(args) -> int:
    from .verify import verify
    report = verify(args.model, args.target, rounding=args.rounding, sanitize=args.sanitize,
                    fuse_rows=args.fuse_rows, kernels=args.kernels, knobs=_knobs(args))
    print(report.summary())
    return 0 if report.ok else 2


def _profile(args) -> int:
    from .profile import profile
    report = profile(args.model, args.target, rounding=args.rounding, fuse_rows=args.fuse_rows,
                     kernels=args.kernels, knobs=_knobs(args))
    print(report.table())
    if args.json:
        Path(args.json).write_text(report.to_json())
    if args.chart:
        report.chart(args.chart)
    return 0 if report.exact else 2


def _targets(args) -> int:
    from .targets import available_targets
    print(f"{'target':<12} {'cpu':<14} {'RAM':>10} {'flash':>10}  verified on / description")
    for t in available_targets():
        emu = t.emulated_by or ("QEMU " + t.qemu.machine if t.qemu else "-")
        print(f"{t.name:<12} {t.cpu:<14} {t.ram_bytes:>10,} {t.flash_bytes:>10,}  {emu}: {t.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinycc", description="Compile TFLite models into standalone C libraries for microcontrollers.")
    parser.add_argument("--version", action="version", version=f"tinycc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile a model into a C library folder")
    p.add_argument("model", help="the .tflite model (int8 quantized, or float32)")
    p.add_argument("--target", "-t", default="host", help="board or CPU (see `tinycc targets`); default host")
    p.add_argument("--output", "-o", default=None, help="output folder (default build/<name>)")
    p.add_argument("--name", default=None, help="C prefix of the library (default: the model file's stem)")
    p.add_argument("--rounding", choices=ROUNDINGS, default=None, help=ROUNDING_HELP)
    p.add_argument("--kernels", choices=KERNELS, default="tinycc", help=KERNELS_HELP)
    p.add_argument("--io-in-arena", action="store_true",
                   help="put the input and output tensors inside the arena (the header gives their offsets)")
    p.add_argument("--report", action="store_true", help="also write the memory report (see `tinycc report`)")
    p.add_argument("--fuse-rows", action="store_true", help=FUSE_ROWS_HELP)
    p.add_argument("--knob", action="append", metavar="KIND.KNOB=VALUE", help=KNOB_HELP)
    p.set_defaults(func=_compile)

    p = sub.add_parser("report", help="memory report of a compiled library folder: memory.png and memory.md")
    p.add_argument("folder", help="the folder `tinycc compile` wrote, e.g. build/kws")
    p.set_defaults(func=_report)

    p = sub.add_parser("verify", help="compile, run on the host or in QEMU, compare with the reference")
    p.add_argument("model")
    p.add_argument("--target", "-t", default="mps2-an386",
                   help="board; a real board runs on the emulated board with its CPU (default mps2-an386)")
    p.add_argument("--rounding", choices=ROUNDINGS, default=None, help=ROUNDING_HELP)
    p.add_argument("--kernels", choices=KERNELS, default="tinycc", help=KERNELS_HELP)
    p.add_argument("--sanitize", action="store_true", help="on the host: build with ASan and UBSan")
    p.add_argument("--fuse-rows", action="store_true", help=FUSE_ROWS_HELP)
    p.add_argument("--knob", action="append", metavar="KIND.KNOB=VALUE", help=KNOB_HELP)
    p.set_defaults(func=_verify)

    p = sub.add_parser("profile", help="instructions per layer on an emulated Cortex-M (QEMU)")
    p.add_argument("model")
    p.add_argument("--target", "-t", default="mps2-an386")
    p.add_argument("--rounding", choices=ROUNDINGS, default=None, help=ROUNDING_HELP)
    p.add_argument("--kernels", choices=KERNELS, default="tinycc", help=KERNELS_HELP)
    p.add_argument("--fuse-rows", action="store_true", help=FUSE_ROWS_HELP)
    p.add_argument("--knob", action="append", metavar="KIND.KNOB=VALUE", help=KNOB_HELP)
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.add_argument("--chart", default=None, help="also draw the rows as a PNG chart (needs matplotlib)")
    p.set_defaults(func=_profile)

    p = sub.add_parser("targets", help="list the boards tinycc knows")
    p.set_defaults(func=_targets)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TinyccError as exc:
        print(f"tinycc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
