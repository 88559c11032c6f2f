"""bool and int32 tensors: comparisons, logic, SELECT_V2, CAST, ARG_MAX / ARG_MIN, REDUCE_ALL /
REDUCE_ANY and the data operators (tests/models/logic/, made by examples/make_logic_zoo.py).

Every model is compiled and compared byte for byte with LiteRT's reference kernels
(BUILTIN_REF) on the host, on inputs with ties and equal values (whole numbers for float
models, a few distinct values for int8 ones); with TFLM (`--rounding double`) where TFLM has
the operators; two models with a bool and an int32 output in QEMU on a Cortex-M4. The
generated C is strict C99 with bool and int64 at the API, and unsupported forms are refused
by operator name and index.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from test_plan import check_plan
from tinycc import compile_model, toolchain
from tinycc.errors import UnsupportedOpError
from tinycc.frontend import load_model
from tinycc.lower import lower
from tinycc.verify import model_inputs, reference_outputs, verify

MODELS = Path(__file__).resolve().parent / "models" / "logic"
ZOO = sorted(p.stem for p in MODELS.glob("*.tflite"))
# TFLM has no REDUCE_ANY and no SELECT (version 1), its ARG_MAX / ARG_MIN write int32 only and
# its TRANSPOSE moves no bool, its GATHER no int32
NOT_IN_TFLM = {"reduce_bool", "argmin_int8", "argmax_float", "select_v1", "cast_float", "bool_layout", "int32_layout"}
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _inputs(name):
    """verify's inputs plus inputs with many equal values: few distinct int8 values, whole
    (and half) numbers for float32, so that comparisons meet equal sides and arg-max ties."""
    g = load_model(MODELS / f"{name}.tflite")
    t = g.tensor(g.inputs[0])
    rng = np.random.default_rng(5)
    xs = model_inputs(g)
    if t.dtype == "int8":
        xs += [rng.integers(-2, 3, t.shape).astype(np.int8), rng.integers(-128, 128, t.shape).astype(np.int8)]
    elif t.dtype == "float32":
        xs += [rng.integers(-2, 3, t.shape).astype(np.float32), (rng.integers(-6, 7, t.shape) / 2).astype(np.float32)]
    return xs


def test_logic_zoo_is_present():
    assert len(ZOO) >= 20, f"run examples/make_logic_zoo.py (found {ZOO})"
    kinds = {op.kind for n in ZOO for op in load_model(MODELS / f"{n}.tflite").operators}
    wanted = {"ARG_MAX", "ARG_MIN", "EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL",
              "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", "REDUCE_ALL", "REDUCE_ANY", "SELECT_V2", "CAST",
              "BROADCAST_TO", "FILL", "REVERSE_V2", "GATHER_ND", "EMBEDDING_LOOKUP", "DYNAMIC_UPDATE_SLICE"}
    assert wanted <= kinds, wanted - kinds


@pytest.mark.parametrize("name", ZOO)
def test_logic_model_matches_litert(name, tmp_path):
    xs = _inputs(name)
    report = verify(MODELS / f"{name}.tflite", "host", inputs=xs, work_dir=tmp_path)
    assert report.ok, report.summary()
    check_plan(report.compile.library)  # the arena plan, checked independently of the planner
    # the inputs exercise the model: its outputs are not all one value
    refs = np.concatenate(reference_outputs(MODELS / f"{name}.tflite", xs))
    assert len(np.unique(refs)) > 1, f"{name}: every output is {refs[0]}"


@pytest.mark.parametrize("name", [n for n in ZOO if n not in NOT_IN_TFLM])
def test_logic_model_matches_tflm(name, tmp_path):
    report = verify(MODELS / f"{name}.tflite", "host", rounding="double", inputs=_inputs(name), work_dir=tmp_path)
    assert report.ok, report.summary()


@pytest.mark.parametrize("name", ["argmax_int8", "compare_int8"])
def test_bool_and_int32_outputs_in_qemu(name, tmp_path):
    """int8 convolution -> ARG_MAX (int32 output) and int8 comparisons (bool output) on an M4."""
    report = verify(MODELS / f"{name}.tflite", "mps2-an386", inputs=_inputs(name), work_dir=tmp_path)
    assert report.ok and report.ran_on.startswith("mps2-an386"), report.summary()
    assert all(n > 0 for n in report.instructions)


def test_argmax_ties_keep_the_first_index(tmp_path):
    """ARG_MIN of an all-equal row is index 0, of a row whose minimum appears twice the first."""
    g = load_model(MODELS / "argmin_int8.tflite")
    x = np.full(g.tensor(g.inputs[0]).shape, 5, np.int8)
    x[0, 3, :] = -7
    x[0, 5, :] = -7
    report = verify(MODELS / "argmin_int8.tflite", "host", inputs=[x], work_dir=tmp_path)
    assert report.ok, report.summary()
    assert np.all(reference_outputs(MODELS / "argmin_int8.tflite", [x])[0] == 3)


@pytest.mark.parametrize("name, c_in, c_out", [("compare_int8", "int8_t", "bool"), ("argmin_int8", "int8_t", "int64_t"),
                                               ("reduce_bool", "bool", "bool"),
                                               ("embedding_lookup", "int32_t", "float")])
def test_api_types_and_strict_c(name, c_in, c_out, tmp_path):
    res = compile_model(MODELS / f"{name}.tflite", "host", tmp_path / name, measure_code=False)
    header = (res.out_dir / "include" / f"{name}.h").read_text()
    assert f"int {name}_run(const {c_in} *input, {c_out} *output, void *arena);" in header
    assert ("#include <stdbool.h>" in header) == ("bool" in (c_in, c_out))
    for cc in ("gcc", "clang"):
        cmd = [cc, "-O2", *STRICT, "-I", str(res.out_dir / "include"), "-c",
               *map(str, sorted((res.out_dir / "src").glob("*.c")))]
        run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 0, f"{cc}: {run.stderr}"


def test_constants_fold_at_import():
    """FILL of constants, ZEROS_LIKE and BROADCAST_ARGS leave no operator behind."""
    assert [op.kind for op in load_model(MODELS / "fill_zeros.tflite").operators] == ["MAXIMUM", "ADD"]
    assert [op.kind for op in load_model(MODELS / "broadcast_args.tflite").operators] == ["BROADCAST_TO"]
    assert "FILL" in [op.kind for op in load_model(MODELS / "fill.tflite").operators]  # its value is computed


def test_unsupported_forms_name_the_operator():
    g = load_model(MODELS / "argmax_int8.tflite")
    arg = next(op for op in g.operators if op.kind == "ARG_MAX")
    g.tensor(arg.inputs[1]).data = None  # an axis computed at run time
    with pytest.raises(UnsupportedOpError, match=rf"ARG_MAX at index {arg.index}.*axis"):
        lower(g, "m")
    g = load_model(MODELS / "gather_nd.tflite")
    op = g.operators[0]
    g.tensor(op.inputs[1]).data = np.full(g.tensor(op.inputs[1]).shape, 9, np.int32)
    with pytest.raises(UnsupportedOpError, match=r"GATHER_ND at index 0.*outside"):
        lower(g, "m")
    g = load_model(MODELS / "select_int8.tflite")
    sel = next(op for op in g.operators if op.kind == "SELECT_V2")
    t = g.tensor(sel.inputs[1])
    t.quant = type(t.quant)(t.quant.scale * 2, t.quant.zero_point)
    with pytest.raises(UnsupportedOpError, match=rf"SELECT_V2 at index {sel.index}.*quantization"):
        lower(g, "m")


@pytest.mark.parametrize("name", ["cast_float", "argmin_int8", "embedding_lookup", "reduce_bool"])
def test_sanitized_run(name, tmp_path):
    """ASan + UBSan in an arena of exactly the planned size (float -> int conversions, int64
    stores, ids as indices, bool loads)."""
    report = verify(MODELS / f"{name}.tflite", "host", sanitize=True, inputs=_inputs(name), work_dir=tmp_path)
    assert report.ok, report.summary()


def test_io_in_arena_with_bool_input_and_output(tmp_path):
    res = compile_model(MODELS / "reduce_bool.tflite", "host", tmp_path / "lib", io_in_arena=True, measure_code=False)
    xs = _inputs("reduce_bool")
    exe = toolchain.build_host(tmp_path / "lib", res.library.name, xs, tmp_path / "build", sanitize=True)
    outs = toolchain.run_host(exe).outputs
    for got, want in zip(outs, reference_outputs(MODELS / "reduce_bool.tflite", xs)):
        assert np.array_equal(np.frombuffer(got, bool), want)
    header = (tmp_path / "lib" / "include" / "reduce_bool.h").read_text()
    assert "static inline bool *reduce_bool_input(void *arena)" in header


def test_zeros_like_at_the_output_is_a_kernel():
    """The importer folds ZEROS_LIKE, except at the model's output, where a kernel must write it."""
    from tinycc.emit import generate_kernels_c
    from tinycc.frontend.fold import fold_constants
    from tinycc.ir import Graph, Operator, Tensor
    g = Graph("z", [Tensor(0, "x", (1, 5), "float32"), Tensor(1, "zeros", (1, 5), "float32")],
              [Operator(0, "ZEROS_LIKE", [0], [1])], [0], [1])
    fold_constants(g)
    assert [op.kind for op in g.operators] == ["ZEROS_LIKE"]
    (kernel,) = lower(g, "z")
    body = generate_kernels_c([kernel])[kernel.name][1]
    assert "output[" in body and "0.000000e+00f" in body


