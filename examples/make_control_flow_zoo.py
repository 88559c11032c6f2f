"""Zoo models with IF (tf.cond in a tf.function), for tests/test_control_flow.py.

    python3 examples/make_control_flow_zoo.py        # writes tests/models/control_flow/*.tflite

- if_float: float32, a condition on the input's largest value, one branch each way.
- if_int8: the same shape of model in full int8 (the branches are quantized subgraphs).
- if_nested: float32, an IF inside the else branch of another, two values per branch.
- while_float: a tf.while_loop whose trip count depends on the input (WHILE, refused).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models", "control_flow")
SEED = 17
MODELS = {}


def model(fn):
    MODELS[fn.__name__] = fn
    return fn


def _convert(module, int8: bool = False) -> bytes:
    import tensorflow as tf
    fn = module.__call__.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], module)
    if int8:
        rng = np.random.default_rng(SEED)
        shape = fn.inputs[0].shape
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([rng.uniform(-1, 1, shape).astype(np.float32)] for _ in range(64))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def _signed_branches(int8: bool):
    import tensorflow as tf
    tf.random.set_seed(SEED)

    class M(tf.Module):
        def __init__(self):
            self.w = tf.Variable(tf.random.normal((8, 6)) * 0.4)

        @tf.function(input_signature=[tf.TensorSpec((1, 8), tf.float32)])
        def __call__(self, x):
            h = tf.matmul(x, self.w)
            # REDUCE_MAX, not SUM: LiteRT's reference int8 SUM is wrong (see README, math operators)
            return tf.cond(tf.reduce_max(x) > 0.5, lambda: tf.nn.relu(h * 2.0), lambda: h - 0.5)
    return _convert(M(), int8)


@model
def if_float():
    return _signed_branches(False)


@model
def if_int8():
    return _signed_branches(True)


@model
def if_nested():
    import tensorflow as tf

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, 6), tf.float32)])
        def __call__(self, x):
            s = tf.reduce_sum(x)
            inner = lambda: tf.cond(s < -1.0, lambda: (x * 3.0, x - s), lambda: (x + 1.0, x * s))  # noqa: E731
            return tf.concat(tf.cond(s > 1.0, lambda: (tf.nn.relu(x), x * x), inner), axis=1)
    return _convert(M())


@model
def while_float():
    import tensorflow as tf

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((1, 4), tf.float32)])
        def __call__(self, x):
            return tf.while_loop(lambda v: tf.reduce_sum(v) < 100.0, lambda v: v * 2.0 + 1.0, [x])[0]
    return _convert(M())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="models to build (default: all)")
    ap.add_argument("-o", "--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    unknown = set(args.names) - set(MODELS)
    if unknown:
        sys.exit(f"unknown model(s): {', '.join(sorted(unknown))}; known: {', '.join(MODELS)}")
    os.makedirs(args.out, exist_ok=True)
    for name in args.names or MODELS:
        data = MODELS[name]()
        path = os.path.join(args.out, f"{name}.tflite")
        with open(path, "wb") as f:
            f.write(data)
        print(f"{path}: {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
