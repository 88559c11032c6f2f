#!/usr/bin/env python3
"""Build the example int8 .tflite models shipped in examples/models/.

Each model is a small Keras model trained for a few seconds on synthetic data
(fixed seeds), then converted by TensorFlow's TFLiteConverter to a *fully*
int8 model: int8 weights and activations, int8 input and int8 output tensors,
and no QUANTIZE/DEQUANTIZE ops -- except the *_float_io models, whose input and
output stay float32 (a QUANTIZE after the input, a DEQUANTIZE before the output).  The point is sensible, non-degenerate
weights and quantisation parameters for exercising the compiler, not accuracy.

Usage (needs TensorFlow, see examples/README.md for the pinned version):

    python examples/make_models.py              # all models
    python examples/make_models.py gesture      # only some of them
    python examples/make_models.py --out DIR    # write somewhere else

Every model is checked after conversion: its operators must all come from
ALLOWED_OPS, its input and output tensors must be int8, and (when
ai_edge_litert is installed) it must run in the LiteRT reference kernels with
an output that changes with the input.
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

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "models")

ALLOWED_OPS = {
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "AVERAGE_POOL_2D",
    "ADD",
    "RESHAPE",
    "SOFTMAX",
    "QUANTIZE",
    "DEQUANTIZE",
}

SEED = 1234
N_TRAIN = 2048
N_CALIB = 200
EPOCHS = 4
MAX_BYTES = 60 * 1024


# --------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------

def gesture_data(n, rng):
    """3-axis accelerometer windows (128 samples), 5 gesture classes."""
    t = np.arange(128, dtype=np.float32) / 128.0  # ~1 s window
    x = np.zeros((n, 128, 3), np.float32)
    y = rng.integers(0, 5, size=n)
    for i in range(n):
        c = y[i]
        ph = rng.uniform(0, 2 * np.pi)
        a = rng.uniform(0.7, 1.3)
        sig = np.zeros((128, 3), np.float32)
        sig[:, 2] = 1.0  # gravity on z
        if c == 0:  # idle: just gravity and noise
            pass
        elif c == 1:  # shake: fast oscillation on x
            f = rng.uniform(7, 10)
            sig[:, 0] += a * np.sin(2 * np.pi * f * t + ph)
        elif c == 2:  # circle: x/y in quadrature
            f = rng.uniform(1.5, 2.5)
            sig[:, 0] += a * np.sin(2 * np.pi * f * t + ph)
            sig[:, 1] += a * np.cos(2 * np.pi * f * t + ph)
        elif c == 3:  # lift: slow movement on z
            f = rng.uniform(0.8, 1.2)
            sig[:, 2] += a * np.sin(2 * np.pi * f * t + ph)
        else:  # wave: medium oscillation on y, tilted gravity
            f = rng.uniform(3.5, 5.0)
            sig[:, 1] += a * np.sin(2 * np.pi * f * t + ph)
            sig[:, 0] += 0.5
        sig += rng.normal(0, 0.15, size=sig.shape)
        x[i] = sig
    return x, y


def kws_data(n, rng):
    """MFCC-like (49 frames x 10 coefficients) patches, 4 keyword classes."""
    fr = np.arange(49, dtype=np.float32)[:, None]
    co = np.arange(10, dtype=np.float32)[None, :]
    x = np.zeros((n, 49, 10, 1), np.float32)
    y = rng.integers(0, 4, size=n)
    # each class: a few "formant" blobs at class-specific (frame, coeff) spots
    protos = {
        0: [(12, 2), (30, 6)],
        1: [(20, 1), (24, 8), (36, 4)],
        2: [(8, 5), (40, 2)],
        3: [(25, 3), (25, 7)],
    }
    for i in range(n):
        img = rng.normal(0, 0.3, size=(49, 10)).astype(np.float32)
        img += -0.5 + 0.1 * co  # spectral tilt common to all
        shift = rng.integers(-4, 5)
        for (f0, c0) in protos[y[i]]:
            amp = rng.uniform(1.5, 2.5)
            img += amp * np.exp(-((fr - f0 - shift) ** 2) / 18.0
                                - ((co - c0) ** 2) / 2.0)
        x[i, :, :, 0] = img
    return x, y


def resnet_data(n, rng):
    """16x16 RGB textures, 3 classes: horizontal/vertical stripes, blobs."""
    yy, xx = np.mgrid[0:16, 0:16].astype(np.float32)
    x = np.zeros((n, 16, 16, 3), np.float32)
    y = rng.integers(0, 3, size=n)
    for i in range(n):
        c = y[i]
        ph = rng.uniform(0, 2 * np.pi)
        f = rng.uniform(0.15, 0.35) * 2 * np.pi
        if c == 0:
            base = np.sin(f * yy + ph)
        elif c == 1:
            base = np.sin(f * xx + ph)
        else:
            cy, cx = rng.uniform(3, 13, size=2)
            base = 2.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0) - 0.5
        col = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
        img = base[:, :, None] * col[None, None, :]
        img += rng.normal(0, 0.2, size=img.shape)
        x[i] = img
    return x, y


def ae_data(n, rng):
    """64-dim "machine sound" feature vectors on an 8-dim linear manifold."""
    mix = np.random.default_rng(SEED + 99).normal(0, 0.4, size=(8, 64))
    z = rng.normal(0, 1, size=(n, 8))
    x = np.tanh(z @ mix) + rng.normal(0, 0.05, size=(n, 64))
    return x.astype(np.float32), x.astype(np.float32)


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

def build_gesture(batch_size=None):
    inp = keras.Input(shape=(128, 3), batch_size=batch_size, name="accel")
    h = layers.Reshape((128, 1, 3))(inp)                       # NHWC image
    h = layers.Conv2D(8, (5, 1), strides=(2, 1), padding="same",
                      activation="relu")(h)                    # 64x1x8
    h = layers.Conv2D(16, (5, 1), strides=(2, 1), padding="same",
                      activation="relu")(h)                    # 32x1x16
    h = layers.DepthwiseConv2D((5, 1), padding="same",
                               activation="relu")(h)           # 32x1x16
    h = layers.Conv2D(24, (1, 1), activation="relu")(h)        # 32x1x24
    h = layers.Conv2D(24, (3, 1), strides=(2, 1), padding="same",
                      activation="relu")(h)                    # 16x1x24
    h = layers.AveragePooling2D(pool_size=(16, 1))(h)          # 1x1x24
    h = layers.Flatten()(h)
    h = layers.Dense(5)(h)
    out = layers.Softmax()(h)
    return keras.Model(inp, out, name="gesture")


def build_tiny_kws(batch_size=None):
    def bn_relu(h):
        h = layers.BatchNormalization()(h)
        return layers.ReLU()(h)

    inp = keras.Input(shape=(49, 10, 1), batch_size=batch_size, name="mfcc")
    h = layers.Conv2D(16, (3, 3), strides=2, padding="same",
                      use_bias=False)(inp)                     # 25x5x16
    h = bn_relu(h)
    for ch in (24, 32):                                        # DS blocks
        h = layers.DepthwiseConv2D((3, 3), padding="same", use_bias=False)(h)
        h = bn_relu(h)
        h = layers.Conv2D(ch, (1, 1), use_bias=False)(h)
        h = bn_relu(h)
    h = layers.AveragePooling2D(pool_size=(25, 5))(h)          # 1x1x32
    h = layers.Flatten()(h)
    h = layers.Dense(4)(h)
    out = layers.Softmax()(h)
    return keras.Model(inp, out, name="tiny_kws")


def build_tiny_resnet(batch_size=None):
    inp = keras.Input(shape=(16, 16, 3), batch_size=batch_size, name="image")
    h = layers.Conv2D(8, (3, 3), padding="valid",
                      activation="relu")(inp)                  # 14x14x8
    # block 1: identity shortcut
    r = layers.Conv2D(8, (3, 3), padding="same", activation="relu")(h)
    r = layers.Conv2D(8, (3, 3), padding="same")(r)
    h = layers.Add()([h, r])
    h = layers.ReLU()(h)                                       # fused into ADD
    # block 2: stride-2 with 1x1 projection shortcut
    r = layers.Conv2D(16, (3, 3), strides=2, padding="same")(h)
    r = layers.ReLU(max_value=6.0)(r)                          # ReLU6, fused
    r = layers.Conv2D(16, (3, 3), padding="same")(r)           # 7x7x16
    s = layers.Conv2D(16, (1, 1), strides=2, padding="same")(h)
    h = layers.Add()([s, r])
    h = layers.ReLU()(h)
    h = layers.AveragePooling2D(pool_size=(7, 7))(h)           # 1x1x16
    h = layers.Flatten()(h)
    h = layers.Dense(3)(h)
    out = layers.Softmax()(h)
    return keras.Model(inp, out, name="tiny_resnet")


def build_tiny_ae(batch_size=None):
    inp = keras.Input(shape=(64,), batch_size=batch_size, name="features")
    h = layers.Dense(32, activation="relu")(inp)
    h = layers.Dense(8, activation="relu")(h)
    h = layers.Dense(32, activation="relu")(h)
    out = layers.Dense(64)(h)
    return keras.Model(inp, out, name="tiny_ae")


MODELS = {
    # name: (builder, data fn, loss: "xent" = label-smoothed cross-entropy, io type)
    "gesture": (build_gesture, gesture_data, "xent", tf.int8),
    "tiny_kws": (build_tiny_kws, kws_data, "xent", tf.int8),
    "tiny_resnet": (build_tiny_resnet, resnet_data, "xent", tf.int8),
    "tiny_ae": (build_tiny_ae, ae_data, "mse", tf.int8),
    "gesture_float_io": (build_gesture, gesture_data, "xent", tf.float32),
}


# --------------------------------------------------------------------------
# Training, conversion, checks
# --------------------------------------------------------------------------

def train(name, model, x, y, loss):
    if loss == "xent":
        # One-hot targets with label smoothing keep the logits moderate, so
        # the int8 softmax outputs are spread out instead of saturating at
        # -128/127 (more useful when comparing kernels bit for bit).
        y = keras.utils.to_categorical(y, model.outputs[0].shape[-1])
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.3)
        metrics = ["accuracy"]
    else:
        metrics = []
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss,
                  metrics=metrics)
    hist = model.fit(x, y, batch_size=32, epochs=EPOCHS, shuffle=True,
                     verbose=0)
    last = {k: round(float(v[-1]), 4) for k, v in hist.history.items()}
    print(f"[{name}] trained: {last}")


def to_int8_tflite(model, calib, io_type=tf.int8):
    def rep_data():
        for i in range(len(calib)):
            yield [calib[i:i + 1]]

    with tempfile.TemporaryDirectory() as d:
        saved = os.path.join(d, "saved_model")
        # Keras makes the batch dimension dynamic on export unless told, and
        # a dynamic batch turns Reshape/Flatten into SHAPE/STRIDED_SLICE/PACK.
        sig = [tf.TensorSpec(model.inputs[0].shape, tf.float32,
                             name=model.inputs[0].name)]
        model.export(saved, format="tf_saved_model", input_signature=sig,
                     verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(saved)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep_data
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = io_type
        conv.inference_output_type = io_type
        return conv.convert()


def op_names(tfl_bytes):
    """Builtin operator names used by a .tflite flatbuffer."""
    try:
        import tflite  # the flatbuffer schema package
    except ImportError:
        tflite = None
    if tflite is not None:
        m = tflite.Model.GetRootAsModel(tfl_bytes, 0)
        codes = {v: k for k, v in vars(tflite.BuiltinOperator).items()
                 if not k.startswith("_")}
        names = []
        for s in range(m.SubgraphsLength()):
            sg = m.Subgraphs(s)
            for i in range(sg.OperatorsLength()):
                oc = m.OperatorCodes(sg.Operators(i).OpcodeIndex())
                code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
                names.append(codes.get(code, f"CUSTOM({code})"))
        return names
    interp = tf.lite.Interpreter(model_content=tfl_bytes)
    return [d["op_name"] for d in interp._get_ops_details()]


def check(name, path, x, io_type=tf.int8):
    data = open(path, "rb").read()
    ops = op_names(data)
    bad = sorted(set(ops) - ALLOWED_OPS)
    if bad:
        raise SystemExit(f"[{name}] unsupported ops emitted: {bad} (all: {ops})")
    if len(data) > MAX_BYTES:
        raise SystemExit(f"[{name}] {len(data)} bytes, over {MAX_BYTES}")

    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
        interp = Interpreter(
            model_path=path,
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    except ImportError:
        interp = tf.lite.Interpreter(model_path=path)
    interp.allocate_tensors()
    ind = interp.get_input_details()[0]
    outd = interp.get_output_details()[0]
    want = io_type.as_numpy_dtype
    for d in (ind, outd):
        if d["dtype"] != want:
            raise SystemExit(f"[{name}] {d['name']} is {d['dtype']}, not {want}")

    # a few real samples (quantised for an int8 input) and some random inputs
    rng = np.random.default_rng(0)
    if io_type == tf.int8:
        s, z = ind["quantization"]
        q_real = np.clip(np.round(x[:4] / s + z), -128, 127).astype(np.int8)
        q_rand = rng.integers(-128, 128, size=(4,) + tuple(ind["shape"][1:]),
                              dtype=np.int8)
    else:
        q_real = x[:4].astype(np.float32)
        q_rand = rng.standard_normal((4,) + tuple(ind["shape"][1:])).astype(np.float32)
    outs = []
    for q in np.concatenate([q_real, q_rand]):
        interp.set_tensor(ind["index"], q[None])
        interp.invoke()
        outs.append(interp.get_tensor(outd["index"]).copy())
    outs = np.stack(outs)
    for what, o in (("samples", outs[:4]), ("random inputs", outs[4:])):
        if np.all(o == o[0]):
            raise SystemExit(f"[{name}] output is constant across {what}")

    print(f"[{name}] {path}: {len(data)} bytes")
    print(f"    ops: {ops}")
    print(f"    input  {ind['name']}: {ind['shape'].tolist()} {want.__name__} "
          f"scale={ind['quantization'][0]:.6g} zp={ind['quantization'][1]}")
    print(f"    output {outd['name']}: {outd['shape'].tolist()} {want.__name__} "
          f"scale={outd['quantization'][0]:.6g} zp={outd['quantization'][1]}")


def make(name, out_dir):
    build, data_fn, loss, io_type = MODELS[name]
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    x, y = data_fn(N_TRAIN, rng)
    model = build()                  # free batch dimension for training
    train(name, model, x, y, loss)
    # Same architecture with batch 1 baked into the input, so that the
    # .tflite input shape is fully static (shape_signature has no -1).
    fixed = build(batch_size=1)
    fixed.set_weights(model.get_weights())
    calib, _ = data_fn(N_CALIB, np.random.default_rng(SEED + 1))
    tfl = to_int8_tflite(fixed, calib, io_type)
    path = os.path.join(out_dir, f"{name}.tflite")
    with open(path, "wb") as f:
        f.write(tfl)
    check(name, path, calib, io_type)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", metavar="MODEL",
                    help=f"models to build, of {', '.join(MODELS)} (default: all)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    args = ap.parse_args(argv)
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    os.makedirs(args.out, exist_ok=True)
    tf.config.experimental.enable_op_determinism()
    for name in args.models or list(MODELS):
        make(name, args.out)


if __name__ == "__main__":
    sys.exit(main())
