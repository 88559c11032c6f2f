"""Fixed-point rounding: quant.py's Python ports against independent definitions, and the
C that TVM generates from tinycc.kernels (fixedpoint.py) against the Python ports, bit for bit.

Oracles of the first part are written from the mathematical definitions with exact
rational arithmetic (fractions.Fraction), not from the C++ code:

* SaturatingRoundingDoublingHighMul (gemmlowp) is ARM's VQRDMULH: the high half of 2*a*b
  rounded to nearest with ties towards +infinity, i.e. floor(a*b / 2^31 + 1/2), saturated
  (only a = b = INT32_MIN overflows).  Negative ties therefore round towards zero:
  srdhm(-3, 2^30) = round(-1.5) = -1.
* RoundingDivideByPOT rounds x / 2^e to nearest with ties away from zero.
* MultiplyByQuantizedMultiplier, single rounding (LiteRT/ruy): floor(x*M / 2^s + 1/2),
  s = 31 - shift; double rounding (gemmlowp/TFLM): RoundingDivideByPOT(SRDHM(x * 2^left, M),
  right).
* QuantizeMultiplier: M * 2^(shift-31) is the real multiplier to within half a unit of M.

The second part builds element-wise kernels from `kernels.requantize`, `kernels.srdhm` and
`kernels.rounding_divide_by_pot` (per-tensor Python-int parameters, folded as constants, and
per-element int32 arrays), generates C with TVM, compiles it with gcc -std=c99 -Wall -Wextra
-Werror, and compares every output with `quant`.  The same program is also built with UBSan
and each kernel run on its own, inputs kept within TFLite's contract (KNOWN_UB lists the
kernels that are expected to fail there, and why).

The third part checks gemmlowp's fixed-point exp and reciprocal against float math.
"""

from __future__ import annotations

import fcntl
import math
import os
import shutil
from fractions import Fraction

import numpy as np
import pytest

from tinycc import kernels as K
from tinycc import quant as Q

import _cbuild

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
HALF = Fraction(1, 2)


# --------------------------------------------------------------------------- values

def _edge_values() -> list[int]:
    """0, +-1, the int32 limits and, for every power of two 2^j, +-(2^j + {-1, 0, 1}) and
    +-(3*2^j + {-1, 0, 1}) (the odd multiples of 2^j are the ties of a division by 2^(j+1)),
    plus seeded random int32s and small ints."""
    v = {0, 1, -1, INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1}
    for j in range(31):
        for base in (1 << j, 3 << j):
            for d in (-1, 0, 1):
                v |= {base + d, -(base + d)}
    rng = np.random.default_rng(1234)
    v |= {int(x) for x in rng.integers(INT32_MIN, INT32_MAX, 24, endpoint=True)}
    v |= {int(x) for x in rng.integers(-1000, 1000, 16, endpoint=True)}
    return sorted(x for x in v if INT32_MIN <= x <= INT32_MAX)


def _small_edge_values() -> list[int]:
    v = {0, 1, -1, 2, -2, 3, -3, 5, -5, 6, -6, 7, -7, INT32_MIN, INT32_MIN + 1, INT32_MAX, INT32_MAX - 1}
    for j in (15, 16, 29, 30):
        for d in (-1, 0, 1):
            v |= {(1 << j) + d, -((1 << j) + d)}
            if j < 30:
                v |= {(3 << j) + d, -((3 << j) + d)}
    rng = np.random.default_rng(99)
    v |= {int(x) for x in rng.integers(INT32_MIN, INT32_MAX, 8, endpoint=True)}
    return sorted(v)


EDGES = _edge_values()
SMALL = _small_edge_values()
_rng = np.random.default_rng(7)
MULTIPLIERS = [0, 1, 1 << 30, (1 << 30) + 1, 1518500250, INT32_MAX] + \
    [int(m) for m in _rng.integers(1 << 30, 1 << 31, 3)]
# per-tensor kernels (one kernel per (M, shift); TVM takes ~0.1 s on each double rounding)
CONST_MULTIPLIERS = [0, 1, 1 << 30, INT32_MAX] + MULTIPLIERS[-2:]
SHIFTS = [-31, -20, -1, 0, 1, 10, 30]
ROUNDINGS = ["single", "double"]


