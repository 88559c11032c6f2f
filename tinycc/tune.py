"""A first tuner over the schedule knobs (tinycc.kernels.schedule): one knob of one operator
kind, every value tried on every layer of that kind, measured per layer with the profiler
(instructions in QEMU), outputs checked bit-exact. The best value per op signature, where it
beats the CPU's default, becomes a record in autotune_logs/<cpu>.json, which `tinycc compile`
then applies by default.

    python3 -m tinycc.tune --target mps2-an386 --kind DEPTHWISE_CONV_2D --knob variant m1.tflite ...
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from .frontend import load_model
from .kernels import schedule
from .lower import lower
from .profile import profile
from .targets import load_target


def signatures(models, cpu: str) -> list[dict]:
    """Per model, op index -> signature of its convolution / FC layers."""
    out = []
    for m in models:
        s = schedule.Schedules(cpu)
        lower(load_model(m), "t", "litert", schedules=s)
        out.append(dict(s.seen))
    return out


def tune_knob(models, target: str, kind: str, knob: str, logs_dir: Path | None = None) -> list[dict]:
    """Measure every value of `knob` on every `kind` layer of `models`; write and return the
    records that beat the default."""
    tgt = load_target(target)
    cpu = tgt.cpu
    sigs = signatures(models, cpu)
    kind_sigs = {sig for per in sigs for sig in per.values() if sig.startswith(kind + " ")}
    default = getattr(schedule.DEFAULTS.get(cpu, {}).get(kind, schedule.KNOBS[kind]()), knob)
    measured: dict = {sig: {} for sig in kind_sigs}
    for value in schedule.CHOICES[knob]:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / f"{cpu}.json").write_text(json.dumps(
                {"records": [{"signature": s, "knobs": {knob: value}} for s in sorted(kind_sigs)]}))
            old = os.environ.get("TINYCC_AUTOTUNE_LOGS")
            os.environ["TINYCC_AUTOTUNE_LOGS"] = tmp
            try:
                for m, per in zip(models, sigs):
                    rep = profile(m, tgt)
                    if not rep.exact:
                        raise AssertionError(f"{m} with {knob}={value}: outputs differ")
                    for layer in rep.layers:
                        sig = per.get(layer.index)
                        if sig in measured:
                            measured[sig][value] = measured[sig].get(value, 0) + layer.instructions
            finally:
                if old is None:
                    os.environ.pop("TINYCC_AUTOTUNE_LOGS")
                else:
                    os.environ["TINYCC_AUTOTUNE_LOGS"] = old
    records = []
    for sig in sorted(measured):
        best = min(measured[sig], key=lambda v: (measured[sig][v], v != default))
        if best != default and measured[sig][best] < measured[sig][default]:
            records.append({"signature": sig, "knobs": {knob: best},
                            "instructions": dict(sorted(measured[sig].items())), "target": tgt.name})
    path = Path(logs_dir or schedule.LOGS_DIR) / f"{cpu}.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"cpu": cpu, "records": []}
    keep = [r for r in doc["records"] if r["signature"] not in measured]
    doc["records"] = keep + records
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return records


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--target", default="mps2-an386")
    ap.add_argument("--kind", default="DEPTHWISE_CONV_2D", choices=sorted(schedule.KNOBS))
    ap.add_argument("--knob", default="variant", choices=sorted(schedule.CHOICES))
    ap.add_argument("--logs", default=None, help="records folder (default: autotune_logs/)")
    args = ap.parse_args(argv)
    for r in tune_knob(args.models, args.target, args.kind, args.knob, args.logs):
        print(f"{r['signature']}: {r['knobs']} {r['instructions']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
