"""ONNX models (tests/models/onnx/, made by examples/make_onnx_zoo.py from PyTorch modules
quantized by onnxruntime's quantize_static, QDQ and QOperator): every model compiled and
compared with onnxruntime on the host, float32 output bit for bit, on random inputs, inputs on
the quantization grid, exact QuantizeLinear ties and saturating values; one model in QEMU; the
C warning-free and free of float arithmetic; unsupported operators and damaged files refused
by name. Float32 models (*_float.onnx, made by examples/make_onnx_float_zoo.py) compiled onto
the float32 kernels and compared with onnxruntime within ONNX_FLOAT_TOLERANCE, on the host and
in QEMU. The C emulation of onnxruntime's float32 arithmetic is checked against
the host FPU by tests/c/ort_f32_emulation.c.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper as oh

from tinycc import compile_model
from tinycc.errors import ModelError, UnsupportedOpError
from tinycc.frontend import load_model
from tinycc.lower.float32 import is_float
from tinycc.toolchain import C_FLAGS
from tinycc.verify import ONNX_FLOAT_TOLERANCE, model_inputs, onnxruntime_outputs, verify

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "tests" / "models" / "onnx"
ZOO = sorted(p.stem for p in MODELS.glob("*.onnx") if not p.stem.endswith("_float"))
FLOAT_ZOO = sorted(p.stem for p in MODELS.glob("*_float.onnx"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _inputs(graph) -> list[np.ndarray]:
    """verify()'s inputs (random values and points of the input's quantization grid, then
    saturating ones) plus exact ties of QuantizeLinear (x / scale = k + 1/2) and a mixture."""
    xs = model_inputs(graph, count_random=4, seed=5)
    t = graph.tensor(graph.inputs[0])
    q = next(graph.tensor(op.outputs[0]) for op in graph.consumers(t.index) if op.kind == "QUANTIZE")
    scale, zp = q.quant.scalar()
    rng = np.random.default_rng(11)
    k = rng.integers(-140, 140, size=t.shape)
    xs.append(((k + 0.5) * np.float64(scale)).astype(np.float32))
    xs.append(np.where(rng.random(t.shape) < 0.5, xs[0], xs[-1]).astype(np.float32))
    return xs


def test_zoo_is_present_and_from_pytorch():
    assert len(ZOO) >= 5, "run examples/make_onnx_zoo.py"
    producers = {onnx.load(MODELS / f"{n}.onnx").producer_name for n in ZOO}
    assert "onnx.quantize" in producers or "pytorch" in producers
    ops = set()
    for n in ZOO:
        ops |= {node.op_type for node in onnx.load(MODELS / f"{n}.onnx").graph.node}
    assert {"Conv", "Gemm", "MatMul", "QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd",
            "QLinearGlobalAveragePool", "QLinearConcat", "QLinearLeakyRelu", "Softmax", "MaxPool",
            "QLinearAveragePool", "AveragePool", "QLinearMul", "Mul", "GlobalAveragePool", "Add",
            "Sigmoid", "QLinearSigmoid"} <= ops


@pytest.mark.parametrize("name", ZOO)
def test_host_bit_exact_with_onnxruntime(name, tmp_path):
    path = MODELS / f"{name}.onnx"
    inputs = _inputs(load_model(path))
    report = verify(path, "host", inputs=inputs, work_dir=tmp_path)
    assert report.rounding == "onnxruntime" and "onnxruntime" in report.reference
    assert report.tolerance is None and report.ok, report.summary()  # float32 outputs bit for bit


@pytest.mark.parametrize("name", ["cnn_qdq", "gated_qop"])
def test_sanitizers_clean(name, tmp_path):
    """The float32 emulation's shifts and 64-bit arithmetic under ASan and UBSan, in an arena
    of exactly the planned size."""
    path = MODELS / f"{name}.onnx"
    report = verify(path, "host", inputs=model_inputs(load_model(path), count_random=3), sanitize=True,
                    work_dir=tmp_path)
    assert report.ok and "UBSan" in report.ran_on, report.summary()


def test_qemu_bit_exact_with_onnxruntime(tmp_path):
    path = MODELS / "cnn_qdq.onnx"
    report = verify(path, "mps2-an386", inputs=_inputs(load_model(path))[:4], work_dir=tmp_path)
    assert report.ok and report.ran_on.startswith("mps2-an386"), report.summary()


def test_qdq_models_need_the_uint8_kernels(monkeypatch, tmp_path):
    """onnxruntime runs a QDQ model's Add and AveragePool as uint8 on x86: computed with the
    int8 kernels' rounding instead, cnn_qdq differs from onnxruntime (by one step)."""
    import tinycc.lower.onnxruntime as lowering
    path = MODELS / "cnn_qdq.onnx"
    xs = model_inputs(load_model(path), count_random=40, seed=2)
    monkeypatch.setattr(lowering, "_offset", lambda op: 0)
    report = verify(path, "host", inputs=xs, work_dir=tmp_path)
    assert not report.ok and max(report.max_abs_diff) < 0.003  # one output step (0.0023)


