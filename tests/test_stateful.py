"""Stateful models (tests/models/stateful/, made by examples/make_stateful.py): a sequence of
runs with the state carried, compared byte for byte with LiteRT's reference kernels and with
TFLM invoked on the same sequence, on the host and in QEMU; `<name>_reset` restores the
initial behaviour; the state sits at the start of the arena and survives the rest of the arena
being overwritten between runs; stateless models keep their API and plans.
"""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinycc import compile_model, toolchain
from tinycc.errors import TinyccError, UnsupportedOpError
from tinycc.frontend import load_model
from tinycc.verify import reference_outputs, verify

MODELS = Path(__file__).resolve().parent / "models" / "stateful"
STATEFUL = sorted(p.stem for p in MODELS.glob("*.tflite"))
# TFLM's integer LSTM is another algorithm (the interpolated-table int16 sigmoid and tanh,
# other multipliers): it differs from LiteRT's by 1 on some outputs; --rounding double follows it
NOT_TFLM: set[str] = set()
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _sequence(path, n=6, seed=3):
    """Random inputs, then the saturating corners (gates driven to their limits)."""
    g = load_model(path)
    shape = g.tensor(g.inputs[0]).shape
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, shape, dtype=np.int8) for _ in range(n - 2)] + \
        [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]


def test_models_are_present():
    assert {"streaming_var", "svdf", "lstm"} <= set(STATEFUL), "run examples/make_stateful.py"


@pytest.mark.parametrize("name, rounding", [(n, r) for n in STATEFUL for r in ("litert", "double")
                                            if not (r == "double" and n in NOT_TFLM)])
def test_sequence_on_host_matches_reference(name, rounding, tmp_path):
    """litert: LiteRT BUILTIN_REF; double: TFLM. One interpreter invoked on the sequence."""
    path = MODELS / f"{name}.tflite"
    report = verify(path, "host", rounding=rounding, inputs=_sequence(path, n=24), work_dir=tmp_path)
    assert report.ok, report.summary()


@pytest.mark.parametrize("name, rounding", [(n, r) for n in STATEFUL for r in ("litert", "double")
                                            if not (r == "double" and n in NOT_TFLM)])
def test_sequence_in_qemu_matches_reference(name, rounding, tmp_path):
    path = MODELS / f"{name}.tflite"
    report = verify(path, "mps2-an386", rounding=rounding, inputs=_sequence(path), work_dir=tmp_path)
    assert report.ok, report.summary()
    assert report.ran_on.startswith("mps2-an386")


def _shared_library(lib_dir: Path, name: str):
    so = lib_dir / f"lib{name}.so"
    subprocess.run(["gcc", *STRICT, "-O1", "-shared", "-fPIC", "-I", str(lib_dir / "include"),
                    *map(str, sorted((lib_dir / "src").glob("*.c"))), "-o", str(so)], check=True)
    return ctypes.CDLL(str(so))


@pytest.mark.parametrize("name", STATEFUL)
def test_reset_restores_and_only_the_state_is_kept(name, tmp_path):
    """run the sequence, reset, run it again: the same outputs, equal to the reference's. Between
    runs every arena byte after the state is overwritten (a firmware reusing it)."""
    path = MODELS / f"{name}.tflite"
    res = compile_model(path, "host", tmp_path / "lib", measure_code=False)
    plan, lib = res.library.plan, res.library
    assert plan.state_bytes > 0 and plan.state_bytes % 16 == 0
    state = [t.index for t in lib.graph.state]
    for b in plan.buffers:  # the state is at the start, and nothing else is there
        if b.home == "arena" and b.first <= b.last:
            assert b.offset >= plan.state_bytes
    assert all(plan.location[t][0] == "state" and plan.location[t][1] < plan.state_bytes for t in state)
    header = (tmp_path / "lib" / "include" / f"{name}.h").read_text()
    assert f"#define {name.upper()}_STATEFUL 1" in header
    assert f"#define {name.upper()}_STATE_SIZE {plan.state_bytes}" in header
    so = _shared_library(tmp_path / "lib", name)
    xs = _sequence(path)
    want = reference_outputs(path, xs)
    arena = (ctypes.c_int8 * (plan.arena_size + 16))()
    base = (ctypes.addressof(arena) + 15) // 16 * 16
    out = (ctypes.c_int8 * lib.output.nbytes)()
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(2):
        getattr(so, f"{name}_reset")(ctypes.c_void_p(base))
        got = []
        for x in xs:
            rc = getattr(so, f"{name}_run")(x.ctypes.data_as(ctypes.c_void_p), out, ctypes.c_void_p(base))
            assert rc == 0
            got.append(np.frombuffer(bytes(out), np.int8).copy())
            junk = rng.integers(0, 256, plan.arena_size - plan.state_bytes, dtype=np.uint8).tobytes()
            ctypes.memmove(base + plan.state_bytes, junk, len(junk))
        runs.append(got)
    for k, (a, b, ref) in enumerate(zip(runs[0], runs[1], want)):
        assert np.array_equal(a, ref), f"input {k}: {a} != reference {ref}"
        assert np.array_equal(a, b), f"input {k} after reset: {b} != {a}"
    # the state matters: the same input at another point of the sequence gives another output
    assert any(not np.array_equal(runs[0][0], g) for g in runs[0][1:])


