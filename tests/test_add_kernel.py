"""tinycc_add_s8 (runtime/kernels/tinycc_nn.h) on the host against TFLite's quantized ADD
arithmetic (tinycc.quant): its fast paths (tinycc_add_in: compile-time rounding constants,
SMMLAR/SMMLA forms, the multiply-free m = 2^30 input) and the generic one, every int8 value of
each input, in both rounding modes, with lengths that leave a tail after the 4-element steps."""

from __future__ import annotations

import numpy as np

from tinycc import quant
from tinycc.kernels.elementwise import add_mode

import _cbuild


def _reference(xa, xb, p):
    za, zb, m1, s1, m2, s2, mo, so, zo, lo, hi, rounding = p
    mode = "single" if rounding == "single" else "double"
    out = []
    for a, b in zip(xa, xb):
        ra = quant.mul_by_quantized_multiplier((int(a) - za) * (1 << 20), m1, s1, mode)
        rb = quant.mul_by_quantized_multiplier((int(b) - zb) * (1 << 20), m2, s2, mode)
        out.append(min(hi, max(lo, quant.mul_by_quantized_multiplier(ra + rb, mo, so, mode) + zo)))
    return out


def _params(rng, rounding, i):
    """TFLite's ADD parameters (PrepareGeneralSubOp) for random scales, with edge cases: equal
    scales (both inputs at m = 2^30, shift 0), one scale far below the other, the largest
    multipliers, zero points at both ends, and activation ranges."""
    s1 = float(rng.uniform(0.005, 0.2))
    s2 = [s1, s1 * float(rng.uniform(0.5, 2.0)), s1 / 300.0, s1 * 0.999999][i % 4]
    so = [float(rng.uniform(0.01, 0.4)), max(s1, s2) * 2 / 255, max(s1, s2) * 2.0000001][i % 3]
    twice = 2 * max(s1, s2)
    m1, sh1 = quant.quantize_multiplier(s1 / twice, rounding)
    m2, sh2 = quant.quantize_multiplier(s2 / twice, rounding)
    mo, sho = quant.quantize_multiplier(twice / ((1 << 20) * so), rounding)
    za, zb, zo = (int(v) for v in rng.integers(-128, 128, 3))
    za, zb = [(za, zb), (-128, 127), (127, -128), (0, 0)][i % 4]
    lo, hi = [(-128, 127), (zo, 127), (max(-128, zo - 7), min(127, zo + 9))][i % 3]
    return (za, zb, m1, sh1, m2, sh2, mo, sho, zo, lo, hi, rounding)


