#!/usr/bin/env python3
"""Build the math-operator zoo: small .tflite models, one or a few math operators each, written
to tests/models/math/. The int8 models (`<name>.tflite`) are converted with a representative
dataset as examples/make_op_zoo.py converts its zoo (same Keras builders, seed and converter
settings); the float32 ones (`<name>_float.tflite`) plainly, as examples/make_float_zoo.py does.
tests/test_math_ops.py compiles every one and compares it with LiteRT's reference kernels.

    python examples/make_math_zoo.py               # every model
    python examples/make_math_zoo.py sum exp_float # some of them
    python examples/make_math_zoo.py --list        # names and the operators each one has
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
from keras import layers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_op_zoo  # noqa: E402
from make_float_zoo import to_float_tflite  # noqa: E402
from make_op_zoo import L, conv, op_names  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models", "math")
MAX_BYTES = 24 * 1024
INT8, FLOAT = {}, {}  # name -> the make_op_zoo entry it is built from


def model(name, shape, lo=-3.0, hi=3.0, int8=True, float32=True):
    """Register a builder (as make_op_zoo.model) as `name` (int8) and `name`_float (float32)."""
    def deco(fn):
        make_op_zoo.model(f"math_{name}", shape, lo, hi)(fn)
        if int8:
            INT8[name] = f"math_{name}"
        if float32:
            FLOAT[f"{name}_float"] = f"math_{name}"
        return fn
    return deco


@model("sum", (6, 5, 8), -2.0, 2.0)
def _(x):
    a = L(lambda t: tf.reduce_sum(t, axis=[1, 2], keepdims=True))(x)
    b = L(lambda t: tf.reduce_sum(t, axis=-1))(conv(4, 3)(x))
    return layers.Concatenate()([layers.Flatten()(a), layers.Flatten()(b)])


@model("sqrt", (16, 16, 1), 0.0, 4.0)
def _(x):
    return L(tf.sqrt)(x)


@model("rsqrt", (16, 16, 1), 0.0, 4.0)
def _(x):
    return L(tf.math.rsqrt)(x)


@model("exp", (16, 16, 1), -4.0, 1.5)
def _(x):
    return L(tf.exp)(x)


@model("log", (16, 16, 1), 0.0, 5.0)
def _(x):
    return L(tf.math.log)(x)


@model("div", (6, 6, 4), float32=False)
def _(x):
    """int8 DIV, element-wise and broadcast (the float32 one is in elementwise_float)."""
    y = conv(4, 3)(x)
    a = L(lambda t: tf.math.divide(t[0], tf.abs(t[1]) + 0.5))([x, y])
    b = L(lambda t: t / (tf.reduce_max(tf.abs(t), axis=[1, 2], keepdims=True) + 0.25))(y)
    return layers.Concatenate()([a, b])


@model("elementwise", (6, 6, 4), int8=False)
def _(x):
    """The float32 element-wise operators: SQUARE, NEG, DIV, ADD_N, SQUARED_DIFFERENCE, ABS,
    FLOOR, FLOOR_DIV, FLOOR_MOD (no libm rounding: bit for bit)."""
    y = conv(4, 3)(x)
    a = L(lambda t: tf.square(t[0]) * tf.negative(t[1]))([x, y])
    b = L(lambda t: tf.math.divide(t[0], tf.abs(t[1]) + 0.5))([x, y])
    c = L(lambda t: tf.math.add_n([t[0], t[1], t[0] * 0.5]))([x, y])
    d = L(lambda t: tf.math.squared_difference(t[0], t[1]))([x, y])
    e = L(lambda t: tf.floor(t * 2.5))(x)
    f = L(lambda t: tf.math.floordiv(t[0] * 4.0, t[1]) + tf.math.floormod(t[0] * 3.0, t[1]))([x, y])
    g = L(lambda t: t / tf.constant([0.5, -2.0, 3.0, 0.25], tf.float32))(x)
    return layers.Concatenate()([a, b, c, d, e, f, g])


@model("ceil_round", (6, 6, 4), int8=False)
def _(x):
    """CEIL and ROUND (halves to even: x * 4 has many exact halves), which LiteRT's reference
    resolver does not have: checked against its optimized one."""
    return L(lambda t: tf.concat([tf.math.ceil(t * 1.5), tf.round(t * 4.0), tf.round(tf.round(t * 4.0) * 0.5)], -1))(x)


@model("trig", (16, 16, 1), -8.0, 8.0, int8=False)
def _(x):
    """COS, SIN, EXP, LOG, SQRT, RSQRT in float32 (libm: within the stated bound)."""
    a = L(lambda t: tf.cos(t) + tf.sin(t * 3.0))(x)
    b = L(lambda t: tf.exp(t * 0.5) + tf.math.log(tf.abs(t) + 0.01))(x)
    c = L(lambda t: tf.sqrt(tf.abs(t)) + tf.math.rsqrt(tf.abs(t) + 0.1))(x)
    return layers.Concatenate()([a, b, c])


@model("mixed", (8, 8, 3), 0.0, 3.0, float32=False)
def _(x):
    """SQRT, EXP, LOG and RSQRT in one model, for the QEMU run (no SUM: LiteRT is no oracle for
    its int8 form, and TFLM has no int8 EXP, LOG or SQRT)."""
    y = conv(6, 3, activation="relu")(x)
    a = L(tf.sqrt)(y)
    b = L(lambda t: tf.exp(t * -0.5))(y)
    c = L(lambda t: tf.math.log(t + 0.5))(layers.Concatenate()([a, b]))
    s = L(lambda t: tf.reduce_mean(t, axis=[1, 2]))(c)
    return L(tf.math.rsqrt)(L(lambda t: t * t + 1.0)(s))


@model("l2_norm", (5, 6, 8))
def _(x):
    return L(lambda t: tf.math.l2_normalize(t, axis=-1))(conv(8, 3)(x))


@model("log_softmax", (4, 10), -6.0, 6.0)
def _(x):
    return L(tf.nn.log_softmax)(x)


@model("cumsum", (5, 6, 4), int8=False)
def _(x):
    a = L(lambda t: tf.math.cumsum(t, axis=1))(x)
    b = L(lambda t: tf.math.cumsum(t, axis=3, exclusive=True, reverse=True))(x)
    return layers.Concatenate()([a, b])


@model("resize_bilinear", (5, 4, 3))
def _(x):
    a = L(lambda t: tf.image.resize(t, (9, 7), method="bilinear"))(x)                     # half-pixel centers
    b = L(lambda t: tf.compat.v1.image.resize_bilinear(t, (9, 7), align_corners=True))(x)
    c = L(lambda t: tf.compat.v1.image.resize_bilinear(t, (8, 6)))(x)                     # neither
    return layers.Concatenate()([layers.Flatten()(v) for v in (a, b, c)])


@model("batch_matmul", (4, 6, 5))
def _(x):
    y = conv(3, 1)(x)                                                     # (4, 6, 3)
    a = L(lambda t: tf.matmul(t[0], t[1], transpose_a=True))([x, y])      # (4, 5, 3): activation RHS
    w = tf.constant(np.linspace(-1, 1, 4 * 3 * 7).reshape(4, 3, 7), tf.float32)
    b = L(lambda t: tf.matmul(t, w))(a)                                   # (4, 5, 7): constant RHS
    return L(lambda t: tf.matmul(t[0], t[1], transpose_b=True))([b, b])   # (4, 5, 5): adj_y


@model("l2_pool", (9, 9, 4), int8=False)
def _(x):
    """Average pools that l2_pool_rewrite turns into L2_POOL_2D (the converter emits none)."""
    a = layers.AveragePooling2D(2)(x)
    b = layers.AveragePooling2D(3, strides=2, padding="same")(x)
    return layers.Concatenate()([layers.Flatten()(a), layers.Flatten()(b)])


def l2_pool_rewrite(data: bytes) -> bytes:
    """Every AVERAGE_POOL_2D becomes an L2_POOL_2D (the same Pool2DOptions)."""
    import zoo_rewrite
    fb = zoo_rewrite.fb
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    l2 = zoo_rewrite._opcode(m, fb.BuiltinOperator.L2_POOL_2D)
    for op in m.subgraphs[0].operators:
        oc = m.operatorCodes[op.opcodeIndex]
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == fb.BuiltinOperator.AVERAGE_POOL_2D:
            op.opcodeIndex = l2
    return zoo_rewrite._pack(m)


REWRITE = {"l2_pool_float": l2_pool_rewrite}


def make(name, out_dir):
    if name in INT8:
        entry = INT8[name]
        data = make_op_zoo.to_int8_tflite(entry, make_op_zoo.build(entry))
    else:
        data = to_float_tflite(make_op_zoo.build(FLOAT[name]))
    if name in REWRITE:
        data = REWRITE[name](data)
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{name}: {len(data)} bytes, over {MAX_BYTES}")
    with open(os.path.join(out_dir, f"{name}.tflite"), "wb") as f:
        f.write(data)
    print(f"{name:22s} {len(data):6d} B  {' '.join(op_names(data))}")


def main(argv=None):
    names = list(INT8) + list(FLOAT)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"models to build (default all): {', '.join(names)}")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for n in names:
            p = os.path.join(args.out, f"{n}.tflite")
            ops = op_names(open(p, "rb").read()) if os.path.exists(p) else ["(not built)"]
            print(f"{n:22s} {' '.join(ops)}")
        return 0
    unknown = [n for n in args.names if n not in names]
    if unknown:
        ap.error(f"unknown model(s): {', '.join(unknown)}")
    os.makedirs(args.out, exist_ok=True)
    np.random.seed(make_op_zoo.SEED)
    for n in args.names or names:
        make(n, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
