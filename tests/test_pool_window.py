"""Pooling over a 1x1 window (a strided subsample, as in ResNet shortcuts) and reductions over
axes of extent 1 (a MEAN over a 1x1 map): TVM 0.27 lowered a one-element reduction so that every
output read the accumulator before its update."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tinycc import emit
from tinycc import kernels as K
from tinycc.ir import Operator
from tinycc.lower import Kernel
from tinycc.toolchain import C_FLAGS


def _run(func, x, n, tmp_path):
    k = Kernel("pool", Operator(0, "MAX_POOL_2D", [0], [1]), func, [0], 1)
    params, body = emit.generate_kernels_c([k])["pool"]
    src = (f"#include <stdint.h>\n#include <stdbool.h>\n#include <stdio.h>\n"
           f"static void pool({emit.constify(params)}) {{\n{body}}}\n"
           f"static const int8_t xs[] = {{{', '.join(map(str, x.ravel()))}}};\n"
           f"static int8_t o[{n}];\n"
           f"int main(void) {{ int i; pool(xs, o); for (i = 0; i < {n}; ++i) printf(\"%d\\n\", o[i]); "
           "return 0; }\n")
    (tmp_path / "p.c").write_text(src)
    subprocess.run(["gcc", *C_FLAGS, "-O2", str(tmp_path / "p.c"), "-o", str(tmp_path / "p")], check=True)
    return np.array(subprocess.run([str(tmp_path / "p")], check=True, capture_output=True,
                                   text=True).stdout.split(), dtype=np.int64)


@pytest.mark.parametrize("kind", ["max", "average"])
def test_one_by_one_window_pool(kind, tmp_path):
    shape, out = (1, 6, 7, 4), (1, 3, 4, 4)
    build = K.max_pool if kind == "max" else K.average_pool
    x = np.random.default_rng(0).integers(-128, 128, shape).astype(np.int8)
    got = _run(build(shape, out, (1, 1), (2, 2), (0, 0), -100, 100), x, int(np.prod(out)), tmp_path)
    want = np.clip(x[:, ::2, ::2, :].astype(np.int64), -100, 100).ravel()
    assert got.tolist() == want.tolist()


def test_reductions_over_axes_of_extent_one(tmp_path):
    shape = (1, 1, 1, 8)
    x = np.random.default_rng(1).integers(-128, 128, shape).astype(np.int8)
    got = _run(K.reduce_max(shape, [1, 2], (1, 8)), x, 8, tmp_path)
    assert got.tolist() == x.reshape(-1).tolist()
    got = _run(K.mean(shape, [1, 2], (1, 8), "truncate", 0, 0, 1), x, 8, tmp_path)
    assert got.tolist() == x.reshape(-1).tolist()
