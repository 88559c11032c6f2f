#!/usr/bin/env python3
"""Build the small int8 models that exercise the 3x3 depthwise kernels' shapes the MLPerf Tiny
models do not (the 'pairs' kernel of tinycc_nn.h: odd and even line lengths, stride 1 and 2
along and across its lines, SAME and VALID padding, sweeps along rows and along columns,
an input longer than the lines need, ReLU6 and no activation; Kx1 and 1xK windows), written
to tests/models/dw/
(tests/test_depthwise.py runs them on the host, Cortex-M3 and Cortex-M4).

Same conversion as examples/make_cmsis_nn_models.py (Keras, batch-1 signature, full int8).

    python examples/make_dw_zoo.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from keras import layers  # noqa: E402

import make_cmsis_nn_models as cm  # noqa: E402

OUT = os.path.join(HERE, "..", "tests", "models", "dw")
cm.MODELS.clear()


@cm.model("dw_rows", (9, 11, 8))
def _(x):
    a = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)   # 9x11: odd lines, pad 1
    b = layers.DepthwiseConv2D(3, padding="valid", strides=2)(a)            # 4x5: stride 2 both ways
    return layers.DepthwiseConv2D(3, padding="same", strides=(1, 2))(b)    # 4x3, input longer than lines


@cm.model("dw_columns", (21, 4, 12))
def _(x):
    a = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)    # 21x4: swept along columns
    b = layers.DepthwiseConv2D(3, padding="same", strides=(2, 1))(a)       # 11x4, stride 2 along columns
    return layers.DepthwiseConv2D(3, padding="valid", strides=(1, 3))(b)   # 9x1, stride 3 across lines


@cm.model("dw_even", (8, 10, 4))
def _(x):
    a = layers.DepthwiseConv2D(3, padding="same", strides=2)(x)            # 4x5 from even sizes, pad 0/1
    return layers.DepthwiseConv2D(3, padding="same", activation="relu")(a)


@cm.model("dw_kx1", (21, 3, 8))
def _(x):
    a = layers.DepthwiseConv2D((5, 1), padding="same", activation="relu")(x)  # 21x3: Kx1, padding along
    b = layers.DepthwiseConv2D((1, 2), padding="valid", strides=(2, 1))(a)    # 11x2: 1xK, stride 2 across
    return layers.DepthwiseConv2D((10, 1), padding="valid")(b)                # 2x2: 10 taps


def main() -> int:
    os.makedirs(OUT, exist_ok=True)
    for name in cm.MODELS:
        data = cm.convert(name)
        with open(os.path.join(OUT, f"{name}.tflite"), "wb") as f:
            f.write(data)
        print(f"{name:22s} {len(data):6d} B  {' '.join(cm.zoo.op_names(data))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
