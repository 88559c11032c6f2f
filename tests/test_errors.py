"""Bad input: a clear error, a non-zero exit code, nothing written."""

from __future__ import annotations

import dataclasses
import struct

import pytest
import tflite

from tinycc import compile_model
from tinycc.cli import main
from tinycc.errors import FitError, ModelError, TargetError, UnsupportedOpError
from tinycc.targets import load_target

from conftest import model_path


def _cli(capsys, *args):
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


def _patch_opcode(data: bytes, opcode_index: int, builtin: int) -> bytes:
    """Rewrite one entry of the model's operator-code table in place."""
    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(buf, 0)
    code = model.OperatorCodes(opcode_index)
    tab = code._tab
    dep, full = tab.Offset(4), tab.Offset(10)
    assert dep and full, "the example model stores both builtin code fields"
    struct.pack_into("<b", buf, tab.Pos + dep, min(builtin, 127))
    struct.pack_into("<i", buf, tab.Pos + full, builtin)
    return bytes(buf)


def test_truncated_model(tmp_path, capsys):
    data = model_path("gesture").read_bytes()
    bad = tmp_path / "truncated.tflite"
    bad.write_bytes(data[: len(data) // 3])
    out = tmp_path / "out"
    with pytest.raises(ModelError):
        compile_model(bad, "nrf52840", out)
    code, err = _cli(capsys, "compile", str(bad), "--target", "nrf52840", "-o", str(out))
    assert code == 1
    assert "truncated or corrupt" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("seed", range(8))
def test_corrupt_model_never_crashes(tmp_path, seed):
    """Random damage anywhere in the file: a ModelError, or a model that still compiles."""
    import random
    data = bytearray(model_path("tiny_ae").read_bytes())
    rng = random.Random(seed)
    for _ in range(40):
        data[rng.randrange(8, len(data))] = rng.randrange(256)
    bad = tmp_path / "corrupt.tflite"
    bad.write_bytes(bytes(data))
    try:
        compile_model(bad, "host", tmp_path / "out", measure_code=False)
    except (ModelError, UnsupportedOpError):
        assert not (tmp_path / "out").exists()


def test_not_a_tflite_file(tmp_path, capsys):
    bad = tmp_path / "model.tflite"
    bad.write_text("this is not a model\n" * 10)
    code, err = _cli(capsys, "compile", str(bad), "-o", str(tmp_path / "out"))
    assert code == 1 and "not a TFLite model" in err
    assert not (tmp_path / "out").exists()


def test_missing_file_and_unknown_format(tmp_path, capsys):
    code, err = _cli(capsys, "compile", str(tmp_path / "nope.tflite"))
    assert code == 1 and "not found" in err
    other = tmp_path / "model.pb"
    other.write_bytes(b"\0" * 16)
    code, err = _cli(capsys, "compile", str(other))
    assert code == 1 and "unknown model format" in err


def test_unsupported_op_names_type_and_index(tmp_path, capsys):
    src = model_path("gesture")
    model = tflite.Model.GetRootAsModel(src.read_bytes(), 0)
    sub = model.Subgraphs(0)
    op_index = 3
    opcode = sub.Operators(op_index).OpcodeIndex()
    first_user = min(i for i in range(sub.OperatorsLength()) if sub.Operators(i).OpcodeIndex() == opcode)
    bad = tmp_path / "gather.tflite"
    bad.write_bytes(_patch_opcode(src.read_bytes(), opcode, 36))  # 36 = GATHER
    out = tmp_path / "out"
    with pytest.raises(UnsupportedOpError) as info:
        compile_model(bad, "nrf52840", out)
    assert info.value.op_name == "GATHER" and info.value.index == first_user
    code, err = _cli(capsys, "compile", str(bad), "-o", str(out))
    assert code == 1
    assert f"GATHER at index {first_user}" in err
    assert not out.exists()


def test_existing_output_is_kept_on_error(tmp_path):
    out = tmp_path / "out"
    compile_model(model_path("tiny_ae"), "host", out, measure_code=False)
    before = sorted(p.name for p in out.rglob("*"))
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(model_path("tiny_ae").read_bytes()[:200])
    with pytest.raises(ModelError):
        compile_model(bad, "host", out)
    assert sorted(p.name for p in out.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_arena_over_ram(tmp_path):
    small = dataclasses.replace(load_target("nrf52840"), ram_bytes=2048)
    with pytest.raises(FitError) as info:
        compile_model(model_path("tiny_kws"), small, tmp_path / "out")
    msg = str(info.value)
    assert "arena" in msg and "2,048" in msg
    assert not (tmp_path / "out").exists()


def test_library_over_flash(tmp_path):
    small = dataclasses.replace(load_target("rp2040"), flash_bytes=8192)
    with pytest.raises(FitError) as info:
        compile_model(model_path("tiny_resnet"), small, tmp_path / "out")
    assert "flash" in str(info.value) and "8,192" in str(info.value)


def test_unknown_target(capsys):
    with pytest.raises(TargetError):
        load_target("esp32")
    code, err = _cli(capsys, "compile", str(model_path("tiny_ae")), "--target", "esp32")
    assert code == 1 and "unknown target 'esp32'" in err and "nrf52840" in err
