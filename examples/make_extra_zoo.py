#!/usr/bin/env python3
"""Build the models of issue #4's remaining gaps, each written to its folder under tests/models/:

- int16_extra/: 16x8 LOGISTIC and TANH (int16 activations), one model per operator and input
  range, so that the three input scalings of TFLite's Prepare are covered (a general scale and
  the two power-of-two scales the kernel takes as 3 << shift). The input has 4096 values: a
  test feeds every int16 value once, in 16 runs (TFLM's default arena is too small for 65536).
  tests/test_int16_activations.py.
- float_extra/: float32 TRANSPOSE_CONV, SVDF, UNIDIRECTIONAL_SEQUENCE_LSTM and resource
  variables, and hybrid models (float activations, int8 weights: dynamic-range quantization)
  with FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D and SVDF. tests/test_float_extra.py.

    python examples/make_extra_zoo.py                 # every model
    python examples/make_extra_zoo.py int16_tanh_16   # some of them
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models")
SEED = 13
MODELS = {}  # name -> (folder, builder() -> bytes)


def model(folder, name=None):
    def deco(fn):
        MODELS[name or fn.__name__] = (folder, fn)
        return fn
    return deco


def _convert(fn, shape, rep, mode, per_channel=True):
    """TFLiteConverter on a tf.function of one input: mode 'int16' (16x8, int16 input and
    output), 'float' (no quantization) or 'hybrid' (dynamic-range: int8 weights, float
    activations)."""
    import tensorflow as tf
    conc = tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32)]).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([conc])
    if mode == "int16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([r.astype(np.float32)] for r in rep)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    elif mode == "hybrid":  # only weights of 1024 values or more are quantized
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv._experimental_disable_per_channel = not per_channel
    return conv.convert()


def _int16_activation(kind, bound):
    """One int16 LOGISTIC or TANH (the model has one output: a concatenation would add a
    requantization of each)."""
    import tensorflow as tf
    rng = np.random.default_rng(SEED)
    rep = [rng.uniform(-bound, bound, (1, 4096)) for _ in range(16)]
    for r in rep:
        r[0, :2] = (-bound, bound)  # the calibrated range is exactly +-bound
    return _convert(tf.sigmoid if kind == "logistic" else tf.tanh, (1, 4096), rep, "int16")


# input range +-3: a general scale (multiplier and shift); +-8 (scale ~2^-12): the power-of-two
# case with shift 0; +-16 (~2^-11): TANH's power-of-two case with shift 1
for _kind, _bound in (("logistic", 3), ("logistic", 8), ("tanh", 3), ("tanh", 8), ("tanh", 16)):
    model("int16_extra", f"int16_{_kind}_{_bound}")(lambda k=_kind, b=_bound: _int16_activation(k, float(b)))


def _keras(build, shape, mode="float", lo=-2.0, hi=2.0, per_channel=True):
    """A Keras functional model of one batch-1 input, converted (float or hybrid)."""
    import keras
    keras.utils.set_random_seed(SEED)
    inp = keras.Input(shape, batch_size=1)
    m = keras.Model(inp, build(inp))
    rng = np.random.default_rng(SEED)
    rep = [rng.uniform(lo, hi, (1, *shape)) for _ in range(8)]
    return _convert(lambda x: m(x), (1, *shape), rep, mode, per_channel)


@model("float_extra")
def float_transpose_conv():
    """Two float TRANSPOSE_CONVs: stride 2 VALID with bias and RELU, stride 1 SAME without bias."""
    import keras
    from keras import layers
    rnd = keras.initializers.RandomUniform(-0.5, 0.5, seed=SEED)

    def build(x):
        y = layers.Conv2DTranspose(5, 3, strides=2, padding="valid", activation="relu", bias_initializer=rnd)(x)
        y = layers.Conv2DTranspose(4, (2, 3), strides=(1, 2), padding="same", use_bias=False)(y)
        return y
    return _keras(build, (4, 5, 3))


@model("float_extra")
def float_lstm():
    """A float tf_keras LSTM (fused by the converter into one UNIDIRECTIONAL_SEQUENCE_LSTM with
    float state), the whole sequence of hidden states as the output."""
    import tensorflow as tf
    import tf_keras
    tf_keras.utils.set_random_seed(SEED)
    inp = tf_keras.layers.Input(shape=(5, 6), batch_size=1)
    out = tf_keras.layers.LSTM(12, return_sequences=True)(inp)
    return tf.lite.TFLiteConverter.from_keras_model(tf_keras.Model(inp, out)).convert()


@model("float_extra")
def float_streaming_var():
    """make_stateful.py's streaming model in float32: a tf.Variable ring buffer of the last four
    frames (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, CALL_ONCE with a non-zero initial value)."""
    from make_stateful import streaming_converter
    return streaming_converter(SEED).convert()


def _svdf_model(depth, layers, seed, hybrid=()):
    """Float SVDF layers, (filters, memory, rank, activation, bias) each, written as a flatbuffer
    with LiteRT's schema classes: no converter emits SVDF. `hybrid`: per layer, None (float
    weights) or whether its input is quantized asymmetrically (int8 weights, per tensor)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S
    rng = np.random.default_rng(seed)
    tensors, buffers, ops = [], [S.BufferT()], []

    def tensor(name, shape, data=None, variable=False, int8=False):
        t = S.TensorT()
        t.name, t.shape, t.type, t.isVariable, t.buffer = name.encode(), list(shape), S.TensorType.FLOAT32, variable, 0
        if data is not None and int8:  # symmetric per-tensor int8
            scale = float(np.abs(data).max() / 127)
            t.type, t.quantization = S.TensorType.INT8, S.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [scale], [0]
            data = np.round(data / scale).astype(np.int8)
        if data is not None:
            b = S.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, data.dtype if int8 else np.float32).tobytes(),
                                   np.uint8).tolist()
            buffers.append(b)
            t.buffer = len(buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    x = first = tensor("input", (1, depth))
    for k, (filters, memory, rank, act, bias) in enumerate(layers):
        asym = hybrid[k] if k < len(hybrid) else None
        wf = tensor(f"svdf{k}/weights_feature", (filters, depth), rng.normal(0, 1 / np.sqrt(depth), (filters, depth)),
                    int8=asym is not None)
        wt = tensor(f"svdf{k}/weights_time", (filters, memory), rng.normal(0, 0.5, (filters, memory)),
                    int8=asym is not None)
        b = tensor(f"svdf{k}/bias", (filters // rank,), rng.normal(0, 0.2, filters // rank)) if bias else -1
        st = tensor(f"svdf{k}/state", (1, filters * memory), variable=True)
        y = tensor(f"svdf{k}/output", (1, filters // rank))
        op = S.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, [x, wf, wt, b, st], [y]
        op.builtinOptionsType = S.BuiltinOptions.SVDFOptions
        op.builtinOptions = S.SVDFOptionsT()
        op.builtinOptions.rank, op.builtinOptions.fusedActivationFunction = rank, act
        op.builtinOptions.asymmetricQuantizeInputs = bool(asym)
        ops.append(op)
        x, depth = y, filters // rank
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.SVDF
    code.version = 4 if hybrid else 1  # 4: asymmetric hybrid inputs
    sub = S.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs, sub.name = tensors, ops, [first], [x], b"main"
    m = S.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, [code], [sub], buffers
    m.description = b"tinycc examples/make_extra_zoo.py: float32 SVDF layers"
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@model("float_extra")
def float_svdf():
    """Two float SVDF layers: rank 2 with RELU and bias, rank 1 without activation or bias."""
    from ai_edge_litert.schema_py_generated import ActivationFunctionType as A
    return _svdf_model(10, [(8, 5, 2, A.RELU, True), (3, 4, 1, A.NONE, False)], SEED)


@model("float_extra")
def float_svdf_bias():
    """Two float SVDF layers with biases (TFLM's float SVDF needs one): rank 5 with RELU6 and a
    memory of 9 (LiteRT sums the rank and the memory in four lanes), then rank 1."""
    from ai_edge_litert.schema_py_generated import ActivationFunctionType as A
    return _svdf_model(9, [(10, 9, 5, A.RELU6, True), (4, 3, 1, A.NONE, True)], SEED + 1)


@model("float_extra")
def hybrid_svdf():
    """Two hybrid SVDF layers (int8 feature and time weights, float activations and state): the
    first quantizes its input asymmetrically (10 values: a vector part and a tail), the second
    symmetrically."""
    from ai_edge_litert.schema_py_generated import ActivationFunctionType as A
    return _svdf_model(10, [(8, 5, 2, A.RELU, True), (3, 9, 1, A.NONE, True)], SEED + 2, hybrid=(True, False))


@model("float_extra")
def hybrid_mlp():
    """Dynamic-range quantized (hybrid) fully-connected layers: int8 weights, float activations."""
    from keras import layers

    def build(x):  # 49 inputs: the quantization's vector part (48) and its scalar tail (1)
        y = layers.Dense(40, activation="relu")(layers.Flatten()(x))
        return layers.Dense(10)(layers.Dense(32, activation="relu6")(y))
    return _symmetric_second_fc(_keras(build, (7, 7), "hybrid"))


def _symmetric_second_fc(data: bytes) -> bytes:
    """The converter quantizes every hybrid FULLY_CONNECTED's input asymmetrically; the second
    one is set to the symmetric form (asymmetric_quantize_inputs false), which LiteRT also runs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S
    m = S.ModelT.InitFromPackedBuf(data, 0)
    fcs = [op for op in m.subgraphs[0].operators
           if m.operatorCodes[op.opcodeIndex].builtinCode == S.BuiltinOperator.FULLY_CONNECTED]
    fcs[1].builtinOptions.asymmetricQuantizeInputs = False
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@model("float_extra")
def hybrid_cnn():
    """Dynamic-range quantized convolutions and depthwise convolutions."""
    from keras import layers

    def build(x):
        y = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
        y = layers.DepthwiseConv2D(3, padding="same", activation="relu")(y)
        y = layers.Conv2D(16, 1, activation="relu")(y)
        return layers.Conv2D(8, 3, padding="valid")(y)
    return _keras(build, (12, 10, 3), "hybrid")


@model("float_extra")
def hybrid_depthwise():
    """A hybrid depthwise convolution (per-channel weights, as LiteRT requires) and a hybrid
    1x1 convolution."""
    from keras import layers

    def build(x):
        y = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        return layers.Conv2D(16, 1)(y)
    return _keras(build, (5, 6, 128), "hybrid")


@model("float_extra")
def hybrid_conv_per_tensor():
    """Hybrid convolutions with per-tensor weight scales (as kws_ref_model_float32 has them):
    a strided one and a dilated one; inputs of 693 and 540 values (not multiples of 8: the
    quantization's scalar tail)."""
    from keras import layers

    def build(x):
        y = layers.Conv2D(18, 3, strides=2, padding="same", activation="relu6")(x)
        return layers.Conv2D(12, 3, dilation_rate=2, padding="same")(y)
    return _keras(build, (11, 9, 7), "hybrid", per_channel=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", help="models to build (default: all)")
    ap.add_argument("-o", "--out", default=DEFAULT_OUT, help="the tests/models folder")
    args = ap.parse_args(argv)
    unknown = set(args.names) - set(MODELS)
    if unknown:
        sys.exit(f"unknown model(s): {', '.join(sorted(unknown))}; known: {', '.join(MODELS)}")
    for name in args.names or MODELS:
        folder, fn = MODELS[name]
        os.makedirs(os.path.join(args.out, folder), exist_ok=True)
        data = fn()
        path = os.path.join(args.out, folder, f"{name}.tflite")
        with open(path, "wb") as f:
            f.write(data)
        print(f"{path}: {len(data):,} bytes")


if __name__ == "__main__":
    main()