def _fits_left_shift(x: int, shift: int) -> bool:
    """TFLite's double rounding multiplies x by 2^shift in int32 first: it must not overflow."""
    return shift <= 0 or INT32_MIN <= x * (1 << shift) <= INT32_MAX


# --------------------------------------------------------------------------- oracles

def round_half_away(r: Fraction) -> int:
    n = math.floor(abs(r) + HALF)
    return n if r >= 0 else -n


def round_half_up(r: Fraction) -> int:
    return math.floor(r + HALF)


def srdhm_oracle(a: int, b: int) -> int:
    """VQRDMULH: round(a*b / 2^31), ties towards +inf, saturated to int32."""
    return min(round_half_up(Fraction(a * b, 1 << 31)), INT32_MAX)


def rdbpot_oracle(x: int, exponent: int) -> int:
    return round_half_away(Fraction(x, 1 << exponent))


def requantize_oracle(x: int, m: int, shift: int, rounding: str) -> int:
    if rounding == "single":
        return Q.wrap32(round_half_up(Fraction(x * m, 1 << (31 - shift))))
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot_oracle(srdhm_oracle(x * (1 << left), m), right)


# =========================================================================== 1. Python ports

@pytest.mark.parametrize("a, b, expected", [
    (INT32_MIN, INT32_MIN, INT32_MAX),          # the one overflow: saturates
    (INT32_MIN, INT32_MAX, INT32_MIN + 1),
    (INT32_MAX, INT32_MAX, INT32_MAX - 1),
    (INT32_MIN, 1 << 30, -(1 << 30)),
    (3, 1 << 30, 2), (-3, 1 << 30, -1),         # +-1.5: ties go up (VQRDMULH)
    (1, 1 << 30, 1), (-1, 1 << 30, 0),          # +-0.5
    (5, 1 << 30, 3), (-5, 1 << 30, -2),
    (-4, 1 << 30, -2), (7, 0, 0), (INT32_MIN, 0, 0), (0, INT32_MIN, 0),
])
def test_srdhm_documented_cases(a, b, expected):
    assert Q.srdhm(a, b) == expected
    assert Q.srdhm(b, a) == expected


def test_srdhm_by_zero_is_zero():
    assert all(Q.srdhm(x, 0) == 0 == Q.srdhm(0, x) for x in EDGES)


def test_srdhm_by_half_is_a_rounded_halving():
    """srdhm(a, 2^30) = a/2 rounded to nearest, ties up: floor((a + 1) / 2)."""
    for a in EDGES:
        assert Q.srdhm(a, 1 << 30) == round_half_up(Fraction(a, 2)) == (a + 1) // 2, a


def test_srdhm_matches_rounded_product():
    bad = [(a, b) for a in EDGES for b in SMALL if Q.srdhm(a, b) != srdhm_oracle(a, b)]
    assert not bad, bad[:10]


def test_srdhm_random_pairs():
    rng = np.random.default_rng(5)
    pairs = rng.integers(INT32_MIN, INT32_MAX, (3000, 2), endpoint=True)
    bad = [(int(a), int(b)) for a, b in pairs if Q.srdhm(int(a), int(b)) != srdhm_oracle(int(a), int(b))]
    assert not bad, bad[:10]


@pytest.mark.parametrize("x, exponent, expected", [
    (-3, 1, -2), (3, 1, 2), (-1, 1, -1), (1, 1, 1),   # +-1.5, +-0.5: ties away from zero
    (-6, 2, -2), (6, 2, 2), (-5, 2, -1), (-7, 2, -2), (-2, 2, -1), (2, 2, 1),
    (INT32_MIN, 31, -1), (INT32_MAX, 31, 1), (-(1 << 30), 31, -1), (1 << 30, 31, 1),
    (-(1 << 30) + 1, 31, 0), ((1 << 30) - 1, 31, 0),
    (INT32_MIN, 0, INT32_MIN), (INT32_MAX, 0, INT32_MAX), (-1, 0, -1),
    (INT32_MIN, 30, -2), (INT32_MAX, 30, 2), (-1, 31, 0), (0, 31, 0),
])
def test_rounding_divide_by_pot_cases(x, exponent, expected):
    assert Q.rounding_divide_by_pot(x, exponent) == expected


