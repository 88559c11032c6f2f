"""`tinycc report`: the memory picture and table, from the output folder alone."""

from __future__ import annotations

import json

import pytest

from tinycc import compile_model
from tinycc.cli import main
from tinycc.errors import TinyccError
from tinycc.report import write_report

from conftest import model_path


def test_plan_is_saved_in_metadata(tmp_path):
    res = compile_model(model_path("tiny_resnet"), "host", tmp_path / "r", measure_code=False)
    plan = json.loads((res.out_dir / "metadata.json").read_text())["plan"]
    assert plan["arena_bytes"] == res.arena_bytes and plan["lower_bound"] <= res.arena_bytes
    assert len(plan["order"]) == len(res.library.steps)
    arena = [b for b in plan["buffers"] if b["home"] == "arena" and b["first"] <= b["last"]]
    assert all(b["offset"] + b["bytes"] <= res.arena_bytes for b in arena)


def test_report_from_the_folder_alone(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "kws"
    assert main(["compile", str(model_path("tiny_kws")), "-t", "nrf52840", "-o", str(out), "--report"]) == 0
    text = capsys.readouterr().out
    assert "lower bound" in text and "report" in text
    png = (out / "memory.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    md = (out / "memory.md").read_text()
    meta = json.loads((out / "metadata.json").read_text())
    for op in meta["ops"]:
        assert f"| {op['op']} #{op['index']} |" in md
    (out / "memory.png").unlink()
    assert main(["report", str(out)]) == 0 and (out / "memory.png").is_file()


def test_summary_has_the_bound_and_io_mode(tmp_path):
    res = compile_model(model_path("gesture"), "nrf52840", tmp_path / "g", io_in_arena=True)
    s = res.summary()
    assert "lower bound" in s and "input and output inside" in s and "% of nrf52840 RAM" in s


def test_report_refuses_a_folder_without_metadata(tmp_path):
    with pytest.raises(TinyccError, match="metadata.json"):
        write_report(tmp_path)
