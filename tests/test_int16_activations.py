"""16x8 LOGISTIC and TANH (tests/models/int16_extra/, made by examples/make_extra_zoo.py):
every int16 input value once, compared with LiteRT's reference kernels and with TFLM on the
host, one model in QEMU; the regenerated sigmoid table checked against LiteRT through the
kernel's output (an oracle run, not TFLite's source); a non-1/32768 output refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tinycc.errors import UnsupportedOpError
from tinycc.frontend import load_model
from tinycc.lower.int16 import sigmoid_input_scaling, sigmoid_table_uint16
from tinycc.verify import reference_outputs, verify

MODELS = Path(__file__).resolve().parent / "models" / "int16_extra"
NAMES = sorted(p.stem for p in MODELS.glob("*.tflite"))
EVERY = list(np.arange(-32768, 32768, dtype=np.int16).reshape(16, 1, 4096))  # every int16 value once


def test_models_present():
    assert len(NAMES) == 5, "run examples/make_extra_zoo.py"


@pytest.mark.parametrize("rounding", ["litert", "double"])
@pytest.mark.parametrize("name", NAMES)
def test_every_int16_input_on_host(name, rounding, tmp_path):
    report = verify(MODELS / f"{name}.tflite", "host", rounding=rounding, inputs=EVERY, work_dir=tmp_path)
    assert report.ok, report.summary()


def test_in_qemu(tmp_path):
    report = verify(MODELS / "int16_tanh_3.tflite", "mps2-an386", inputs=EVERY, work_dir=tmp_path)
    assert report.ok, report.summary()


def test_the_three_input_scalings_are_covered():
    """A general scale (multiplier, shift), and the power-of-two cases 3 << 0 and 3 << 1."""
    seen = set()
    for name in NAMES:
        g = load_model(MODELS / f"{name}.tflite")
        op = g.operators[0]
        seen.add(sigmoid_input_scaling(op, g.tensor(op.inputs[0])))
    assert (3, 0) in seen and (6, 0) in seen and any(s > 0 for _, s in seen)


def _from_table(table, x, tanh, multiplier, shift):
    """reference_integer_ops::Logistic / Tanh in numpy (int64)."""
    bits = 8 if tanh else 9
    v = (x.astype(np.int64) * multiplier + ((1 << shift) >> 1)) >> shift
    a = np.abs(v)
    uh = np.minimum(a >> bits, 254)
    ua, ub = table[uh].astype(np.int64), table[uh + 1].astype(np.int64)
    res = np.where(a >= 255 << bits, 0xFFFF << 8 if tanh else 0x7FFF << 10, (ua << bits) + (a & ((1 << bits) - 1)) * (ub - ua))
    if tanh:
        return np.where(v >= 0, res - (1 << 23) + 128, (1 << 23) - res + 127) >> 8
    return np.where(v >= 0, res + 512, (1 << 25) - res + 511) >> 10


def test_table_agrees_with_litert_on_every_entry():
    """Through the kernel, the table gives LiteRT's output on every input of every model, and
    changing any one entry by one (up or down) changes some model's outputs: the five models
    together pin every entry down, so the agreement is the table's, not the kernel's rounding
    hiding a difference."""
    x = np.concatenate(EVERY).reshape(-1)
    cases = []
    for name in NAMES:
        g = load_model(MODELS / f"{name}.tflite")
        op = g.operators[0]
        ref = np.concatenate(reference_outputs(MODELS / f"{name}.tflite", EVERY, "litert")).astype(np.int64)
        cases.append((op.kind == "TANH", *sigmoid_input_scaling(op, g.tensor(op.inputs[0])), ref))
    table = sigmoid_table_uint16().astype(np.int64)
    assert np.all(np.diff(table) >= 0) and table[0] == 32768
    for tanh, m, sh, ref in cases:
        assert np.array_equal(_from_table(table, x, tanh, m, sh), ref)
    loose = []
    for i in range(256):
        for d in (-1, 1):
            t = table.copy()
            t[i] += d
            if all(np.array_equal(_from_table(t, x, tanh, m, sh), ref) for tanh, m, sh, ref in cases):
                loose.append((i, d))
    assert loose == [], loose


def test_other_output_scale_is_refused(tmp_path):
    from tinycc import compile_model
    data = bytearray((MODELS / "int16_logistic_3.tflite").read_bytes())
    g = load_model(MODELS / "int16_logistic_3.tflite")
    out = g.tensor(g.outputs[0])
    old = np.float32(out.quant.scalar()[0]).tobytes()
    at = bytes(data).find(old)
    assert at > 0
    data[at:at + 4] = np.float32(1 / 16384).tobytes()
    p = tmp_path / "bad.tflite"
    p.write_bytes(bytes(data))
    with pytest.raises(UnsupportedOpError, match="LOGISTIC"):
        compile_model(p, "host", tmp_path / "lib", measure_code=False)


def test_plan_and_sanitizers(tmp_path):
    """The element-wise kernel may write over its input (traced): the plan's checker, then
    every input under ASan and UBSan in an arena of exactly the planned size."""
    from test_plan import check_plan
    from tinycc import compile_model
    res = compile_model(MODELS / "int16_logistic_3.tflite", "host", tmp_path / "lib", measure_code=False)
    check_plan(res.library)
    report = verify(MODELS / "int16_logistic_3.tflite", "host", inputs=EVERY, work_dir=tmp_path / "v", sanitize=True)
    assert "ASan" in report.ran_on and report.ok, report.summary()