def test_default_session_agrees_within_one_step():
    """With onnxruntime's default session, the common-subexpression pass shares the DQ of a
    tensor with several consumers, and onnxruntime runs those consumers in float: tinycc's
    integer result may then differ by one output step (README, ONNX). Measured here."""
    path = MODELS / "cnn_qdq.onnx"
    graph = load_model(path)
    xs = model_inputs(graph, count_random=12, seed=9)
    fused, default = onnxruntime_outputs(path, xs), onnxruntime_outputs(path, xs, fuse_all=False)
    step = graph.tensor(graph.operators[-1].inputs[0]).quant.scalar()[0]
    worst = max(float(np.abs(a - b).max()) for a, b in zip(fused, default))
    assert worst <= float(step) * 1.0001


@pytest.fixture(scope="module")
def cnn_library(tmp_path_factory):
    return compile_model(MODELS / "cnn_qdq.onnx", "nrf52840", tmp_path_factory.mktemp("cnn") / "cnn")


@pytest.fixture(scope="module")
def libraries(cnn_library, tmp_path_factory):
    """Between them every ONNX kernel: QuantizeLinear, transposes, convolutions, pools, Add,
    dense layers, DequantizeLinear (cnn_qdq); Mul, Add (gated_qop); Softmax (mlp_qop); float32
    dilated convolution, Concat, AveragePool, Mul, Sub, Tanh, MatMul (concat_float)."""
    others = [compile_model(MODELS / f"{n}.onnx", "host", tmp_path_factory.mktemp(n) / n, measure_code=False)
              for n in ("gated_qop", "mlp_qop", "concat_float")]
    return [cnn_library, *others]


@pytest.mark.parametrize("cc", ["gcc", "clang", "arm-none-eabi-gcc"])
def test_c_is_warning_free(libraries, cc, tmp_path):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed (scripts/setup.sh installs it)")
    flags = ["-mcpu=cortex-m4", "-mthumb"] if cc.startswith("arm") else []
    for library in libraries:
        lib = library.out_dir
        for src in sorted((lib / "src").glob("*.c")):
            cmd = [cc, "-O2", *flags, *STRICT, "-I", str(lib / "include"), "-c", str(src), "-o", str(tmp_path / "x.o")]
            res = subprocess.run(cmd, capture_output=True, text=True)
            assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"


