"""--fuse-rows: row-streamed fused kernels for convolution chains (tinycc.fuse).

The fused library must give the unfused library's outputs byte for byte, which are LiteRT's
(default rounding) and TFLM's (--rounding double); its arena must be strictly smaller; its
plan must pass the independent checker of test_plan.py (the fused kernel's scratch buffer and
its output written over its input included); and it must run clean under ASan and UBSan in an
arena of exactly the planned size.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import model_path
from test_plan import check_plan

from tinycc import compile_model, toolchain
from tinycc.fuse import FusedKernel
from tinycc.verify import reference_outputs, standard_inputs, verify

FUSED_MODELS = ["tiny_resnet", "pretrainedResnet_quant"]
#: the chains the pass must find (model layer indices in the kernel names)
EXPECTED = {
    "tiny_resnet": ["fused_conv2d_1_conv2d_2_add_3", "fused_conv2d_4_conv2d_5_conv2d_6_add_7"],
    "pretrainedResnet_quant": ["fused_conv2d_1_conv2d_2_add_3", "fused_conv2d_4_conv2d_5_conv2d_6_add_7",
                               "fused_conv2d_8_conv2d_9_conv2d_10_add_11"],
    "gesture": ["fused_conv2d_1_conv2d_2", "fused_conv2d_4_conv2d_5"],  # no ADD, strided second conv
}


def _outputs(res, xs, tmp_path, tag):
    exe = toolchain.build_host(res.out_dir, res.library.name, xs, tmp_path / f"build_{tag}")
    return [np.frombuffer(b, np.int8) for b in toolchain.run_host(exe).outputs]


@pytest.mark.parametrize("rounding", ["litert", "double"])
@pytest.mark.parametrize("name", FUSED_MODELS + ["gesture"])
def test_fused_equals_unfused_and_the_reference(name, rounding, tmp_path):
    path = model_path(name)
    plain = compile_model(path, "host", tmp_path / "plain", rounding=rounding, measure_code=False)
    fused = compile_model(path, "host", tmp_path / "fused", rounding=rounding, measure_code=False,
                          fuse_rows=True)
    xs = standard_inputs(plain.library.input.shape)
    ref = reference_outputs(path, xs, rounding)
    a, b = _outputs(plain, xs, tmp_path, "plain"), _outputs(fused, xs, tmp_path, "fused")
    for k, (x, y, r) in enumerate(zip(a, b, ref)):
        assert np.array_equal(x, y), f"input {k}: fused and unfused differ"
        assert np.array_equal(y, r), f"input {k}: fused differs from the reference"


@pytest.mark.parametrize("io_in_arena", [False, True], ids=["io-outside", "io-in-arena"])
@pytest.mark.parametrize("name", FUSED_MODELS + ["gesture"])
def test_fused_plan_is_sound_and_smaller(name, io_in_arena, tmp_path):
    path = model_path(name)
    plain = compile_model(path, "host", tmp_path / "plain", measure_code=False, io_in_arena=io_in_arena)
    fused = compile_model(path, "host", tmp_path / "fused", measure_code=False, io_in_arena=io_in_arena,
                          fuse_rows=True)
    lib = fused.library
    kernels = [k for k in lib.kernels if isinstance(k, FusedKernel)]
    assert [k.name[len(lib.name) + 1:] for k in kernels] == EXPECTED[name]
    assert fused.arena_bytes < plain.arena_bytes
    check_plan(lib)
    assert lib.plan.lower_bound <= fused.arena_bytes
    for k in kernels:  # each fused kernel's scratch is planned, inside the arena
        assert k.name in lib.plan.scratch and k.scratch_bytes > 0
        assert lib.plan.scratch[k.name] + k.scratch_bytes <= fused.arena_bytes


def test_fused_kernel_names_its_layers(tmp_path):
    res = compile_model(model_path("tiny_resnet"), "host", tmp_path / "r", measure_code=False, fuse_rows=True)
    src = (res.out_dir / "src" / f"{res.library.name}_kernels.c").read_text()
    entry = (res.out_dir / "src" / f"{res.library.name}.c").read_text()
    name = f"{res.library.name}_fused_conv2d_1_conv2d_2_add_3"
    head = src.split(f"void {name}(")[0].rsplit("/*", 1)[1]
    for layer in ("CONV_2D #1", "CONV_2D #2", "ADD #3", "row-streamed"):
        assert layer in head
    assert "int8_t* scratch, int8_t* output)" in src  # the scratch is written, not const
    assert f"{name}(arena8 + " in entry
    # the ring is a scratch buffer, not a weight
    assert "scratch" not in (res.out_dir / "src" / f"{res.library.name}_weights.c").read_text()
    # the intermediate tensors of the chain have no place in the plan
    g = res.library.graph
    conv1 = next(op for op in g.operators if op.index == 1)
    assert conv1.outputs[0] not in {t for b in res.library.plan.buffers for t in b.tensors if b.first <= b.last}


@pytest.mark.parametrize("name", FUSED_MODELS)
def test_fused_sanitized_in_an_exact_arena(name, tmp_path):
    report = verify(model_path(name), "host", sanitize=True, fuse_rows=True, work_dir=tmp_path)
    assert report.ok, report.summary()


def test_fused_in_qemu_matches_litert(tmp_path):
    report = verify(model_path("tiny_resnet"), "mps2-an386", fuse_rows=True, work_dir=tmp_path)
    assert report.ok, report.summary()
    assert report.instructions and all(n > 0 for n in report.instructions)


@pytest.mark.slow
def test_fused_resnet8_in_qemu_matches_litert(tmp_path):
    report = verify(model_path("pretrainedResnet_quant"), "mps2-an386", fuse_rows=True, work_dir=tmp_path)
    assert report.ok, report.summary()


def test_no_chain_no_change(tmp_path):
    """A model without a convolution chain compiles to the same library with the flag."""
    a = compile_model(model_path("tiny_kws"), "host", tmp_path / "a", measure_code=False)
    b = compile_model(model_path("tiny_kws"), "host", tmp_path / "b", measure_code=False, fuse_rows=True)
    assert [k.name for k in a.library.kernels] == [k.name for k in b.library.kernels]
    assert a.arena_bytes == b.arena_bytes


def test_cli_flag(tmp_path):
    from tinycc.cli import main
    assert main(["compile", str(model_path("tiny_resnet")), "-o", str(tmp_path / "r"), "--fuse-rows"]) == 0
    assert "fused_conv2d_1_conv2d_2_add_3" in (tmp_path / "r" / "src" / "tiny_resnet_kernels.c").read_text()
