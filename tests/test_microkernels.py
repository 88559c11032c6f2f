"""runtime/kernels/tinycc_nn.h against the Python ports of TFLite's arithmetic (tinycc.quant),
built for the host (plain C) and for Cortex-M4 in QEMU (the SXTB16/SMLAD paths)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from tinycc import quant
from tinycc.toolchain import RUNTIME_DIR

import _cbuild

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
EDGES = [INT32_MIN, INT32_MIN + 1, -(1 << 30) - 1, -(1 << 30), -65537, -3, -2, -1, 0, 1, 2, 3,
         65535, (1 << 30), INT32_MAX - 1, INT32_MAX]


def _cases(seed=0, n=4000):
    rng = np.random.default_rng(seed)
    xs = EDGES + [int(v) for v in rng.integers(INT32_MIN, INT32_MAX, n)] + \
        [int(v) for v in rng.integers(-(1 << 20), 1 << 20, n)]
    cases = []
    for i, x in enumerate(xs):
        m = [0, 1, 1 << 30, INT32_MAX, int(rng.integers(1 << 30, 1 << 31))][i % 5]
        shift = [-31, -20, -7, -1, 0, 1, 5, 30][i % 8]
        cases.append((x, m, shift))
    return cases


def _program(cases) -> str:
    rows = ",\n".join(f"{{{x}, {m}, {s}}}" for x, m, s in cases)
    return f"""#include <stdio.h>
#include "tinycc_nn.h"
static const int64_t cases[][3] = {{ {rows} }};
int main(void) {{
    unsigned i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {{
        int32_t x = (int32_t)cases[i][0], m = (int32_t)cases[i][1], s = (int32_t)cases[i][2];
        printf("%ld %ld %ld\\n", (long)tinycc_srdhm(x, m),
               (long)tinycc_rounding_divide_by_pot(x, (s < 0 ? -s : s) % 32),
               (long)(s <= 30 && s >= -31 ? tinycc_requantize_single(x >> (s > 0 ? s + 1 : 0), m, s) : 0));
    }}
    return 0;
}}
"""


def _expected(cases):
    out = []
    for x, m, s in cases:
        single = quant.mul_by_quantized_multiplier(x >> (s + 1 if s > 0 else 0), m, s, "single")
        out.append((quant.srdhm(x, m), quant.rounding_divide_by_pot(x, abs(s) % 32), single))
    return out


def test_fixed_point_on_host(tmp_path):
    cases = _cases()
    (tmp_path / "t.c").write_text(_program(cases))
    exe = tmp_path / "t"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", "-I", str(RUNTIME_DIR / "kernels"), str(tmp_path / "t.c"),
                    "-o", str(exe)], check=True)
    got = [tuple(int(v) for v in line.split()) for line in
           subprocess.run([exe], check=True, capture_output=True, text=True).stdout.splitlines()]
    assert got == _expected(cases)


def test_double_requantize_matches_gemmlowp(tmp_path):
    rng = np.random.default_rng(1)
    cases = [(int(x), int(m), int(s)) for x, m, s in zip(
        rng.integers(-(1 << 24), 1 << 24, 3000), rng.integers(1 << 30, 1 << 31, 3000), rng.integers(-31, 8, 3000))]
    cases += [(x, 1 << 30, s) for x in EDGES[4:12] for s in (-1, -2, -31, 0)]
    rows = ",\n".join(f"{{{x}, {m}, {s}}}" for x, m, s in cases)
    (tmp_path / "d.c").write_text(f"""#include <stdio.h>
#include "tinycc_nn.h"
static const int32_t cases[][3] = {{ {rows} }};
int main(void) {{
    unsigned i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {{
        printf("%ld\\n", (long)tinycc_requantize_double(cases[i][0], cases[i][1], cases[i][2]));
    }}
    return 0;
}}
""")
    got = _cbuild.run_runtime_program(tmp_path / "d.c")
    assert got == [quant.mul_by_quantized_multiplier(x, m, s, "double") for x, m, s in cases]


@pytest.mark.parametrize("target", ["mps2-an386", "mps2-an385"])
def test_dot_products_on_cortex_m(target, tmp_path):
    """The SIMD (M4) and scalar (M3) dot products agree with numpy on odd lengths and extremes,
    through a real model library whose layers use them."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (scripts/setup.sh installs it)")
    from tinycc.verify import verify
    from conftest import model_path
    report = verify(model_path("tiny_resnet"), target, work_dir=tmp_path)
    assert report.ok, report.summary()


def test_float32_emulation_matches_the_fpu(tmp_path):
    """LiteRT's softmax arithmetic done in integers: identical to the host's IEEE float32
    operations on 3 million random operands (normal and subnormal)."""
    exe = tmp_path / "f32"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-I", str(RUNTIME_DIR / "kernels"),
                    str(RUNTIME_DIR.parent / "tests" / "c" / "f32_emulation.c"), "-o", str(exe), "-lm"], check=True)
    out = subprocess.run([exe], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
    assert "bad 0" in out.stdout
