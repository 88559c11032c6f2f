"""The convolution and fully-connected tiles of issue 5: the 2x3 convolution tiles over
interleaved int16 windows and the 4-row fully-connected blocks (runtime/kernels/tinycc_nn.h),
their compile-time weight layouts, the hand-scheduled loops on the DSP cores and the C loops
elsewhere, all against LiteRT's reference kernels (tests/models/gemm/, built by
examples/make_gemm_zoo.py)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinycc import compile_model, quant
from tinycc.kernels import Requant
from tinycc.kernels.gemm import expand_weights, pair_weights, quad_weights, tile_mode
from tinycc.lower.conv import fast_requantization
from tinycc.lower.common import Const
from tinycc.verify import verify

import _cbuild

MODEL = Path(__file__).resolve().parent / "models" / "gemm" / "gemm_tiles.tflite"
# the first layers of these models (1 and 4 input channels) would take the band kernel
# (tests/test_first_layer.py) on the DSP cores: kept on the 2x3 tiles that these tests are about;
# TILES: one 2x3 tile at a time over int8 weights (test_blocks_*: blocks)
TILES = {"CONV_2D": {"few_channels": "im2col", "block": "tile"}}
INT16_IM2COL = {"CONV_2D": {"im2col": "int16", "few_channels": "im2col"}}


def _need_arm():
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")


def test_pair_weights_feed_the_2x3_tiles():
    """pair_weights' stream, read as tinycc_conv_s16_2x3_out reads it (per channel pair and group
    of 4 values: row o0's 4 bytes, row o1's), gives each channel's dot product; an odd channel
    count repeats the last row."""
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (5, 3, 3, 4)).astype(np.int8)  # OHWI, 36 values per row
    x = rng.integers(-128, 128, 36).astype(np.int64)
    stream = pair_weights(w).astype(np.int64).reshape(3, 9, 2, 4)  # pair, group, row, value
    got = np.einsum("pgrv,gv->pr", stream, x.reshape(9, 4)).reshape(-1)
    want = w.reshape(5, -1).astype(np.int64) @ x
    assert got.tolist() == [*want.tolist(), want[4]]


def test_quad_weights_feed_the_fc_blocks():
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, (7, 12)).astype(np.int8)
    x = rng.integers(-128, 128, 12).astype(np.int64)
    stream = quad_weights(w).astype(np.int64).reshape(2, 3, 4, 4)  # block, group, row, value
    got = np.einsum("bgrv,gv->br", stream, x.reshape(3, 4)).reshape(-1)
    assert got.tolist() == [*(w.astype(np.int64) @ x).tolist(), 0]
    assert expand_weights(w).size == 8 * 12  # int16 blocks of 4 rows too


@pytest.mark.parametrize("rounding", ["single", "double"])
def test_constant_channels_keep_the_fast_requantization(rounding):
    """A pruned channel (zero weights, bias 2^30, tiny multiplier: as in VWW) no longer keeps
    its layer from the rounding constants: it gets multiplier 0, bias 0 and (e, r) = (1, 2v + 1),
    v its one output, which is what TFLite computes for it."""
    rq = Requant(True, out_zp=-128, act_min=-128, act_max=127, rounding=rounding, right_shifts_only=True,
                 small_accumulator=False)
    mult = np.array([1 << 30, 1073741824], np.int32)
    shift = np.array([-8, -31], np.int32)
    bias = np.array([1000, 1 << 30], np.int32)
    wabs = np.array([3000, 0])
    consts = [Const("m", mult), Const("s", shift)]
    rq2, consts2, bias2 = fast_requantization(rq, consts, bias, wabs)
    assert rq2.rounding_constants and bias2.tolist() == [1000, 0]
    v = quant.mul_by_quantized_multiplier(1 << 30, 1 << 30, -31, rounding) - 128
    assert consts2[0].array.tolist()[1] == 0 and consts2[1].array.tolist()[2:] == [1, 2 * v + 1]
    # the kernels' (r + high product) >> e with a zero multiplier
    assert (2 * v + 1) >> 1 == v and (2 * v + 1 - 1) >> 1 == v


@pytest.mark.parametrize("target,knobs", [
    ("host", {"CONV_2D": {**TILES["CONV_2D"], "im2col": "int16"}}),  # the tiles' C loops, sanitized
    ("mps2-an386", TILES),                                    # Cortex-M4: the assembly loops
    ("mps2-an386", {**TILES, "FULLY_CONNECTED": {"weights": "int16"}}),
    ("mps2-an500", TILES),                                    # Cortex-M7
    ("mps2-an385", {"CONV_2D": {**TILES["CONV_2D"], "im2col": "int16"}}),  # Cortex-M3: C loops, no DSP
])
def test_tiles_match_litert(target, knobs, tmp_path):
    if target != "host":
        _need_arm()
    report = verify(MODEL, target, work_dir=tmp_path, knobs=knobs, sanitize=target == "host")
    assert report.ok, report.summary()
    src = (tmp_path / "lib" / "src" / "gemm_tiles_kernels.c").read_text()
    assert src.count("tinycc_conv_s16_2x3_out(") == 6  # 3 layers, each with its last pixels apart
    fc = "tinycc_fc_s8s16_out(" if knobs and "FULLY_CONNECTED" in knobs else "tinycc_fc_s8_out("
    assert src.count(fc) == 2 and src.count("tinycc_dot_s8_1x4(") == 1  # depth 117 keeps the C tiles


@pytest.mark.parametrize("target", ["host", "mps2-an386"])
def test_taps_of_one_and_six_channels(target, tmp_path):
    """Windows whose taps are not whole groups of 4 (1 and 6 input channels, padding on every
    side) are gathered as bytes, then expanded: the 2x3 tiles on both."""
    if target != "host":
        _need_arm()
    model = MODEL.with_name("gemm_taps.tflite")
    report = verify(model, target, work_dir=tmp_path, knobs=INT16_IM2COL, sanitize=target == "host")
    assert report.ok, report.summary()
    assert (tmp_path / "lib" / "src" / "gemm_taps_kernels.c").read_text().count("tinycc_conv_s16_2x3_out(") == 4


@pytest.mark.parametrize("cpu,fpu", [("cortex-m4", "-mfloat-abi=hard -mfpu=fpv4-sp-d16"),
                                     ("cortex-m4", "-mfloat-abi=soft"), ("cortex-m7", "-mfloat-abi=hard -mfpu=fpv5-d16"),
                                     ("cortex-m33", "-mfloat-abi=softfp -mfpu=fpv5-sp-d16")])
def test_assembly_loops_compile_at_every_level(cpu, fpu, tmp_path):
    """The loops take all 14 registers: they must still get them at every optimization level
    and float ABI a firmware may use (-O0 takes the C loops), with a frame pointer asked for too."""
    _need_arm()
    res = compile_model(MODEL, "mps2-an386", tmp_path / "lib", measure_code=False,
                        knobs={"FULLY_CONNECTED": {"weights": "int16"}, **TILES})
    srcs = [res.out_dir / "src" / "gemm_tiles_kernels.c"]
    # the blocks' asm tile loops: K unrolled (8, 12) and in turns of 4 (80, 108), modes 4 and 6
    chain = conv_chain_model(tmp_path / "chain.tflite", *CHAIN_A)
    res = compile_model(chain, "mps2-an386", tmp_path / "chain", measure_code=False,
                        knobs={"CONV_2D": {"block": "plane"}})
    srcs.append(res.out_dir / "src" / "chain_kernels.c")
    for src, opt in itertools.product(srcs, ("-O0", "-O1", "-O2", "-O3", "-Os", "-Og", "-O2 -fno-omit-frame-pointer",
                                             "-Os -fno-omit-frame-pointer")):
        cmd = ["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", *fpu.split(), *opt.split(), "-std=c99", "-Wall", "-Wextra",
               "-Werror", "-pedantic", "-c", str(src), "-o", str(tmp_path / "k.o")]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"


# --- blocks of pixels with int16 weights (tinycc_conv_s16_block_out) -------------------------

def conv_chain_model(path: Path, shape, convs, seed: int = 0) -> Path:
    """A .tflite of CONV_2D layers one after the other, written with LiteRT's flatbuffer schema
    (no TensorFlow needed): convs = [(out channels, kh, kw, stride, "SAME" | "VALID", relu)];
    random int8 weights with per-channel scales, int32 bias, output scales that keep most
    values inside the int8 range, random zero points. An optional 7th entry, a dict, sets
    "zp" (the output zero point), "wmax" (weights in -wmax..wmax) or "ties" (an output scale
    that gives every channel a multiplier below 1/2: right shifts of 1 to 4, many rounding
    ties)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S

    rng = np.random.default_rng(seed)
    m = S.ModelT()
    m.version, m.buffers, m.operatorCodes = 3, [S.BufferT()], [S.OperatorCodeT()]
    m.operatorCodes[0].builtinCode = m.operatorCodes[0].deprecatedBuiltinCode = S.BuiltinOperator.CONV_2D
    m.operatorCodes[0].version = 3
    sg = S.SubGraphT()
    sg.tensors, sg.operators = [], []

    def tensor(name, shape_, dtype, scale, zp, data=None, axis=0):
        t = S.TensorT()
        t.name, t.shape, t.type = name, list(shape_), dtype
        q = S.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = list(np.atleast_1d(scale)), list(np.atleast_1d(zp)), axis
        t.quantization = q
        t.buffer = 0
        if data is not None:
            buf = S.BufferT()
            buf.data = np.ascontiguousarray(data).tobytes()
            m.buffers.append(buf)
            t.buffer = len(m.buffers) - 1
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    h, w, c = shape
    scale, zp = 0.05, int(rng.integers(-10, 10))
    x = tensor("input", (1, h, w, c), S.TensorType.INT8, scale, zp)
    sg.inputs = [x]
    for i, (oc, kh, kw, stride, padding, relu, *more) in enumerate(convs):
        opts = more[0] if more else {}
        wmax = opts.get("wmax", 127)
        wq = rng.integers(-wmax, wmax + 1, (oc, kh, kw, c)).astype(np.int8)
        ws = rng.uniform(0.002, 0.02, oc).astype(np.float32)
        bias = rng.integers(-3000, 3000, oc).astype(np.int32)
        wt = tensor(f"w{i}", wq.shape, S.TensorType.INT8, ws, np.zeros(oc, np.int64), wq)
        bt = tensor(f"b{i}", (oc,), S.TensorType.INT32, scale * ws, np.zeros(oc, np.int64), bias)
        if padding == "SAME":
            h, w = -(-h // stride), -(-w // stride)
        else:
            h, w = (h - kh) // stride + 1, (w - kw) // stride + 1
        in_scale = scale
        scale = float(scale * ws.mean() * np.sqrt(kh * kw * c) * 30)
        zp = int(rng.integers(-20, 20)) if relu else int(rng.integers(-10, 10))
        if opts.get("ties"):
            scale = float(in_scale * ws.max() * 2.5)
        zp = opts.get("zp", zp)
        y = tensor(f"y{i}", (1, h, w, oc), S.TensorType.INT8, scale, zp)
        op = S.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, [x, wt, bt], [y]
        opt = S.Conv2DOptionsT()
        opt.padding = S.Padding.SAME if padding == "SAME" else S.Padding.VALID
        opt.strideH = opt.strideW = stride
        opt.dilationHFactor = opt.dilationWFactor = 1
        opt.fusedActivationFunction = S.ActivationFunctionType.RELU if relu else S.ActivationFunctionType.NONE
        op.builtinOptionsType, op.builtinOptions = S.BuiltinOptions.Conv2DOptions, opt
        sg.operators.append(op)
        x, c = y, oc
    sg.outputs = [x]
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path


# 40 pixels (one past a whole tile); K = 8 (tiles unrolled), 80 (the loop of 4 groups a turn)
# and 108 (3x3 windows with padding, stride 2: 12 pixels); odd channel counts and ReLU with an
# output zero point above -128 take the C loops around the same tiles
CHAIN_A = ((5, 8, 8), [(16, 1, 1, 1, "VALID", False), (80, 1, 1, 1, "VALID", False),
                       (12, 1, 1, 1, "VALID", True), (6, 3, 3, 2, "SAME", False)])
# 20 pixels (two past a whole tile); odd channels, K = 36 and 8
CHAIN_B = ((4, 5, 4), [(8, 3, 3, 1, "SAME", False), (7, 1, 1, 1, "VALID", False),
                       (8, 1, 1, 1, "VALID", True)])


def _random_chain(seed: int):
    """Random shapes: pixels, K (a multiple of 4) and channel counts, odd and even."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(2, 8)), int(rng.integers(2, 8)), 4 * int(rng.integers(1, 25)))
    convs = [(int(rng.integers(1, 40)) * (1 if i % 2 else 2), 1, 1, 1, "VALID", bool(rng.integers(0, 2)))
             for i in range(2)]
    convs.append((4 * int(rng.integers(1, 20)), 1, 1, 1, "VALID", False))
    return shape, convs


BLOCKS = {"im2col": "int16", "block": "plane"}


@pytest.mark.parametrize("target,knobs", [
    ("host", BLOCKS),                                        # the C tiles, sanitized
    ("host", {"im2col": "int16", "block": "fit", "weights": "int16"}),
    ("mps2-an386", None),                                    # the M4 default: 'fit'
    ("mps2-an386", {"block": "plane"}),
    ("mps2-an386", {"block": "tile", "weights": "int16"}),   # one tile a block, weights in flash
    ("mps2-an386", {"block": "plane", "weights": "int16"}),
    ("mps2-an500", {"block": "plane"}),                      # Cortex-M7
    ("mps2-an385", BLOCKS),                                  # Cortex-M3: C loops, no DSP
])
@pytest.mark.parametrize("chain", ["a", "b", "random1", "random2"])
def test_blocks_match_litert(chain, target, knobs, tmp_path):
    if target != "host":
        _need_arm()
    shape, convs = {"a": CHAIN_A, "b": CHAIN_B}.get(chain) or _random_chain(int(chain[-1]))
    model = conv_chain_model(tmp_path / f"chain_{chain}.tflite", shape, convs, seed=len(chain))
    # a first layer of 4 channels would take the band kernel (test_first_layer.py) on the DSP cores
    report = verify(model, target, work_dir=tmp_path / "v",
                    knobs=knobs and {"CONV_2D": {"few_channels": "im2col", **knobs}}, sanitize=target == "host")
    assert report.ok, report.summary()
    src = (tmp_path / "v" / "lib" / "src" / f"chain_{chain}_kernels.c").read_text()
    if knobs and knobs.get("block") == "plane":  # every layer of whole-word taps in blocks
        aligned = [c for c in [shape[2], *(oc for oc, *_ in convs[:-1])]]
        assert src.count("tinycc_conv_s16_block_out(") >= sum(1 for c in aligned if c % 4 == 0)
        assert "tinycc_conv_s16_2x3_out(" not in src or any(c % 4 for c in aligned)


def test_fit_grows_blocks_without_growing_the_arena(tmp_path):
    """'fit' (the M4 default) plans the least scratch first, then lowers the layers again with
    blocks in the bytes their step leaves free: the arena is the one-tile form's, and the
    layers where the room is take blocks of more than one tile."""
    shape, convs = CHAIN_A
    model = conv_chain_model(tmp_path / "chain.tflite", shape, convs)
    fit = compile_model(model, "mps2-an386", tmp_path / "fit", measure_code=False)
    tile = compile_model(model, "mps2-an386", tmp_path / "tile", measure_code=False,
                         knobs={"CONV_2D": {"block": "tile"}})
    assert fit.arena_bytes == tile.arena_bytes
    src = (fit.out_dir / "src" / "chain_kernels.c").read_text()
    assert "tinycc_conv_s16_block_out(" in src and "blocks of" in src
    assert "tinycc_conv_s16_block_out(" not in (tile.out_dir / "src" / "chain_kernels.c").read_text()
    # each grown step's scratch fits in what its step left
    from tinycc.plan import step_slack
    base = {s.name: s.scratch_bytes for s in tile.library.plan.steps}
    slack = dict(zip((s.name for s in tile.library.plan.steps), step_slack(tile.library.plan)))
    for s in fit.library.plan.steps:
        assert s.scratch_bytes <= base[s.name] + slack[s.name] + 16


def test_wide_pair_weights_feed_the_int16_tiles():
    """wide_pair_weights (the weights knob int16) is pair_weights with each 4-value group in
    SXTB16 order (v0 v2 v1 v3), as the windows are: the dot products of each pair's rows."""
    from tinycc.kernels.gemm import wide_pair_weights
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (5, 1, 1, 12)).astype(np.int8)
    x = rng.integers(-128, 128, 12).astype(np.int64)
    xs = x.reshape(3, 4)[:, [0, 2, 1, 3]]  # the windows' order
    stream = wide_pair_weights(w).astype(np.int64).reshape(3, 3, 2, 4)  # pair, group, row, value
    assert wide_pair_weights(w).dtype == np.int16
    got = np.einsum("pgrv,gv->pr", stream, xs).reshape(-1)
    want = w.reshape(5, -1).astype(np.int64) @ x
    assert got.tolist() == [*want.tolist(), want[4]]