@pytest.mark.parametrize("cc", ["gcc", "clang", "arm-none-eabi-gcc"])
def test_stateful_c_is_warning_free_and_integer(cc, tmp_path):
    import re
    import shutil
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    flags = ["-mcpu=cortex-m4", "-mthumb"] if cc.startswith("arm") else []
    for name in STATEFUL:
        res = compile_model(MODELS / f"{name}.tflite", "host", tmp_path / name, measure_code=False)
        kernels = re.sub(r"/\*.*?\*/", "", (res.out_dir / "src" / f"{name}_kernels.c").read_text(), flags=re.S)
        assert not re.search(r"\b(float|double)\b", kernels)
        for src in sorted((res.out_dir / "src").glob("*.c")):
            cmd = [cc, "-O2", *flags, *STRICT, "-I", str(res.out_dir / "include"), "-c", str(src),
                   "-o", str(tmp_path / "x.o")]
            out = subprocess.run(cmd, capture_output=True, text=True)
            assert out.returncode == 0, f"{name}: {' '.join(cmd)}\n{out.stderr}"


def test_lstm_tflm_and_litert_differ_and_each_is_matched(tmp_path):
    """The two references disagree on the LSTM sequence (so --rounding double is TFLM's own
    algorithm, not LiteRT's renamed): each library matches its own reference only."""
    path = MODELS / "lstm.tflite"
    xs = _sequence(path, n=24)
    tflm, litert = reference_outputs(path, xs, "double"), reference_outputs(path, xs, "litert")
    assert any(not np.array_equal(a, b) for a, b in zip(tflm, litert))
    for rounding, want in (("double", tflm), ("litert", litert)):
        res = compile_model(path, "host", tmp_path / rounding, rounding=rounding, measure_code=False)
        exe = toolchain.build_host(tmp_path / rounding, res.library.name, xs, tmp_path / f"b_{rounding}")
        got = [np.frombuffer(o, np.int8) for o in toolchain.run_host(exe).outputs]
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), rounding


def test_lstm_without_hidden_quantization_is_refused(tmp_path):
    def strip(m, S):
        m.subgraphs[0].operators[0].intermediates = []
    bad = _edited(MODELS / "lstm.tflite", tmp_path, strip)
    with pytest.raises(UnsupportedOpError, match=r"UNIDIRECTIONAL_SEQUENCE_LSTM at index 0.*intermediate"):
        compile_model(bad, "host", tmp_path / "out", measure_code=False)


@pytest.mark.parametrize("io_in_arena", [False, True], ids=["io-outside", "io-in-arena"])
@pytest.mark.parametrize("name", STATEFUL)
def test_plan_keeps_state_apart(name, io_in_arena, tmp_path):
    """test_plan's independent checker for the rest of the arena; the variable tensors side by
    side below everything else, each whole inside STATE_SIZE. A run under ASan and UBSan (an
    arena of exactly ARENA_SIZE bytes) matches the reference sequence."""
    from test_plan import check_plan
    path = MODELS / f"{name}.tflite"
    res = compile_model(path, "host", tmp_path / "lib", measure_code=False, io_in_arena=io_in_arena)
    lib, plan = res.library, res.library.plan
    check_plan(lib)
    spans = sorted((plan.location[t.index][1], plan.location[t.index][1] + t.nbytes) for t in lib.graph.state)
    assert spans[0][0] == 0 and spans[-1][1] <= plan.state_bytes
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    others = [plan.location[t.index][1] for t in lib.graph.tensors
              if not t.is_const and not t.is_variable and plan.location.get(t.index, ("",))[0] == "arena"]
    assert all(off >= plan.state_bytes for off in others)
    xs = _sequence(path)
    exe = toolchain.build_host(tmp_path / "lib", lib.name, xs, tmp_path / "build", sanitize=True)
    outs = toolchain.run_host(exe).outputs
    assert len(outs) == len(xs)
    for got, want in zip(outs, reference_outputs(path, xs)):
        assert np.array_equal(np.frombuffer(got, np.int8), want)


def test_stateless_models_keep_their_api(tmp_path):
    from conftest import EXAMPLES
    res = compile_model(EXAMPLES / "gesture.tflite", "host", tmp_path / "g", measure_code=False)
    assert res.library.plan.state_bytes == 0
    header = (tmp_path / "g" / "include" / "gesture.h").read_text()
    assert "STATEFUL" not in header and "_reset" not in header
    assert "_reset" not in (tmp_path / "g" / "src" / "gesture.c").read_text()


def _edited(path: Path, tmp_path: Path, edit) -> Path:
    from ai_edge_litert import schema_py_generated as S
    import flatbuffers
    m = S.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    edit(m, S)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    out = tmp_path / path.name
    out.write_bytes(bytes(b.Output()))
    return out