def test_add_s8_matches_tflite_on_host(tmp_path):
    rng = np.random.default_rng(5)
    cases = [_params(rng, rounding, i) for rounding in ("single", "double") for i in range(24)]
    # hand-made: a tie at the output (so = -1 for mode 3 is the smallest fast-path shift), the
    # largest multiplier, an input shift of -1 and 0 in single rounding (one SMMULR, t = 32, 31)
    cases += [(0, 0, 1 << 30, 0, 1 << 30, 0, 1 << 30, -1, 0, -128, 127, "double"),
              (5, -3, (1 << 31) - 1, 0, (1 << 31) - 1, -1, (1 << 31) - 1, -1, -3, -128, 127, "double"),
              (5, -3, (1 << 31) - 1, -1, 1 << 30, 0, (1 << 31) - 1, -2, 4, -128, 127, "single"),
              (5, -3, 1518500250, 0, 1 << 30, -1, 1 << 30, -20, 4, -128, 127, "single"),
              (-128, -128, 1 << 30, 1, 1 << 30, 0, 1 << 30, -17, -128, -128, 127, "double")]  # generic
    x = np.arange(-128, 128)
    xa = np.concatenate([np.repeat(x, 3), rng.integers(-128, 128, 257)])  # 1025: a tail of 1
    xb = np.concatenate([np.tile(x, 3), rng.integers(-128, 128, 257)])
    rng.shuffle(xb[:768])  # every value of each input, against varied partners
    fast = 0
    rows, want = [], []
    for p in cases:
        za, zb, m1, s1, m2, s2, mo, so, zo, lo, hi, rounding = p
        mode = add_mode(rounding, s1, s2, so)
        fast += (mode == 3 and so <= -1) or (mode == 0 and max(s1, s2) <= 0 and so <= -2)
        rows.append("{%d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d}" % (za, zb, m1, s1, m2, s2, mo, so, mode,
                                                                        zo, lo, hi))
        want += _reference(xa, xb, p)
    assert fast >= len(cases) - 3  # the cases exercise the fast paths
    arr = lambda v: ", ".join(str(int(t)) for t in v)  # noqa: E731
    (tmp_path / "a.c").write_text(f"""#include <stdio.h>
#include "tinycc_nn.h"
static const int32_t cases[][12] = {{ {", ".join(rows)} }};
static const int8_t xa[] = {{ {arr(xa)} }}, xb[] = {{ {arr(xb)} }};
int main(void) {{
    static int8_t out[sizeof xa];
    unsigned i, j;
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {{
        const int32_t *c = cases[i];
        tinycc_add_s8(xa, xb, (int32_t)sizeof xa, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9],
                      c[10], c[11], out);
        for (j = 0; j < sizeof xa; ++j) printf("%d\\n", out[j]);
    }}
    return 0;
}}
""")
    got = _cbuild.run_runtime_program(tmp_path / "a.c")
    assert len(got) == len(want)
    bad = [k for k in range(len(got)) if got[k] != want[k]]
    assert not bad, (len(bad), [(cases[k // len(xa)], k % len(xa), got[k], want[k]) for k in bad[:5]])


def test_add_input_stage_matches_tflite_on_host(tmp_path):
    """tinycc_add_in (one input's rescaled value, doubled in mode 3) for every int8 value against
    MultiplyByQuantizedMultiplier((x - zp) << 20, m, shift): the sum hides most of the input
    stage's rounding, so it is checked alone. Shifts 0 to -12, with m = 2^30 (exact, no multiply),
    the largest m, and multipliers whose products end on negative ties (m = 2^30 + 2^j)."""
    rng = np.random.default_rng(7)
    cases = []  # zp, m, shift, mode
    for mode in (0, 3):
        for shift in range(0, -13, -1):
            for m in (1 << 30, (1 << 31) - 1, (1 << 30) + (1 << 11), (1 << 30) + (1 << 12), (1 << 30) + (1 << 20),
                      int(rng.integers(1 << 30, 1 << 31))):
                for zp in (-128, 127, 0, int(rng.integers(-128, 128))):
                    cases.append((zp, m, shift, mode))
    rows = ", ".join("{%d, %d, %d, %d}" % c for c in cases)
    (tmp_path / "i.c").write_text(f"""#include <stdio.h>
#include "tinycc_nn.h"
static const int32_t cases[][4] = {{ {rows} }};
int main(void) {{
    unsigned i;
    int32_t x, k, e, r, z;
    for (i = 0; i < sizeof cases / sizeof cases[0]; ++i) {{
        const int32_t *c = cases[i];
        tinycc_add_in_consts(c[2], c[3], &k, &e, &r);
        z = tinycc_add_in_z(c[0], c[1], k, e, c[3]);
        for (x = -128; x < 128; ++x) printf("%d\\n", (int)tinycc_add_in(x, z, c[1], k, e, r, c[3]));
    }}
    return 0;
}}
""")
    got = _cbuild.run_runtime_program(tmp_path / "i.c")
    want, ties = [], 0
    for zp, m, shift, mode in cases:
        rounding = "double" if mode == 3 else "single"
        for x in range(-128, 128):
            v = (x - zp) * (1 << 20)
            want.append(quant.mul_by_quantized_multiplier(v, m, shift, rounding) * (2 if mode == 3 else 1))
            if mode == 3 and shift < 0:  # a negative tie of RoundingDivideByPOT
                y = quant.srdhm(v, m)
                ties += y < 0 and y % (1 << -shift) == 1 << (-shift - 1)
    assert ties > 50
    bad = [j for j in range(len(want)) if got[j] != want[j]]
    assert not bad, (len(bad), [(cases[j // 256], j % 256 - 128, got[j], want[j]) for j in bad[:5]])
