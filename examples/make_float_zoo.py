#!/usr/bin/env python3
"""Build the float32 zoo: small float .tflite models (no quantization at all) written to
tests/models/float/. tests/test_float.py compiles every one and compares it with LiteRT's
reference kernels within a stated bound.

The models are the operator zoo's (examples/make_op_zoo.py, the same Keras builders and
seed), a few for the operators that zoo only has inside larger models (convolution,
depthwise convolution, fully connected, average pool, ADD, SOFTMAX), and two real small
networks: the float versions of examples/make_models.py's gesture recogniser and tiny
keyword spotter, trained for a few seconds on their synthetic data.

    python examples/make_float_zoo.py               # every model
    python examples/make_float_zoo.py conv gesture  # some of them
    python examples/make_float_zoo.py --list        # names and the operators each one has
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
import keras
from keras import layers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_models  # noqa: E402
import make_op_zoo  # noqa: E402
from make_op_zoo import L, conv, model, op_names  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models", "float")
MAX_BYTES = 96 * 1024
# the int8 zoo's models that are also float models here; the rest of that zoo is either
# pending (TRANSPOSE_CONV) or int8 by nature (QUANTIZE: int8 -> int8 requantization)
FROM_OP_ZOO = [n for n in make_op_zoo.ZOO if n not in ("transpose_conv", "quantize")]


@model("conv", (10, 9, 3))
def _(x):
    a = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu6")(x)
    return layers.Conv2D(5, (3, 2), padding="valid", activation="relu")(a)


@model("depthwise", (9, 9, 6))
def _(x):
    a = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    return layers.DepthwiseConv2D(3, strides=2, padding="valid")(a)


@model("fully_connected", (24,))
def _(x):
    return layers.Dense(7)(layers.Dense(16, activation="relu")(x))


@model("average_pool", (9, 9, 4))
def _(x):
    a = layers.AveragePooling2D(2)(x)
    b = layers.AveragePooling2D(3, strides=2, padding="same")(x)
    return layers.Concatenate()([layers.Flatten()(a), layers.Flatten()(b)])


@model("add", (6, 6, 4))
def _(x):
    return layers.ReLU()(layers.Add()([x, conv(4, 3)(x)]))


@model("softmax", (4, 10), -8.0, 8.0)
def _(x):
    return layers.Softmax()(x)


@model("rearrange", (4, 6, 8))
def _(x):
    """The rearranging operators no other zoo model has."""
    a = L(lambda t: tf.nn.depth_to_space(t, 2))(x)                  # (1,8,12,2)
    a = L(lambda t: tf.nn.space_to_depth(t, 4))(layers.ReLU()(a))   # (1,2,3,32)
    b = L(lambda t: tf.batch_to_space(tf.nn.relu(tf.space_to_batch_nd(t, [2, 2], [[0, 2], [1, 1]])),
                                      [2, 2], [[0, 0], [1, 1]]))(x)  # via (4,3,4,8)
    c = L(lambda t: tf.tile(t, [1, 2, 1, 3]))(x[:, :1, :2, :])
    return layers.Concatenate()([layers.Flatten()(v) for v in (a, b, c)])


FLOAT_ONLY = ["conv", "depthwise", "fully_connected", "average_pool", "add", "softmax", "rearrange"]
NETWORKS = {"gesture": make_models.build_gesture, "tiny_kws": make_models.build_tiny_kws}
NAMES = FROM_OP_ZOO + FLOAT_ONLY + list(NETWORKS)


def build(name):
    if name in NETWORKS:  # trained a little on the examples' synthetic data
        keras.utils.set_random_seed(make_models.SEED)
        m = NETWORKS[name](batch_size=1)
        data_fn, loss = make_models.MODELS[name][1:3]
        x, y = data_fn(512, np.random.default_rng(make_models.SEED))
        make_models.train(name, m, x, y, loss)
        return m
    return make_op_zoo.build(name)


def to_float_tflite(m):
    with tempfile.TemporaryDirectory() as d:
        saved = os.path.join(d, "saved_model")
        # a static batch of 1: a dynamic one leaves SHAPE/PACK shape arithmetic behind
        sig = [tf.TensorSpec(m.inputs[0].shape, tf.float32, name="input")]
        m.export(saved, format="tf_saved_model", input_signature=sig, verbose=False)
        c = tf.lite.TFLiteConverter.from_saved_model(saved)  # no optimizations: float32 weights
        return c.convert()


def make(name, out_dir):
    data = to_float_tflite(build(name))
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{name}: {len(data)} bytes, over {MAX_BYTES}")
    path = os.path.join(out_dir, f"{name}.tflite")
    with open(path, "wb") as f:
        f.write(data)
    print(f"{name:22s} {len(data):6d} B  {' '.join(op_names(data))}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"models to build (default all): {', '.join(NAMES)}")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for n in NAMES:
            p = os.path.join(args.out, f"{n}.tflite")
            ops = op_names(open(p, "rb").read()) if os.path.exists(p) else ["(not built)"]
            print(f"{n:22s} {' '.join(ops)}")
        return 0
    unknown = [n for n in args.names if n not in NAMES]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}")
    os.makedirs(args.out, exist_ok=True)
    for n in args.names or NAMES:
        make(n, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
