#!/usr/bin/env python3
"""Build the operator zoo: small int8 .tflite models, one or a few operators each, written to
tests/models/. tests/test_ops.py compiles every one and compares it byte for byte with
LiteRT's reference kernels and with TFLM.

Each model is a Keras functional model (raw TensorFlow ops in Lambda layers where Keras has no
layer), exported with a batch-1 input signature and converted by TFLiteConverter to a fully
int8 model (int8 input and output, TFLITE_BUILTINS_INT8). Weights are Keras' random
initialisation with a fixed seed: the point is realistic quantisation parameters, not accuracy.

    python examples/make_op_zoo.py               # every model
    python examples/make_op_zoo.py mul_bcast     # some of them
    python examples/make_op_zoo.py --list        # names and the operators each one has
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

import zoo_rewrite

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models")
SEED = 7
MAX_BYTES = 24 * 1024


def L(fn, name=None):
    return layers.Lambda(fn, name=name)


def conv(ch, k=1, **kw):
    return layers.Conv2D(ch, k, padding="same", **kw)


# name -> (input shape without batch, builder(x) -> y, input range for calibration)
ZOO = {}
INT16 = set()  # models converted to 16x8: int16 activations, int8 weights, int16 input and output
# models make_float_zoo.py leaves out: the 16x8 ones, and operators without a float32 lowering
INT_ONLY = {"transpose_conv_bias", "space_to_batch_dilated", "space_to_batch", "squared_difference", "abs", "elu",
            "resolver_ops", "mixed_new"}


def model(name, shape, lo=-3.0, hi=3.0, int16=False):
    def deco(fn):
        ZOO[name] = (shape, fn, (lo, hi))
        if int16:
            INT16.add(name)
            INT_ONLY.add(name)
        return fn
    return deco


@model("max_pool", (9, 9, 4))
def _(x):
    a = layers.MaxPooling2D(2)(x)                                   # VALID 2x2 stride 2
    b = layers.MaxPooling2D(3, strides=2, padding="same")(x)        # SAME, partial windows
    return layers.Concatenate()([layers.Flatten()(a), layers.Flatten()(b)])


@model("mean", (6, 5, 8))
def _(x):
    return layers.GlobalAveragePooling2D()(conv(8, 3, activation="relu")(x))


@model("mean_keepdims", (4, 4, 16), 0.0, 4.0)
def _(x):
    return L(lambda t: tf.reduce_mean(t, axis=[1, 2], keepdims=True))(x)


@model("pad", (5, 6, 3))
def _(x):
    return layers.ZeroPadding2D(((1, 2), (0, 3)))(x)


@model("padv2", (5, 6, 3))
def _(x):
    return L(lambda t: tf.pad(t, [[0, 0], [2, 1], [1, 1], [0, 0]], constant_values=1.5))(x)


@model("concat", (6, 6, 3))
def _(x):
    return layers.Concatenate()([conv(4, 3)(x), conv(5, 1, activation="relu")(x), x])


@model("mul", (6, 6, 4))
def _(x):
    return layers.Multiply()([x, conv(4, 3)(x)])


@model("mul_bcast", (6, 6, 8))
def _(x):
    se = layers.Dense(8, activation="sigmoid")(layers.GlobalAveragePooling2D(keepdims=True)(x))
    y = layers.Multiply()([x, se])                                  # (1,6,6,8) * (1,1,1,8)
    return L(lambda t: t * tf.constant(np.linspace(-2, 2, 8), tf.float32))(y)


@model("sub", (6, 6, 4))
def _(x):
    return layers.Subtract()([x, conv(4, 3)(x)])


@model("sub_bcast", (5, 7, 4))
def _(x):
    return L(lambda t: t - tf.reduce_mean(t, axis=[1, 2], keepdims=True))(x)


@model("add_bcast", (5, 7, 4))
def _(x):
    y = L(lambda t: t + tf.constant(np.linspace(-1, 1, 4), tf.float32))(x)
    return layers.Add()([y, layers.Dense(4)(layers.GlobalAveragePooling2D(keepdims=True)(y))])


@model("relu", (16, 16, 1), -4.0, 4.0)
def _(x):
    return layers.ReLU()(x)


@model("relu6", (16, 16, 1), -4.0, 9.0)
def _(x):
    return layers.ReLU(max_value=6.0)(x)


@model("relu_n1_to_1", (16, 16, 1), -2.0, 2.0)
def _(x):
    return L(lambda t: tf.clip_by_value(t, -1.0, 1.0))(x)


@model("leaky_relu", (16, 16, 1), -4.0, 4.0)
def _(x):
    return layers.LeakyReLU(negative_slope=0.2)(x)


@model("hard_swish", (16, 16, 1), -5.0, 5.0)
def _(x):
    return layers.Activation("hard_swish")(x)


@model("logistic", (16, 16, 1), -6.0, 6.0)
def _(x):
    return layers.Activation("sigmoid")(x)


@model("tanh", (16, 16, 1), -3.0, 3.0)
def _(x):
    return layers.Activation("tanh")(x)


@model("quantize", (6, 6, 4))
def _(x):
    """LOGISTIC fixes its output scale to 1/256: the converter requantizes to concatenate."""
    return layers.Concatenate()([layers.Activation("sigmoid")(x), conv(4, 1)(x)])


@model("maximum_minimum", (6, 6, 4))
def _(x):
    c = conv(4, 3)(x)
    return layers.Concatenate()([layers.Maximum()([x, c]), layers.Minimum()([x, c])])


@model("reduce_max", (6, 5, 8))
def _(x):
    return L(lambda t: tf.reduce_max(t, axis=[1, 2]))(conv(8, 3)(x))


@model("squeeze_expand", (8, 6))
def _(x):
    y = L(lambda t: tf.expand_dims(t, 2))(x)                        # (1,8,1,6)
    y = conv(6, (3, 1))(y)
    return L(lambda t: tf.squeeze(t, 2))(y)


@model("shape_ops", (8, 6))
def _(x):
    """squeeze_expand with EXPAND_DIMS, SQUEEZE and a SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE
    chain written back (zoo_rewrite.restore_shape_ops): the converter folds all three."""
    y = L(lambda t: tf.expand_dims(t, 2))(x)
    y = conv(6, (3, 1))(y)
    return L(lambda t: tf.squeeze(t, 2))(y)


@model("slice", (8, 8, 6))
def _(x):
    a = L(lambda t: tf.slice(t, [0, 1, 2, 0], [1, 5, 4, 3]))(x)
    b = L(lambda t: t[:, 1:7:2, ::3, 2:])(x)
    return layers.Concatenate()([layers.Flatten()(a), layers.Flatten()(b)])


@model("transpose", (4, 6, 5))
def _(x):
    return L(lambda t: tf.transpose(t, [0, 3, 1, 2]))(x)


@model("split", (6, 6, 8))
def _(x):
    a, b = L(lambda t: tf.split(t, 2, axis=3))(x)
    c, d, e = L(lambda t: tf.split(t, [1, 2, 3], axis=1))(conv(4, 1)(x))
    return layers.Concatenate()([layers.Flatten()(v) for v in (layers.Multiply()([a, b]), c, d, e)])


@model("resize_nearest", (5, 4, 3))
def _(x):
    a = L(lambda t: tf.image.resize(t, (10, 12), method="nearest"))(x)
    b = L(lambda t: tf.compat.v1.image.resize_nearest_neighbor(t, (7, 9), align_corners=True))(x)
    return layers.Concatenate()([layers.Flatten()(a), layers.Flatten()(b)])


@model("prelu", (6, 6, 4))
def _(x):
    p = layers.PReLU(shared_axes=[1, 2],
                     alpha_initializer=keras.initializers.RandomUniform(-0.5, 0.8, seed=3))
    return p(conv(4, 3)(x))


@model("depthwise_multiplier", (8, 8, 3))
def _(x):
    return layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="relu")(x)


@model("transpose_conv", (5, 5, 4))
def _(x):
    return layers.Conv2DTranspose(6, 3, strides=2, padding="same")(x)


@model("transpose_conv_bias", (4, 5, 3))
def _(x):
    """VALID stride 2 with a bias and a fused RELU, then SAME stride 1 with a 2x3 kernel."""
    rnd = keras.initializers.RandomUniform(-0.5, 0.5, seed=5)
    y = layers.Conv2DTranspose(5, 3, strides=2, padding="valid", activation="relu",
                               bias_initializer=rnd)(x)
    return layers.Conv2DTranspose(4, (2, 3), padding="same", bias_initializer=rnd)(y)


@model("dilated_conv", (12, 12, 3))
def _(x):
    return layers.Conv2D(4, 3, dilation_rate=2, padding="same")(x)


@model("space_to_batch_dilated", (12, 11, 4))
def _(x):
    """The chains TensorFlow writes for dilated convolutions (tf.nn.atrous_conv2d), folded into
    one dilated convolution each: a CONV_2D chain as the converter emits it, and a depthwise
    one, written back from the converter's dilated DEPTHWISE_CONV_2D (see zoo_rewrite.py)."""
    y = L(lambda t: tf.space_to_batch_nd(t, [2, 2], [[2, 2], [2, 3]]))(x)
    y = layers.Conv2D(8, 3, activation="relu")(y)
    y = L(lambda t: tf.batch_to_space(t, [2, 2], [[0, 0], [0, 0]]))(y)
    return layers.DepthwiseConv2D(3, dilation_rate=(3, 2), padding="same")(y)


