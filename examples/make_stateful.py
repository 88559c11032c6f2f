#!/usr/bin/env python3
"""Build the stateful models: small int8 .tflite models whose state carries from one invoke to
the next, written to tests/models/stateful/. tests/test_stateful.py compiles each one and
compares a sequence of runs with LiteRT's reference kernels (and TFLM) invoked on the same
sequence.

- streaming_var: a tf.Module whose tf.Variable holds the last four input frames (a ring
  buffer), converted with resource variables and variable quantization: CALL_ONCE, VAR_HANDLE,
  READ_VARIABLE, ASSIGN_VARIABLE, its init subgraph assigning a non-zero starting value.
- lstm: a Keras LSTM layer (tf_keras), full int8: UNIDIRECTIONAL_SEQUENCE_LSTM with int8
  output state and int16 cell state, carried from one invoke to the next.
- svdf: two int8 SVDF layers (int16 time weights and state), written as a flatbuffer with
  LiteRT's schema classes: no converter emits a full-integer SVDF from Keras.

    python examples/make_stateful.py             # every model
    python examples/make_stateful.py svdf        # some of them
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models", "stateful")
SEED = 11
MODELS = {}


def model(fn):
    MODELS[fn.__name__] = fn
    return fn


def streaming_converter(seed: int):
    """A converter for a streaming model: a tf.Variable ring buffer of the last four frames
    (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, CALL_ONCE with a non-zero initial value),
    then a dense layer. make_extra_zoo.py converts it in float32."""
    import tensorflow as tf
    tf.random.set_seed(seed)

    class Streaming(tf.Module):
        def __init__(self):
            self.frames = tf.Variable(tf.random.uniform((1, 4, 6), -1.0, 1.0), trainable=False)
            self.w = tf.Variable(tf.random.normal((24, 5)) * 0.3)

        @tf.function(input_signature=[tf.TensorSpec((1, 6), tf.float32)])
        def __call__(self, x):
            frames = tf.concat([self.frames[:, 1:], x[:, None]], axis=1)
            self.frames.assign(frames)
            return tf.nn.relu(tf.matmul(tf.reshape(frames, (1, 24)), self.w))

    m = Streaming()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([m.__call__.get_concrete_function()], m)
    conv.experimental_enable_resource_variables = True
    return conv


@model
def streaming_var() -> bytes:
    import tensorflow as tf
    conv = streaming_converter(SEED)
    conv._experimental_variable_quantization = True  # the variable int8 too, not float
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(SEED)
    conv.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, 6)).astype(np.float32)]
                                           for _ in range(64))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


@model
def lstm() -> bytes:
    """A Keras LSTM (tf_keras: the converter fuses its LSTM layer into one
    UNIDIRECTIONAL_SEQUENCE_LSTM; Keras 3's is lowered to a while loop), full int8: the integer
    LSTM with int16 cell state. The output is the whole sequence of hidden states."""
    import tensorflow as tf
    import tf_keras
    tf_keras.utils.set_random_seed(SEED)
    inp = tf_keras.layers.Input(shape=(6, 8), batch_size=1)
    out = tf_keras.layers.LSTM(16, return_sequences=True)(inp)
    conv = tf.lite.TFLiteConverter.from_keras_model(tf_keras.Model(inp, out))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(SEED)
    conv.representative_dataset = lambda: ([rng.uniform(-2, 2, (1, 6, 8)).astype(np.float32)]
                                           for _ in range(64))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


# --- SVDF, by hand ------------------------------------------------------------------------------

def _svdf_float(x_seq, wf, wt, bias, rank):
    """Float SVDF over a sequence (TFLite's EvalFloatSVDF): the ranges for the quantization."""
    filters, memory = wt.shape
    state = np.zeros((filters, memory))
    feats, outs = [], []
    for x in x_seq:
        state = np.roll(state, -1, axis=1)
        state[:, -1] = wf @ x
        feats.append(state[:, -1].copy())
        outs.append((state * wt).sum(1).reshape(-1, rank).sum(1) + bias)
    return np.array(feats), np.array(outs)


def _svdf_layers(rng, depth, layers, steps=200):
    """Float weights of stacked SVDF layers, and each layer's input/state/output ranges."""
    x_seq = rng.uniform(-1.5, 1.5, (steps, depth))
    out = []
    for filters, memory, rank in layers:
        wf = rng.normal(0, 1 / np.sqrt(depth), (filters, depth))
        wt = rng.normal(0, 0.5, (filters, memory))
        bias = rng.normal(0, 0.2, filters // rank)
        feats, y = _svdf_float(x_seq, wf, wt, bias, rank)
        out.append(dict(wf=wf, wt=wt, bias=bias, rank=rank, x=x_seq, feats=feats, y=y))
        x_seq, depth = y, filters // rank
    return out


@model
def svdf() -> bytes:
    from ai_edge_litert import schema_py_generated as S
    rng = np.random.default_rng(SEED)
    layers = _svdf_layers(rng, 16, [(16, 6, 2), (4, 4, 1)])
    tensors, buffers, ops = [], [S.BufferT()], []

    def tensor(name, shape, ttype, scale=None, zp=0, data=None, variable=False):
        t = S.TensorT()
        t.name, t.shape, t.type, t.isVariable = name.encode(), list(shape), ttype, variable
        if scale is not None:
            t.quantization = S.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [float(scale)], [int(zp)]
        t.buffer = 0
        if data is not None:
            b = S.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8).tolist()
            buffers.append(b)
            t.buffer = len(buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    def asym(lo, hi):  # int8 scale and zero point covering [lo, hi] (and 0)
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        scale = (hi - lo) / 255
        return scale, int(np.clip(round(-128 - lo / scale), -128, 127))

    x_scale, x_zp = asym(layers[0]["x"].min(), layers[0]["x"].max())
    x = tensor("input", (1, 16), S.TensorType.INT8, x_scale, x_zp)
    first = x
    for k, L in enumerate(layers):
        filters, memory = L["wt"].shape
        wf_scale = np.abs(L["wf"]).max() / 127
        wt_scale = np.abs(L["wt"]).max() / 32767
        state_scale = np.abs(L["feats"]).max() * 1.25 / 32767
        y_scale, y_zp = asym(L["y"].min(), L["y"].max())
        wf = tensor(f"svdf{k}/weights_feature", L["wf"].shape, S.TensorType.INT8, wf_scale, 0,
                    np.round(L["wf"] / wf_scale).astype(np.int8))
        wt = tensor(f"svdf{k}/weights_time", L["wt"].shape, S.TensorType.INT16, wt_scale, 0,
                    np.round(L["wt"] / wt_scale).astype(np.int16))
        b = tensor(f"svdf{k}/bias", L["bias"].shape, S.TensorType.INT32, state_scale * wt_scale, 0,
                   np.round(L["bias"] / (state_scale * wt_scale)).astype(np.int32))
        st = tensor(f"svdf{k}/state", (1, filters * memory), S.TensorType.INT16, state_scale, 0,
                    variable=True)
        y = tensor(f"svdf{k}/output", (1, filters // L["rank"]), S.TensorType.INT8, y_scale, y_zp)
        op = S.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, [x, wf, wt, b, st], [y]
        op.builtinOptionsType = S.BuiltinOptions.SVDFOptions
        op.builtinOptions = S.SVDFOptionsT()
        op.builtinOptions.rank = L["rank"]
        # LiteRT's integer SVDF requires RELU, then only clamps to int8 (as TFLM does)
        op.builtinOptions.fusedActivationFunction = S.ActivationFunctionType.RELU
        ops.append(op)
        x = y
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.SVDF
    code.version = 3  # int8 SVDF
    sub = S.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs, sub.name = tensors, ops, [first], [x], b"main"
    m = S.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, [code], [sub], buffers
    m.description = b"tinycc examples/make_stateful.py: two int8 SVDF layers"
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


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


if __name__ == "__main__":
    main()
