#!/usr/bin/env python3
"""Build the small int8 models that exercise CMSIS-NN's code paths the op zoo does not reach,
written to tests/models/cmsis_nn/ (tests/test_cmsis_nn.py runs them with --kernels cmsis-nn):
a per-channel quantized FULLY_CONNECTED (arm_fully_connected_per_channel_s8), one with a
batch of rows, a 1xN convolution over a one-row input (arm_convolve_1_x_n_s8), a strided 1x1
convolution (arm_convolve_1x1_s8, not the fast one), a 3x3 depthwise with padding (the DSP
3x3 kernel) and one without (arm_depthwise_conv_s8_opt), and a SAME average pool with partial
windows and a fused RELU.

Same conversion as examples/make_op_zoo.py (Keras, batch-1 signature, full int8), whose
helpers it uses; dense layers are quantized per tensor except in the first model.

    python examples/make_cmsis_nn_models.py
"""

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

import make_op_zoo as zoo  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "models", "cmsis_nn")
MODELS = {}


def model(name, shape, per_channel_dense=False):
    def deco(fn):
        MODELS[name] = (shape, fn, per_channel_dense)
        return fn
    return deco


@model("fc_per_channel", (24,), per_channel_dense=True)
def _(x):
    return layers.Dense(10)(layers.Dense(16, activation="relu")(x))


@model("fc_batch", (3, 20))
def _(x):
    return layers.Dense(6, activation="relu6")(x)  # 3 rows of 20 -> 3 x 6


@model("conv_1xn", (1, 32, 4))
def _(x):
    return layers.Conv2D(8, (1, 3), padding="same", activation="relu")(x)


@model("conv_1x1_strided", (8, 8, 8))
def _(x):
    return layers.Conv2D(12, 1, strides=2)(x)


@model("depthwise_3x3", (9, 9, 8))
def _(x):
    a = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)      # the DSP 3x3 kernel
    return layers.DepthwiseConv2D(3, padding="valid", strides=2)(a)          # the generic opt one


@model("avg_pool_same", (7, 7, 6))
def _(x):
    y = layers.AveragePooling2D(3, strides=2, padding="same")(x)
    return layers.ReLU()(y)


def convert(name) -> bytes:
    shape, fn, per_channel_dense = MODELS[name]
    zoo.ZOO[name] = (shape, fn, (-3.0, 3.0))
    m = zoo.build(name)
    rng = np.random.default_rng(zoo.SEED)

    def rep_data():
        for _ in range(64):
            yield [rng.uniform(-3.0, 3.0, size=(1, *shape)).astype(np.float32)]

    with tempfile.TemporaryDirectory() as d:
        saved = os.path.join(d, "saved_model")
        m.export(saved, format="tf_saved_model", input_signature=[tf.TensorSpec((1, *shape), tf.float32)],
                 verbose=False)
        c = tf.lite.TFLiteConverter.from_saved_model(saved)
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = rep_data
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = tf.int8
        c.inference_output_type = tf.int8
        # per-tensor dense layers unless asked (TensorFlow's default has changed between releases)
        c._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel_dense
        return c.convert()


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    for name in MODELS:
        data = convert(name)
        with open(os.path.join(OUT, f"{name}.tflite"), "wb") as f:
            f.write(data)
        print(f"{name:22s} {len(data):6d} B  {' '.join(zoo.op_names(data))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