@pytest.mark.parametrize("exponent", range(32))
def test_rounding_divide_by_pot_rounds_half_away_from_zero(exponent):
    bad = [x for x in EDGES if Q.rounding_divide_by_pot(x, exponent) != rdbpot_oracle(x, exponent)]
    assert not bad, bad[:10]


@pytest.mark.parametrize("shift", list(range(-31, 31)))
def test_single_rounding_formula(shift):
    """(x*M + 2^(s-1)) >> s, s = 31 - shift, is x*M*2^(shift-31) rounded half up."""
    s = 31 - shift
    for x in SMALL + [-12345, 12345, 1 << 20, -(1 << 20)]:
        for m in MULTIPLIERS:
            got = Q.mul_by_quantized_multiplier(x, m, shift, "single")
            exact = Fraction(x * m, 1 << s)
            assert got == Q.wrap32(math.floor(Fraction(x * m + (1 << (s - 1)), 1 << s))), (x, m)
            assert got == Q.wrap32(round_half_up(exact)), (x, m)
            if INT32_MIN <= round_half_up(exact) <= INT32_MAX:   # TFLite's DCHECK
                assert abs(Fraction(got) - exact) <= HALF


@pytest.mark.parametrize("shift", list(range(-31, 31)))
def test_double_rounding_formula(shift):
    for x in EDGES:
        if not _fits_left_shift(x, shift):
            continue
        for m in MULTIPLIERS:
            assert Q.mul_by_quantized_multiplier(x, m, shift, "double") == \
                requantize_oracle(x, m, shift, "double"), (x, m)


def test_double_rounding_is_within_one_of_the_real_product():
    """Two roundings of at most 1/2 each (the first one scaled down by 2^-right)."""
    for shift in SHIFTS:
        for x in EDGES:
            if not _fits_left_shift(x, shift):
                continue
            for m in MULTIPLIERS:
                exact = Fraction(x * m, 1 << (31 - shift))
                if not INT32_MIN <= round_half_up(exact) <= INT32_MAX:
                    continue
                d = Q.mul_by_quantized_multiplier(x, m, shift, "double")
                assert abs(Fraction(d) - exact) <= 1, (x, m, shift)


def test_quantize_multiplier_represents_the_real_value():
    rng = np.random.default_rng(11)
    reals = list(np.exp2(rng.uniform(-31.0, 10.0, 4000))) + \
        [2.0 ** k for k in range(-31, 10)] + [0.5 - 2 ** -50, 1.0 - 2 ** -50, 3.0, 1e-9, 1023.999]
    for real in reals:
        real = float(real)
        for rounding in ROUNDINGS:
            m, shift = Q.quantize_multiplier(real, rounding)
            assert (1 << 30) <= m < (1 << 31), (real, m, shift)
            assert -31 <= shift <= 30
            err = abs(Fraction(m) * Fraction(2) ** (shift - 31) - Fraction(real))
            assert err <= Fraction(real) * Fraction(1, 1 << 31), (real, m, shift)
            exp = math.frexp(real)[1]
            assert shift == exp or (m == 1 << 30 and shift == exp + 1)   # renormalised


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_quantize_multiplier_zero_and_tiny(rounding):
    assert Q.quantize_multiplier(0.0, rounding) == (0, 0)
    for real in (2.0 ** -32 * 0.999, 2.0 ** -33, 1e-12, 5e-324):
        assert Q.quantize_multiplier(real, rounding) == (0, 0), real
    assert Q.quantize_multiplier(2.0 ** -32, rounding) == (1 << 30, -31)   # smallest kept


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_quantize_multiplier_rounding_up_to_two_pow_31_is_renormalised(rounding):
    # q * 2^31 = 2^31 - 1/2 (a tie, std::round goes up) and 2^31 - 2^-20 both round to 2^31
    for real, shift in [((2 ** 31 - 0.5) / 2 ** 31, 0), (1.0 - 2 ** -51, 0),
                        ((2 ** 31 - 0.5) / 2 ** 33, -2), (8.0 - 2 ** -48, 3)]:
        assert Q.quantize_multiplier(real, rounding) == (1 << 30, shift + 1), real
    # just below the tie: rounds down to 2^31 - 1
    assert Q.quantize_multiplier((2 ** 31 - 0.5 - 2 ** -20) / 2 ** 31, rounding) == (INT32_MAX, 0)