@model("int16_cnn", (8, 8, 2), int16=True)
def _(x):
    """A small 16x8 CNN: the operators of a typical int16-activation model."""
    y = conv(8, 3, activation="relu")(x)
    y = layers.Add()([y, layers.DepthwiseConv2D(3, padding="same")(y)])
    y = layers.MaxPooling2D(2)(y)
    y = conv(6, 1, activation="relu6")(y)
    y = layers.AveragePooling2D(4)(y)
    return layers.Dense(5)(layers.Flatten()(y))


@model("int16_layout", (6, 6, 3), int16=True)
def _(x):
    """16x8 byte moves: PAD, CONCATENATION, STRIDED_SLICE, TRANSPOSE, SPLIT."""
    y = layers.ZeroPadding2D(((1, 0), (2, 1)))(conv(4, 3)(x))                      # (7, 9, 4)
    a, b = L(lambda t: tf.split(t, 2, axis=3))(y)
    y = layers.Concatenate()([b, a])
    y = L(lambda t: tf.transpose(t, [0, 2, 1, 3]))(y)
    return layers.Concatenate()([layers.Flatten()(y), layers.Flatten()(y[:, 1:6:2, ::2, 1:])])


@model("int16_arith", (6, 6, 4), int16=True)
def _(x):
    """16x8 MUL, SUB and a broadcasting ADD."""
    c = conv(4, 3)(x)
    y = layers.Subtract()([layers.Multiply()([x, c]), c])
    return layers.Add()([y, layers.Dense(4)(layers.AveragePooling2D(6)(x))])


