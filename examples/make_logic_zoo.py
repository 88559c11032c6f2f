#!/usr/bin/env python3
"""Build the logic zoo: small .tflite models with bool and int32 tensors (comparisons, logic,
ARG_MAX / ARG_MIN, SELECT_V2, CAST) and the data operators (BROADCAST_TO, ZEROS_LIKE,
REVERSE_V2, GATHER_ND, ...), written to tests/models/logic/. tests/test_logic_ops.py compiles
every one and compares it byte for byte with LiteRT's reference kernels.

Each model is a tf.function with a batch-1 input signature, converted by TFLiteConverter:
"int8" models fully to int8 with a representative dataset (int8 input; a bool or int32 output
stays as it is), "float" models as they are (float32, int32 or bool input).

    python examples/make_logic_zoo.py               # every model
    python examples/make_logic_zoo.py argmax_int8   # some of them
    python examples/make_logic_zoo.py --list        # names and the operators each one has
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo_rewrite  # noqa: E402
from make_op_zoo import op_names  # noqa: E402
from tensorflow.lite.python import schema_py_generated as fb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "tests", "models", "logic")
SEED = 11

# name -> (input shape with batch, input dtype, builder(x) -> y, "int8" or "float")
ZOO = {}


def model(name, shape, dtype=tf.float32, kind="float"):
    def deco(fn):
        ZOO[name] = (shape, dtype, fn, kind)
        return fn
    return deco


def _const(shape, lo=-1.0, hi=1.0, seed=0):
    return tf.constant(np.random.default_rng(SEED + seed).uniform(lo, hi, shape).astype(np.float32))


def _conv(x, ch, seed=0):
    w = _const((3, 3, x.shape[-1], ch), -0.5, 0.5, seed)
    return tf.nn.conv2d(x, w, 1, "SAME")


# --- ARG_MAX / ARG_MIN ------------------------------------------------------------------------

@model("argmax_int8", (1, 6, 6, 3), kind="int8")
def _(x):
    """A tiny classifier head per pixel: int8 convolution -> ARG_MAX over channels (int32)."""
    return tf.math.argmax(tf.nn.relu(_conv(x, 5)), axis=-1, output_type=tf.int32)


@model("argmin_int8", (1, 7, 9), kind="int8")
def _(x):
    """ARG_MIN along axis 1, int64 result (TensorFlow's default)."""
    return tf.math.argmin(x, axis=1)


@model("argmax_float", (1, 5, 8))
def _(x):
    """float32 ARG_MAX along the middle axis, int64 (the tests' inputs include ties)."""
    return tf.math.argmax(tf.maximum(x * 2.0, -1.0), axis=1)


# --- comparisons and logic ----------------------------------------------------------------------

@model("compare_int8", (1, 5, 5, 4), kind="int8")
def _(x):
    """GREATER, LESS_EQUAL, EQUAL on int8 tensors of different scales, LOGICAL_AND / OR."""
    a = _conv(x, 4)
    b = tf.nn.max_pool2d(x, 3, 1, "SAME")                  # equal to x where x is the window max
    m = tf.reduce_mean(x, axis=[1, 2], keepdims=True)      # broadcast (1,1,1,4)
    return tf.logical_or(tf.logical_and(tf.greater(x, a), tf.less_equal(a, m)), tf.equal(x, b))


@model("compare2_int8", (1, 6, 8), kind="int8")
def _(x):
    """NOT_EQUAL, GREATER_EQUAL, LESS against a constant and a broadcast row, LOGICAL_NOT."""
    row = tf.reduce_max(x, axis=1, keepdims=True)           # (1,1,8)
    c = _const((8,), -2.0, 2.0, 3)
    return tf.logical_or(tf.logical_and(tf.not_equal(x, row), tf.greater_equal(x, c)),
                         tf.logical_not(tf.less(x * 0.5, c)))


@model("compare_rounding_int8", (1, 8), kind="int8")
def _(x):
    """EQUAL and GREATER_EQUAL of the input and a constant, quantized (rewrite below) with
    scales where rescaling with single rounding would give other answers than double rounding
    (found by search): the tests tell which one the reference uses."""
    c = _const((8,), -0.5, 0.5, 9)
    return tf.concat([tf.equal(x, c), tf.greater_equal(x, c)], axis=1)


@model("compare3_int8", (1, 5, 6), kind="int8")
def _(x):
    """LESS and NOT_EQUAL on int8 (the second against a max pool: equal where x is the max;
    rewritten below to run on the int8 tensors)."""
    p = tf.nn.max_pool1d(x, 3, 1, "SAME")
    return tf.logical_and(tf.less(x, _conv1(x)), tf.not_equal(x, p))


def _conv1(x):
    return tf.nn.conv1d(x, _const((1, x.shape[-1], x.shape[-1]), -0.5, 0.5, 10), 1, "SAME")


@model("compare_float", (1, 4, 6))
def _(x):
    """All six comparisons on float32, with broadcasting; the output is bool (the tests'
    inputs include whole numbers, so that values compare equal)."""
    r = tf.maximum(x, -1.0)
    c = tf.constant([[0.0], [1.0], [-1.0], [0.5]])          # (4,1)
    e = tf.logical_or(tf.equal(r, c), tf.not_equal(r, tf.reverse(r, [2])))
    g = tf.logical_and(tf.greater(x, c), tf.greater_equal(r, 0.0))
    s = tf.logical_or(tf.less(x, -c), tf.less_equal(r, tf.reduce_max(r, axis=2, keepdims=True) - 1.0))
    return tf.logical_and(tf.logical_or(e, g), tf.logical_not(s))


@model("compare_int32", (1, 12), tf.int32)
def _(x):
    """int32 comparisons against constants and a reversed copy."""
    y = tf.reverse(x, [1])
    return tf.logical_or(tf.logical_and(tf.greater(x, y), tf.less(x, 50)), tf.equal(x, -2))


@model("bool_layout", (1, 4, 6))
def _(x):
    """bool masks moved by the layout operators: TRANSPOSE, CONCATENATION, SLICE, PAD."""
    m = x > 0.0
    t = tf.transpose(m, [0, 2, 1])                                   # (1,6,4)
    c = tf.concat([t[:, 1:5, :], tf.logical_not(t[:, 0:4, :])], axis=2)   # (1,4,8)
    return tf.pad(c, [[0, 0], [1, 0], [0, 2]])


@model("int32_layout", (1, 4, 6))
def _(x):
    """int32 indices moved by the layout operators: CONCATENATION, STRIDED_SLICE, PACK, GATHER."""
    a = tf.math.argmax(x, axis=2, output_type=tf.int32)             # (1,4)
    b = tf.math.argmin(x, axis=2, output_type=tf.int32)
    c = tf.concat([a, b], axis=1)                                    # (1,8)
    d = tf.stack([c, c[:, ::-1]], axis=1)                            # (1,2,8)
    return tf.gather(d, [7, 0, 3], axis=2)


@model("compare_int64", (1, 9), tf.int64)
def _(x):
    """int64 input: comparisons with a reversed copy and a constant, CAST to int32 output."""
    m = tf.logical_or(tf.greater_equal(x, tf.reverse(x, [1])), tf.equal(x, 2))
    return tf.cast(m, tf.int32)


@model("select_int8", (1, 6, 6, 4), kind="int8")
def _(x):
    """SELECT_V2 on int8 values, the condition broadcast from (1,1,1,4)."""
    cond = tf.greater(tf.reduce_mean(x, axis=[1, 2], keepdims=True), 0.0)
    return tf.where(cond, x, tf.nn.relu(x))


@model("select_float", (1, 5, 6))
def _(x):
    """SELECT_V2 on float32 with a full-shape condition and a broadcast operand."""
    return tf.where(x > 0.25, x * 3.0, tf.reduce_max(x, axis=1, keepdims=True) - 1.0)


@model("reduce_bool", (1, 4, 6), tf.bool)
def _(x):
    """REDUCE_ANY and REDUCE_ALL over a bool input, LOGICAL_NOT."""
    return tf.logical_and(tf.reduce_any(x, axis=1), tf.logical_not(tf.reduce_all(x, axis=1)))


@model("cast", (1, 10), tf.int32)
def _(x):
    """CAST int32 -> float32 -> int32 (truncation toward zero), int32 -> bool -> int32."""
    t = tf.cast(tf.cast(x, tf.float32) * 0.37, tf.int32)
    return tf.cast(tf.logical_and(tf.cast(x, tf.bool), tf.not_equal(t, 1)), tf.int32)


# --- data operators --------------------------------------------------------------------------

@model("reverse_int8", (1, 4, 5, 3), kind="int8")
def _(x):
    """REVERSE_V2 over two axes of an int8 tensor."""
    return tf.reverse(tf.nn.relu(x), [1, 2])


@model("broadcast_to", (1, 1, 6))
def _(x):
    """BROADCAST_TO of an input, FILL with a computed value (float32)."""
    b = tf.broadcast_to(x, (2, 3, 6))
    f = tf.fill([2, 3, 6], tf.reduce_max(x))
    return b * 2.0 + f


@model("broadcast_to_int8", (1, 5, 1), kind="int8")
def _(x):
    return tf.broadcast_to(x, (1, 5, 4))


@model("gather_nd", (1, 4, 5, 3))
def _(x):
    """GATHER_ND with constant indices picking (h, w) positions."""
    idx = tf.constant([[0, 1, 2], [0, 3, 0], [0, 0, 4], [0, 1, 2]], tf.int32)
    return tf.gather_nd(x, idx)


@model("gather_nd_int8", (1, 6, 4), kind="int8")
def _(x):
    idx = tf.constant([[[0, 5], [0, 0]], [[0, 2], [0, 2]]], tf.int32)
    return tf.gather_nd(x, idx)


@model("gather_nd_runtime", (1, 5, 4))
def _(x):
    """GATHER_ND at indices computed at run time: the row holding the largest value."""
    row = tf.math.argmax(tf.reduce_max(x, axis=2), axis=1, output_type=tf.int32)
    return tf.gather_nd(tf.reshape(x, [5, 4]), tf.reshape(row, [1, 1])) * 2.0


@model("gather_ids", (1, 6), tf.int32)
def _(ids):
    """GATHER of table rows at int32 ids given at run time (how the converter writes an
    embedding layer), float32 rows."""
    return tf.gather(_const((10, 4), -1.0, 1.0, 12), ids)


@model("gather_ids_int8", (7,), tf.int32, kind="int8")
def _(ids):
    """The same with an int8 table, in an int8 model."""
    return tf.gather(_const((9, 3), -1.0, 1.0, 13), ids) * 2.0


@model("embedding_lookup", (6,), tf.int32)
def _(ids):
    """A table lookup of int32 ids, float32 rows: the converter writes GATHER, the rewrite
    below the EMBEDDING_LOOKUP that older converters and hand-built models carry."""
    table = _const((10, 4), -1.0, 1.0, 5)
    return tf.gather(table, ids)


@model("embedding_lookup_int8", (5,), tf.int32, kind="int8")
def _(ids):
    """EMBEDDING_LOOKUP of an int8 table (rows quantized with the model), int8 rows out."""
    table = _const((7, 6), -1.0, 1.0, 8)
    return tf.nn.relu(tf.gather(table, ids) * 3.0)


@model("fill", (1, 3, 4))
def _(x):
    """A FILL of a computed value (rewritten below: the converter broadcasts the scalar)."""
    return x * 2.0 + tf.reduce_max(x)


@model("fill_zeros", (1, 3, 4))
def _(x):
    """Rewritten below: the constants become ZEROS_LIKE(x) and FILL(dims, 1.5), which tinycc
    folds at import."""
    return tf.maximum(x, _const((1, 3, 4), 0.5, 1.0, 6)) + _const((1, 3, 4), -1.0, 1.0, 7)


@model("dynamic_update_slice", (1, 6, 5))
def _(x):
    """DYNAMIC_UPDATE_SLICE of a computed block into the input at constant indices."""
    from tensorflow.compiler.tf2xla.python import xla
    upd = x[:, 0:2, 0:3] * 2.0
    return xla.dynamic_update_slice(x, upd, tf.constant([0, 3, 1], tf.int32))


@model("dynamic_update_slice_runtime", (1, 6, 5))
def _(x):
    """DYNAMIC_UPDATE_SLICE at a row computed at run time (the ARG_MAX of the row maxima, so
    that the start is clamped when the update would not fit)."""
    from tensorflow.compiler.tf2xla.python import xla
    row = tf.math.argmax(tf.reduce_max(x, axis=2), axis=1, output_type=tf.int32)
    return xla.dynamic_update_slice(x, x[:, 0:3, 0:2] * -2.0, tf.stack([0, row[0], 2]))


@model("broadcast_args", (1, 1, 4))
def _(x):
    """BROADCAST_ARGS of two constant shapes feeding BROADCAST_TO (the converter folds it; the
    rewrite below puts it back)."""
    s = tf.raw_ops.BroadcastArgs(s0=tf.shape(x), s1=tf.constant([3, 1], tf.int32))
    return tf.broadcast_to(x, s)


# --- rewrites: operators today's converter folds away or writes otherwise ------------------------

def _model_t(data):
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    return m, m.subgraphs[0]


def _find(m, sg, code):
    return next(k for k, op in enumerate(sg.operators) if m.operatorCodes[op.opcodeIndex].builtinCode == code
                or m.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode == code)


def _insert(m, sg, at, code, inputs, like, name, shape, dtype=None):
    """A new operator before operator `at` writing a new tensor shaped like tensor `like`."""
    out = zoo_rewrite._like(sg, like, name, shape)
    if dtype is not None:
        sg.tensors[out].type, sg.tensors[out].quantization = dtype, None
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = zoo_rewrite._opcode(m, code), list(inputs), [out]
    sg.operators.insert(at, op)
    return out


def _f32_const(m, sg, name, values):
    k = zoo_rewrite._const(m, sg, name, np.zeros(np.shape(values), np.int32))
    m.buffers[sg.tensors[k].buffer].data = np.asarray(values, np.float32).tobytes()
    sg.tensors[k].type = fb.TensorType.FLOAT32
    return k


def rewrite_embedding_lookup(data):
    m, sg = _model_t(data)
    op = sg.operators[_find(m, sg, fb.BuiltinOperator.GATHER)]
    op.opcodeIndex = zoo_rewrite._opcode(m, fb.BuiltinOperator.EMBEDDING_LOOKUP)
    op.inputs = [op.inputs[1], op.inputs[0]]  # (ids, table)
    op.builtinOptionsType, op.builtinOptions = 0, None
    return zoo_rewrite._pack(m)


def rewrite_fill(data):
    m, sg = _model_t(data)
    k = _find(m, sg, fb.BuiltinOperator.ADD)
    add = sg.operators[k]
    scalar = next(i for i in add.inputs if not list(sg.tensors[i].shape))
    full = next(i for i in add.inputs if i != scalar)
    dims = zoo_rewrite._const(m, sg, "fill_dims", list(sg.tensors[full].shape))
    filled = _insert(m, sg, k, fb.BuiltinOperator.FILL, [dims, scalar], full, "filled", sg.tensors[full].shape)
    add.inputs = [full, filled]
    return zoo_rewrite._pack(m)


def rewrite_fill_zeros(data):
    m, sg = _model_t(data)
    x = sg.inputs[0]
    shape = list(sg.tensors[x].shape)
    k = _find(m, sg, fb.BuiltinOperator.MAXIMUM)
    mul = sg.operators[k]
    zeros = _insert(m, sg, k, fb.BuiltinOperator.ZEROS_LIKE, [x], x, "zeros", shape)
    mul.inputs = [i if i == x else zeros for i in mul.inputs]
    k = _find(m, sg, fb.BuiltinOperator.ADD)
    add = sg.operators[k]
    dims = zoo_rewrite._const(m, sg, "fill_dims", shape)
    value = _f32_const(m, sg, "fill_value", 1.5)
    filled = _insert(m, sg, k, fb.BuiltinOperator.FILL, [dims, value], x, "filled", shape)
    add.inputs = [add.inputs[0] if add.inputs[0] == mul.outputs[0] else add.inputs[1], filled]
    return zoo_rewrite._pack(m)


def rewrite_broadcast_args(data):
    m, sg = _model_t(data)
    k = _find(m, sg, fb.BuiltinOperator.BROADCAST_TO)
    op = sg.operators[k]
    s0 = zoo_rewrite._const(m, sg, "shape_a", list(sg.tensors[op.inputs[0]].shape))
    s1 = zoo_rewrite._const(m, sg, "shape_b", [3, 1])
    shape = _insert(m, sg, k, fb.BuiltinOperator.BROADCAST_ARGS, [s0, s1], op.inputs[1], "shape",
                    [3], fb.TensorType.INT32)
    op.inputs = [op.inputs[0], shape]
    return zoo_rewrite._pack(m)


def rewrite_int8_comparisons(data):
    """The converter leaves NOT_EQUAL in float (DEQUANTIZE -> NOT_EQUAL); TFLite's kernel takes
    the int8 tensors directly."""
    m, sg = _model_t(data)
    deq = {op.outputs[0]: op for op in sg.operators
           if m.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.DEQUANTIZE}
    for op in sg.operators:
        if m.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.NOT_EQUAL:
            op.inputs = [deq[i].inputs[0] if i in deq else i for i in op.inputs]
    used = {i for op in sg.operators for i in op.inputs}
    sg.operators = [op for op in sg.operators if not (op.outputs[0] in deq and op.outputs[0] not in used)]
    return zoo_rewrite._pack(m)


# (scale, zero point) of the input and of the constant, and the constant's values
ROUNDING_CASE = ((0.016014203429222107, 4), (0.003346310229972005, -3), [-123, -122, -75, -74, -26, 0, 50, -100])


def rewrite_compare_rounding(data):
    m, sg = _model_t(data)
    (sa, za), (sb, zb), values = ROUNDING_CASE
    x = sg.inputs[0]
    for op in sg.operators:
        if m.operatorCodes[op.opcodeIndex].builtinCode in (fb.BuiltinOperator.EQUAL, fb.BuiltinOperator.GREATER_EQUAL):
            a, b = op.inputs
            assert a == x and sg.tensors[b].buffer, "the comparison reads the input and a constant"
            q = sg.tensors[b].quantization
            q.scale, q.zeroPoint = [sb], [zb]
            m.buffers[sg.tensors[b].buffer].data = np.asarray(values, np.int8).tobytes()
    q = sg.tensors[x].quantization
    q.scale, q.zeroPoint = [sa], [za]
    return zoo_rewrite._pack(m)


REWRITES = {"compare_rounding_int8": rewrite_compare_rounding, "compare3_int8": rewrite_int8_comparisons,
            "embedding_lookup": rewrite_embedding_lookup,
            "embedding_lookup_int8": rewrite_embedding_lookup, "fill": rewrite_fill, "fill_zeros": rewrite_fill_zeros,
            "broadcast_args": rewrite_broadcast_args}


@model("select_v1", (4, 5))
def _(x):
    """SELECT (version 1) with a rank-1 condition that picks whole rows."""
    cond = tf.reduce_max(x, axis=1) > 0.5
    return tf.raw_ops.Select(condition=cond, x=x, y=x * -2.0)


@model("cast_float", (1, 8))
def _(x):
    """CAST float32 -> bool, -> int8 (truncation toward zero), int8 -> float32, bool -> float32."""
    whole = tf.cast(tf.cast(x, tf.int8), tf.float32)
    return tf.where(tf.cast(x, tf.bool), whole, tf.cast(x > 1.0, tf.float32) + 0.5)


def _rep(shape, dtype):
    rng = np.random.default_rng(SEED)

    def rep_data():
        for _ in range(64):
            if dtype == tf.int32:  # ids
                yield [rng.integers(0, 7, shape).astype(np.int32)]
            else:
                yield [rng.uniform(-3, 3, shape).astype(np.float32)]
    return rep_data


def to_tflite(name):
    shape, dtype, fn, kind = ZOO[name]
    f = tf.function(fn, input_signature=[tf.TensorSpec(shape, dtype)])
    c = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], None)
    if kind == "int8":
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = _rep(shape, dtype)
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = tf.int8
        c.inference_output_type = tf.int8
    return c.convert()


def make(name, out_dir):
    data = to_tflite(name)
    if name in REWRITES:
        data = REWRITES[name](data)
    path = os.path.join(out_dir, f"{name}.tflite")
    with open(path, "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} B, {', '.join(op_names(data))}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*")
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--list", action="store_true")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    tf.random.set_seed(SEED)
    for name in args.names or ZOO:
        if args.list:
            print(name, ZOO[name][3])
            continue
        make(name, args.out)


if __name__ == "__main__":
    main()
