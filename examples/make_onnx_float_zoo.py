#!/usr/bin/env python3
"""Build the float32 models of the ONNX zoo (tests/models/onnx/*_float.onnx), which
tests/test_onnx.py compiles and compares with onnxruntime within verify.ONNX_FLOAT_TOLERANCE.

They are the float (unquantized) forms of make_onnx_zoo.py's PyTorch modules, written here
with the `onnx` helper API so that no torch is needed: the same layers as torch.onnx.export
writes them (Conv, Gemm with transB=1, MatMul, Relu, Clip, LeakyRelu, Sigmoid, Tanh, MaxPool,
AveragePool, GlobalAveragePool, Flatten, Reshape, Concat, Add, Sub, Mul, Softmax), plus a
dilated convolution and constant operands that broadcast. Weights: seeded uniform values at
PyTorch's default initialisation scale (1 / sqrt(fan_in)).

    python examples/make_onnx_float_zoo.py
"""

import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto as TP
from onnx import helper as oh

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models", "onnx")
SEED = 11
OPSET = 17


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.k = 0

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def weights(self, name: str, shape, fan_in: int) -> str:
        bound = 1.0 / np.sqrt(fan_in)
        return self.const(name, self.rng.uniform(-bound, bound, shape).astype(np.float32))

    def node(self, op: str, inputs, **attrs) -> str:
        self.k += 1
        out = f"{op.lower()}{self.k}"
        self.nodes.append(oh.make_node(op, list(inputs), [out], name=f"{op}_{self.k}", **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, group: int = 1, **attrs) -> str:
        fan_in = cin // group * k * k
        w = self.weights(f"conv{self.k + 1}.weight", (cout, cin // group, k, k), fan_in)
        b = self.weights(f"conv{self.k + 1}.bias", (cout,), fan_in)
        return self.node("Conv", [x, w, b], kernel_shape=[k, k], group=group, **attrs)

    def linear(self, x: str, cin: int, cout: int) -> str:
        w = self.weights(f"fc{self.k + 1}.weight", (cout, cin), cin)
        b = self.weights(f"fc{self.k + 1}.bias", (cout,), cin)
        return self.node("Gemm", [x, w, b], alpha=1.0, beta=1.0, transB=1)

    def model(self, name: str, x_shape, out: str, out_shape) -> onnx.ModelProto:
        assert self.nodes[-1].output[0] == out
        self.nodes[-1].output[0] = "output"
        graph = oh.make_graph(self.nodes, name, [oh.make_tensor_value_info("input", TP.FLOAT, x_shape)],
                              [oh.make_tensor_value_info("output", TP.FLOAT, out_shape)], self.inits)
        return oh.make_model(graph, opset_imports=[oh.make_opsetid("", OPSET)], ir_version=8,
                             producer_name="tinycc make_onnx_float_zoo")


def cnn_float() -> onnx.ModelProto:
    """SmallCnn: conv + relu, max pool, depthwise conv + clip(0, 6), pointwise conv with a
    residual add, strided conv + relu, average pool, global average pool, flatten, linear,
    softmax."""
    b = _Builder(SEED)
    x = b.node("Relu", [b.conv("input", 3, 8, 3, pads=[1, 1, 1, 1])])
    x = b.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    lo, hi = b.const("clip.min", np.float32(0.0)), b.const("clip.max", np.float32(6.0))
    y = b.node("Clip", [b.conv(x, 8, 8, 3, group=8, pads=[1, 1, 1, 1]), lo, hi])
    x = b.node("Add", [x, b.conv(y, 8, 8, 1)])
    x = b.node("Relu", [b.conv(x, 8, 16, 3, strides=[2, 2], pads=[1, 1, 1, 1])])
    x = b.node("GlobalAveragePool", [b.node("AveragePool", [x], kernel_shape=[2, 2], strides=[2, 2])])
    x = b.linear(b.node("Flatten", [x], axis=1), 16, 10)
    return b.model("cnn_float", [1, 3, 16, 16], b.node("Softmax", [x], axis=-1), [1, 10])


def concat_float() -> onnx.ModelProto:
    """ConcatNet with more geometry: a padded conv + relu and a dilated, asymmetrically padded
    conv + leaky relu concatenated on channels, a padded average pool (edge windows average
    fewer values), a per-channel scale ([C, 1, 1] broadcast) minus a scalar, tanh, flatten,
    matmul."""
    b = _Builder(SEED + 1)
    a = b.node("Relu", [b.conv("input", 4, 6, 3, pads=[1, 1, 1, 1])])
    c = b.node("LeakyRelu", [b.conv("input", 4, 5, 3, dilations=[2, 2], pads=[2, 1, 2, 3])], alpha=0.1)
    x = b.node("Concat", [a, c], axis=1)
    x = b.node("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=0)
    x = b.node("Mul", [x, b.const("scale", b.rng.uniform(0.5, 2.0, (11, 1, 1)).astype(np.float32))])
    x = b.node("Tanh", [b.node("Sub", [x, b.const("shift", np.float32(0.25))])])
    x = b.node("Flatten", [x], axis=1)
    w = b.weights("w", (11 * 6 * 8, 8), 11 * 6 * 8)
    return b.model("concat_float", [1, 4, 6, 8], b.node("MatMul", [x, w]), [1, 8])


def gated_float() -> onnx.ModelProto:
    """GatedMlp: fc(x) * sigmoid(fc(x)), a scaled residual (Mul by a constant, Add), a dense
    layer, reshaped to [2, 2]."""
    b = _Builder(SEED + 2)
    h = b.node("Mul", [b.linear("input", 16, 16), b.node("Sigmoid", [b.linear("input", 16, 16)])])
    h = b.node("Add", [h, b.node("Mul", ["input", b.const("half", np.float32(0.5))])])
    y = b.node("Reshape", [b.linear(h, 16, 4), b.const("shape", np.array([2, 2], np.int64))])
    return b.model("gated_float", [1, 16], y, [2, 2])


ZOO = {"cnn_float": cnn_float, "concat_float": concat_float, "gated_float": gated_float}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, build in ZOO.items():
        model = build()
        onnx.checker.check_model(model, full_check=True)
        path = os.path.join(args.out, f"{name}.onnx")
        onnx.save(model, path)
        print(f"{name}: {os.path.getsize(path):,} B, {', '.join(sorted({n.op_type for n in model.graph.node}))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