def test_no_float_arithmetic(cnn_library, tmp_path):
    """The float32 input and output pass as bit patterns: built for a Cortex-M0 (no FPU), the
    library calls none of the compiler's soft-float routines."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    lib = cnn_library.out_dir
    undefined = set()
    for src in sorted((lib / "src").glob("*.c")):
        obj = tmp_path / (src.stem + ".o")
        subprocess.run(["arm-none-eabi-gcc", "-O2", "-mcpu=cortex-m0", "-mthumb", *STRICT, "-I",
                        str(lib / "include"), "-c", str(src), "-o", str(obj)], check=True)
        nm = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True, text=True, check=True)
        undefined |= {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
    soft_float = {s for s in undefined if s.startswith(("__aeabi_f", "__aeabi_d", "__aeabi_i2f", "__aeabi_ui2f"))}
    assert not soft_float, soft_float
    header = (lib / "include" / f"{cnn_library.library.name}.h").read_text()
    assert "const float *input" in header and "float *output" in header


def test_c_emulation_matches_the_fpu(tmp_path):
    exe = tmp_path / "ort_f32"
    subprocess.run(["gcc", *C_FLAGS, "-pedantic", "-O2", "-I", str(REPO / "runtime" / "kernels"),
                    str(REPO / "tests" / "c" / "ort_f32_emulation.c"), "-o", str(exe), "-lm"], check=True)
    out = subprocess.run([exe], capture_output=True, text=True)
    assert out.returncode == 0 and "bad 0" in out.stdout, out.stdout


# --- refusals -------------------------------------------------------------------------------

def _qdq_model(path: Path, middle: str) -> Path:
    """input -> Q -> DQ -> <middle> -> Q -> DQ -> output, int8, scale 0.05."""
    inits = [oh.make_tensor("s", TP.FLOAT, [], [0.05]), oh.make_tensor("z", TP.INT8, [], [3])]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             oh.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             oh.make_node(middle, ["xf"], ["yf"]),
             oh.make_node("QuantizeLinear", ["yf", "s", "z"], ["yq"]),
             oh.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [1, 8])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, [1, 8])], inits)
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), path)
    return path


def test_unsqueeze_squeeze_and_requantization(tmp_path):
    """Unsqueeze -> Squeeze (bytes renamed) and a DQ -> Q pair changing the quantization (a
    table), hand-built, against onnxruntime."""
    inits = [oh.make_tensor("s", TP.FLOAT, [], [0.05]), oh.make_tensor("z", TP.INT8, [], [3]),
             oh.make_tensor("s2", TP.FLOAT, [], [0.031]), oh.make_tensor("z2", TP.INT8, [], [-7]),
             oh.make_tensor("axes", TP.INT64, [1], [1])]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             oh.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             oh.make_node("Unsqueeze", ["xf", "axes"], ["u"]),
             oh.make_node("QuantizeLinear", ["u", "s", "z"], ["uq"]),
             oh.make_node("DequantizeLinear", ["uq", "s", "z"], ["uf"]),
             oh.make_node("Squeeze", ["uf", "axes"], ["v"]),
             oh.make_node("QuantizeLinear", ["v", "s", "z"], ["vq"]),
             oh.make_node("DequantizeLinear", ["vq", "s", "z"], ["vf"]),
             oh.make_node("QuantizeLinear", ["vf", "s2", "z2"], ["yq"]),
             oh.make_node("DequantizeLinear", ["yq", "s2", "z2"], ["y"])]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [1, 300])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, [1, 300])], inits)
    path = tmp_path / "rename.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), path)
    kinds = [op.kind for op in load_model(path).operators]
    assert kinds == ["QUANTIZE", "RESHAPE", "RESHAPE", "QUANTIZE", "DEQUANTIZE"]
    every = (np.arange(-150, 150, dtype=np.float32) * np.float32(0.05)).reshape(1, 300)
    report = verify(path, "host", inputs=[every, every * np.float32(0.7)], work_dir=tmp_path / "w")
    assert report.ok, report.summary()


def test_image_output_in_onnx_order(tmp_path):
    """A 4-D output comes back NCHW, as onnxruntime returns it (a transpose before the
    DequantizeLinear): MaxPool with asymmetric SAME_UPPER padding on a 2x5x7 image."""
    inits = [oh.make_tensor("s", TP.FLOAT, [], [0.04]), oh.make_tensor("z", TP.INT8, [], [-9])]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             oh.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             oh.make_node("MaxPool", ["xf"], ["yf"], kernel_shape=[2, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
             oh.make_node("QuantizeLinear", ["yf", "s", "z"], ["yq"]),
             oh.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [1, 2, 5, 7])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, [1, 2, 3, 4])], inits)
    path = tmp_path / "pool.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), path)
    xs = model_inputs(load_model(path), count_random=4, seed=1)
    report = verify(path, "host", inputs=xs, work_dir=tmp_path / "w")
    assert report.ok, report.summary()


@pytest.mark.parametrize("scale,zp", [(0.05, 3), (0.013, -40)])
def test_tanh_every_value(scale, zp, tmp_path):
    """onnxruntime's tanh is its own polynomial (fused multiply-adds), run in float between
    DQ and Q: every int8 input."""
    inits = [oh.make_tensor("s", TP.FLOAT, [], [scale]), oh.make_tensor("z", TP.INT8, [], [zp]),
             oh.make_tensor("ys", TP.FLOAT, [], [1.0 / 128]), oh.make_tensor("yz", TP.INT8, [], [0])]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             oh.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]), oh.make_node("Tanh", ["xf"], ["yf"]),
             oh.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["yq"]),
             oh.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [1, 256])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, [1, 256])], inits)
    path = tmp_path / "tanh.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), path)
    every = ((np.arange(-128, 128) - zp) * np.float32(scale)).astype(np.float32).reshape(1, 256)
    report = verify(path, "host", inputs=[every], work_dir=tmp_path / "w")
    assert report.ok, report.summary()


@pytest.mark.parametrize("form", ["QLinearSigmoid", "DQ-Sigmoid-Q"])
def test_sigmoid_every_value(form, tmp_path):
    """onnxruntime's logistic is its own polynomial (fused multiply-adds): every int8 input."""
    inits = [oh.make_tensor("s", TP.FLOAT, [], [0.06]), oh.make_tensor("z", TP.INT8, [], [5]),
             oh.make_tensor("ys", TP.FLOAT, [], [1.0 / 256]), oh.make_tensor("yz", TP.INT8, [], [-128])]
    if form == "QLinearSigmoid":
        middle = [oh.make_node("QLinearSigmoid", ["xq", "s", "z", "ys", "yz"], ["yq"], domain="com.microsoft")]
    else:
        middle = [oh.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]), oh.make_node("Sigmoid", ["xf"], ["yf"]),
                  oh.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["yq"])]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]), *middle,
             oh.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [1, 256])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, [1, 256])], inits)
    path = tmp_path / "sigmoid.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid("com.microsoft", 1)],
                            ir_version=8), path)
    every = ((np.arange(-128, 128) - 5) * np.float32(0.06)).astype(np.float32).reshape(1, 256)
    report = verify(path, "host", inputs=[every], work_dir=tmp_path / "w")
    assert report.ok, report.summary()


