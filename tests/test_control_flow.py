"""IF (frontend/control_flow.py: both branches inlined, IF_SELECT picks the output), checked
against LiteRT and TFLM on inputs that take each branch, one model in QEMU; WHILE refused.
Models: examples/make_control_flow_zoo.py -> tests/models/control_flow/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinycc.frontend import load_model
from tinycc.verify import model_inputs, verify

MODELS = Path(__file__).resolve().parent / "models" / "control_flow"


def _inputs(name):
    """verify's inputs plus one per branch: every value low (-0.9), or one value high (+0.9)."""
    g = load_model(MODELS / f"{name}.tflite")
    t = g.tensor(g.inputs[0])
    xs = model_inputs(g)
    for high in (False, True):
        v = np.full(t.shape, -0.9, np.float32)
        if high:
            v.reshape(-1)[1] = 2.5 if name == "if_nested" else 0.9
        if t.dtype == "int8":
            scale, zp = t.quant.scalar()
            v = np.clip(np.round(v / scale) + zp, -128, 127).astype(np.int8)
        xs.append(v)
    return xs


def test_ifs_are_inlined():
    g = load_model(MODELS / "if_nested.tflite")
    kinds = [op.kind for op in g.operators]
    assert "IF" not in kinds and kinds.count("IF_SELECT") == 4  # two IFs of two outputs


@pytest.mark.parametrize("rounding", ["litert", "double"])
@pytest.mark.parametrize("name", ["if_float", "if_int8", "if_nested"])
def test_host_matches_reference(name, rounding, tmp_path):
    report = verify(MODELS / f"{name}.tflite", "host", rounding=rounding, inputs=_inputs(name), work_dir=tmp_path)
    assert report.ok, report.summary()


def test_branches_differ():
    """The inputs do take both branches: the outputs of the two branch inputs differ in a way
    only a different branch explains (then: relu, no negative value; else: h - 0.5)."""
    from tinycc.verify import reference_outputs
    xs = _inputs("if_float")[-2:]
    low, high = reference_outputs(MODELS / "if_float.tflite", xs)
    assert (high >= 0).all() and (low < 0).any()


def test_if_in_qemu(tmp_path):
    report = verify(MODELS / "if_int8.tflite", "mps2-an386", inputs=_inputs("if_int8"), work_dir=tmp_path)
    assert report.ok, report.summary()


def test_while_is_refused(tmp_path):
    out = tmp_path / "w"
    r = subprocess.run([sys.executable, "-m", "tinycc", "compile", str(MODELS / "while_float.tflite"),
                        "--target", "host", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode != 0 and "WHILE at index 0" in r.stderr
    assert not out.exists()
