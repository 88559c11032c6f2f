#!/usr/bin/env python3
"""Build the convolution / fully-connected tiling models (issue 5's kernels), written to
tests/models/gemm/: shapes that reach every edge of the 2x3 convolution tiles and the 4-row
fully-connected blocks (odd channel counts, an odd number of 4-value groups, one group only,
pixel counts that are not multiples of 3, depths that are not multiples of 4). The models are
built and converted as examples/make_op_zoo.py does; tests/test_gemm.py runs them.

    python examples/make_gemm_zoo.py
"""

import os
import sys

import make_op_zoo as zoo
from make_op_zoo import conv, layers, model

OUT = os.path.join(zoo.HERE, "..", "tests", "models", "gemm")


@model("gemm_tiles", (7, 8, 4))
def _(x):
    a = conv(5, 3, activation="relu")(x)                # 3x3: 36 values (9 groups), 5 channels, 56 pixels
    b = layers.Conv2D(12, 1, strides=2)(x)              # 1x1 stride 2: one group of 4
    b = conv(7, 1, activation="relu")(b)                # 12 values (3 groups), 7 channels, 16 pixels
    y = layers.Concatenate()([layers.GlobalAveragePooling2D()(a), layers.Flatten()(b)])  # 117 values
    y = layers.Dense(8, activation="relu")(y)           # depth 117: not a multiple of 4
    y = layers.Dense(12)(y)                             # depth 8, 12 rows
    return layers.Dense(7)(y)                           # depth 12, 7 rows: a partial block


@model("gemm_taps", (9, 8, 1))
def _(x):
    a = conv(6, (3, 4), strides=2)(x)                   # 1 channel: rows of 4 values, padded taps
    a = conv(4, 3, activation="relu")(a)                # 6 channels: taps of 6 values, gathered first
    return layers.Dense(5)(layers.Flatten()(a))


def main(argv=None):
    os.makedirs(OUT, exist_ok=True)
    for name in argv or ["gemm_tiles", "gemm_taps"]:
        zoo.make(name, OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
