"""Every model, compiled and run, must equal the reference interpreter byte for byte.

Inputs: two random tensors, all -128 and all 127. The default rounding is checked against
LiteRT's reference kernels (BUILTIN_REF), --rounding double against TFLM (tflite-micro).
"""

from __future__ import annotations

import pytest

from tinycc.verify import verify

from conftest import ALL_MODELS, model_path


def _assert_exact(report):
    assert len(report.mismatches) == 4
    assert report.ok, report.summary()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_host_matches_litert(name, tmp_path):
    _assert_exact(verify(model_path(name), "host", work_dir=tmp_path))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_host_double_rounding_matches_tflm(name, tmp_path):
    _assert_exact(verify(model_path(name), "host", rounding="double", work_dir=tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_MODELS)
def test_cortex_m4_in_qemu_matches_litert(name, tmp_path):
    report = verify(model_path(name), "nrf52840", work_dir=tmp_path)
    assert report.ran_on.startswith("mps2-an386")
    _assert_exact(report)
    assert report.instructions and all(n > 0 for n in report.instructions)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["mps2-an385", "mps2-an500", "mps2-an505", "rp2040"])
def test_other_cortex_m_cores(target, tmp_path):
    _assert_exact(verify(model_path("kws_ref_model"), target, work_dir=tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["mps2-an385", "mps2-an500", "mps2-an505"])
def test_example_on_other_cores(target, tmp_path):
    _assert_exact(verify(model_path("tiny_resnet"), target, work_dir=tmp_path))


def test_double_rounding_in_qemu_matches_tflm(tmp_path):
    _assert_exact(verify(model_path("gesture"), "mps2-an386", rounding="double", work_dir=tmp_path))


def test_instruction_count_is_deterministic(tmp_path):
    a = verify(model_path("tiny_ae"), "mps2-an386", work_dir=tmp_path / "a")
    b = verify(model_path("tiny_ae"), "mps2-an386", work_dir=tmp_path / "b")
    assert a.instructions == b.instructions