# --- requantization without the sign correction (modes 7 and 8) -----------------------------

def test_tile_mode_drops_the_sign_correction_only_under_a_clamp():
    """Modes 7 (doubled windows) and 8 for ReLU-like clamps (lo >= zp) with non-negative
    multipliers; a layer without activation or with a negative multiplier keeps 6 or 4, and
    single rounding (mode 5) has no correction to drop."""
    def rq(zp, lo, hi=127, rounding="double"):
        return Requant(True, 0, 0, zp, lo, hi, rounding, True, small_accumulator=True, rounding_constants=True)
    assert tile_mode(rq(-128, -128), True) == 8 and tile_mode(rq(-128, -128), True, doubled=True) == 7
    assert tile_mode(rq(-5, -5, 120), True, doubled=True) == 7
    assert tile_mode(rq(-5, 0), True) == 8  # floor above the zero point
    assert tile_mode(rq(-5, -128), True) == 4 and tile_mode(rq(-5, -128), True, doubled=True) == 6
    assert tile_mode(rq(-128, -128), False) == 4 and tile_mode(rq(-128, -128), False, doubled=True) == 6
    assert tile_mode(rq(-128, -128, rounding="single"), True) == 5


def test_requant_fast_without_sign_correction_on_host(tmp_path):
    """tinycc_requant_fast's modes 7 and 8 (6 and 4 without the sign correction) against TFLite's
    double rounding (tinycc.quant) where the clamp floor is at or above the zero point, on
    accumulators around 0 (products that round to 0, negative ties) and random ones; without
    activation (the last cases) they would be wrong on a negative tie, where 4 and 6 are right."""
    rng = np.random.default_rng(11)
    cases = []  # acc, m, shift, zp, lo, hi, mode
    for i in range(6000):
        m = [0, 1 << 30, (1 << 31) - 1, int(rng.integers(1 << 30, 1 << 31))][i % 4]
        zp = int(rng.integers(-128, 128))
        lo = int(rng.integers(zp, 128)) if i % 3 else zp
        acc = [int(rng.integers(-64, 64)), int(rng.integers(-(1 << 20), 1 << 20)),
               int(rng.integers(-(1 << 29), 1 << 29))][i % 3]
        cases.append((acc, m, -int(rng.integers(1, 20)), zp, lo, int(rng.integers(lo, 128)), 7 + i % 2))
    for acc in (-1, -2, -3, -(1 << 10), 1, 0):
        for mode in (7, 8):
            cases.append((acc, 1 << 30, -1, -128, -128, 127, mode))
            cases.append((acc, (1 << 31) - 1, -1, 3, 3, 127, mode))
    # no activation: SRDHM(-1, 2^31 - 1) = -1, a tie at e = 1 that rounds away from zero to -1
    tie = (-1, (1 << 31) - 1, -1, 0, -128, 127)
    cases += [(*tie, 4), (*tie, 6), (*tie, 8), (*tie, 7)]
    rows = ",\n".join("{%d, %d, %d, %d, %d, %d, %d}" % c for c in cases)
    (tmp_path / "r.c").write_text(f"""#include <stdio.h>
#include "tinycc_nn.h"
static const int32_t cases[][7] = {{ {rows} }};
int main(void) {{
    unsigned i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {{
        const int32_t *c = cases[i], e = -c[2], r = (1 << (e - 1)) + c[3] * (1 << e);
        const int32_t doubled = c[6] == 6 || c[6] == 7; /* modes 6, 7: the kernel's acc is 2 acc */
        printf("%d\\n", (int)tinycc_requant_fast(doubled ? 2 * c[0] : c[0], c[1], e, r, c[6], c[4], c[5]));
    }}
    return 0;
}}
""")
    got = _cbuild.run_runtime_program(tmp_path / "r.c")
    want = [min(hi, max(lo, quant.mul_by_quantized_multiplier(acc, m, s, "double") + zp))
            for acc, m, s, zp, lo, hi, _ in cases]
    assert want[-1] == -1
    assert got[:-2] == want[:-2]  # 7 and 8 under a clamp, 4 and 6 without one
    assert got[-2:] == [0, 0]  # 8 and 7 without a clamp: wrong, hence tile_mode