def test_svdf_without_variable_state_is_refused(tmp_path):
    def clear(m, S):
        for t in m.subgraphs[0].tensors:
            t.isVariable = False
    bad = _edited(MODELS / "svdf.tflite", tmp_path, clear)
    with pytest.raises(UnsupportedOpError, match=r"SVDF at index 0.*variable"):
        compile_model(bad, "host", tmp_path / "out", measure_code=False)
    assert not (tmp_path / "out").exists()


def test_init_subgraph_that_computes_is_refused(tmp_path):
    """CALL_ONCE's init subgraph is evaluated at compile time only when it assigns constants."""
    def compute(m, S):
        init = m.subgraphs[1]
        assign = next(op for op in init.operators if m.operatorCodes[op.opcodeIndex].builtinCode
                      == S.BuiltinOperator.ASSIGN_VARIABLE)
        init.operators.insert(0, _copy_op(S, m, assign.inputs[1]))
    bad = _edited(MODELS / "streaming_var.tflite", tmp_path, compute)
    with pytest.raises(UnsupportedOpError, match=r"CALL_ONCE at index 0.*init subgraph runs"):
        compile_model(bad, "host", tmp_path / "out", measure_code=False)
    assert not (tmp_path / "out").exists()


def _copy_op(S, m, tensor: int):
    """A RELU of the init value into itself: an operator the init subgraph would run."""
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.RELU
    code.version = 1
    m.operatorCodes.append(code)
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = len(m.operatorCodes) - 1, [tensor], [tensor]
    return op


def test_variable_without_init_is_refused(tmp_path):
    def drop_init(m, S):
        m.subgraphs[1].operators = []
    bad = _edited(MODELS / "streaming_var.tflite", tmp_path, drop_init)
    with pytest.raises(TinyccError, match=r"never initialised"):
        compile_model(bad, "host", tmp_path / "out", measure_code=False)


def test_profile_counts_every_kernel_of_an_operator(tmp_path):
    """SVDF lowers to two kernels per operator: the profiler reports each, and their sum is the
    instruction count of the whole run (the same as the harness's, give or take the hooks)."""
    from tinycc.profile import profile
    path = MODELS / "svdf.tflite"
    rep = profile(path, "mps2-an386", work_dir=tmp_path / "p")
    assert rep.exact
    assert [r.kernel for r in rep.layers] == ["svdf_svdf_0_state", "svdf_svdf_0", "svdf_svdf_1_state", "svdf_svdf_1"]
    assert all(r.instructions > 0 for r in rep.layers)
    whole = verify(path, "mps2-an386", inputs=[np.zeros((1, 16), np.int8)], work_dir=tmp_path / "v").instructions[0]
    assert abs(rep.total_instructions - whole) < 0.1 * whole


_GEMMLOWP_CHECK = r"""
#include <cstdio>
#include <cstdint>
#include "fixedpoint/fixedpoint.h"
extern "C" {
#include "tinycc_nn.h"
}
template <int IB> long tanh_mismatches() {
  long bad = 0;
  for (int v = -32768; v <= 32767; ++v) {
    bad += gemmlowp::tanh(gemmlowp::FixedPoint<std::int16_t, IB>::FromRaw((int16_t)v)).raw()
           != tinycc_tanh16((int16_t)v, IB);
  }
  return bad;
}
int main() {
  long bad = 0;
  for (int v = -32768; v <= 32767; ++v) {
    bad += gemmlowp::logistic(gemmlowp::FixedPoint<std::int16_t, 3>::FromRaw((int16_t)v)).raw()
           != tinycc_sigmoid16((int16_t)v);
  }
  printf("%ld %ld %ld %ld %ld %ld %ld %ld\n", bad, tanh_mismatches<0>(), tanh_mismatches<1>(),
         tanh_mismatches<2>(), tanh_mismatches<3>(), tanh_mismatches<4>(), tanh_mismatches<5>(),
         tanh_mismatches<6>());
  return 0;
}
"""


def test_int16_activations_equal_gemmlowp(tmp_path):
    """tinycc_sigmoid16 and tinycc_tanh16 (0 to 6 integer bits) against gemmlowp's own
    logistic and tanh on every int16 input. gemmlowp's header comes with TensorFlow (the
    examples extra); without it, or without g++, the check cannot run."""
    import importlib.util
    import shutil
    spec = importlib.util.find_spec("tensorflow")  # only its headers are used: no import
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("TensorFlow (pip install '.[examples]') provides gemmlowp's fixedpoint.h")
    header = Path(spec.submodule_search_locations[0]) / "include" / "external" / "gemmlowp" / "fixedpoint" / \
        "fixedpoint.h"
    if not header.is_file() or shutil.which("g++") is None:
        pytest.skip(f"needs g++ and {header}")
    src = tmp_path / "check.cc"
    src.write_text(_GEMMLOWP_CHECK)
    runtime = Path(__file__).resolve().parent.parent / "runtime" / "kernels"
    subprocess.run(["g++", "-O1", "-std=c++17", "-w", "-I", str(header.parent.parent), "-I", str(runtime),
                    str(src), "-o", str(tmp_path / "check")], check=True)
    out = subprocess.run([str(tmp_path / "check")], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0"] * 8, f"mismatches (sigmoid, tanh<0..6>): {out}"