@pytest.mark.parametrize("op,first", [("Add", False), ("Sub", True), ("Div", False), ("Div", True)])
def test_arithmetic_with_a_scalar_constant(op, first, tmp_path):
    """x op c and c op x with a quantized scalar constant, which onnxruntime runs in float
    (the constant's DequantizeLinear folded): every int8 input (c / 0 included)."""
    inits = [oh.make_tensor("s", TP.FLOAT, [], [0.05]), oh.make_tensor("z", TP.INT8, [], [3]),
             oh.make_tensor("ys", TP.FLOAT, [], [0.09]), oh.make_tensor("yz", TP.INT8, [], [-7]),
             oh.make_tensor("c", TP.FLOAT, [], [0.7]), oh.make_tensor("cs", TP.FLOAT, [], [0.01]),
             oh.make_tensor("cz", TP.INT8, [], [0])]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             oh.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             oh.make_node("QuantizeLinear", ["c", "cs", "cz"], ["cq"]),
             oh.make_node("DequantizeLinear", ["cq", "cs", "cz"], ["cf"]),
             oh.make_node(op, ["cf", "xf"] if first else ["xf", "cf"], ["yf"]),
             oh.make_node("QuantizeLinear", ["yf", "ys", "yz"], ["yq"]),
             oh.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [1, 256])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, [1, 256])], inits)
    path = tmp_path / "scalar.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), path)
    every = ((np.arange(-128, 128) - 3) * np.float32(0.05)).astype(np.float32).reshape(1, 256)
    report = verify(path, "host", inputs=[every], work_dir=tmp_path / "w")
    assert report.ok, report.summary()


