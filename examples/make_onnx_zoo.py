#!/usr/bin/env python3
"""Build the ONNX zoo: small int8 .onnx models written to tests/models/onnx/, which
tests/test_onnx.py compiles and compares byte for byte with onnxruntime.

Each model is a small PyTorch module exported with torch.onnx.export (opset 17, batch 1,
NCHW), then quantized by onnxruntime's own static quantizer (`quantize_static`) on random
calibration data, in the two formats it writes:

- QDQ: QuantizeLinear / DequantizeLinear pairs around float Conv, Gemm, MatMul, Add, ...
- QOperator: QLinearConv, QLinearMatMul, com.microsoft QLinearAdd, QLinearGlobalAveragePool, ...

Weights are PyTorch's random initialisation with a fixed seed: the point is realistic
quantisation parameters, not accuracy. torch is needed only here, not by tinycc or its tests
(a CPU wheel is enough: `pip install torch==2.13.0+cpu`).

    python examples/make_onnx_zoo.py            # every model
    python examples/make_onnx_zoo.py --list     # names and what each one covers
"""

import argparse
import os
import sys
import tempfile

import numpy as np
import onnx
import torch
from torch import nn
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models", "onnx")
SEED = 11
OPSET = 17


class SmallCnn(nn.Module):
    """Conv + ReLU, max pool, depthwise conv + ReLU6, pointwise conv with a residual add,
    strided conv, average pool, global average pool, flatten, linear: a tiny image classifier."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 8, 1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.avg = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        y = torch.clamp(self.dw(x), 0.0, 6.0)
        x = x + self.pw(y)
        x = torch.relu(self.conv2(x))
        x = self.gap(self.avg(x))
        return self.fc(torch.flatten(x, 1))


class InvertedBlock(nn.Module):
    """Depthwise 3x3 + ReLU6, pointwise 1x1; a residual add when the shape allows."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.pw(nn.functional.relu6(self.dw(x)))
        return x + y if self.residual else torch.relu(y)


class MobileNetLike(nn.Module):
    """A strided stem and five depthwise-separable blocks (two residual), global pooling, a
    dense layer and softmax: MobileNet's structure at 48x48."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1)
        self.blocks = nn.Sequential(InvertedBlock(16, 32, 1), InvertedBlock(32, 32, 1), InvertedBlock(32, 64, 2),
                                    InvertedBlock(64, 64, 1), InvertedBlock(64, 96, 2))
        self.head = nn.Linear(96, 12)

    def forward(self, x):
        x = self.blocks(torch.relu(self.stem(x)))
        x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return torch.softmax(self.head(x), dim=-1)


class Mlp(nn.Module):
    """Dense layers (Gemm) with ReLU and a softmax: a sensor classifier."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(24, 32)
        self.fc2 = nn.Linear(32, 16)
        self.fc3 = nn.Linear(16, 6)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return torch.softmax(self.fc3(x), dim=-1)


class GatedMlp(nn.Module):
    """A gated dense block: fc(x) * sigmoid(fc(x)) (Sigmoid, Mul), a scaled residual (Mul by a
    constant, Add), then a dense layer."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, x):
        h = self.a(x) * torch.sigmoid(self.b(x))
        return self.out(h + x * 0.5)


class ConcatNet(nn.Module):
    """Two convolution branches (one with a LeakyReLU) concatenated on channels, a padded
    average pool (edge windows average fewer values), then a matmul."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 6, 3, padding=1)
        self.b = nn.Conv2d(4, 5, 1)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.w = nn.Parameter(torch.randn(11 * 36, 8) * 0.05)

    def forward(self, x):
        x = torch.cat([torch.relu(self.a(x)), nn.functional.leaky_relu(self.b(x), 0.1)], dim=1)
        return torch.flatten(self.pool(x), 1) @ self.w


# name -> (module factory, input shape, quantize_static keyword arguments). QDQ models get one
# DequantizeLinear per consumer (DedicatedQDQPair): onnxruntime fuses a DQ -> op -> Q group into
# its QLinear kernel only when each DQ has one consumer, and runs the group in float otherwise.
QDQ = dict(quant_format=QuantFormat.QDQ, extra_options={"DedicatedQDQPair": True})
ZOO = {
    "cnn_qdq": (SmallCnn, (1, 3, 16, 16), dict(QDQ, per_channel=True)),
    "mobilenet_qdq": (MobileNetLike, (1, 3, 48, 48), dict(QDQ, per_channel=True)),
    "cnn_qop": (SmallCnn, (1, 3, 16, 16), dict(quant_format=QuantFormat.QOperator, per_channel=True)),
    "mlp_qdq_sym": (Mlp, (1, 24), dict(QDQ, per_channel=False,
                                       extra_options={"ActivationSymmetric": True, "DedicatedQDQPair": True})),
    "concat_qdq": (ConcatNet, (1, 4, 6, 6), dict(QDQ, per_channel=False)),
    "concat_qop": (ConcatNet, (1, 4, 6, 6), dict(quant_format=QuantFormat.QOperator, per_channel=False)),
    "cnn_qdq_u8": (SmallCnn, (1, 3, 16, 16), dict(QDQ, per_channel=True, activation_type=QuantType.QUInt8)),
    "gated_qop_u8": (GatedMlp, (1, 16), dict(quant_format=QuantFormat.QOperator, per_channel=False,
                                             activation_type=QuantType.QUInt8)),
    "mlp_qop": (Mlp, (1, 24), dict(quant_format=QuantFormat.QOperator, per_channel=True)),
    "gated_qdq": (GatedMlp, (1, 16), dict(QDQ, per_channel=True)),
    "gated_qop": (GatedMlp, (1, 16), dict(quant_format=QuantFormat.QOperator, per_channel=False)),
}


class RandomReader(CalibrationDataReader):
    def __init__(self, name: str, shape, count: int = 16):
        rng = np.random.default_rng(SEED)
        self.batches = iter([{name: rng.uniform(-1, 1, shape).astype(np.float32)} for _ in range(count)])

    def get_next(self):
        return next(self.batches, None)


def build(name: str, out_dir: str) -> str:
    factory, shape, options = ZOO[name]
    torch.manual_seed(SEED)
    module = factory().eval()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = os.path.join(tmp, "fp32.onnx")
        torch.onnx.export(module, (torch.zeros(shape),), fp32, input_names=["input"],
                          output_names=["output"], opset_version=OPSET, dynamo=False)
        out = os.path.join(out_dir, f"{name}.onnx")
        options = {"activation_type": QuantType.QInt8, **options}
        quantize_static(fp32, out, RandomReader("input", shape), weight_type=QuantType.QInt8, **options)
    model = onnx.load(out)
    onnx.checker.check_model(model)
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{name}: {os.path.getsize(out):,} B, {', '.join(ops)}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="models to build (default: all)")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for name, (factory, shape, options) in ZOO.items():
            print(f"{name}: {factory.__name__} {shape}, {options['quant_format'].name}")
        return 0
    os.makedirs(args.out, exist_ok=True)
    for name in args.names or ZOO:
        build(name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