@model("int16_mean", (6, 5, 8), int16=True)
def _(x):
    """16x8 MEAN: a global average pool and a mean over one axis."""
    y = conv(8, 3, activation="relu")(x)
    a = layers.GlobalAveragePooling2D()(y)
    b = layers.Flatten()(L(lambda t: tf.reduce_mean(t, axis=[2]))(y))
    return layers.Concatenate()([a, b])


@model("int16_transpose_conv", (4, 5, 3), int16=True)
def _(x):
    rnd = keras.initializers.RandomUniform(-0.5, 0.5, seed=5)
    y = layers.Conv2DTranspose(5, 3, strides=2, padding="valid", activation="relu", bias_initializer=rnd)(x)
    return layers.Conv2DTranspose(4, (2, 3), padding="same")(y)


@model("int16_softmax", (4, 10), int16=True)
def _(x):
    return layers.Activation("softmax")(layers.Dense(10)(x))


@model("resolver_ops", (6, 5, 4))
def _(x):
    """More of TFLM's resolver: MIRROR_PAD (reflect and symmetric), UNPACK, PACK, REDUCE_MIN,
    GATHER."""
    a = L(lambda t: tf.pad(t, [[0, 0], [2, 1], [0, 3], [0, 0]], mode="REFLECT"))(x)
    b = L(lambda t: tf.pad(t, [[0, 0], [1, 2], [2, 0], [0, 0]], mode="SYMMETRIC"))(x)
    c = L(lambda t: tf.stack(tf.unstack(t, axis=1)[::-1], axis=2))(x)
    d = L(lambda t: tf.reduce_min(t, axis=[1, 3]))(x)
    e = L(lambda t: tf.gather(t, [3, 0, 0, 2], axis=2))(x)
    f = L(lambda t: tf.gather(t, [[1, 5], [0, 2]], axis=1))(x)
    return layers.Concatenate()([layers.Flatten()(v) for v in (a, b, c, d, e, f)])