def test_qlinear_softmax_saturates(tmp_path):
    """QLinearSoftmax with y_scale 1/256 and zero point -128: a dominant value gives
    round(256 * 1) - 128 = 128, which onnxruntime 1.31 saturates to 127 (older sources store
    the low byte, -128)."""
    inits = [oh.make_tensor("s", TP.FLOAT, [], [0.1]), oh.make_tensor("z", TP.INT8, [], [0]),
             oh.make_tensor("ys", TP.FLOAT, [], [1.0 / 256]), oh.make_tensor("yz", TP.INT8, [], [-128])]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             oh.make_node("QLinearSoftmax", ["xq", "s", "z", "ys", "yz"], ["yq"], domain="com.microsoft",
                          axis=-1, opset=13),
             oh.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [3, 10])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, [3, 10])], inits)
    path = tmp_path / "softmax.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid("com.microsoft", 1)],
                            ir_version=8), path)
    rng = np.random.default_rng(3)
    dominant = np.full((3, 10), -12.0, np.float32)
    dominant[:, 4] = 12.0
    xs = [dominant, rng.normal(0, 2, (3, 10)).astype(np.float32), rng.normal(0, 6, (3, 10)).astype(np.float32)]
    assert (onnxruntime_outputs(path, xs[:1])[0].reshape(3, 10)[:, 4] == np.float32(255 / 256)).all()
    report = verify(path, "host", inputs=xs, work_dir=tmp_path / "w")
    assert report.ok, report.summary()


def test_unsupported_op_named_with_index(tmp_path):
    path = _qdq_model(tmp_path / "sin.onnx", "Sin")
    with pytest.raises(UnsupportedOpError) as err:
        load_model(path)
    assert err.value.op_name == "Sin" and err.value.index == 2
    assert "Sin at index 2" in str(err.value)


def test_cli_refuses_and_writes_nothing(tmp_path):
    path = _qdq_model(tmp_path / "sin.onnx", "Sin")
    out = tmp_path / "lib"
    res = subprocess.run([sys.executable, "-m", "tinycc", "compile", str(path), "-t", "host", "-o", str(out)],
                         capture_output=True, text=True, cwd=REPO)
    assert res.returncode != 0 and "Sin" in res.stderr + res.stdout and "index 2" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr and not out.exists()


def _pool_model(path: Path, pool: str, out_scale: float) -> Path:
    inits = [oh.make_tensor("s", TP.FLOAT, [], [0.05]), oh.make_tensor("s2", TP.FLOAT, [], [out_scale]),
             oh.make_tensor("z", TP.INT8, [], [0])]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             oh.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             oh.make_node(pool, ["xf"], ["yf"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
             oh.make_node("QuantizeLinear", ["yf", "s2", "z"], ["yq"]),
             oh.make_node("DequantizeLinear", ["yq", "s2", "z"], ["y"])]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [1, 2, 5, 5])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, [1, 2, 3, 3])], inits)
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), path)
    return path