def test_quantize_multiplier_single_rounding_clamps_shift_to_30():
    assert Q.quantize_multiplier(2.0 ** 30, "single") == (INT32_MAX, 30)
    assert Q.quantize_multiplier(2.0 ** 30 - 2 ** -22, "single") == (INT32_MAX, 30)
    assert Q.quantize_multiplier(2.0 ** 30, "double") == (1 << 30, 31)


# =========================================================================== 2. generated C

def _const_cases():
    """(name, rounding, multiplier, shift, xs): one kernel per per-tensor (M, shift)."""
    cases = []
    for rounding in ROUNDINGS:
        for mi, m in enumerate(CONST_MULTIPLIERS):
            for shift in SHIFTS:
                xs = [x for x in EDGES if rounding == "single" or _fits_left_shift(x, shift)]
                name = f"rq_{rounding}_m{mi}_s{shift}".replace("-", "n")
                cases.append((name, rounding, m, shift, xs))
    return cases


def _array_cases():
    """(name, rounding, xs, ms, shifts): per-element multiplier and shift arrays, as
    per-channel parameters are; split by the sign of the shift (right or left shifts)."""
    cases = []
    for rounding in ROUNDINGS:
        for side, keep in (("right", lambda s: s <= 0), ("left", lambda s: s > 0)):
            pts = [(x, m, s) for x in EDGES for m in MULTIPLIERS for s in SHIFTS if keep(s)]
            pts += [(x, m, s) for x in SMALL for m in MULTIPLIERS for s in range(-31, 31)
                    if keep(s) and s not in SHIFTS]
            pts = [p for p in pts if rounding == "single" or _fits_left_shift(p[0], p[2])]
            cases.append((f"rqarr_{rounding}_{side}", rounding, *(list(c) for c in zip(*pts))))
    return cases


SRDHM_CONST_B = [0, 1, 1 << 30, INT32_MAX, -1010580540]   # the last is the softmax's constant


def _srdhm_cases():
    """(name, as, bs or int): b per element (b >= 0, the documented contract; b < 0) or constant."""
    pos = [(a, b) for a in SMALL for b in EDGES if b >= 0]
    neg = [(a, b) for a in SMALL for b in EDGES if b < 0 and not a == b == INT32_MIN]
    cases = [("srdhm_arr_bpos", [p[0] for p in pos], [p[1] for p in pos]),
             ("srdhm_arr_bneg", [p[0] for p in neg], [p[1] for p in neg])]
    for i, b in enumerate(SRDHM_CONST_B):
        cases.append((f"srdhm_const_b{i}", EDGES, b))
    return cases


def _rdbpot_cases():
    """(name, xs, exponents or int)."""
    lo = [(x, e) for x in EDGES for e in range(31)]
    cases = [("rdbpot_arr_e0to30", [p[0] for p in lo], [p[1] for p in lo]),
             ("rdbpot_arr_e31", EDGES, [31] * len(EDGES))]
    for e in range(32):
        cases.append((f"rdbpot_const_e{e}", EDGES, e))
    return cases


CONST_CASES = _const_cases()
ARRAY_CASES = _array_cases()
SRDHM_CASES = _srdhm_cases()
RDBPOT_CASES = _rdbpot_cases()


def _expected() -> dict[str, np.ndarray]:
    exp = {}
    for name, rounding, m, shift, xs in CONST_CASES:
        exp[name] = [Q.mul_by_quantized_multiplier(x, m, shift, rounding) for x in xs]
    for name, rounding, xs, ms, ss in ARRAY_CASES:
        exp[name] = [Q.mul_by_quantized_multiplier(x, m, s, rounding) for x, m, s in zip(xs, ms, ss)]
    for name, xs, bs in SRDHM_CASES:
        bs = bs if isinstance(bs, list) else [bs] * len(xs)
        exp[name] = [Q.srdhm(a, b) for a, b in zip(xs, bs)]
    for name, xs, es in RDBPOT_CASES:
        es = es if isinstance(es, list) else [es] * len(xs)
        exp[name] = [Q.rounding_divide_by_pot(x, e) for x, e in zip(xs, es)]
    return {k: np.array(v, dtype=np.int64).astype(np.int32) for k, v in exp.items()}