# ReLU layers with output zero point -128 (the full int8 range: the asm requantization, modes 8
# for K >= 2 oc and 7 for doubled windows), a ReLU layer above -128 (the C requantization,
# mode 8), and a first layer without activation whose small weights and multipliers below 1/2
# give many negative rounding ties (mode 6: the correction stays)
CHAIN_RELU = ((4, 5, 8), [(16, 1, 1, 1, "VALID", False, {"ties": True, "wmax": 3}),
                          (8, 1, 1, 1, "VALID", True, {"zp": -128}),
                          (24, 1, 1, 1, "VALID", True, {"zp": -128}),
                          (8, 3, 3, 1, "SAME", True, {"zp": -20}),
                          (12, 1, 1, 1, "VALID", False)])


@pytest.mark.parametrize("target,knobs", [
    ("host", {"im2col": "int16", "block": "plane"}),
    ("host", {"im2col": "int16", "block": "tile"}),
    ("mps2-an386", None),
    ("mps2-an386", {"block": "plane"}),
    ("mps2-an386", {"block": "tile"}),
    ("mps2-an500", {"block": "plane"}),
    ("mps2-an385", {"im2col": "int16", "block": "plane"}),
])
def test_relu_layers_drop_the_sign_correction(target, knobs, tmp_path):
    if target != "host":
        _need_arm()
    shape, convs = CHAIN_RELU
    model = conv_chain_model(tmp_path / "relu.tflite", shape, convs, seed=5)
    report = verify(model, target, work_dir=tmp_path / "v",
                    knobs={"CONV_2D": {"few_channels": "im2col", **(knobs or {})}}, sanitize=target == "host")
    assert report.ok, report.summary()
    import re
    src = (tmp_path / "v" / "lib" / "src" / "relu_kernels.c").read_text()
    calls = re.findall(r"tinycc_conv_s16_(?:block|2x3)_out\(.*?shift\[0\]\)\), (-?\d+), (-?\d+), (-?\d+), (-?\d+)", src)
    modes = {int(m) for m, *_ in calls}
    assert calls and modes <= {4, 6, 7, 8}, calls
    for mode, zp, lo, hi in calls:  # without the correction exactly where the clamp covers it
        assert (int(mode) in (7, 8)) == (int(lo) >= int(zp)), (mode, zp, lo, hi)
    assert {6, 7, 8} <= modes
    assert any(int(m) in (7, 8) and (lo, hi) == ("-128", "127") for m, _, lo, hi in calls)  # the asm form