@model("squared_difference", (6, 6, 4))
def _(x):
    return L(lambda t: tf.math.squared_difference(t[..., :2], t[..., 2:] * 0.7))(x)


@model("elu", (16, 16, 1), -5.0, 3.0)
def _(x):
    """The converter leaves ELU in float; zoo_rewrite runs it on the int8 tensors. LiteRT has
    no int8 ELU: checked against TFLM only."""
    return layers.ELU()(x)


@model("abs", (16, 16, 1), -4.0, 3.0)
def _(x):
    return L(tf.abs)(x)


@model("mixed_new", (8, 8, 3))
def _(x):
    """The operators added after `mixed`, in one model for the QEMU run: a dilation chain,
    TRANSPOSE_CONV, SPACE_TO_DEPTH, DEPTH_TO_SPACE-free so that TFLM runs it too."""
    y = conv(8, 3, activation="relu")(x)
    y = L(lambda t: tf.space_to_batch_nd(t, [2, 2], [[0, 0], [0, 0]]))(y)        # (4, 4, 4, 8)
    y = layers.Conv2D(8, (1, 1))(y)
    y = layers.DepthwiseConv2D(3, padding="same")(y)                             # not a chain
    y = L(lambda t: tf.batch_to_space(t, [2, 2], [[0, 0], [0, 0]]))(y)
    y = L(lambda t: tf.space_to_batch_nd(t, [2, 2], [[0, 0], [0, 0]]))(y)
    y = layers.Conv2D(6, 2, activation="relu")(y)                                # a chain: dilated
    y = L(lambda t: tf.batch_to_space(t, [2, 2], [[0, 0], [0, 0]]))(y)           # (6, 6, 6)
    y = layers.Conv2DTranspose(4, 3, strides=2, padding="same",
                               bias_initializer=keras.initializers.RandomUniform(-0.3, 0.3, seed=2))(y)
    y = L(lambda t: tf.nn.space_to_depth(t, 3))(y)                               # (4, 4, 36)
    return layers.Dense(6)(layers.GlobalAveragePooling2D()(y))


REWRITE = {"space_to_batch_dilated": zoo_rewrite.unfold_dilation, "elu": zoo_rewrite.quantize_float_islands,
           "shape_ops": zoo_rewrite.restore_shape_ops}


@model("space_to_batch", (8, 8, 3))
def _(x):
    """SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND on their own around a pooling and a SAME
    convolution of the sub-images, and a VALID chain folded into a dilated convolution. No
    padding: TFLM pads int8 SPACE_TO_BATCH_ND with 0 instead of the zero point (see README)."""
    y = L(lambda t: tf.space_to_batch_nd(t, [2, 2], [[0, 0], [0, 0]]))(x)      # (4, 4, 4, 3)
    a = L(lambda t: tf.batch_to_space(t, [2, 2], [[1, 0], [0, 2]]))(
        layers.MaxPooling2D(2, strides=1, padding="same")(y))
    b = L(lambda t: tf.batch_to_space(t, [2, 2], [[0, 0], [0, 0]]))(conv(4, 3)(y))
    c = L(lambda t: tf.space_to_batch_nd(t, [2, 4], [[0, 0], [0, 0]]))(x)      # (8, 4, 2, 3)
    c = layers.Conv2D(5, (2, 1), activation="relu")(c)
    c = L(lambda t: tf.batch_to_space(t, [2, 4], [[0, 0], [0, 0]]))(c)
    return layers.Concatenate()([layers.Flatten()(v) for v in (a, b, c)])