def test_max_pool_with_a_new_scale(tmp_path):
    """DQ -> MaxPool -> Q with another scale, which onnxruntime runs in float."""
    path = _pool_model(tmp_path / "pool.onnx", "MaxPool", 0.07)
    m = onnx.load(path)
    attrs = m.graph.node[2].attribute
    attrs.remove(next(a for a in attrs if a.name == "ceil_mode"))
    m.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 2
    m.graph.output[0].type.tensor_type.shape.dim[3].dim_value = 2
    onnx.save(m, path)
    report = verify(path, "host", inputs=model_inputs(load_model(path), count_random=4), work_dir=tmp_path)
    assert report.ok and [op.kind for op in load_model(path).operators][2:4] == ["MAX_POOL_2D", "QUANTIZE"]


def test_lowering_refusal_names_the_onnx_node(tmp_path):
    """A form the reader takes but no lowering does (a QLinearConv whose bias, with the input
    zero point folded in, overflows int32) names the ONNX op type and node index."""
    inits = [oh.make_tensor("s", TP.FLOAT, [], [0.05]), oh.make_tensor("z", TP.INT8, [], [-100]),
             oh.make_tensor("w", TP.INT8, [1, 1, 1, 1], [127]), oh.make_tensor("ws", TP.FLOAT, [], [0.01]),
             oh.make_tensor("wz", TP.INT8, [], [0]), oh.make_tensor("b", TP.INT32, [1], [2**31 - 100])]
    nodes = [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             oh.make_node("QLinearConv", ["xq", "s", "z", "w", "ws", "wz", "s", "z", "b"], ["yq"]),
             oh.make_node("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [1, 1, 3, 3])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, [1, 1, 3, 3])], inits)
    path = tmp_path / "conv.onnx"
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), path)
    with pytest.raises(UnsupportedOpError) as err:
        compile_model(path, "host", tmp_path / "lib", measure_code=False)
    assert (err.value.op_name, err.value.index) == ("QLinearConv", 1), str(err.value)
    assert "CONV_2D" in str(err.value) and "overflows" in str(err.value)
    assert not (tmp_path / "lib").exists()


def test_reader_refusal_names_the_onnx_node(tmp_path):
    path = _pool_model(tmp_path / "pool.onnx", "MaxPool", 0.07)
    with pytest.raises(UnsupportedOpError) as err:
        compile_model(path, "host", tmp_path / "lib", measure_code=False)
    assert (err.value.op_name, err.value.index) == ("MaxPool", 2) and "ceil_mode" in str(err.value)
    assert not (tmp_path / "lib").exists()


def _float_inputs(graph) -> list[np.ndarray]:
    """verify's inputs, then normal values of growing spread (to +-100)."""
    shape = graph.tensor(graph.inputs[0]).shape
    rng = np.random.default_rng(5)
    return model_inputs(graph) + [rng.normal(0, s, shape).astype(np.float32) for s in (0.1, 3, 30)]


def test_float_zoo_is_present():
    assert len(FLOAT_ZOO) >= 3, "run examples/make_onnx_float_zoo.py"
    ops = set()
    for n in FLOAT_ZOO:
        model = onnx.load(MODELS / f"{n}.onnx")
        assert not {node.op_type for node in model.graph.node} & {"QuantizeLinear", "DequantizeLinear"}
        ops |= {node.op_type for node in model.graph.node}
    assert {"Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh",
            "MaxPool", "AveragePool", "GlobalAveragePool", "Softmax", "Reshape", "Flatten", "Concat"} <= ops