def _program() -> _cbuild.Program:
    prog = _cbuild.Program()
    for name, rounding, m, shift, xs in CONST_CASES:
        prog.add(name, lambda x, m=m, shift=shift, r=rounding: K.requantize(x, m, shift, r),
                 [xs], ["x"])
    for name, rounding, xs, ms, ss in ARRAY_CASES:
        prog.add(name, lambda x, m, s, r=rounding: K.requantize(x, m, s, r),
                 [xs, ms, ss], ["x", "m", "s"])
    for name, xs, bs in SRDHM_CASES:
        if isinstance(bs, list):
            prog.add(name, K.srdhm, [xs, bs], ["a", "b"])
        else:
            prog.add(name, lambda a, b=bs: K.srdhm(a, b), [xs], ["a"])
    for name, xs, es in RDBPOT_CASES:
        if isinstance(es, list):
            prog.add(name, K.rounding_divide_by_pot, [xs, es], ["x", "e"])
        else:
            prog.add(name, lambda x, e=es: K.rounding_divide_by_pot(x, e), [xs], ["x"])
    return prog


ALL_NAMES = [c[0] for c in CONST_CASES + ARRAY_CASES + SRDHM_CASES + RDBPOT_CASES]

needs_gcc = pytest.mark.skipif(shutil.which(_cbuild.HOST_CC) is None, reason="needs gcc")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build once; under pytest-xdist the workers share one build (the TVM build is the
    slow part), the first to take the lock doing it."""
    prog = _program()
    flags = {"O2": _cbuild.OPT_FLAGS, "ubsan": _cbuild.UBSAN_FLAGS}
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return prog, prog.compile(tmp_path_factory.mktemp("rounding"), flags)
    shared = tmp_path_factory.getbasetemp().parent / "rounding-c"
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (shared / "done").exists():
            return prog, {label: shared / f"kernels_{label}" for label in flags}
        exes = prog.compile(shared, flags)
        (shared / "done").touch()
    return prog, exes


@pytest.fixture(scope="module")
def c_outputs(built):
    prog, exes = built
    return prog.run(exes["O2"])


@pytest.fixture(scope="module")
def expected():
    return _expected()


def _inputs_of(name):
    for case in CONST_CASES:
        if case[0] == name:
            return [case[4]]
    for case in ARRAY_CASES:
        if case[0] == name:
            return case[2:5]
    for case in SRDHM_CASES + RDBPOT_CASES:
        if case[0] == name:
            return [case[1]] + ([case[2]] if isinstance(case[2], list) else [])
    raise KeyError(name)


@needs_gcc
@pytest.mark.parametrize("name", ALL_NAMES)
def test_generated_c_matches_python(name, c_outputs, expected):
    got, want = c_outputs[name], expected[name]
    assert got.shape == want.shape
    wrong = np.flatnonzero(got != want)
    if wrong.size:
        ins = _inputs_of(name)
        rows = [(tuple(int(a[i]) for a in ins), int(got[i]), int(want[i])) for i in wrong[:8]]
        pytest.fail(f"{name}: {wrong.size}/{got.size} differ; (inputs, C, Python): {rows}")


def test_expected_values_agree_with_independent_oracles(expected):
    """The Python results the C is checked against, spot-checked against part 1's oracles."""
    for name, rounding, m, shift, xs in CONST_CASES[::5]:
        want = [requantize_oracle(x, m, shift, rounding) for x in xs]
        assert expected[name].tolist() == np.array(want, dtype=np.int64).astype(np.int32).tolist()
    for name, xs, es in RDBPOT_CASES[2:]:
        assert expected[name].tolist() == [rdbpot_oracle(x, es) for x in xs]
    for name, xs, b in SRDHM_CASES[2:]:
        assert expected[name].tolist() == [srdhm_oracle(a, b) for a in xs]


# Known undefined behaviour in the C that tinycc.kernels makes (bit-exact with gcc all the same).
_SHL_NEGATIVE = ("kernels/fixedpoint.py requantize, double rounding, int32-expression shift: `acc << max(shift, 0)` "
                 "left-shifts negative accumulators (UB in C99 even by 0; TFLite multiplies by "
                 "1 << left); `tinycc verify --target host --sanitize` aborts on it")
_SHL_31 = ("kernels/fixedpoint.py rounding_divide_by_pot, int32-expression exponent: `(1 << exponent) - 1` "
           "overflows int for exponent 31 (gemmlowp computes the mask as 1ll << exponent)")
KNOWN_UB: dict[str, str] = {}