@model("depth_to_space", (4, 6, 8))
def _(x):
    """LiteRT's reference resolver has no int8 DEPTH_TO_SPACE (version 2): checked against TFLM
    and LiteRT's optimized resolver (there is no arithmetic, so every resolver agrees)."""
    return L(lambda t: tf.nn.depth_to_space(t, 2))(conv(8, 1)(x))


@model("space_to_depth", (8, 12, 2))
def _(x):
    return L(lambda t: tf.nn.space_to_depth(t, 2))(x)


@model("tile", (3, 5, 2))
def _(x):
    """Neither LiteRT's reference resolver (TILE version 3) nor TFLM has an int8 TILE: checked
    against LiteRT's optimized resolver."""
    return L(lambda t: tf.tile(t, [1, 2, 1, 3]))(x)


@model("mixed", (12, 12, 3))
def _(x):
    """Several new operators in one model, for the QEMU run."""
    y = layers.ZeroPadding2D(1)(x)
    y = conv(8, 3, activation="relu")(y)
    y = layers.MaxPooling2D(2)(y)
    y = layers.LeakyReLU(0.1)(y)
    y = layers.Activation("hard_swish")(y)
    a, b = L(lambda t: tf.split(t, 2, axis=3))(y)
    y = layers.Concatenate()([layers.Multiply()([a, layers.Activation("sigmoid")(b)]),
                              layers.Subtract()([a, b])])
    y = L(lambda t: tf.image.resize(t, (10, 10), method="nearest"))(y)
    y = layers.Activation("tanh")(y)
    y = layers.GlobalAveragePooling2D()(y)
    return layers.Dense(5)(y)


def build(name):
    shape, fn, _ = ZOO[name]
    keras.utils.set_random_seed(SEED)
    inp = keras.Input(shape, batch_size=1, name="input")
    return keras.Model(inp, fn(inp), name=name)


def to_int8_tflite(name, m):
    shape, _, (lo, hi) = ZOO[name]
    rng = np.random.default_rng(SEED)

    def rep_data():
        for _ in range(64):
            yield [rng.uniform(lo, hi, size=(1, *shape)).astype(np.float32)]

    with tempfile.TemporaryDirectory() as d:
        saved = os.path.join(d, "saved_model")
        sig = [tf.TensorSpec((1, *shape), tf.float32, name="input")]
        m.export(saved, format="tf_saved_model", input_signature=sig, verbose=False)
        c = tf.lite.TFLiteConverter.from_saved_model(saved)
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = rep_data
        if name in INT16:
            c.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            c.inference_input_type = c.inference_output_type = tf.int16
        else:
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            c.inference_input_type = c.inference_output_type = tf.int8
        return c.convert()


def op_names(data):
    import tflite
    m = tflite.Model.GetRootAsModel(data, 0)
    codes = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    sg = m.Subgraphs(0)
    out = []
    for i in range(sg.OperatorsLength()):
        oc = m.OperatorCodes(sg.Operators(i).OpcodeIndex())
        out.append(codes.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "?"))
    return out


def make(name, out_dir):
    data = to_int8_tflite(name, build(name))
    if name in REWRITE:
        data = REWRITE[name](data)
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{name}: {len(data)} bytes, over {MAX_BYTES}")
    path = os.path.join(out_dir, f"{name}.tflite")
    with open(path, "wb") as f:
        f.write(data)
    print(f"{name:22s} {len(data):6d} B  {' '.join(op_names(data))}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"models to build (default all): {', '.join(ZOO)}")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for n in ZOO:
            p = os.path.join(args.out, f"{n}.tflite")
            ops = op_names(open(p, "rb").read()) if os.path.exists(p) else ["(not built)"]
            print(f"{n:22s} {' '.join(ops)}")
        return 0
    unknown = [n for n in args.names if n not in ZOO]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}")
    os.makedirs(args.out, exist_ok=True)
    for n in args.names or ZOO:
        make(n, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