@pytest.mark.parametrize("name", FLOAT_ZOO)
def test_float_host_within_bound_of_onnxruntime(name, tmp_path):
    path = MODELS / f"{name}.onnx"
    graph = load_model(path)
    x, y = graph.tensor(graph.inputs[0]), graph.tensor(graph.outputs[0])
    session = onnx.load(path).graph
    assert x.dtype == y.dtype == "float32" and x.quant is None
    assert list(x.shape) == [d.dim_value for d in session.input[0].type.tensor_type.shape.dim]  # NCHW
    assert list(y.shape) == [d.dim_value for d in session.output[0].type.tensor_type.shape.dim]
    assert all(t.dtype != "int8" for t in graph.tensors)
    assert any(op.kind in ("CONV_2D", "FULLY_CONNECTED") and is_float(graph, op) for op in graph.operators)
    report = verify(path, "host", inputs=_float_inputs(graph), work_dir=tmp_path)
    assert report.tolerance == ONNX_FLOAT_TOLERANCE and report.ok, report.summary()


def test_float_qemu_within_bound_of_onnxruntime(tmp_path):
    path = MODELS / "cnn_float.onnx"
    report = verify(path, "mps2-an386", inputs=_float_inputs(load_model(path))[:3], work_dir=tmp_path)
    assert report.ok and report.ran_on.startswith("mps2-an386"), report.summary()
    assert report.tolerance == ONNX_FLOAT_TOLERANCE


def _float_model(path: Path, nodes, inits) -> Path:
    graph = oh.make_graph(nodes, "g", [oh.make_tensor_value_info("x", TP.FLOAT, [1, 4, 5, 5])],
                          [oh.make_tensor_value_info("y", TP.FLOAT, None)], inits)
    onnx.save(oh.make_model(graph, opset_imports=[oh.make_opsetid("", 17)], ir_version=8), path)
    return path


@pytest.mark.parametrize("case", ["grouped", "clip", "broadcast", "erf"])
def test_float_model_unsupported_refused(case, tmp_path):
    """Float32 forms tinycc does not compile: named by operator and index."""
    relu = oh.make_node("Relu", ["x"], ["r"])
    if case == "grouped":  # group 2 of 4 channels: neither a plain nor a depthwise convolution
        w = oh.make_tensor("w", TP.FLOAT, [4, 2, 3, 3], np.ones(72, np.float32))
        nodes, inits, match = [relu, oh.make_node("Conv", ["r", "w"], ["y"], group=2)], [w], "Conv at index 1.*grouped"
    elif case == "clip":  # a clamp no float32 activation is
        lo, hi = (oh.make_tensor(n, TP.FLOAT, [], [v]) for n, v in (("lo", 0.0), ("hi", 4.0)))
        nodes, inits, match = [relu, oh.make_node("Clip", ["r", "lo", "hi"], ["y"])], [lo, hi], "Clip at index 1"
    elif case == "broadcast":  # a 4-D activation (NHWC inside) plus a 5x5 one
        w = oh.make_tensor("w", TP.FLOAT, [1, 4, 1, 1], np.ones(4, np.float32))
        nodes = [relu, oh.make_node("Conv", ["r", "w"], ["c"]), oh.make_node("Flatten", ["c"], ["f"], axis=3),
                 oh.make_node("Add", ["r", "f"], ["y"])]
        inits, match = [w], "Add at index 3.*broadcasting"
    else:
        nodes, inits, match = [relu, oh.make_node("Erf", ["r"], ["y"])], [], "Erf at index 1"
    path = _float_model(tmp_path / f"{case}.onnx", nodes, inits)
    with pytest.raises(UnsupportedOpError, match=match):
        load_model(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_file_refused(damage, tmp_path):
    data = (MODELS / "cnn_qdq.onnx").read_bytes()
    bad = {"truncated": data[: len(data) // 2], "garbage": bytes(range(256)) * 8, "empty": b""}[damage]
    path = tmp_path / "bad.onnx"
    path.write_bytes(bad)
    with pytest.raises(ModelError):
        load_model(path)
    res = subprocess.run([sys.executable, "-m", "tinycc", "compile", str(path), "-t", "host", "-o",
                          str(tmp_path / "lib")], capture_output=True, text=True, cwd=REPO)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert not (tmp_path / "lib").exists()