def test_int8_comparison_rounds_twice(tmp_path):
    """On scales where single and double rounding of the rescaled sides give other answers
    (compare_rounding_int8), LiteRT and TFLM both answer as double rounding does."""
    from tinycc import quant
    path = MODELS / "compare_rounding_int8.tflite"
    g = load_model(path)
    eq = next(op for op in g.operators if op.kind == "EQUAL")
    a, b = g.tensor(eq.inputs[0]), g.tensor(eq.inputs[1])
    # every int8 value against each of the constant's values, and the pairs found to disagree
    xs = [np.array([[-21, -21, -11, -11, -1, 0, 40, -90]], np.int8)] + \
        [np.full((1, 8), v, np.int8) for v in range(-128, 128)]

    def answers(rounding):
        def scaled(t, q):
            s, z = t.quant.scalar()
            m, shift = quant.quantize_multiplier(float(s), rounding)
            return quant.mul_by_quantized_multiplier((int(q) - z) * 256, m, shift, rounding)
        return [np.array([scaled(a, qa) == scaled(b, qb) for qa, qb in zip(x[0], b.data)] +
                         [scaled(a, qa) >= scaled(b, qb) for qa, qb in zip(x[0], b.data)]) for x in xs]
    single, double = answers("single"), answers("double")
    assert any(not np.array_equal(s, d) for s, d in zip(single, double)), "the case does not tell the roundings apart"
    for rounding in ("litert", "double"):
        ref = reference_outputs(path, xs, rounding)
        assert all(np.array_equal(r, d) for r, d in zip(ref, double))
        report = verify(path, "host", rounding=rounding, inputs=xs, work_dir=tmp_path / rounding)
        assert report.ok, report.summary()


def test_dynamic_update_slice_clamps_a_run_time_start(tmp_path):
    """The start row is the ARG_MAX of the row maxima: rows 4 and 5 do not leave room for the
    3-row update, and TFLite clamps the start to row 3."""
    path = MODELS / "dynamic_update_slice_runtime.tflite"
    xs = []
    for row in range(6):
        x = np.random.default_rng(row).uniform(-1, 1, (1, 6, 5)).astype(np.float32)
        x[0, row, 1] = 5.0
        xs.append(x)
    report = verify(path, "host", inputs=xs, work_dir=tmp_path)
    assert report.ok, report.summary()
    ref = reference_outputs(path, xs)
    for row in (4, 5):  # clamped: rows 3..5, columns 2..3 replaced
        got = ref[row].reshape(1, 6, 5)
        assert np.array_equal(got[0, 3:6, 2:4], xs[row][0, 0:3, 0:2] * -2.0)