@needs_gcc
@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_UB[n], strict=True)) if n in KNOWN_UB else n
    for n in ALL_NAMES])
def test_generated_c_has_no_undefined_behaviour(name, built):
    prog, exes = built
    proc = prog.run_one(exes["ubsan"], name)
    assert proc.returncode == 0 and b"runtime error" not in proc.stderr, \
        proc.stderr.decode(errors="replace")[-2000:]


# =========================================================================== 3. softmax pieces

def _negative_samples(integer_bits: int) -> list[int]:
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    v = set(np.linspace(INT32_MIN, 0, 3001).astype(np.int64).tolist())
    for k in range(0, (1 << 31) // quarter + 1, max(1, ((1 << 31) // quarter) // 256)):
        for d in (-1, 0, 1):
            v.add(-k * quarter + d)
    v |= {0, -1, -2, INT32_MIN, INT32_MIN + 1}
    return sorted(x for x in v if INT32_MIN <= x <= 0)


@pytest.mark.parametrize("integer_bits", [0, 1, 3, 5, 6, 8])
def test_exp_on_negative_values(integer_bits):
    scale = 2.0 ** (31 - integer_bits)
    worst = 0.0
    for a in _negative_samples(integer_bits):
        got = Q.exp_on_negative_values(a, integer_bits)
        assert 0 <= got <= INT32_MAX
        worst = max(worst, abs(got / 2.0 ** 31 - math.exp(a / scale)))
    assert worst < 1e-6
    assert Q.exp_on_negative_values(0, integer_bits) == INT32_MAX


def test_exp_on_negative_values_is_monotonic():
    xs = _negative_samples(5)
    ys = [Q.exp_on_negative_values(a, 5) for a in xs]
    assert all(y0 <= y1 for y0, y1 in zip(ys, ys[1:]))


def test_one_over_one_plus_x():
    """1/(1+x) for x in [0, 1), both Q0.31, within 8 units of the last place."""
    xs = list(range(0, INT32_MAX, INT32_MAX // 4000)) + [1, 2, 3, INT32_MAX - 1, INT32_MAX]
    for a in xs:
        got = Q.one_over_one_plus_x(a)
        ideal = Fraction(1 << 31) / (1 + Fraction(a, 1 << 31))
        assert abs(got - ideal) <= 8, (a, got, float(ideal))
        assert got <= INT32_MAX


@pytest.mark.parametrize("integer_digits", [12, 0, 5])
def test_get_reciprocal(integer_digits):
    """x is Q(integer_digits).(31 - integer_digits); scale / 2^31 * 2^-bits is 1 / x."""
    rng = np.random.default_rng(integer_digits)
    xs = list(range(1, 300)) + [1 << k for k in range(31)] + [(1 << k) - 1 for k in range(2, 32)] + \
        [(1 << k) + 1 for k in range(2, 31)] + [int(v) for v in rng.integers(1, INT32_MAX, 3000)]
    for x in xs:
        scale, bits = Q.get_reciprocal(x, integer_digits)
        clz = 32 - x.bit_length()
        assert bits == integer_digits - clz
        ideal = Fraction(1 << 31) * Fraction(1 << (31 - integer_digits), x) * Fraction(2) ** bits
        assert Fraction(1, 2) <= ideal / (1 << 31) <= 1
        assert abs(scale - ideal) <= 8, (x, scale, float(ideal))


def test_requantize_of_a_sum_with_a_left_shift(tmp_path):
    """Per-tensor double rounding with shift > 0 applied to a sum (acc + bias): TVM folds
    2^shift into the multiplier and once got the nudge's sign test of the product wrong on
    every value; the nudge now takes its sign from the accumulator."""
    rng = np.random.default_rng(1)
    a = rng.integers(-(1 << 29), 1 << 29, 3000)
    b = rng.integers(-(1 << 20), 1 << 20, 3000)
    prog = _cbuild.Program()
    prog.add("sum_shift1", lambda x, y: K.requantize(x + y, 1768479250, 1, "double"), [a, b])
    exe = prog.compile(tmp_path, {"o2": ("-O2",)})["o2"]
    got = prog.run(exe)["sum_shift1"]
    want = [Q.mul_by_quantized_multiplier(int(v), 1768479250, 1, "double") for v in a + b]
    assert got.tolist() == want
