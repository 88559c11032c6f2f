/*
 * tinycc_nn.h: the micro-kernels that tinycc's generated kernels call.
 *
 * Copied into every generated library (src/), all static inline, so two libraries linked into
 * one firmware never clash and the compiler inlines them into the kernel loops. On cores with
 * the DSP extension (Cortex-M4, M7, M33: __ARM_FEATURE_DSP) the int8 dot products use SXTB16
 * and SMLAD (two 16-bit multiply-accumulates per instruction) through arm_acle.h; elsewhere
 * (Cortex-M0+, M3, the host) the same arithmetic in plain C. Results are identical.
 *
 * Requantization follows TFLite: tinycc_requantize_single is LiteRT's and ruy's
 * MultiplyByQuantizedMultiplier ((x * M + 2^(s-1)) >> s, s = 31 - shift); the two-step version
 * is gemmlowp's, used by TFLM and CMSIS-NN (SaturatingRoundingDoublingHighMul, then
 * RoundingDivideByPOT).
 */
#ifndef TINYCC_NN_H
#define TINYCC_NN_H

#include <stdint.h>
#include <string.h>

/* The micro-kernels are small and called with constant shapes: inlining them lets the
 * compiler unroll the window loops. */
#if defined(__GNUC__)
#define TINYCC_INLINE static inline __attribute__((always_inline))
#else
#define TINYCC_INLINE static inline
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TINYCC_NN_DSP 1
#else
#define TINYCC_NN_DSP 0
#endif
/* the hand-scheduled loops (inline assembly, see TINYCC_LOOP_PUSH_END), with gcc only: the
 * loops take every register but sp and pc, and a build that keeps r7 as the frame pointer
 * leaves them one short. gcc lets the kernels (the functions after this header in the
 * generated *_kernels.c) drop it; clang keeps it by default for arm-none-eabi, even at -O2,
 * and has no per-function switch, so with clang (armclang too) the ACLE intrinsic loops run */
#if TINYCC_NN_DSP && defined(__GNUC__) && !defined(__clang__) && defined(__OPTIMIZE__) && !defined(TINYCC_NN_NO_ASM)
#define TINYCC_NN_ASM 1
#pragma GCC optimize("omit-frame-pointer")
#else
#define TINYCC_NN_ASM 0
#endif

TINYCC_INLINE int32_t tinycc_requantize_single(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t total = 31 - shift;
    const int64_t sum = (int64_t)x * multiplier + ((int64_t)1 << (total - 1));
    if (total >= 32) { /* the usual case: the high word, then a 32-bit shift */
        return (int32_t)(sum >> 32) >> (total - 32);
    }
    return (int32_t)(sum >> total);
}

/* gemmlowp's SaturatingRoundingDoublingHighMul for b >= 0 (a multiplier): its nudge and
 * truncating division come to round(a * b / 2^31) with halves rounded up, i.e. one add and
 * an arithmetic shift of the 64-bit product. */
TINYCC_INLINE int32_t tinycc_srdhm(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

/* gemmlowp's RoundingDivideByPOT (halves away from zero), in 32-bit arithmetic: a 64-bit
 * shift by a variable amount costs several instructions on a Cortex-M. */
TINYCC_INLINE int32_t tinycc_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const uint32_t mask = ((uint32_t)1 << exponent) - 1u; /* exponent <= 31 */
    const uint32_t threshold = (mask >> 1) + (x < 0 ? 1u : 0u);
    return (x >> exponent) + (((uint32_t)x & mask) > threshold ? 1 : 0);
}

/* TFLM's requantization when the layer's shifts are all <= 0 (known at compile time). */
TINYCC_INLINE int32_t tinycc_requantize_double_right(int32_t x, int32_t multiplier, int32_t shift)
{
    return tinycc_rounding_divide_by_pot(tinycc_srdhm(x, multiplier), -shift);
}

TINYCC_INLINE int32_t tinycc_requantize_double(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return tinycc_rounding_divide_by_pot(tinycc_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* The requantization fast path: every shift of the layer <= 0 and |acc| < 2^30 (both known at
 * compile time), so adding half before the shift cannot overflow. Same result as
 * RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc, m), -shift). */
TINYCC_INLINE int32_t tinycc_requantize_double_small(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t y = tinycc_srdhm(x, multiplier);
    const int32_t e = -shift;
    if (e == 0) {
        return y;
    }
    return (y + (1 << (e - 1)) + (y >> 31)) >> e; /* y >> 31: minus one when negative */
}

/* acc requantized by `mode` (as in tinycc_requant_out), without zero point or clamp. */
TINYCC_INLINE int32_t tinycc_requant_out32(int32_t acc, int32_t multiplier, int32_t shift, int32_t mode)
{
    return mode == 3 ? tinycc_requantize_double_small(acc, multiplier, shift)
         : mode == 2 ? tinycc_requantize_double_right(acc, multiplier, shift)
         : mode == 1 ? tinycc_requantize_double(acc, multiplier, shift)
                     : tinycc_requantize_single(acc, multiplier, shift);
}

/*
 * onnxruntime's arithmetic, which is float32: (float)acc * scale rounded half to even
 * (MlasRequantizeOutput), x / scale rounded half to even (QuantizeLinear), (q - zp) * scale
 * (DequantizeLinear). Emulated exactly on float32 bit patterns with integer instructions, so
 * a library that matches onnxruntime still has no float instruction.
 */
TINYCC_INLINE int32_t tinycc_bits64(uint64_t x)
{
#if defined(__GNUC__)
    return x == 0u ? 0 : 64 - __builtin_clzll(x); /* CLZ on Cortex-M3 and up */
#else
    int32_t n = 0;
    while (x >= 0x10000u) {
        x >>= 16;
        n += 16;
    }
    while (x != 0u) {
        x >>= 1;
        n++;
    }
    return n;
#endif
}

/* m * 2^e for 0 < m < 2^49, rounded to 24 significant bits then to an integer (both halves to
 * even), as float32 arithmetic followed by a round-to-nearest conversion computes it; sticky
 * says that m was already rounded down from a larger value. Saturates at +-2^24. */
TINYCC_INLINE int32_t tinycc_round_f32_to_int(uint64_t m, int32_t e, int32_t sticky)
{
    const int32_t extra = tinycc_bits64(m) - 24;
    int32_t sh;
    if (extra > 0) { /* the float32 rounding: add half - 1, plus one for an odd or inexact m */
        const uint64_t up = ((m >> extra) & 1u) | (sticky != 0 ? 1u : 0u);
        m = (m + ((uint64_t)1 << (extra - 1)) - 1u + up) >> extra;
        e += extra;
    }
    if (e >= 0) {
        return e > 0 || m >= 0x1000000u ? 0x1000000 : (int32_t)m;
    }
    sh = -e;
    if (sh > 26) {
        return 0; /* below 1/4 */
    }
    return (int32_t)((m + ((uint64_t)1 << (sh - 1)) - 1u + ((m >> sh) & 1u)) >> sh);
}

/* round_half_even((float)acc * scale) for a positive normal float32 scale (bit pattern). */
TINYCC_INLINE int32_t tinycc_requantize_f32(int32_t acc, uint32_t scale)
{
    uint32_t a = acc < 0 ? 0u - (uint32_t)acc : (uint32_t)acc;
    int32_t e = (int32_t)(scale >> 23) - 150, r;
    const uint64_t ms = (scale & 0x7FFFFFu) | 0x800000u;
    if (a == 0u) {
        return 0;
    }
    if (a < 0x1000000u) { /* the usual case, in 32-bit steps: (float)acc is exact */
        const int32_t n = tinycc_bits64(a);
        const uint64_t p = (uint64_t)(a << (24 - n)) * ms; /* in [2^46, 2^48) */
        const uint32_t hi = (uint32_t)(p >> 16), sticky = ((uint32_t)p & 0xFFFFu) != 0u ? 1u : 0u;
        const int32_t k = (hi >> 31) != 0u ? 8 : 7; /* round to 24 significant bits at bit 16 + k */
        uint32_t q = hi >> k;
        const uint32_t rem = hi & ((1u << k) - 1u), half = 1u << (k - 1);
        int32_t sh;
        if (rem > half || (rem == half && (sticky | (q & 1u)) != 0u)) {
            q++;
        }
        sh = -(e + 16 + k - (24 - n)); /* the product is q * 2^-sh */
        if (sh <= 0) {
            r = sh < 0 || q >= 0x1000000u ? 0x1000000 : (int32_t)q;
        } else if (sh > 26) {
            r = 0;
        } else {
            r = (int32_t)((q + (1u << (sh - 1)) - 1u + ((q >> sh) & 1u)) >> sh);
        }
        return acc < 0 ? -r : r;
    }
    if (a >= 0x1000000u) { /* (float)acc rounds to 24 bits first */
        const int32_t extra = tinycc_bits64(a) - 24;
        const uint32_t rem = a & ((1u << extra) - 1u), half = 1u << (extra - 1);
        a >>= extra;
        e += extra;
        if (rem > half || (rem == half && (a & 1u) != 0u)) {
            a++;
        }
    }
    r = tinycc_round_f32_to_int((uint64_t)a * ms, e, 0);
    return acc < 0 ? -r : r;
}

/*
 * acc -> int8 output: requantize (mode 0 LiteRT's single rounding, 1 TFLM's double rounding,
 * 2 double with right shifts only, 3 the same with a small accumulator, -1 onnxruntime's
 * float32 scale, whose bit pattern is then the multiplier), add the output zero point, clamp
 * to the activation range. mode, zp, lo and hi are constants at every call site.
 */
TINYCC_INLINE int8_t tinycc_requant_out(int32_t acc, int32_t multiplier, int32_t shift, int32_t mode, int32_t zp,
                                        int32_t lo, int32_t hi)
{
    int32_t v = (mode == -1 ? tinycc_requantize_f32(acc, (uint32_t)multiplier)
                            : tinycc_requant_out32(acc, multiplier, shift, mode)) + zp;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (int8_t)v;
}

/*
 * The same requantizations with per-channel rounding constants computed at compile time
 * (tinycc.kernels.fixedpoint.rounding_constants): the layer's shift array then holds, per
 * channel, a right shift e >= 1 and r = 2^(e-1) + zp * 2^e (the output zero point rides in the
 * constant: floor((a + zp * 2^e) / 2^e) = floor(a / 2^e) + zp). Mode 4 is mode 3 (double
 * rounding, |acc| < 2^30): SaturatingRoundingDoublingHighMul(acc, m) = (2 acc m + 2^31) >> 32,
 * one SMMULR; then RoundingDivideByPOT. Mode 5 is LiteRT's single rounding with
 * s = 31 - shift >= 33: (acc m + 2^(s-1)) >> s = (floor(acc m / 2^32) + 2^(s-33)) >> (s-32),
 * one SMMUL. Exact for every int32 acc (mode 5) or |acc| < 2^30 (mode 4). Modes 6, 7 and 8 are
 * forms of mode 4 (tinycc_requant_fast).
 */
TINYCC_INLINE int32_t tinycc_clamp_s8(int32_t v, int32_t lo, int32_t hi)
{
#if TINYCC_NN_DSP
    v = __ssat(v, 8);
    if (lo > -128) v = v < lo ? lo : v; /* lo, hi: constants at every call site */
    if (hi < 127) v = v > hi ? hi : v;
#else
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
#endif
    return v;
}

TINYCC_INLINE int8_t tinycc_requant_fast(int32_t acc, int32_t multiplier, int32_t e, int32_t r, int32_t mode,
                                         int32_t lo, int32_t hi)
{
    int32_t y;
    if (mode == 4 || mode == 6 || mode == 7 || mode == 8) {
        /* r + SaturatingRoundingDoublingHighMul(acc, m) in one SMMLAR; then the rounding
         * division's minus one for negatives, taken from acc's sign: where the product rounds
         * to 0 both give the same result, since r - 1 and r have the same quotient by 2^e.
         * Mode 6: mode 4 for a kernel whose accumulator already holds 2 acc (doubled weights
         * and bias), which saves the shift. Modes 7 and 8: modes 6 and 4 without the minus
         * one, for layers whose clamp floor is at or above the output zero point and whose
         * multipliers are non-negative (the proof is at tinycc_requant_local; the lowering,
         * tinycc.kernels.gemm.tile_mode, checks both) */
        const int32_t acc2 = mode == 4 || mode == 8 ? acc * 2 : acc;
        const int32_t corr = mode == 4 || mode == 6;
        /* acc and 2 acc have the same sign: the sign of the one in a register (measured: KWS's
         * 1x1 convolutions 8K fewer instructions each on the M4, 12K more on the M3 otherwise) */
#if TINYCC_NN_DSP
        __asm__("smmlar %0, %1, %2, %3" : "=r"(y) : "r"(acc2), "r"(multiplier), "r"(r));
        y = (corr ? y + (acc2 >> 31) : y) >> e;
#else
        y = (int32_t)(((int64_t)r * ((int64_t)1 << 32) + (int64_t)acc2 * multiplier + ((int64_t)1 << 31)) >> 32);
        y = (corr ? y + (acc >> 31) : y) >> e;
#endif
    } else {
        /* r + floor(acc m / 2^32) in one SMMLA */
#if TINYCC_NN_DSP
        __asm__("smmla %0, %1, %2, %3" : "=r"(y) : "r"(acc), "r"(multiplier), "r"(r));
#else
        y = (int32_t)(((int64_t)r * ((int64_t)1 << 32) + (int64_t)acc * multiplier) >> 32);
#endif
        y >>= e;
    }
    return (int8_t)tinycc_clamp_s8(y, lo, hi);
}

/*
 * Channel o of a layer: tinycc_requant_out with the layer's arrays, or tinycc_requant_fast
 * (modes 4 to 8: shift holds (e, r) pairs). mode, zp, lo, hi are constants at every call site.
 */
TINYCC_INLINE int8_t tinycc_requant_ch(int32_t acc, const int32_t *mult, const int32_t *shift, int32_t o,
                                       int32_t mode, int32_t zp, int32_t lo, int32_t hi)
{
    if (mode >= 4) {
        return tinycc_requant_fast(acc, mult[o], shift[2 * o], shift[2 * o + 1], mode, lo, hi);
    }
    return tinycc_requant_out(acc, mult[o], shift[o], mode, zp, lo, hi);
}

/* r + (a m + 2^31 round) / 2^32 floored: SMMLAR (round 1) or SMMLA (round 0). */
TINYCC_INLINE int32_t tinycc_mmla(int32_t a, int32_t m, int32_t r, int32_t round)
{
    int32_t y;
#if TINYCC_NN_DSP
    if (round) {
        __asm__("smmlar %0, %1, %2, %3" : "=r"(y) : "r"(a), "r"(m), "r"(r));
    } else {
        __asm__("smmla %0, %1, %2, %3" : "=r"(y) : "r"(a), "r"(m), "r"(r));
    }
#else
    y = (int32_t)(((int64_t)r * ((int64_t)1 << 32) + (int64_t)a * m + (round ? ((int64_t)1 << 31) : 0)) >> 32);
#endif
    return y;
}

/*
 * One input of tinycc_add_s8's fast paths, x an int8 value: its rescaled value times `two`
 * (2 in mode 3, 1 in mode 0), where the rescaled value is requantize((x - zp) << 20, m, shift)
 * with the mode's rounding (m > 0 as every ADD multiplier). a = (x - zp) << k, |a| < 2^29;
 * z = -zp << k in a register (tinycc_add_in_z: an ADD with a shifted operand then does the
 * offset and the shift in one instruction); k, e and r constants at the call site:
 *
 * Mode 3 (double rounding, shift = -e <= 0), k = 21: SMMLAR(a, m, r) = r + floor((a m + 2^31)
 * / 2^32) = r + floor(((x - zp) 2^20 m + 2^30) / 2^31) = r + SaturatingRoundingDoublingHighMul
 * ((x - zp) << 20, m) (halves up for m > 0), with r = 2^(e-1); RoundingDivideByPOT's minus one
 * for negatives comes from a's sign, the product's sign (where the product rounds to 0, r - 1
 * and r have the same quotient by 2^e) -- tinycc_requant_fast's mode 4. e = 0: the product.
 * Mode 0 (single rounding, t = 31 - shift): t >= 33, k = 20: ((x - zp) 2^20 m + 2^(t-1)) >> t
 * = (floor(a m / 2^32) + 2^(t-33)) >> (t-32) (nested floors), one SMMLA with r = 2^(t-33) and
 * e = t - 32; t = 32 (k = 20) and t = 31 (k = 21, a = 2 (x - zp) 2^20) are one SMMULR, e = 0.
 * e = 0 and m = 2^30 (the larger input's scale: TFLite's real multiplier 1/2) is exact, no
 * multiply: SMMULR(a, 2^30) = (x - zp) 2^(k-2); z is then -zp << (k - 2) times `two`.
 */
TINYCC_INLINE int32_t tinycc_add_in(int32_t x, int32_t z, int32_t m, int32_t k, int32_t e, int32_t r, int32_t mode)
{
    const int32_t two = mode == 3 ? 2 : 1;
    if (e == 0 && m == 1 << 30) {
        return (int32_t)((uint32_t)x << (k - 3 + two)) + z;
    }
    {
        const int32_t a = (int32_t)((uint32_t)x << k) + z;
        int32_t y;
        if (e == 0) {
            y = tinycc_mmla(a, m, 0, 1);
        } else if (mode == 3) {
            y = (tinycc_mmla(a, m, r, 1) + (a >> 31)) >> e;
        } else {
            y = tinycc_mmla(a, m, r, 0) >> e;
        }
        return y * two;
    }
}

/* k, e and r of tinycc_add_in for an input's shift (<= 0). */
TINYCC_INLINE void tinycc_add_in_consts(int32_t shift, int32_t mode, int32_t *k, int32_t *e, int32_t *r)
{
    *k = mode == 3 || shift == 0 ? 21 : 20;
    *e = mode == 3 || shift == 0 ? -shift : -shift - 1;
    *r = *e > 0 ? 1 << (*e - 1) : 0;
}

/* z of tinycc_add_in for an input with zero point zp. */
TINYCC_INLINE int32_t tinycc_add_in_z(int32_t zp, int32_t m, int32_t k, int32_t e, int32_t mode)
{
    const int32_t two = mode == 3 ? 2 : 1;
    int32_t z = (int32_t)((uint32_t)(-zp) << (e == 0 && m == 1 << 30 ? k - 3 + two : k));
#if defined(__GNUC__)
    __asm__("" : "+r"(z)); /* a register, not an immediate: see tinycc_add_in */
#endif
    return z;
}

/*
 * TFLite's quantized ADD of two same-shaped int8 tensors: each input, offset by its zero point
 * and shifted left by 20, is rescaled to twice the larger input scale; the sum is rescaled to
 * the output. mode as in tinycc_requant_out (3 when every shift is <= 0: the shifted inputs
 * stay below 2^28, so the cheap rounding is exact). Every argument but the pointers and n is
 * a constant at the call sites (always inlined), so the choice of path and the rounding
 * constants fold away. Fast paths (tinycc_add_in): mode 3 with the output shift <= -1, mode 0
 * with the output shift <= -2 (input shifts <= 0 in both); the output stage is
 * tinycc_requant_fast's mode 6 on the doubled sum (|2 (ra + rb)| < 2^30) or mode 5, with the
 * zero point in its constant. Four elements a step, no branch per element.
 */
TINYCC_INLINE void tinycc_add_s8(const int8_t *a, const int8_t *b, int32_t n, int32_t a_zp, int32_t b_zp,
                                 int32_t a_mult, int32_t a_shift, int32_t b_mult, int32_t b_shift,
                                 int32_t out_mult, int32_t out_shift, int32_t mode, int32_t out_zp, int32_t lo,
                                 int32_t hi, int8_t *out)
{
    int32_t i;
    const int32_t fast = (mode == 3 && a_shift <= 0 && b_shift <= 0 && out_shift <= -1)
                      || (mode == 0 && a_shift <= 0 && b_shift <= 0 && out_shift <= -2);
    if (fast) {
        const int32_t eo = mode == 3 ? -out_shift : -out_shift - 1;
        const int32_t ro = (int32_t)((uint32_t)1 << (eo - 1)) + (int32_t)((uint32_t)out_zp << eo);
        const int32_t mo = mode == 3 ? 6 : 5;
        int32_t ka, ea, ra, kb, eb, rb, za, zb;
        tinycc_add_in_consts(a_shift, mode, &ka, &ea, &ra);
        tinycc_add_in_consts(b_shift, mode, &kb, &eb, &rb);
        za = tinycc_add_in_z(a_zp, a_mult, ka, ea, mode);
        zb = tinycc_add_in_z(b_zp, b_mult, kb, eb, mode);
#define TINYCC_ADD_ONE(j)                                                                              \
    out[i + (j)] = tinycc_requant_fast(tinycc_add_in(a[i + (j)], za, a_mult, ka, ea, ra, mode)          \
                                       + tinycc_add_in(b[i + (j)], zb, b_mult, kb, eb, rb, mode),       \
                                       out_mult, eo, ro, mo, lo, hi)
        for (i = 0; i + 4 <= n; i += 4) {
            TINYCC_ADD_ONE(0);
            TINYCC_ADD_ONE(1);
            TINYCC_ADD_ONE(2);
            TINYCC_ADD_ONE(3);
        }
        for (; i < n; ++i) {
            TINYCC_ADD_ONE(0);
        }
#undef TINYCC_ADD_ONE
        return;
    }
    for (i = 0; i < n; ++i) {
        const int32_t va = (a[i] - a_zp) * (1 << 20), vb = (b[i] - b_zp) * (1 << 20);
        int32_t ra, rb;
        if (mode == 3) {
            ra = tinycc_requantize_double_small(va, a_mult, a_shift);
            rb = tinycc_requantize_double_small(vb, b_mult, b_shift);
        } else if (mode != 0) {
            ra = tinycc_requantize_double(va, a_mult, a_shift);
            rb = tinycc_requantize_double(vb, b_mult, b_shift);
        } else {
            ra = tinycc_requantize_single(va, a_mult, a_shift);
            rb = tinycc_requantize_single(vb, b_mult, b_shift);
        }
        out[i] = tinycc_requant_out(ra + rb, out_mult, out_shift, mode, out_zp, lo, hi);
    }
}

static inline void tinycc_copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    memcpy(dst, src, (size_t)n);
}

static inline void tinycc_fill_s8(int8_t *dst, int32_t value, int32_t n)
{
    memset(dst, value, (size_t)n);
}

#if TINYCC_NN_DSP
/* SXTB16 of the word rotated right by 8 (bytes 1 and 3), one instruction; gcc 12 does not
 * fold a rotate into SXTB16 by itself. */
static inline int16x2_t tinycc_sxtb16_odd(uint32_t x)
{
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

static inline int32_t tinycc_load_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4); /* one LDR: v7-M and v8-M allow unaligned word loads */
    return v;
}

/* (bottom half of a, bottom half of b) and (top half of b, top half of a): PKHBT and PKHTB,
 * which gcc 12 does not form from the shifts and masks. */
TINYCC_INLINE uint32_t tinycc_pkhbt(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

TINYCC_INLINE uint32_t tinycc_pkhtb(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}

/* Two words from a word-aligned p, then p += 8: one LDRD with writeback. */
TINYCC_INLINE void tinycc_ldrd_post(const int8_t **p, uint32_t *lo, uint32_t *hi)
{
    const int8_t *q = *p;
    __asm__("ldrd %0, %1, [%2], #8" : "=r"(*lo), "=r"(*hi), "+r"(q) : "m"(*(const uint64_t *)(const void *)q));
    *p = q;
}
#endif

/* acc[2*i + j] += dot(a_i, b_j) over k int8 values: 2 rows of activations, 2 rows of weights. */
TINYCC_INLINE void tinycc_dot_s8_2x2(const int8_t *a0, const int8_t *a1, const int8_t *b0,
                                     const int8_t *b1, int32_t k, int32_t *acc)
{
    int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];
    int32_t i = 0;
#if TINYCC_NN_DSP
    /* b1 is read at a fixed distance from b0, which saves a register in the loop */
    const int32_t b1_off = (int32_t)(b1 - b0);
    const int8_t *const a0_end = a0 + (k & ~3);
    i = k & ~3;
    for (; a0 != a0_end; a0 += 4, a1 += 4, b0 += 4) {
        const uint32_t x0 = (uint32_t)tinycc_load_s8x4(a0), x1 = (uint32_t)tinycc_load_s8x4(a1);
        const uint32_t y0 = (uint32_t)tinycc_load_s8x4(b0), y1 = (uint32_t)tinycc_load_s8x4(b0 + b1_off);
        const int16x2_t x0e = __sxtb16(x0), x0o = tinycc_sxtb16_odd((x0));
        const int16x2_t x1e = __sxtb16(x1), x1o = tinycc_sxtb16_odd((x1));
        const int16x2_t y0e = __sxtb16(y0), y0o = tinycc_sxtb16_odd((y0));
        const int16x2_t y1e = __sxtb16(y1), y1o = tinycc_sxtb16_odd((y1));
        s00 = __smlad(x0e, y0e, s00);
        s00 = __smlad(x0o, y0o, s00);
        s01 = __smlad(x0e, y1e, s01);
        s01 = __smlad(x0o, y1o, s01);
        s10 = __smlad(x1e, y0e, s10);
        s10 = __smlad(x1o, y0o, s10);
        s11 = __smlad(x1e, y1e, s11);
        s11 = __smlad(x1o, y1o, s11);
    }
    a0 -= i;
    a1 -= i;
    b0 -= i;
#endif
    for (; i < k; ++i) {
        const int32_t x0 = a0[i], x1 = a1[i], y0 = b0[i], y1 = b1[i];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

/*
 * The end of a finished 2x2 tile: the four accumulators (pixel-major: acc[0], acc[1] are
 * channels o0, o1 of the first pixel) requantized, all four first, then stored.
 */
TINYCC_INLINE void tinycc_store_2x2(const int32_t *acc, const int32_t *mult, const int32_t *shift, int32_t o0,
                                    int32_t o1, int32_t mode, int32_t zp, int32_t lo, int32_t hi, int8_t *out0,
                                    int8_t *out1)
{
    int8_t r[4];
    r[0] = tinycc_requant_ch(acc[0], mult, shift, o0, mode, zp, lo, hi);
    r[1] = tinycc_requant_ch(acc[1], mult, shift, o1, mode, zp, lo, hi);
    r[2] = tinycc_requant_ch(acc[2], mult, shift, o0, mode, zp, lo, hi);
    r[3] = tinycc_requant_ch(acc[3], mult, shift, o1, mode, zp, lo, hi);
    out0[o0] = r[0];
    out0[o1] = r[1];
    out1[o0] = r[2];
    out1[o1] = r[3];
}

/*
 * A 2x2 output tile, finished: out0[j] and out1[j] (j = 0, 1: channels o0 and o1) for
 * activation rows a0, a1 against weight rows b0, b1, from the bias to the clamped int8
 * value. The caller may pass the same pixel or channel twice for odd sizes: both stores then
 * write the same value.
 */
TINYCC_INLINE void tinycc_conv_s8_2x2_out(const int8_t *a0, const int8_t *a1, const int8_t *b0,
                                          const int8_t *b1, int32_t k, const int32_t *bias,
                                          const int32_t *mult, const int32_t *shift, int32_t o0, int32_t o1,
                                          int32_t mode, int32_t zp, int32_t lo, int32_t hi, int8_t *out0,
                                          int8_t *out1)
{
    int32_t acc[4];
    acc[0] = acc[2] = bias[o0];
    acc[1] = acc[3] = bias[o1];
    tinycc_dot_s8_2x2(a0, a1, b0, b1, k, acc);
    tinycc_store_2x2(acc, mult, shift, o0, o1, mode, zp, lo, hi, out0, out1);
}

/*
 * Activations sign-extended once for the 2x2 tiles that reuse them (every output channel pair
 * of a convolution reads the same im2col window): n int8 values (n a multiple of 4) become n
 * int16 (2n bytes at dst, word-aligned) in SXTB16 order, a0 a2 a1 a3 a4 a6 a5 a7 ..., so that
 * a tile loads two halfword pairs with one LDRD instead of unpacking bytes on every use.
 * tinycc_fill_s16: n int16 of `value` (the padding's zero point).
 */
static inline void tinycc_expand_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i;
#if TINYCC_NN_DSP
    int32_t *d = (int32_t *)(void *)dst;
    for (i = 0; i < n; i += 4, d += 2) {
        const uint32_t v = (uint32_t)tinycc_load_s8x4(src + i);
        d[0] = (int32_t)__sxtb16(v);
        d[1] = (int32_t)tinycc_sxtb16_odd(v);
    }
#else
    int16_t *d = (int16_t *)(void *)dst;
    for (i = 0; i < n; i += 4) {
        d[i] = src[i];
        d[i + 1] = src[i + 2];
        d[i + 2] = src[i + 1];
        d[i + 3] = src[i + 3];
    }
#endif
}

/* tinycc_expand_s8 for any n and any start j0 inside a window (w: the window's first byte):
 * value i goes to int16 position j0 + i of the SXTB16 order (bits 0 and 1 of the position
 * swapped). For windows whose runs do not start at multiples of 4 (1 or 3 input channels). */
static inline void tinycc_expand_s8_at(int8_t *w, int32_t j0, const int8_t *src, int32_t n)
{
    int16_t *d = (int16_t *)(void *)w;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t j = j0 + i;
        d[(j & ~3) | ((j & 1) << 1) | ((j >> 1) & 1)] = src[i];
    }
}

static inline void tinycc_fill_s16_at(int8_t *w, int32_t j0, int32_t value, int32_t n)
{
    int16_t *d = (int16_t *)(void *)w;
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t j = j0 + i;
        d[(j & ~3) | ((j & 1) << 1) | ((j >> 1) & 1)] = (int16_t)value;
    }
}

static inline void tinycc_fill_s16(int8_t *dst, int32_t value, int32_t n)
{
    int16_t *d = (int16_t *)(void *)dst;
    int32_t i;
    for (i = 0; i < n; ++i) {
        d[i] = (int16_t)value;
    }
}

#if TINYCC_NN_DSP
/* 4 values of two expanded windows against two weight rows: 2 LDRD, 2 LDR, 4 SXTB16, 8 SMLAD. */
TINYCC_INLINE void tinycc_dot_s16_2x2_step(const int8_t **a0, const int8_t **a1, const int8_t *b0, int32_t b1_off,
                                           int32_t *s00, int32_t *s01, int32_t *s10, int32_t *s11)
{
    uint32_t x0e, x0o, x1e, x1o;
    const uint32_t y0 = (uint32_t)tinycc_load_s8x4(b0), y1 = (uint32_t)tinycc_load_s8x4(b0 + b1_off);
    const int16x2_t y0e = __sxtb16(y0), y0o = tinycc_sxtb16_odd(y0);
    const int16x2_t y1e = __sxtb16(y1), y1o = tinycc_sxtb16_odd(y1);
    tinycc_ldrd_post(a0, &x0e, &x0o);
    tinycc_ldrd_post(a1, &x1e, &x1o);
    *s00 = __smlad((int16x2_t)x0e, y0e, *s00);
    *s00 = __smlad((int16x2_t)x0o, y0o, *s00);
    *s01 = __smlad((int16x2_t)x0e, y1e, *s01);
    *s01 = __smlad((int16x2_t)x0o, y1o, *s01);
    *s10 = __smlad((int16x2_t)x1e, y0e, *s10);
    *s10 = __smlad((int16x2_t)x1o, y0o, *s10);
    *s11 = __smlad((int16x2_t)x1e, y1e, *s11);
    *s11 = __smlad((int16x2_t)x1o, y1o, *s11);
}
#endif

/* tinycc_dot_s8_2x2 with the activations expanded by tinycc_expand_s8 (k a multiple of 4). */
TINYCC_INLINE void tinycc_dot_s16_2x2(const int8_t *a0_bytes, const int8_t *a1_bytes, const int8_t *b0,
                                      const int8_t *b1, int32_t k, int32_t *acc)
{
    int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];
#if TINYCC_NN_DSP
    /* one LDRD per window and 4 values (gcc 12 splits 64-bit loads into two LDR for the M4),
     * the weight row b1 at a fixed distance from b0 (unrolling twice makes gcc 12 spill) */
    const int8_t *a0 = a0_bytes, *a1 = a1_bytes;
    const int32_t b1_off = (int32_t)(b1 - b0);
    const int8_t *const b0_end = b0 + k;
    for (; b0 != b0_end; b0 += 4) {
        tinycc_dot_s16_2x2_step(&a0, &a1, b0, b1_off, &s00, &s01, &s10, &s11);
    }
#else
    const int16_t *a0 = (const int16_t *)(const void *)a0_bytes, *a1 = (const int16_t *)(const void *)a1_bytes;
    int32_t i, j;
    for (i = 0; i < k; i += 4) {
        for (j = 0; j < 4; ++j) {
            const int32_t kk = i + (j == 1 ? 2 : j == 2 ? 1 : j); /* a0 a2 a1 a3 */
            const int32_t x0 = a0[i + j], x1 = a1[i + j], y0 = b0[kk], y1 = b1[kk];
            s00 += x0 * y0;
            s01 += x0 * y1;
            s10 += x1 * y0;
            s11 += x1 * y1;
        }
    }
#endif
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

/* tinycc_conv_s8_2x2_out over activations expanded by tinycc_expand_s8. */
TINYCC_INLINE void tinycc_conv_s16_2x2_out(const int8_t *a0, const int8_t *a1, const int8_t *b0,
                                           const int8_t *b1, int32_t k, const int32_t *bias,
                                           const int32_t *mult, const int32_t *shift, int32_t o0, int32_t o1,
                                           int32_t mode, int32_t zp, int32_t lo, int32_t hi, int8_t *out0,
                                           int8_t *out1)
{
    int32_t acc[4];
    acc[0] = acc[2] = bias[o0];
    acc[1] = acc[3] = bias[o1];
    tinycc_dot_s16_2x2(a0, a1, b0, b1, k, acc);
    tinycc_store_2x2(acc, mult, shift, o0, o1, mode, zp, lo, hi, out0, out1);
}

/*
 * The 2x3 tile of the int16 im2col (2 output channels x 3 pixels), hand-scheduled on DSP cores.
 *
 * Layouts, both chosen at compile time so that the loop reads them in order:
 * - cols: the windows of 3 pixels sign-extended to int16 and interleaved: per group of 4
 *   window values, 24 bytes: pixel 0's 4 values in SXTB16 order (v0 v2 v1 v3), then pixel
 *   1's, then pixel 2's (tinycc_expand_s8_x3 and friends write it).
 * - w: the weight rows of channels o0 and o1 interleaved: per group of 4 values, row o0's 4
 *   bytes then row o1's (tinycc.kernels.gemm.pair_weights).
 * Per group: one LDRD of weights and 4 SXTB16, 3 LDRD of activations, 12 SMLAD: 20
 * instructions for 24 MACs. gcc 12 spills at this register count (6 accumulators, 4 weight
 * halves, 2 activation words, 2 pointers: all 14 registers), so the loop is inline assembly,
 * 4 groups a turn; its end lives on the stack (one LDR, CMP and BNE per turn). The first group
 * starts from the bias (no copies into six accumulators) and is not part of a turn.
 */
#if TINYCC_NN_ASM
/* The loops below use all 14 registers: the loop's end pointer (in register r at the start)
 * waits on the stack, pushed and dropped inside the asm statement, so that no operand needs
 * an address register. (Their register count needs the frame pointer omitted: see
 * TINYCC_NN_ASM; without __OPTIMIZE__, or with clang, the C loops are used.) */
#define TINYCC_LOOP_PUSH_END(r) "push {%[" r "]}\n1:\n\t"
#define TINYCC_LOOP_POP_END(r, p)                                                            \
    "ldr %[" r "], [sp]\n\t"                                                                \
    "cmp %[" p "], %[" r "]\n\t"                                                            \
    "bne 1b\n\t"                                                                            \
    "add sp, #4\n\t"
#define TINYCC_S16_2X3_GROUP                                                                 \
    "ldrd %[w0e], %[w1e], [%[pw]], #8\n\t"                                                  \
    "ldrd %[xe], %[xo], [%[pa]], #24\n\t"                                                   \
    "sxtb16 %[w0o], %[w0e], ror #8\n\t"                                                     \
    "sxtb16 %[w0e], %[w0e]\n\t"                                                             \
    "sxtb16 %[w1o], %[w1e], ror #8\n\t"                                                     \
    "sxtb16 %[w1e], %[w1e]\n\t"                                                             \
    "smlad %[s00], %[xe], %[w0e], %[s00]\n\t"                                               \
    "smlad %[s00], %[xo], %[w0o], %[s00]\n\t"                                               \
    "smlad %[s10], %[xe], %[w1e], %[s10]\n\t"                                               \
    "smlad %[s10], %[xo], %[w1o], %[s10]\n\t"                                               \
    "ldrd %[xe], %[xo], [%[pa], #-16]\n\t"                                                  \
    "smlad %[s01], %[xe], %[w0e], %[s01]\n\t"                                               \
    "smlad %[s01], %[xo], %[w0o], %[s01]\n\t"                                               \
    "smlad %[s11], %[xe], %[w1e], %[s11]\n\t"                                               \
    "smlad %[s11], %[xo], %[w1o], %[s11]\n\t"                                               \
    "ldrd %[xe], %[xo], [%[pa], #-8]\n\t"                                                   \
    "smlad %[s02], %[xe], %[w0e], %[s02]\n\t"                                               \
    "smlad %[s02], %[xo], %[w0o], %[s02]\n\t"                                               \
    "smlad %[s12], %[xe], %[w1e], %[s12]\n\t"                                               \
    "smlad %[s12], %[xo], %[w1o], %[s12]\n\t"
/* The first group: the accumulators start at the bias, which waits in s02 and s12 (the last
 * ones written), so no copies of it are needed. */
#define TINYCC_S16_2X3_FIRST                                                                 \
    "ldrd %[w0e], %[w1e], [%[pw]], #8\n\t"                                                  \
    "ldrd %[xe], %[xo], [%[pa]], #24\n\t"                                                   \
    "sxtb16 %[w0o], %[w0e], ror #8\n\t"                                                     \
    "sxtb16 %[w0e], %[w0e]\n\t"                                                             \
    "sxtb16 %[w1o], %[w1e], ror #8\n\t"                                                     \
    "sxtb16 %[w1e], %[w1e]\n\t"                                                             \
    "smlad %[s00], %[xe], %[w0e], %[s02]\n\t"                                               \
    "smlad %[s00], %[xo], %[w0o], %[s00]\n\t"                                               \
    "smlad %[s10], %[xe], %[w1e], %[s12]\n\t"                                               \
    "smlad %[s10], %[xo], %[w1o], %[s10]\n\t"                                               \
    "ldrd %[xe], %[xo], [%[pa], #-16]\n\t"                                                  \
    "smlad %[s01], %[xe], %[w0e], %[s02]\n\t"                                               \
    "smlad %[s01], %[xo], %[w0o], %[s01]\n\t"                                               \
    "smlad %[s11], %[xe], %[w1e], %[s12]\n\t"                                               \
    "smlad %[s11], %[xo], %[w1o], %[s11]\n\t"                                               \
    "ldrd %[xe], %[xo], [%[pa], #-8]\n\t"                                                   \
    "smlad %[s02], %[xe], %[w0e], %[s02]\n\t"                                               \
    "smlad %[s02], %[xo], %[w0o], %[s02]\n\t"                                               \
    "smlad %[s12], %[xe], %[w1e], %[s12]\n\t"                                               \
    "smlad %[s12], %[xo], %[w1o], %[s12]\n\t"
#define TINYCC_S16_2X3_FIRST_OPERANDS                                                        \
    [s00] "=&r"(s00), [s01] "=&r"(s01), [s02] "+r"(s02), [s10] "=&r"(s10), [s11] "=&r"(s11),  \
    [s12] "+r"(s12), [pa] "+r"(pa), [pw] "+r"(pw), [w0e] "=&r"(w0e), [w0o] "=&r"(w0o),         \
    [w1e] "=&r"(w1e), [w1o] "=&r"(w1o), [xe] "=&r"(xe), [xo] "=&r"(xo)
/* tinycc_requant_fast of accumulator s (mode: an asm constant): mode 5 one SMMLA; modes 4 and
 * 8 double s in place, then SMMLAR, and modes 4 and 6 add the sign's correction (7 and 8 are 6
 * and 4 without it); right shift, SSAT, and the store at po + off (an immediate). */
#define TINYCC_RQ(s, off)                                                                    \
    ".if %c[mode] == 5\n\t"                                                                 \
    "smmla %[y], %[" s "], %[m], %[c]\n\t"                                                  \
    ".else\n\t"                                                                             \
    ".if %c[mode] == 4 || %c[mode] == 8\n\t"                                                \
    "lsl %[" s "], %[" s "], #1\n\t"                                                        \
    ".endif\n\t"                                                                            \
    "smmlar %[y], %[" s "], %[m], %[c]\n\t"                                                 \
    ".if %c[mode] == 4 || %c[mode] == 6\n\t"                                                \
    "add %[y], %[y], %[" s "], asr #31\n\t"                                                 \
    ".endif\n\t"                                                                            \
    ".endif\n\t"                                                                            \
    "asr %[y], %[y], %[e]\n\t"                                                              \
    "ssat %[y], #8, %[y]\n\t"                                                               \
    "strb %[y], [%[po], #" off "]\n\t"
#define TINYCC_S16_2X3_OPERANDS                                                              \
    [s00] "+r"(s00), [s01] "+r"(s01), [s02] "+r"(s02), [s10] "+r"(s10), [s11] "+r"(s11),      \
    [s12] "+r"(s12), [pa] "+r"(pa), [pw] "+r"(pw), [w0e] "=&r"(w0e), [w0o] "=&r"(w0o),         \
    [w1e] "=&r"(w1e), [w1o] "=&r"(w1o), [xe] "+r"(xe), [xo] "=&r"(xo)
#endif

#if TINYCC_NN_ASM
/*
 * Channel j (0 or 1) of a pair's three outputs s0, s1, s2 (tinycc_store_2x3's asm form): the
 * channel's multiplier at pm[j], its (e, r) at ps[2 j], stores at po + j, po + d1 + j and
 * po + d2 + j, all immediate offsets from the pair's pointers. One statement per channel: its
 * 10 registers leave room for the frame pointer and for gcc at -O1, which found no allocation
 * for both channels' 13 in one ('impossible constraints').
 */
TINYCC_INLINE void tinycc_store_ch3(int32_t s0, int32_t s1, int32_t s2, const int32_t *pm, const int32_t *ps,
                                    int8_t *po, int32_t j, int32_t mode, int32_t d1, int32_t d2)
{
    uint32_t m, c, e, y;
    __asm__ volatile("ldr %[m], [%[pm], #%c[jm]]\n\t"
                     "ldrd %[e], %[c], [%[ps], #%c[js]]\n\t"
                     TINYCC_RQ("s0", "%c[j]") TINYCC_RQ("s1", "%c[d1]+%c[j]") TINYCC_RQ("s2", "%c[d2]+%c[j]")
                     : [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [m] "=&r"(m), [c] "=&r"(c), [e] "=&r"(e),
                       [y] "=&r"(y)
                     : [pm] "r"(pm), [ps] "r"(ps), [po] "r"(po), [j] "i"(j), [jm] "i"(4 * j), [js] "i"(8 * j),
                       [d1] "i"(d1), [d2] "i"(d2), [mode] "i"(mode)
                     : "memory");
}
#endif

/*
 * The six outputs of a 2x3 tile, accumulators s<channel><pixel> of channels o0 and o1 (o1 ==
 * o0 for an odd oc's last pair): requantized, clamped and stored at out0 + d_q + o (d1, d2:
 * constants at every call site). On the DSP cores, modes 4 to 8 over the full int8 range in
 * inline asm (tinycc_store_ch3), each channel's constants loaded once.
 */
TINYCC_INLINE void tinycc_store_2x3(int32_t s00, int32_t s01, int32_t s02, int32_t s10, int32_t s11, int32_t s12,
                                    int32_t o0, int32_t o1, int32_t oc, const int32_t *mult, const int32_t *shift,
                                    int32_t mode, int32_t zp, int32_t lo, int32_t hi, int8_t *out0, int32_t d1,
                                    int32_t d2)
{
    int8_t *const out1 = out0 + d1, *const out2 = out0 + d2;
    (void)oc; /* the asm's condition */
#if TINYCC_NN_ASM
    if (mode >= 4 && mode <= 8 && lo == -128 && hi == 127 && oc % 2 == 0 && d2 < 4000) {
        const int32_t *pm = mult + o0, *ps = shift + 2 * o0;
        int8_t *po = out0 + o0;
        tinycc_store_ch3(s00, s01, s02, pm, ps, po, 0, mode, d1, d2);
        tinycc_store_ch3(s10, s11, s12, pm, ps, po, 1, mode, d1, d2);
        return;
    }
#endif
    if (mode >= 4) {
        const int32_t m0 = mult[o0], e0 = shift[2 * o0], c0 = shift[2 * o0 + 1];
        const int32_t m1 = mult[o1], e1 = shift[2 * o1], c1 = shift[2 * o1 + 1];
        out0[o0] = tinycc_requant_fast(s00, m0, e0, c0, mode, lo, hi);
        out1[o0] = tinycc_requant_fast(s01, m0, e0, c0, mode, lo, hi);
        out2[o0] = tinycc_requant_fast(s02, m0, e0, c0, mode, lo, hi);
        out0[o1] = tinycc_requant_fast(s10, m1, e1, c1, mode, lo, hi);
        out1[o1] = tinycc_requant_fast(s11, m1, e1, c1, mode, lo, hi);
        out2[o1] = tinycc_requant_fast(s12, m1, e1, c1, mode, lo, hi);
    } else {
        out0[o0] = tinycc_requant_ch(s00, mult, shift, o0, mode, zp, lo, hi);
        out1[o0] = tinycc_requant_ch(s01, mult, shift, o0, mode, zp, lo, hi);
        out2[o0] = tinycc_requant_ch(s02, mult, shift, o0, mode, zp, lo, hi);
        out0[o1] = tinycc_requant_ch(s10, mult, shift, o1, mode, zp, lo, hi);
        out1[o1] = tinycc_requant_ch(s11, mult, shift, o1, mode, zp, lo, hi);
        out2[o1] = tinycc_requant_ch(s12, mult, shift, o1, mode, zp, lo, hi);
    }
}

/*
 * Three finished output pixels: out_q[o] for windows q = 0..2 and every channel o < oc, from
 * the bias to the clamped int8 value, in 2x3 tiles (layouts above; the weight pairs follow
 * each other, so the weight pointer runs on from tile to tile), each channel's requantization
 * constants loaded once. Pixel q's outputs start at out0 + d_q (constants: oc, 2 oc, or less
 * for the last pixels of a layer, whose windows repeat; both stores then write the same
 * value); an odd oc repeats the last channel in its pair. The activations come from the
 * scratch, so each output is stored as soon as it is ready.
 */
TINYCC_INLINE void tinycc_conv_s16_2x3_out(const int8_t *cols, const int8_t *w, int32_t k, int32_t oc,
                                           const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                           int32_t mode, int32_t zp, int32_t lo, int32_t hi, int8_t *out0,
                                           int32_t d1, int32_t d2)
{
    int32_t o0;
#if TINYCC_NN_ASM
    const int8_t *pw = w;
#endif
    for (o0 = 0; o0 < oc; o0 += 2) {
        const int32_t o1 = oc % 2 == 0 || o0 + 1 < oc ? o0 + 1 : o0;
#if TINYCC_NN_ASM
        int32_t s00, s01, s02, s10, s11, s12;
        if (oc % 2 == 0) { /* both biases in one LDRD */
            __asm__("ldrd %[b0], %[b1], [%[pb]]"
                    : [b0] "=r"(s02), [b1] "=r"(s12)
                    : [pb] "r"(bias + o0), "m"(bias[o0]), "m"(bias[o1]));
        } else {
            s02 = bias[o0];
            s12 = bias[o1];
        }
        const int8_t *pa = cols;
        const int8_t *const end = pw + 2 * k;
        /* groups after the first and before 4 a turn */
        const int32_t lead = k / 4 - 1 >= 4 ? (k / 4 - 1) % 4 : k / 4 - 1;
        uint32_t w0e, w0o, w1e, w1o, xe, xo;
        __asm__(TINYCC_S16_2X3_FIRST : TINYCC_S16_2X3_FIRST_OPERANDS : : "memory");
        if (lead >= 1) {
            __asm__(TINYCC_S16_2X3_GROUP : TINYCC_S16_2X3_OPERANDS : : "memory");
        }
        if (lead >= 2) {
            __asm__(TINYCC_S16_2X3_GROUP : TINYCC_S16_2X3_OPERANDS : : "memory");
        }
        if (lead >= 3) {
            __asm__(TINYCC_S16_2X3_GROUP : TINYCC_S16_2X3_OPERANDS : : "memory");
        }
        if (k >= 20) {
            xe = (uint32_t)(uintptr_t)end;
            __asm__(TINYCC_LOOP_PUSH_END("xe") TINYCC_S16_2X3_GROUP TINYCC_S16_2X3_GROUP TINYCC_S16_2X3_GROUP
                    TINYCC_S16_2X3_GROUP TINYCC_LOOP_POP_END("xe", "pw")
                    : TINYCC_S16_2X3_OPERANDS : : "cc", "memory");
        }
#else
        int32_t s00 = bias[o0], s01 = s00, s02 = s00, s10 = bias[o1], s11 = s10, s12 = s10;
        const int16_t *a = (const int16_t *)(const void *)cols;
        const int8_t *pw = w + o0 * k;
        int32_t g, j;
        for (g = 0; g < k / 4; ++g, a += 12, pw += 8) {
            for (j = 0; j < 4; ++j) { /* a: v0 v2 v1 v3 */
                const int32_t w0 = pw[j == 1 ? 2 : j == 2 ? 1 : j], w1 = pw[4 + (j == 1 ? 2 : j == 2 ? 1 : j)];
                s00 += a[j] * w0;
                s01 += a[4 + j] * w0;
                s02 += a[8 + j] * w0;
                s10 += a[j] * w1;
                s11 += a[4 + j] * w1;
                s12 += a[8 + j] * w1;
            }
        }
#endif
        tinycc_store_2x3(s00, s01, s02, s10, s11, s12, o0, o1, oc, mult, shift, mode, zp, lo, hi, out0, d1, d2);
    }
}

/*
 * The 2x3 tile with int16 weights too: both operands come as halfword pairs, so a group of 4
 * window values is 2 LDRD of weights, 3 LDRD of activations and 12 SMLAD: 17 instructions for
 * 24 MACs (the int8 weights' tile: 20), with the same 14 registers.
 * - cols: the 3-window layout of tinycc_conv_s16_2x3_out.
 * - w: one channel pair's weights, int16: per group of 4 values, row o0's 4 values in SXTB16
 *   order (v0 v2 v1 v3) then row o1's (16 bytes): tinycc_expand_s8 of the pair's
 *   pair_weights bytes, at run time into scratch or at compile time into flash
 *   (tinycc.kernels.gemm.wide_pair_weights).
 * Outputs as tinycc_conv_s16_2x3_out's, channels o0 and o0 + 1 (o0 again for an odd oc's last).
 */
#if TINYCC_NN_ASM
#define TINYCC_S16S16_2X3_GROUP_FROM(b01, b02, b11, b12)                                       \
    "ldrd %[w0e], %[w0o], [%[pw]], #16\n\t"                                                 \
    "ldrd %[xe], %[xo], [%[pa]], #24\n\t"                                                   \
    "ldrd %[w1e], %[w1o], [%[pw], #-8]\n\t"                                                 \
    "smlad %[s00], %[xe], %[w0e], %[" b01 "]\n\t"                                           \
    "smlad %[s00], %[xo], %[w0o], %[s00]\n\t"                                               \
    "smlad %[s10], %[xe], %[w1e], %[" b11 "]\n\t"                                           \
    "smlad %[s10], %[xo], %[w1o], %[s10]\n\t"                                               \
    "ldrd %[xe], %[xo], [%[pa], #-16]\n\t"                                                  \
    "smlad %[s01], %[xe], %[w0e], %[" b02 "]\n\t"                                           \
    "smlad %[s01], %[xo], %[w0o], %[s01]\n\t"                                               \
    "smlad %[s11], %[xe], %[w1e], %[" b12 "]\n\t"                                           \
    "smlad %[s11], %[xo], %[w1o], %[s11]\n\t"                                               \
    "ldrd %[xe], %[xo], [%[pa], #-8]\n\t"                                                   \
    "smlad %[s02], %[xe], %[w0e], %[s02]\n\t"                                               \
    "smlad %[s02], %[xo], %[w0o], %[s02]\n\t"                                               \
    "smlad %[s12], %[xe], %[w1e], %[s12]\n\t"                                               \
    "smlad %[s12], %[xo], %[w1o], %[s12]\n\t"
/* a group; the first one starts from the bias in s02 and s12, as TINYCC_S16_2X3_FIRST */
#define TINYCC_S16S16_2X3_GROUP TINYCC_S16S16_2X3_GROUP_FROM("s00", "s01", "s10", "s11")
#define TINYCC_S16S16_2X3_FIRST TINYCC_S16S16_2X3_GROUP_FROM("s02", "s02", "s12", "s12")
#endif

TINYCC_INLINE void tinycc_conv_s16s16_2x3_pair(const int8_t *cols, const int8_t *w, int32_t k, int32_t o0,
                                               int32_t oc, const int32_t *bias, const int32_t *mult,
                                               const int32_t *shift, int32_t mode, int32_t zp, int32_t lo,
                                               int32_t hi, int8_t *out0, int32_t d1, int32_t d2)
{
    const int32_t o1 = oc % 2 == 0 || o0 + 1 < oc ? o0 + 1 : o0;
#if TINYCC_NN_ASM
    int32_t s00, s01, s02, s10, s11, s12;
    if (oc % 2 == 0) { /* both biases in one LDRD */
        __asm__("ldrd %[b0], %[b1], [%[pb]]"
                : [b0] "=r"(s02), [b1] "=r"(s12)
                : [pb] "r"(bias + o0), "m"(bias[o0]), "m"(bias[o1]));
    } else {
        s02 = bias[o0];
        s12 = bias[o1];
    }
    const int8_t *pa = cols, *pw = w;
    const int8_t *const end = pw + 4 * k;
    /* groups after the first and before 4 a turn */
    const int32_t lead = k / 4 - 1 >= 4 ? (k / 4 - 1) % 4 : k / 4 - 1;
    uint32_t w0e, w0o, w1e, w1o, xe, xo;
    __asm__(TINYCC_S16S16_2X3_FIRST : TINYCC_S16_2X3_FIRST_OPERANDS : : "memory");
    if (lead >= 1) {
        __asm__(TINYCC_S16S16_2X3_GROUP : TINYCC_S16_2X3_OPERANDS : : "memory");
    }
    if (lead >= 2) {
        __asm__(TINYCC_S16S16_2X3_GROUP : TINYCC_S16_2X3_OPERANDS : : "memory");
    }
    if (lead >= 3) {
        __asm__(TINYCC_S16S16_2X3_GROUP : TINYCC_S16_2X3_OPERANDS : : "memory");
    }
    if (k >= 20) {
        xe = (uint32_t)(uintptr_t)end;
        __asm__(TINYCC_LOOP_PUSH_END("xe") TINYCC_S16S16_2X3_GROUP TINYCC_S16S16_2X3_GROUP
                TINYCC_S16S16_2X3_GROUP TINYCC_S16S16_2X3_GROUP TINYCC_LOOP_POP_END("xe", "pw")
                : TINYCC_S16_2X3_OPERANDS : : "cc", "memory");
    }
#else
    int32_t s00 = bias[o0], s01 = s00, s02 = s00, s10 = bias[o1], s11 = s10, s12 = s10;
    const int16_t *a = (const int16_t *)(const void *)cols, *pw = (const int16_t *)(const void *)w;
    int32_t g, j;
    for (g = 0; g < k / 4; ++g, a += 12, pw += 8) {
        for (j = 0; j < 4; ++j) { /* both in SXTB16 order */
            s00 += a[j] * pw[j];
            s01 += a[4 + j] * pw[j];
            s02 += a[8 + j] * pw[j];
            s10 += a[j] * pw[4 + j];
            s11 += a[4 + j] * pw[4 + j];
            s12 += a[8 + j] * pw[4 + j];
        }
    }
#endif
    tinycc_store_2x3(s00, s01, s02, s10, s11, s12, o0, o1, oc, mult, shift, mode, zp, lo, hi, out0, d1, d2);
}

/*
 * One channel pair's pair_weights bytes (n of them, n a multiple of 8, src word-aligned)
 * sign-extended for tinycc_conv_s16s16_2x3_pair: tinycc_expand_s8, on the DSP cores per 8
 * bytes one LDRD, 4 SXTB16 and 2 STRD, four groups a turn (7.5 instructions per 8 weights,
 * where the C loop takes 16).
 */
TINYCC_INLINE void tinycc_expand_pair_weights(int8_t *dst, const int8_t *src, int32_t n)
{
#if TINYCC_NN_ASM
#define TINYCC_EXPAND8                                                                      \
    "ldrd %[a], %[b], [%[s]], #8\n\t"                                                       \
    "sxtb16 %[ao], %[a], ror #8\n\t"                                                        \
    "sxtb16 %[a], %[a]\n\t"                                                                 \
    "sxtb16 %[bo], %[b], ror #8\n\t"                                                        \
    "sxtb16 %[b], %[b]\n\t"                                                                 \
    "strd %[a], %[ao], [%[d]], #16\n\t"                                                     \
    "strd %[b], %[bo], [%[d], #-8]\n\t"
    uint32_t a, b, ao, bo;
    const int8_t *const end = src + n;
    /* n / 8 % 4 groups, then 4 a turn */
    __asm__ volatile(".rept %c[lead]\n\t" TINYCC_EXPAND8 ".endr\n\t"
                     : [a] "=&r"(a), [b] "=&r"(b), [ao] "=&r"(ao), [bo] "=&r"(bo), [s] "+r"(src), [d] "+r"(dst)
                     : [lead] "i"(n / 8 % 4) : "memory");
    if (n >= 32) {
        __asm__ volatile("1:\n\t.rept 4\n\t" TINYCC_EXPAND8 ".endr\n\t"
                         "cmp %[s], %[e]\n\t"
                         "bne 1b\n\t"
                         : [a] "=&r"(a), [b] "=&r"(b), [ao] "=&r"(ao), [bo] "=&r"(bo), [s] "+r"(src), [d] "+r"(dst)
                         : [e] "r"(end) : "cc", "memory");
    }
#undef TINYCC_EXPAND8
#else
    tinycc_expand_s8(dst, src, n);
#endif
}

/*
 * One channel pair over `tiles` whole tiles of a block, the tile loop itself in asm (DSP cores,
 * modes 4 to 8 over the full int8 range, even oc): the 14 registers hold the tile's
 * accumulators, weights and activations while the output pointer and the pair's constants
 * wait on the stack (one STRD and one LDRD per tile), where gcc's C loop around the tile
 * spills a dozen values. The groups are unrolled (.rept) up to k = 64, above in a loop of 8
 * a turn whose end (the pair's weights' end) waits on the stack too. q: the pair's constants, b0 b1 m0 e0 c0
 * m1 e1 c1 (bias, multiplier, shift and rounding constant per channel), then the address
 * after the block's windows. The tile's registers become the requantization's after the
 * groups: m in w0e, c in w0o, e in w1e, the result in w1o, po in xe, q in xo.
 */
#if TINYCC_NN_ASM
/* TINYCC_RQ in the tile loop's registers (mode: an asm constant) */
#define TINYCC_RQT(s, off)                                                                   \
    ".if %c[mode] == 5\n\t"                                                                 \
    "smmla %[w1o], %[" s "], %[w0e], %[w0o]\n\t"                                            \
    ".else\n\t"                                                                             \
    ".if %c[mode] == 4 || %c[mode] == 8\n\t"                                                \
    "lsl %[" s "], %[" s "], #1\n\t"                                                        \
    ".endif\n\t"                                                                            \
    "smmlar %[w1o], %[" s "], %[w0e], %[w0o]\n\t"                                           \
    ".if %c[mode] == 4 || %c[mode] == 6\n\t"                                                \
    "add %[w1o], %[w1o], %[" s "], asr #31\n\t"                                             \
    ".endif\n\t"                                                                            \
    ".endif\n\t"                                                                            \
    "asr %[w1o], %[w1o], %[w1e]\n\t"                                                        \
    "ssat %[w1o], #8, %[w1o]\n\t"                                                           \
    "strb %[w1o], [%[xe], %[" off "]]\n\t"
/* the groups after the first: unrolled (k <= 64), or `lead` of them then turns of 8 until pw
 * reaches the end of the pair's weights, which waits on the stack above po and q */
#define TINYCC_PAIR_GROUPS_UNROLLED ".rept %c[ng]\n\t" TINYCC_S16S16_2X3_GROUP ".endr\n\t"
#define TINYCC_PAIR_GROUPS_LOOP                                                             \
    ".rept %c[lead]\n\t" TINYCC_S16S16_2X3_GROUP ".endr\n\t"                                \
    "2:\n\t"                                                                                \
    ".rept 8\n\t" TINYCC_S16S16_2X3_GROUP ".endr\n\t"                                       \
    "ldr %[xe], [sp, #8]\n\t"                                                               \
    "cmp %[pw], %[xe]\n\t"                                                                  \
    "bne 2b\n\t"
#define TINYCC_PAIR_TILES(GROUPS)                                                           \
    "add %[s00], %[pw], %[k4]\n\t"                                                          \
    "str %[s00], [sp, #-4]!\n\t"                                                            \
    "1:\n\t"                                                                                \
    "ldrd %[s02], %[s12], [%[xo]]\n\t"                                                      \
    "strd %[xe], %[xo], [sp, #-8]!\n\t"                                                     \
    TINYCC_S16S16_2X3_FIRST                                                                 \
    GROUPS                                                                                  \
    "ldrd %[xe], %[xo], [sp], #8\n\t"                                                       \
    "sub %[pw], %[pw], %[k4]\n\t"                                                           \
    "ldr %[w0e], [%[xo], #8]\n\t"                                                           \
    "ldrd %[w1e], %[w0o], [%[xo], #12]\n\t"                                                 \
    TINYCC_RQT("s00", "d0") TINYCC_RQT("s01", "d1") TINYCC_RQT("s02", "d2")                 \
    "ldr %[w0e], [%[xo], #20]\n\t"                                                          \
    "ldrd %[w1e], %[w0o], [%[xo], #24]\n\t"                                                 \
    TINYCC_RQT("s10", "d01") TINYCC_RQT("s11", "d11") TINYCC_RQT("s12", "d21")              \
    "add %[xe], %[xe], %[d3]\n\t"                                                           \
    "ldr %[w1o], [%[xo], #32]\n\t"                                                          \
    "cmp %[pa], %[w1o]\n\t"                                                                 \
    "bne 1b\n\t"                                                                            \
    "add sp, sp, #4\n\t"
#define TINYCC_PAIR_TILES_OPERANDS                                                          \
    [s00] "=&r"(s00), [s01] "=&r"(s01), [s02] "=&r"(s02), [s10] "=&r"(s10), [s11] "=&r"(s11),  \
    [s12] "=&r"(s12), [pa] "+r"(pa), [pw] "+r"(pw), [w0e] "=&r"(w0e), [w0o] "=&r"(w0o),        \
    [w1e] "=&r"(w1e), [w1o] "=&r"(w1o), [xe] "+r"(xe), [xo] "+r"(xo)
#define TINYCC_PAIR_TILES_CONSTANTS                                                         \
    [ng] "i"(k / 4 - 1), [lead] "i"((k / 4 - 1) % 8), [k4] "i"(4 * k), [d0] "i"(0), [d1] "i"(oc), [d2] "i"(2 * oc), [d01] "i"(1), \
    [d11] "i"(oc + 1), [d21] "i"(2 * oc + 1), [d3] "i"(3 * oc), [mode] "i"(mode)

TINYCC_INLINE void tinycc_conv_s16s16_pair_tiles(const int8_t *cols, int32_t tiles, const int8_t *w, int32_t k,
                                                 int32_t oc, const int32_t *q, int32_t mode, int8_t *out0)
{
    int32_t s00, s01, s02, s10, s11, s12;
    uint32_t w0e, w0o, w1e, w1o;
    const int8_t *pa = cols, *pw = w;
    uint32_t xe = (uint32_t)(uintptr_t)out0, xo = (uint32_t)(uintptr_t)q;
    (void)tiles;
    if (k <= 64) {
        __asm__ volatile(TINYCC_PAIR_TILES(TINYCC_PAIR_GROUPS_UNROLLED)
                         : TINYCC_PAIR_TILES_OPERANDS : TINYCC_PAIR_TILES_CONSTANTS : "cc", "memory");
    } else {
        __asm__ volatile(TINYCC_PAIR_TILES(TINYCC_PAIR_GROUPS_LOOP)
                         : TINYCC_PAIR_TILES_OPERANDS : TINYCC_PAIR_TILES_CONSTANTS : "cc", "memory");
    }
}
#endif

/*
 * A block of pixels: `tiles` 3-window layouts one after the other in cols (6 k bytes each;
 * tile t's outputs from out0 + 3 t oc), every output channel pair over all of them with its
 * weights as int16 (tinycc_conv_s16s16_2x3_pair): expand != 0 sign-extends the pair's
 * pair_weights bytes (w, int8) into wx (4 k bytes of scratch) once per block, so the
 * expansion costs 1 / tiles of what it saves; expand == 0 reads w as the int16 stream itself
 * (pre-expanded in flash). tail != 0: the last tile holds the layer's last one or two pixels
 * (windows repeated), stored at offsets t1, t2 instead of oc, 2 oc (constants at every call
 * site, like expand).
 */
TINYCC_INLINE void tinycc_conv_s16_block_out(const int8_t *cols, int32_t tiles, int32_t tail, const void *w,
                                             int32_t expand, int8_t *wx, int32_t k, int32_t oc,
                                             const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                             int32_t mode, int32_t zp, int32_t lo, int32_t hi, int8_t *out0,
                                             int32_t t1, int32_t t2)
{
    int32_t o0, t;
    for (o0 = 0; o0 < oc; o0 += 2) {
        const int8_t *pw;
        const int8_t *a = cols;
        int8_t *po = out0;
        if (expand) {
            tinycc_expand_pair_weights(wx, (const int8_t *)w + o0 * k, 2 * k);
            pw = wx;
        } else {
            pw = (const int8_t *)w + o0 * 2 * k;
        }
#if TINYCC_NN_ASM
        /* (4 k and 3 oc: immediates of ADD/SUB, below 4096) */
        if (mode >= 4 && mode <= 8 && lo == -128 && hi == 127 && oc % 2 == 0 && 3 * oc < 4096 &&
            4 * k < 4096) {
            const int32_t full = tiles - (tail != 0);
            if (full > 0) {
                int32_t q[9];
                q[0] = bias[o0];
                q[1] = bias[o0 + 1];
                q[2] = mult[o0];
                q[3] = shift[2 * o0];
                q[4] = shift[2 * o0 + 1];
                q[5] = mult[o0 + 1];
                q[6] = shift[2 * o0 + 2];
                q[7] = shift[2 * o0 + 3];
                q[8] = (int32_t)(uintptr_t)(cols + full * 6 * k);
                tinycc_conv_s16s16_pair_tiles(cols, full, pw, k, oc, q, mode, out0 + o0);
                a += full * 6 * k;
                po += full * 3 * oc;
            }
        } else
#endif
        {
            for (t = 0; t < tiles - (tail != 0); ++t, a += 6 * k, po += 3 * oc) {
                tinycc_conv_s16s16_2x3_pair(a, pw, k, o0, oc, bias, mult, shift, mode, zp, lo, hi, po, oc, 2 * oc);
            }
        }
        if (tail) {
            tinycc_conv_s16s16_2x3_pair(a, pw, k, o0, oc, bias, mult, shift, mode, zp, lo, hi, po, t1, t2);
        }
    }
}

/*
 * Writers of the 3-window layout. dst: window q's slot of the group that holds value j0
 * (cols + (j0 / 4) * 24 + q * 8), j0 and n multiples of 4;
 * tinycc_expand_s8_x3: n int8 values sign-extended in SXTB16 order, tinycc_fill_s16_x3: n
 * copies of value (the padding's zero point).
 */
static inline void tinycc_expand_s8_x3(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i;
#if TINYCC_NN_DSP
    for (i = 0; i < n; i += 4, dst += 24) {
        const uint32_t v = (uint32_t)tinycc_load_s8x4(src + i);
        int32_t *d = (int32_t *)(void *)dst;
        d[0] = (int32_t)__sxtb16(v);
        d[1] = (int32_t)tinycc_sxtb16_odd(v);
    }
#else
    for (i = 0; i < n; i += 4, dst += 24) {
        int16_t *d = (int16_t *)(void *)dst;
        d[0] = src[i];
        d[1] = src[i + 2];
        d[2] = src[i + 1];
        d[3] = src[i + 3];
    }
#endif
}

/* tinycc_expand_s8_x3 of 2 x the values (the 2x3 tiles then accumulate 2 acc: mode 6) */
static inline void tinycc_expand_s8_x3_2(int8_t *dst, const int8_t *src, int32_t n)
{
    int32_t i;
#if TINYCC_NN_DSP
    for (i = 0; i < n; i += 4, dst += 24) {
        const uint32_t v = (uint32_t)tinycc_load_s8x4(src + i);
        const int16x2_t e = __sxtb16(v), o = tinycc_sxtb16_odd(v);
        int32_t *d = (int32_t *)(void *)dst;
        d[0] = (int32_t)__sadd16(e, e);
        d[1] = (int32_t)__sadd16(o, o);
    }
#else
    for (i = 0; i < n; i += 4, dst += 24) {
        int16_t *d = (int16_t *)(void *)dst;
        d[0] = (int16_t)(2 * src[i]);
        d[1] = (int16_t)(2 * src[i + 2]);
        d[2] = (int16_t)(2 * src[i + 1]);
        d[3] = (int16_t)(2 * src[i + 3]);
    }
#endif
}

static inline void tinycc_fill_s16_x3(int8_t *dst, int32_t value, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i += 4, dst += 24) {
        int16_t *d = (int16_t *)(void *)dst;
        d[0] = d[1] = d[2] = d[3] = (int16_t)value;
    }
}

/*
 * First layers: convolutions over few input channels (C = 1..4: an image, a spectrogram), where
 * a window row is only KW * C values and an im2col gather would cost as much as the arithmetic.
 * tinycc_first_conv_s8 runs the whole layer from a band of KH input rows sign-extended once to
 * int16 (natural order, the left/right padding filled with the input zero point), held in a
 * ring of KH rows that is written twice (slots r and r + KH), so the KH rows of any window are
 * KH consecutive rows at a fixed pitch whichever slot the ring starts at. A window row is then
 * W2 = ceil(KW * C / 2) halfword pairs at a fixed offset from the pixel's start (the odd last
 * value of a row meets a zero weight), and tiles of 2 output channels x 3 pixels of a row read
 * them straight from the band: per pair of words one LDRD per channel (int16 weights, expanded
 * at compile time by tinycc.kernels.first_layer.band_weights), one LDRD per pixel (LDR pairs
 * where a pixel's step SW * C is odd), 12 SMLAD. A row whose width is not a multiple of 3 ends
 * with a tile that overlaps its neighbour (recomputed pixels store the same values).
 * Weights, per channel pair (o0, o1; an odd count repeats the last) and kernel row: per pair of
 * words j, j+1 o0's 4 values then o1's; an odd last word, o0's 2 values then o1's.
 */
/* One band row of `len` values at d and d + mirror: `lead` zero points, n values of src, zero
 * points after (the padding's value; src is only read for n > 0). */
static inline void tinycc_first_row(int16_t *d, int32_t mirror, const int8_t *src, int32_t lead, int32_t n,
                                    int32_t len, int32_t zp)
{
    int16_t *const e = d + mirror;
    int32_t i, k = 0;
    for (i = 0; i < lead; ++i) {
        d[i] = e[i] = (int16_t)zp;
    }
#if TINYCC_NN_DSP
    if (n > 0 && (lead & 1) != 0) { /* the word stores below need an even index */
        d[lead] = e[lead] = src[0];
        k = 1;
    }
    if (n > k) {
        const int32_t quads = (n - k) / 4;
        uint32_t *p = (uint32_t *)(void *)(d + lead + k), *q = (uint32_t *)(void *)(e + lead + k);
        for (i = 0; i < quads; ++i, k += 4) {
            /* 4 values: SXTB16 gives (v0, v2) and (v1, v3), PKHBT/PKHTB (v0, v1) and (v2, v3);
             * both copies by STRD (gcc 12 stores the words one by one) */
            const uint32_t v = (uint32_t)tinycc_load_s8x4(src + k);
            const uint32_t ev = (uint32_t)__sxtb16(v), od = (uint32_t)tinycc_sxtb16_odd(v);
            const uint32_t lo = tinycc_pkhbt(ev, od), hi = tinycc_pkhtb(od, ev);
            __asm__("strd %[lo], %[hi], [%[p]], #8\n\t"
                    "strd %[lo], %[hi], [%[q]], #8"
                    : [p] "+r"(p), [q] "+r"(q), "=m"(*(uint64_t *)(void *)p), "=m"(*(uint64_t *)(void *)q)
                    : [lo] "r"(lo), [hi] "r"(hi));
        }
    }
#endif
#if TINYCC_NN_DSP
    for (i = 0; i < 3; ++i, ++k) { /* the last n % 4 values (a loop of at most 3 turns) */
        if (k < n) {
            d[lead + k] = e[lead + k] = src[k];
        }
    }
#else
    for (; k < n; ++k) {
        d[lead + k] = e[lead + k] = src[k];
    }
#endif
    for (i = lead + n; i < len; ++i) {
        d[i] = e[i] = (int16_t)zp;
    }
}

/* A band row of padding: len (even) zero points at d and d + mirror, a word (two values) a store. */
static inline void tinycc_first_pad_row(int16_t *d, int32_t mirror, int32_t len, int32_t zp)
{
    const uint32_t two = ((uint32_t)zp & 0xffffu) * 0x10001u;
    uint32_t *p = (uint32_t *)(void *)d, *q = (uint32_t *)(void *)(d + mirror);
    int32_t i;
    for (i = 0; i < len / 2; ++i) {
        p[i] = q[i] = two;
    }
}

#if TINYCC_NN_ASM
/* One pixel's pair of words against both channels' (LDRD, or two LDR where the pixel step
 * leaves the pixel's words unaligned), pixel 1 or 2 at a byte offset from pixel 0's; the
 * accumulators s0, s1 start from a0, a1 (the bias in s00 and s10 at the window's first words,
 * so that no copies of it are needed; pixel 0's come last). */
#define TINYCC_FIRST_PX(s0, s1, a0, a1, off)                                                 \
    ".if %c[al]\n\t"                                                                        \
    "ldrd %[xa], %[xb], [%[pa], #" off "]\n\t"                                              \
    ".else\n\t"                                                                             \
    "ldr %[xa], [%[pa], #" off "]\n\t"                                                      \
    "ldr %[xb], [%[pa], #" off "+4]\n\t"                                                    \
    ".endif\n\t"                                                                            \
    "smlad %[" s0 "], %[xa], %[wa], %[" a0 "]\n\t"                                           \
    "smlad %[" s0 "], %[xb], %[wb], %[" s0 "]\n\t"                                           \
    "smlad %[" s1 "], %[xa], %[wc], %[" a1 "]\n\t"                                           \
    "smlad %[" s1 "], %[xb], %[wd], %[" s1 "]\n\t"
/* pixel 0's, stepping the band pointer to the next pair */
#define TINYCC_FIRST_PX0                                                                     \
    ".if %c[al]\n\t"                                                                        \
    "ldrd %[xa], %[xb], [%[pa]], #8\n\t"                                                    \
    ".else\n\t"                                                                             \
    "ldr %[xb], [%[pa], #4]\n\t"                                                            \
    "ldr %[xa], [%[pa]], #8\n\t"                                                            \
    ".endif\n\t"                                                                            \
    "smlad %[s00], %[xa], %[wa], %[s00]\n\t"                                                \
    "smlad %[s00], %[xb], %[wb], %[s00]\n\t"                                                \
    "smlad %[s10], %[xa], %[wc], %[s10]\n\t"                                                \
    "smlad %[s10], %[xb], %[wd], %[s10]\n\t"
/* the same for a single word (a window row's odd last one) */
#define TINYCC_FIRST_PX1(s0, s1, a0, a1, off)                                                \
    "ldr %[xa], [%[pa], #" off "]\n\t"                                                      \
    "smlad %[" s0 "], %[xa], %[wa], %[" a0 "]\n\t"                                           \
    "smlad %[" s1 "], %[xa], %[wc], %[" a1 "]\n\t"
/* The window of 3 pixels, fully unrolled: KH rows of W2 / 2 word pairs and an odd word
 * (.Ltinycc_first: still at the window's first words). */
#define TINYCC_FIRST_DOT                                                                     \
    ".set .Ltinycc_first, 1\n\t"                                                            \
    ".rept %c[kh]\n\t"                                                                      \
    ".rept %c[w4]\n\t"                                                                      \
    "ldrd %[wa], %[wb], [%[pw]], #8\n\t"                                                    \
    "ldrd %[wc], %[wd], [%[pw]], #8\n\t"                                                    \
    ".if .Ltinycc_first\n\t"                                                                \
    TINYCC_FIRST_PX("s01", "s11", "s00", "s10", "%c[p1]")                                    \
    TINYCC_FIRST_PX("s02", "s12", "s00", "s10", "%c[p2]")                                    \
    ".else\n\t"                                                                             \
    TINYCC_FIRST_PX("s01", "s11", "s01", "s11", "%c[p1]")                                    \
    TINYCC_FIRST_PX("s02", "s12", "s02", "s12", "%c[p2]")                                    \
    ".endif\n\t"                                                                            \
    TINYCC_FIRST_PX0                                                                         \
    ".set .Ltinycc_first, 0\n\t"                                                            \
    ".endr\n\t"                                                                             \
    ".if %c[odd]\n\t"                                                                       \
    "ldrd %[wa], %[wc], [%[pw]], #8\n\t"                                                    \
    ".if .Ltinycc_first\n\t"                                                                \
    TINYCC_FIRST_PX1("s01", "s11", "s00", "s10", "%c[p1]")                                   \
    TINYCC_FIRST_PX1("s02", "s12", "s00", "s10", "%c[p2]")                                   \
    ".else\n\t"                                                                             \
    TINYCC_FIRST_PX1("s01", "s11", "s01", "s11", "%c[p1]")                                   \
    TINYCC_FIRST_PX1("s02", "s12", "s02", "s12", "%c[p2]")                                   \
    ".endif\n\t"                                                                            \
    "ldr %[xa], [%[pa]], #4\n\t"                                                            \
    "smlad %[s00], %[xa], %[wa], %[s00]\n\t"                                                \
    "smlad %[s10], %[xa], %[wc], %[s10]\n\t"                                                \
    ".set .Ltinycc_first, 0\n\t"                                                            \
    ".endif\n\t"                                                                            \
    "addw %[pa], %[pa], #%c[skip]\n\t"                                                      \
    ".endr\n\t"
/* tinycc_requant_fast of accumulator s (modes 4, 5 and 6 as in tinycc_requant_fast), right
 * shift, SSAT and store at po + off. Modes 4 and 6 leave out the rounding division's minus one
 * for a negative acc when the output zero point is -128 (corr 0): a negative acc then gives
 * -128 + (a quotient <= 0, with or without it), which SSAT clamps to -128 either way. */
#define TINYCC_FIRST_RQ(s, off)                                                              \
    ".if %c[mode] == 5\n\t"                                                                 \
    "smmla %[y], %[" s "], %[m], %[c]\n\t"                                                  \
    ".else\n\t"                                                                             \
    ".if %c[mode] == 4\n\t"                                                                 \
    "lsl %[" s "], %[" s "], #1\n\t"                                                        \
    ".endif\n\t"                                                                            \
    "smmlar %[y], %[" s "], %[m], %[c]\n\t"                                                 \
    ".if %c[corr]\n\t"                                                                      \
    "add %[y], %[y], %[" s "], asr #31\n\t"                                                 \
    ".endif\n\t"                                                                            \
    ".endif\n\t"                                                                            \
    "asr %[y], %[y], %[e]\n\t"                                                              \
    "ssat %[y], #8, %[y]\n\t"                                                               \
    "strb %[y], [%[po], #" off "]\n\t"
#endif

/*
 * Three output pixels of a row, every channel: a points at pixel 0's window in the band (row
 * pitch len values), pixel q's starts pix values further; out_q = out0 + q * oc. w: the layer's
 * stream (tinycc.kernels.first_layer.band_weights), per channel pair one block of 32-bit words:
 * both (folded) biases, the pair's int16 weights (2 * kh * w2 words, order above), then each
 * channel's multiplier and shift pair (m, e, r): so the assembly needs a single running pointer
 * for all of them. bias, mult, shift: the layer's arrays, for the requantizations in C.
 * kh, w2, pix, len, oc, mode, zp, lo, hi: constants at the call site.
 */
TINYCC_INLINE void tinycc_first_tile(const int16_t *a, const int16_t *w, int32_t kh, int32_t w2, int32_t pix,
                                     int32_t len, int32_t oc, const int32_t *bias, const int32_t *mult,
                                     const int32_t *shift, int32_t mode, int32_t zp, int32_t lo, int32_t hi,
                                     int8_t *out0)
{
    int32_t o0;
#if TINYCC_NN_ASM
    const int8_t *pw = (const int8_t *)(const void *)w;
    (void)bias;
#else
    const int32_t block = 16 + 4 * kh * w2; /* int16 values per channel pair */
#endif
    for (o0 = 0; o0 < oc; o0 += 2) {
        const int32_t o1 = oc % 2 == 0 || o0 + 1 < oc ? o0 + 1 : o0;
#if TINYCC_NN_ASM
        int32_t s00, s01, s02, s10, s11, s12;
        {
            const int8_t *pa = (const int8_t *)(const void *)a;
            uint32_t wa, wb, wc, wd, xa, xb;
            __asm__("ldrd %[s00], %[s10], [%[pw]], #8\n\t"
                    TINYCC_FIRST_DOT
                    : [s00] "=&r"(s00), [s01] "=&r"(s01), [s02] "=&r"(s02), [s10] "=&r"(s10), [s11] "=&r"(s11),
                      [s12] "=&r"(s12), [pa] "+r"(pa), [pw] "+r"(pw), [wa] "=&r"(wa), [wb] "=&r"(wb),
                      [wc] "=&r"(wc), [wd] "=&r"(wd), [xa] "=&r"(xa), [xb] "=&r"(xb)
                    : [kh] "i"(kh), [w4] "i"(w2 / 2), [odd] "i"(w2 % 2), [al] "i"(pix % 2 == 0),
                      [p1] "i"(2 * pix), [p2] "i"(4 * pix), [skip] "i"(2 * len - 4 * w2)
                    : "memory");
        }
        if ((mode == 4 || mode == 5 || mode == 6) && lo == -128 && hi == 127 && oc % 2 == 0 && 2 * oc < 4000) {
            /* the six requantizations, each channel's constants from the stream */
            int8_t *const po = out0 + o0;
            uint32_t m, c, e, y;
            __asm__ volatile("ldr %[m], [%[pw]], #4\n\t"
                             "ldrd %[e], %[c], [%[pw]], #8\n\t"
                             TINYCC_FIRST_RQ("s00", "0") TINYCC_FIRST_RQ("s01", "%c[d1]")
                             TINYCC_FIRST_RQ("s02", "%c[d2]")
                             "ldr %[m], [%[pw]], #4\n\t"
                             "ldrd %[e], %[c], [%[pw]], #8\n\t"
                             TINYCC_FIRST_RQ("s10", "1") TINYCC_FIRST_RQ("s11", "%c[d1]+1")
                             TINYCC_FIRST_RQ("s12", "%c[d2]+1")
                             : [s00] "+r"(s00), [s01] "+r"(s01), [s02] "+r"(s02), [s10] "+r"(s10),
                               [s11] "+r"(s11), [s12] "+r"(s12), [pw] "+r"(pw), [m] "=&r"(m), [c] "=&r"(c),
                               [e] "=&r"(e), [y] "=&r"(y)
                             : [po] "r"(po), [d1] "i"(oc), [d2] "i"(2 * oc), [mode] "i"(mode),
                               [corr] "i"(zp != -128)
                             : "memory");
            continue;
        }
        pw += 24; /* the constants, read from the arrays below */
#else
        int32_t s00, s01, s02, s10, s11, s12;
        {
            const int16_t *pb = w + (o0 / 2) * block, *pw = pb + 4;
            int32_t ky, m;
            memcpy(&s00, pb, 4);
            memcpy(&s10, pb + 2, 4);
            s01 = s02 = s00;
            s11 = s12 = s10;
            for (ky = 0; ky < kh; ++ky, pw += 4 * w2) {
                for (m = 0; m < 2 * w2; ++m) {
                    const int32_t at = m < w2 / 2 * 4 ? m / 4 * 8 + m % 4 : w2 / 2 * 8 + m % 2;
                    const int32_t k0 = pw[at], k1 = pw[at + (m < w2 / 2 * 4 ? 4 : 2)];
                    const int16_t *x = a + ky * len + m;
                    s00 += x[0] * k0;
                    s01 += x[pix] * k0;
                    s02 += x[2 * pix] * k0;
                    s10 += x[0] * k1;
                    s11 += x[pix] * k1;
                    s12 += x[2 * pix] * k1;
                }
            }
        }
        (void)bias;
#endif
        if (mode >= 4) {
            const int32_t m0 = mult[o0], e0 = shift[2 * o0], c0 = shift[2 * o0 + 1];
            const int32_t m1 = mult[o1], e1 = shift[2 * o1], c1 = shift[2 * o1 + 1];
            out0[o0] = tinycc_requant_fast(s00, m0, e0, c0, mode, lo, hi);
            out0[oc + o0] = tinycc_requant_fast(s01, m0, e0, c0, mode, lo, hi);
            out0[2 * oc + o0] = tinycc_requant_fast(s02, m0, e0, c0, mode, lo, hi);
            out0[o1] = tinycc_requant_fast(s10, m1, e1, c1, mode, lo, hi);
            out0[oc + o1] = tinycc_requant_fast(s11, m1, e1, c1, mode, lo, hi);
            out0[2 * oc + o1] = tinycc_requant_fast(s12, m1, e1, c1, mode, lo, hi);
        } else {
            out0[o0] = tinycc_requant_ch(s00, mult, shift, o0, mode, zp, lo, hi);
            out0[oc + o0] = tinycc_requant_ch(s01, mult, shift, o0, mode, zp, lo, hi);
            out0[2 * oc + o0] = tinycc_requant_ch(s02, mult, shift, o0, mode, zp, lo, hi);
            out0[o1] = tinycc_requant_ch(s10, mult, shift, o1, mode, zp, lo, hi);
            out0[oc + o1] = tinycc_requant_ch(s11, mult, shift, o1, mode, zp, lo, hi);
            out0[2 * oc + o1] = tinycc_requant_ch(s12, mult, shift, o1, mode, zp, lo, hi);
        }
    }
}

/*
 * The whole layer (NHWC input h x w x c, output oh x ow x oc, ow >= 3, no dilation): per output
 * row, the band rows it needs that are not in the ring yet (zero-point rows outside the
 * input), then its tiles. scratch: 2 * kh * len int16, word-aligned, len as computed here
 * (tinycc.kernels.first_layer.band_len). Every size and offset is a constant at the call site.
 */
TINYCC_INLINE void tinycc_first_conv_s8(const int8_t *x, int32_t h, int32_t w, int32_t c, int32_t kh, int32_t kw,
                                        int32_t sh, int32_t sw, int32_t pt, int32_t pl, int32_t in_zp, int32_t oh,
                                        int32_t ow, int32_t oc, const int16_t *wt, const int32_t *bias,
                                        const int32_t *mult, const int32_t *shift, int32_t mode, int32_t zp,
                                        int32_t lo, int32_t hi, int8_t *out, int8_t *scratch)
{
    const int32_t w2 = (kw * c + 1) / 2, pix = sw * c;
    const int32_t len = ((ow - 1) * pix + 2 * w2 + 1) / 2 * 2; /* values per band row, even */
    const int32_t lead = pl * c < len ? pl * c : len;          /* left padding */
    const int32_t n = w * c < len - lead ? w * c : len - lead;  /* input values a row keeps */
    int16_t *const band = (int16_t *)(void *)scratch;
    int32_t next = 0, oy;
    for (oy = 0; oy < oh; ++oy) {
        const int32_t r0 = oy * sh; /* band row r holds input row r - pt */
        const int16_t *a = band + (r0 % kh) * len;
        int8_t *o = out + oy * ow * oc;
        int32_t r, ox;
        for (r = next > r0 ? next : r0; r < r0 + kh; ++r) {
            int16_t *d = band + (r % kh) * len;
            if (r - pt >= 0 && r - pt < h) {
                tinycc_first_row(d, kh * len, x + (r - pt) * w * c, lead, n, len, in_zp);
            } else {
                tinycc_first_pad_row(d, kh * len, len, in_zp);
            }
        }
        next = r0 + kh;
        for (ox = 0; ox + 3 <= ow; ox += 3) {
            tinycc_first_tile(a + ox * pix, wt, kh, w2, pix, len, oc, bias, mult, shift, mode, zp, lo, hi,
                              o + ox * oc);
        }
        if (ox < ow) { /* the row's last 1 or 2 pixels: a tile overlapping the one before */
            tinycc_first_tile(a + (ow - 3) * pix, wt, kh, w2, pix, len, oc, bias, mult, shift, mode, zp, lo, hi,
                              o + (ow - 3) * oc);
        }
    }
}

/* acc[j] += dot(a, b_j) for 4 rows of weights: one row of activations (batch-1 layers). */
TINYCC_INLINE void tinycc_dot_s8_1x4(const int8_t *a, const int8_t *b0, const int8_t *b1,
                                     const int8_t *b2, const int8_t *b3, int32_t k, int32_t *acc)
{
    int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    int32_t i = 0;
#if TINYCC_NN_DSP
    for (; i + 4 <= k; i += 4) {
        const uint32_t x = (uint32_t)tinycc_load_s8x4(a + i);
        const int16x2_t xe = __sxtb16(x), xo = tinycc_sxtb16_odd((x));
        uint32_t y = (uint32_t)tinycc_load_s8x4(b0 + i);
        s0 = __smlad(xe, __sxtb16(y), s0);
        s0 = __smlad(xo, tinycc_sxtb16_odd((y)), s0);
        y = (uint32_t)tinycc_load_s8x4(b1 + i);
        s1 = __smlad(xe, __sxtb16(y), s1);
        s1 = __smlad(xo, tinycc_sxtb16_odd((y)), s1);
        y = (uint32_t)tinycc_load_s8x4(b2 + i);
        s2 = __smlad(xe, __sxtb16(y), s2);
        s2 = __smlad(xo, tinycc_sxtb16_odd((y)), s2);
        y = (uint32_t)tinycc_load_s8x4(b3 + i);
        s3 = __smlad(xe, __sxtb16(y), s3);
        s3 = __smlad(xo, tinycc_sxtb16_odd((y)), s3);
    }
#endif
    for (; i < k; ++i) {
        const int32_t x = a[i];
        s0 += x * b0[i];
        s1 += x * b1[i];
        s2 += x * b2[i];
        s3 += x * b3[i];
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}

/*
 * Batch-1 fully connected, every output of one activation row, 4 rows at a time, the inner loops hand-scheduled on DSP cores (gcc 12 spills at these
 * register counts). Weight layouts, chosen at compile time (tinycc.kernels.gemm.quad_weights,
 * expand_weights), rows padded with zero rows to whole blocks:
 * - int8: per block of 4 rows and group of 4 values, the 4 rows' 4 bytes in turn (16 bytes):
 *   per group one LDR and 2 SXTB16 of activations, 2 LDRD, 8 SXTB16 and 8 SMLAD of weights,
 *   21 instructions for 16 MACs; the weights' sign extension is the floor here.
 * - int16 (weights stored pre-extended, twice the flash): per block of 4 rows and group of 4
 *   values, the 4 rows' 4 values in SXTB16 order (w0 w2 w1 w3, 32 bytes): one LDR and 2 SXTB16,
 *   4 LDRD and 8 SMLAD, 15 instructions for 16 MACs.
 * k a multiple of 4; each block's accumulators start at the bias and end requantized.
 */
#if TINYCC_NN_ASM
#define TINYCC_FC_S8_ROW(s, w)                                                               \
    "sxtb16 %[t], %[" w "], ror #8\n\t"                                                     \
    "sxtb16 %[" w "], %[" w "]\n\t"                                                         \
    "smlad %[" s "], %[xe], %[" w "], %[" s "]\n\t"                                         \
    "smlad %[" s "], %[xo], %[t], %[" s "]\n\t"
#define TINYCC_FC_S8_GROUP                                                                   \
    "ldr %[xe], [%[pa]], #4\n\t"                                                            \
    "ldrd %[w0], %[w1], [%[pw]], #16\n\t"                                                   \
    "ldrd %[w2], %[w3], [%[pw], #-8]\n\t"                                                   \
    "sxtb16 %[xo], %[xe], ror #8\n\t"                                                       \
    "sxtb16 %[xe], %[xe]\n\t"                                                               \
    TINYCC_FC_S8_ROW("s0", "w0") TINYCC_FC_S8_ROW("s1", "w1")                                \
    TINYCC_FC_S8_ROW("s2", "w2") TINYCC_FC_S8_ROW("s3", "w3")
#define TINYCC_FC_S8_OPERANDS                                                                \
    [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [pa] "+r"(pa), [pw] "+r"(pw), \
    [xe] "=&r"(xe), [xo] "=&r"(xo), [w0] "=&r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2),            \
    [w3] "=&r"(w3), [t] "=&r"(t)
#define TINYCC_FC_S16_ROW(s, off)                                                            \
    "ldrd %[a], %[b], [%[pw], #" off "]\n\t"                                                \
    "smlad %[" s "], %[xe], %[a], %[" s "]\n\t"                                             \
    "smlad %[" s "], %[xo], %[b], %[" s "]\n\t"
#define TINYCC_FC_S16_GROUP                                                                  \
    "ldr %[xe], [%[pa]], #4\n\t"                                                            \
    "sxtb16 %[xo], %[xe], ror #8\n\t"                                                       \
    "sxtb16 %[xe], %[xe]\n\t"                                                               \
    "ldrd %[a], %[b], [%[pw]], #32\n\t"                                                     \
    "smlad %[s0], %[xe], %[a], %[s0]\n\t"                                                   \
    "smlad %[s0], %[xo], %[b], %[s0]\n\t"                                                   \
    TINYCC_FC_S16_ROW("s1", "-24") TINYCC_FC_S16_ROW("s2", "-16") TINYCC_FC_S16_ROW("s3", "-8")
#define TINYCC_FC_S16_OPERANDS                                                               \
    [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3), [pa] "+r"(pa), [pw] "+r"(pw), \
    [xe] "=&r"(xe), [xo] "=&r"(xo), [a] "=&r"(a), [b] "=&r"(b)
#endif

/* The block's outputs o .. o + rows - 1 that exist (o + j < n, known when n is a multiple of
 * rows), requantized and stored. */
TINYCC_INLINE void tinycc_fc_store(const int32_t *s, int32_t rows, int32_t o, int32_t n, const int32_t *mult,
                                   const int32_t *shift, int32_t mode, int32_t zp, int32_t lo, int32_t hi,
                                   int8_t *out)
{
    int32_t j;
    for (j = 0; j < rows; ++j) {
        if (n % rows == 0 || o + j < n) {
            out[o + j] = tinycc_requant_ch(s[j], mult, shift, o + j, mode, zp, lo, hi);
        }
    }
}

TINYCC_INLINE void tinycc_fc_s8_out(const int8_t *x, const int8_t *w, int32_t k, int32_t n, const int32_t *bias,
                                    const int32_t *mult, const int32_t *shift, int32_t mode, int32_t zp, int32_t lo,
                                    int32_t hi, int8_t *out)
{
    int32_t o;
    for (o = 0; o < n; o += 4, w += 4 * k) {
        const int32_t whole = n % 4 == 0 || o + 4 <= n;
        int32_t s0 = bias[o], s1 = whole || o + 1 < n ? bias[o + 1] : 0;
        int32_t s2 = whole || o + 2 < n ? bias[o + 2] : 0, s3 = whole ? bias[o + 3] : 0, s[4];
#if TINYCC_NN_ASM
        const int8_t *pa = x, *pw = w;
        const int8_t *const end = x + k;
        uint32_t xe, xo, w0, w1, w2, w3, t;
        int32_t lead;
        for (lead = k / 4 >= 4 ? (k / 4) % 4 : k / 4; lead > 0; --lead) { /* then 4 groups a turn */
            __asm__(TINYCC_FC_S8_GROUP : TINYCC_FC_S8_OPERANDS : : "memory");
        }
        if (k >= 16) {
            __asm__("1:\n\t" TINYCC_FC_S8_GROUP TINYCC_FC_S8_GROUP TINYCC_FC_S8_GROUP TINYCC_FC_S8_GROUP
                    "cmp %[pa], %[end]\n\t"
                    "bne 1b\n\t"
                    : TINYCC_FC_S8_OPERANDS : [end] "r"(end) : "cc", "memory");
        }
#else
        const int8_t *v = w;
        int32_t g;
        for (g = 0; g < k; g += 4, v += 16) {
            const int32_t x0 = x[g], x1 = x[g + 1], x2 = x[g + 2], x3 = x[g + 3];
            s0 += x0 * v[0] + x1 * v[1] + x2 * v[2] + x3 * v[3];
            s1 += x0 * v[4] + x1 * v[5] + x2 * v[6] + x3 * v[7];
            s2 += x0 * v[8] + x1 * v[9] + x2 * v[10] + x3 * v[11];
            s3 += x0 * v[12] + x1 * v[13] + x2 * v[14] + x3 * v[15];
        }
#endif
        s[0] = s0;
        s[1] = s1;
        s[2] = s2;
        s[3] = s3;
        tinycc_fc_store(s, 4, o, n, mult, shift, mode, zp, lo, hi, out);
    }
}

TINYCC_INLINE void tinycc_fc_s8s16_out(const int8_t *x, const int16_t *w, int32_t k, int32_t n,
                                       const int32_t *bias, const int32_t *mult, const int32_t *shift, int32_t mode,
                                       int32_t zp, int32_t lo, int32_t hi, int8_t *out)
{
    int32_t o;
    for (o = 0; o < n; o += 4, w += 4 * k) {
        const int32_t whole = n % 4 == 0 || o + 4 <= n;
        int32_t s0 = bias[o], s1 = whole || o + 1 < n ? bias[o + 1] : 0;
        int32_t s2 = whole || o + 2 < n ? bias[o + 2] : 0, s3 = whole ? bias[o + 3] : 0, s[4];
#if TINYCC_NN_ASM
        const int8_t *pa = x, *pw = (const int8_t *)(const void *)w;
        const int8_t *const end = x + k;
        uint32_t xe, xo, a, b;
        int32_t lead;
        for (lead = k / 4 >= 4 ? (k / 4) % 4 : k / 4; lead > 0; --lead) { /* then 4 groups a turn */
            __asm__(TINYCC_FC_S16_GROUP : TINYCC_FC_S16_OPERANDS : : "memory");
        }
        if (k >= 16) {
            __asm__("1:\n\t" TINYCC_FC_S16_GROUP TINYCC_FC_S16_GROUP TINYCC_FC_S16_GROUP TINYCC_FC_S16_GROUP
                    "cmp %[pa], %[end]\n\t"
                    "bne 1b\n\t"
                    : TINYCC_FC_S16_OPERANDS : [end] "r"(end) : "cc", "memory");
        }
#else
        int32_t g;
        for (g = 0; g < k; g += 4) { /* w: w0 w2 w1 w3 per row */
            const int32_t x0 = x[g], x1 = x[g + 1], x2 = x[g + 2], x3 = x[g + 3];
            const int16_t *v = w + 4 * g;
            s0 += x0 * v[0] + x2 * v[1] + x1 * v[2] + x3 * v[3];
            s1 += x0 * v[4] + x2 * v[5] + x1 * v[6] + x3 * v[7];
            s2 += x0 * v[8] + x2 * v[9] + x1 * v[10] + x3 * v[11];
            s3 += x0 * v[12] + x2 * v[13] + x1 * v[14] + x3 * v[15];
        }
#endif
        s[0] = s0;
        s[1] = s1;
        s[2] = s2;
        s[3] = s3;
        tinycc_fc_store(s, 4, o, n, mult, shift, mode, zp, lo, hi, out);
    }
}

/* acc[0] += dot(a, b) over k int8 values: the leftovers of the tiled loops. */
static inline void tinycc_dot_s8_1x1(const int8_t *a, const int8_t *b, int32_t k, int32_t *acc)
{
    int32_t s = acc[0];
    int32_t i = 0;
#if TINYCC_NN_DSP
    for (; i + 4 <= k; i += 4) {
        const uint32_t x = (uint32_t)tinycc_load_s8x4(a + i), y = (uint32_t)tinycc_load_s8x4(b + i);
        s = __smlad(__sxtb16(x), __sxtb16(y), s);
        s = __smlad(tinycc_sxtb16_odd((x)), tinycc_sxtb16_odd((y)), s);
    }
#endif
    for (; i < k; ++i) {
        s += a[i] * b[i];
    }
    acc[0] = s;
}

/* One tap of a depthwise window for 4 adjacent channels: s_c += x[c] * w[c]. */
TINYCC_INLINE void tinycc_depthwise_tap_s8x4(const int8_t *xp, const int8_t *wp, int32_t *s0, int32_t *s1,
                                             int32_t *s2, int32_t *s3)
{
#if TINYCC_NN_DSP
    const uint32_t xv = (uint32_t)tinycc_load_s8x4(xp), wv = (uint32_t)tinycc_load_s8x4(wp);
    const int16x2_t xe = __sxtb16(xv), xo = tinycc_sxtb16_odd(xv);
    const int16x2_t we = __sxtb16(wv), wo = tinycc_sxtb16_odd(wv);
    *s0 = __smlabb(xe, we, *s0);
    *s2 = __smlatt(xe, we, *s2);
    *s1 = __smlabb(xo, wo, *s1);
    *s3 = __smlatt(xo, wo, *s3);
#else
    *s0 += xp[0] * wp[0];
    *s1 += xp[1] * wp[1];
    *s2 += xp[2] * wp[2];
    *s3 += xp[3] * wp[3];
#endif
}

/*
 * Depthwise: acc[c] += sum over the kh x kw window of x * w, for 4 adjacent channels.
 * x points at the window's first tap for channel 0 of the group; taps are row_stride and
 * col_stride bytes apart; w points at the group's first weight, tap_stride bytes per tap.
 */
static inline void tinycc_depthwise_s8x4(const int8_t *x, int32_t kh, int32_t kw, int32_t row_stride,
                                         int32_t col_stride, const int8_t *w, int32_t tap_stride,
                                         int32_t *acc)
{
    int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    int32_t r, c;
    for (r = 0; r < kh; ++r) {
        const int8_t *xr = x + r * row_stride;
        const int8_t *wr = w + r * kw * tap_stride;
        for (c = 0; c < kw; ++c) {
            const int8_t *xp = xr + c * col_stride;
            const int8_t *wp = wr + c * tap_stride;
            tinycc_depthwise_tap_s8x4(xp, wp, &s0, &s1, &s2, &s3);
        }
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}

/*
 * One depthwise output pixel for 4 adjacent channels, requantized and stored: the window's
 * taps are row_stride and col_stride bytes apart from x, the weights tap_stride apart from w.
 * double_rounding is tinycc_requant_out's mode (a constant at every call site, so it folds).
 */
static inline void tinycc_depthwise_s8x4_out(const int8_t *x, int32_t kh, int32_t kw, int32_t row_stride,
                                             int32_t col_stride, const int8_t *w, int32_t tap_stride,
                                             const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                             int32_t double_rounding, int32_t zp, int32_t lo, int32_t hi,
                                             int8_t *out)
{
    int32_t acc[4];
    int32_t c;
    acc[0] = bias[0];
    acc[1] = bias[1];
    acc[2] = bias[2];
    acc[3] = bias[3];
    tinycc_depthwise_s8x4(x, kh, kw, row_stride, col_stride, w, tap_stride, acc);
    for (c = 0; c < 4; ++c) {
        out[c] = tinycc_requant_ch(acc[c], mult, shift, c, double_rounding, zp, lo, hi);
    }
}

/*
 * A row of 3x3 depthwise outputs: n output pixels (x advancing by x_step bytes per pixel, out
 * by out_step), all c channels (a multiple of 4), requantized and stored; every pixel's whole
 * window lies inside the input. Channel groups are the outer loop so that a group's weights
 * (sign-extended once into halfword pairs), bias and requantization constants stay put while
 * the row is swept.
 */
static inline void tinycc_depthwise3x3_row(const int8_t *x, int32_t n, int32_t x_step, int32_t row_stride,
                                           int32_t col_stride, const int8_t *w, int32_t c,
                                           const int32_t *bias, const int32_t *mult, const int32_t *shift,
                                           int32_t double_rounding, int32_t zp, int32_t lo, int32_t hi,
                                           int8_t *out, int32_t out_step)
{
    int32_t g, p, t;
    for (g = 0; g < c; g += 4) {
        /* the group's constants in locals: int8 stores may alias any array, so the compiler
         * would otherwise reload them after every output byte */
        const int32_t b0 = bias[g], b1 = bias[g + 1], b2 = bias[g + 2], b3 = bias[g + 3];
        const int32_t off[9] = {0, col_stride, 2 * col_stride, row_stride, row_stride + col_stride,
                                row_stride + 2 * col_stride, 2 * row_stride, 2 * row_stride + col_stride,
                                2 * row_stride + 2 * col_stride};
        const int8_t *xg = x + g;
        int8_t *og = out + g;
#if TINYCC_NN_DSP
        int16x2_t we[9], wo[9];
        for (t = 0; t < 9; ++t) {
            const uint32_t wv = (uint32_t)tinycc_load_s8x4(w + t * c + g);
            we[t] = __sxtb16(wv);
            wo[t] = tinycc_sxtb16_odd(wv);
        }
#endif
        for (p = 0; p < n; ++p, xg += x_step, og += out_step) {
            int32_t s0 = b0, s1 = b1, s2 = b2, s3 = b3;
            for (t = 0; t < 9; ++t) {
#if TINYCC_NN_DSP
                const uint32_t xv = (uint32_t)tinycc_load_s8x4(xg + off[t]);
                const int16x2_t xe = __sxtb16(xv), xo = tinycc_sxtb16_odd(xv);
                s0 = __smlabb(xe, we[t], s0);
                s2 = __smlatt(xe, we[t], s2);
                s1 = __smlabb(xo, wo[t], s1);
                s3 = __smlatt(xo, wo[t], s3);
#else
                const int8_t *xp = xg + off[t], *wp = w + t * c + g;
                s0 += xp[0] * wp[0];
                s1 += xp[1] * wp[1];
                s2 += xp[2] * wp[2];
                s3 += xp[3] * wp[3];
#endif
            }
            {
                const int8_t o0 = tinycc_requant_ch(s0, mult, shift, g, double_rounding, zp, lo, hi);
                const int8_t o1 = tinycc_requant_ch(s1, mult, shift, g + 1, double_rounding, zp, lo, hi);
                const int8_t o2 = tinycc_requant_ch(s2, mult, shift, g + 2, double_rounding, zp, lo, hi);
                const int8_t o3 = tinycc_requant_ch(s3, mult, shift, g + 3, double_rounding, zp, lo, hi);
                og[0] = o0;
                og[1] = o1;
                og[2] = o2;
                og[3] = o3;
            }
        }
    }
}

#if TINYCC_NN_DSP
/* One tap from a line buffer: 4 channels as halfword pairs p[0] = (c0, c2), p[1] = (c1, c3),
 * against the weights unpacked the same way. */
TINYCC_INLINE void tinycc_dw_tap_pairs(const int32_t *p, const int32_t *wt, int32_t *s0, int32_t *s1,
                                       int32_t *s2, int32_t *s3)
{
    const int16x2_t xe = (int16x2_t)p[0], xo = (int16x2_t)p[1];
    const int16x2_t we = (int16x2_t)wt[0], wo = (int16x2_t)wt[1];
    *s0 = __smlabb(xe, we, *s0);
    *s2 = __smlatt(xe, we, *s2);
    *s1 = __smlabb(xo, wo, *s1);
    *s3 = __smlatt(xo, wo, *s3);
}
#endif

/*
 * 3x3 depthwise convolution (dilation 1) of 4 adjacent channels over the whole output plane,
 * through line buffers: each input row the window needs is sign-extended once into `lines`
 * (4 lines of lw pixels, 8 bytes a pixel: the 4 channels as two halfword pairs on DSP cores,
 * 4 int16 elsewhere), the padding columns and the rows outside the input holding the input
 * zero point (which the folded bias expects). Every output pixel then reads its 9 taps
 * without bounds checks or unpacking, with the group's weights unpacked once. x, w, bias,
 * mult, shift point at the group's first channel; c is the tensor's channel count (the
 * stride between pixels); shift is the layer's shift array (mode as in tinycc_requant_ch).
 * lw = (ow - 1) * sw + 3; scratch: 32 * lw bytes, word-aligned (the planner aligns arena buffers).
 */
static inline void tinycc_depthwise3x3_lines_s8x4(const int8_t *x, int32_t h, int32_t w_in, int32_t c,
                                                  int32_t sh, int32_t sw, int32_t pt, int32_t pl, int32_t oh,
                                                  int32_t ow, int32_t in_zp, const int8_t *w, const int32_t *bias,
                                                  const int32_t *mult, const int32_t *shift, int32_t mode,
                                                  int32_t zp, int32_t lo, int32_t hi, int8_t *out, int32_t lw,
                                                  int8_t *scratch)
{
    int32_t *const lines = (int32_t *)(void *)scratch;
    int32_t *slot[3], *zline = lines + 3 * 2 * lw, *rows[3];
    int32_t held[3] = {-1, -1, -1};
    int32_t i, r, oy, ox;
#if TINYCC_NN_DSP
    int32_t wt[9][2];
    const int32_t zw = (int32_t)__sxtb16((uint32_t)(uint8_t)in_zp * 0x01010101u);
    for (i = 0; i < 9; ++i) {
        const uint32_t wv = (uint32_t)tinycc_load_s8x4(w + i * c);
        wt[i][0] = (int32_t)__sxtb16(wv);
        wt[i][1] = (int32_t)tinycc_sxtb16_odd(wv);
    }
    for (i = 0; i < 2 * lw; ++i) {
        zline[i] = zw;
    }
#else
    int16_t *const zl16 = (int16_t *)(void *)zline;
    for (i = 0; i < 4 * lw; ++i) {
        zl16[i] = (int16_t)in_zp;
    }
#endif
    for (r = 0; r < 3; ++r) {
        /* the zero-point columns on both sides, once: row copies only write the middle */
        const int32_t n = w_in < lw - pl ? w_in : lw - pl;
        slot[r] = lines + r * 2 * lw;
        memcpy(slot[r], zline, (size_t)pl * 8u);
        memcpy(slot[r] + 2 * (pl + n), zline, (size_t)(lw - pl - n) * 8u);
    }
    for (oy = 0; oy < oh; ++oy) {
        for (r = 0; r < 3; ++r) {
            const int32_t iy = oy * sh - pt + r;
            int32_t *line;
            if (iy < 0 || iy >= h) {
                rows[r] = zline;
                continue;
            }
            line = slot[iy % 3];
            rows[r] = line;
            if (held[iy % 3] == iy) {
                continue;
            }
            held[iy % 3] = iy;
            {
                const int8_t *xr = x + iy * w_in * c;
                const int32_t n = w_in < lw - pl ? w_in : lw - pl;
#if TINYCC_NN_DSP
                int32_t *dst = line + 2 * pl;
                for (i = 0; i < n; ++i, xr += c, dst += 2) {
                    const uint32_t v = (uint32_t)tinycc_load_s8x4(xr);
                    dst[0] = (int32_t)__sxtb16(v);
                    dst[1] = (int32_t)tinycc_sxtb16_odd(v);
                }
#else
                int16_t *dst = (int16_t *)(void *)line + 4 * pl;
                for (i = 0; i < n; ++i, xr += c, dst += 4) {
                    dst[0] = xr[0];
                    dst[1] = xr[1];
                    dst[2] = xr[2];
                    dst[3] = xr[3];
                }
#endif
            }
        }
        {
#if TINYCC_NN_DSP
            const int32_t *p0 = rows[0], *p1 = rows[1], *p2 = rows[2];
#else
            const int16_t *p0 = (const int16_t *)(const void *)rows[0];
            const int16_t *p1 = (const int16_t *)(const void *)rows[1];
            const int16_t *p2 = (const int16_t *)(const void *)rows[2];
#endif
            const int32_t step = (TINYCC_NN_DSP ? 2 : 4) * sw; /* 8 bytes a pixel */
        for (ox = 0; ox < ow; ++ox, p0 += step, p1 += step, p2 += step) {
            int32_t s0 = bias[0], s1 = bias[1], s2 = bias[2], s3 = bias[3];
            int8_t *o = out + (oy * ow + ox) * c;
#if TINYCC_NN_DSP
            /* written out: gcc 12 does not unroll the 9 taps by itself */
            tinycc_dw_tap_pairs(p0, wt[0], &s0, &s1, &s2, &s3);
            tinycc_dw_tap_pairs(p0 + 2, wt[1], &s0, &s1, &s2, &s3);
            tinycc_dw_tap_pairs(p0 + 4, wt[2], &s0, &s1, &s2, &s3);
            tinycc_dw_tap_pairs(p1, wt[3], &s0, &s1, &s2, &s3);
            tinycc_dw_tap_pairs(p1 + 2, wt[4], &s0, &s1, &s2, &s3);
            tinycc_dw_tap_pairs(p1 + 4, wt[5], &s0, &s1, &s2, &s3);
            tinycc_dw_tap_pairs(p2, wt[6], &s0, &s1, &s2, &s3);
            tinycc_dw_tap_pairs(p2 + 2, wt[7], &s0, &s1, &s2, &s3);
            tinycc_dw_tap_pairs(p2 + 4, wt[8], &s0, &s1, &s2, &s3);
#else
            for (r = 0; r < 9; ++r) {
                const int16_t *p = (r < 3 ? p0 : r < 6 ? p1 : p2) + 4 * (r % 3);
                const int8_t *wp = w + r * c;
                s0 += p[0] * wp[0];
                s1 += p[1] * wp[1];
                s2 += p[2] * wp[2];
                s3 += p[3] * wp[3];
            }
#endif
            {
                const int8_t o0 = tinycc_requant_ch(s0, mult, shift, 0, mode, zp, lo, hi);
                const int8_t o1 = tinycc_requant_ch(s1, mult, shift, 1, mode, zp, lo, hi);
                const int8_t o2 = tinycc_requant_ch(s2, mult, shift, 2, mode, zp, lo, hi);
                const int8_t o3 = tinycc_requant_ch(s3, mult, shift, 3, mode, zp, lo, hi);
                o[0] = o0;
                o[1] = o1;
                o[2] = o2;
                o[3] = o3;
            }
        }
        }
    }
}

/*
 * One 3x3 depthwise output pixel whose window leaves the input: taps outside read `pad`, c
 * bytes of the input zero point (the folded bias expects exactly that), so every tap costs
 * the same as inside. iy0, ix0: the window's top-left input coordinates (may be negative).
 */
static inline void tinycc_depthwise3x3_edge(const int8_t *x, int32_t h, int32_t w_in, int32_t iy0, int32_t ix0,
                                            int32_t dh, int32_t dw, const int8_t *pad, const int8_t *w,
                                            int32_t c, const int32_t *bias, const int32_t *mult,
                                            const int32_t *shift, int32_t double_rounding, int32_t zp,
                                            int32_t lo, int32_t hi, int8_t *out)
{
    const int8_t *taps[9];
    int32_t t, g;
    for (t = 0; t < 9; ++t) {
        const int32_t iy = iy0 + (t / 3) * dh, ix = ix0 + (t % 3) * dw;
        taps[t] = (iy >= 0 && iy < h && ix >= 0 && ix < w_in) ? x + (iy * w_in + ix) * c : pad;
    }
    for (g = 0; g < c; g += 4) {
        int32_t s0 = bias[g], s1 = bias[g + 1], s2 = bias[g + 2], s3 = bias[g + 3];
        for (t = 0; t < 9; ++t) {
            const int8_t *xp = taps[t] + g, *wp = w + t * c + g;
            tinycc_depthwise_tap_s8x4(xp, wp, &s0, &s1, &s2, &s3);
        }
        {
            const int8_t o0 = tinycc_requant_ch(s0, mult, shift, g, double_rounding, zp, lo, hi);
            const int8_t o1 = tinycc_requant_ch(s1, mult, shift, g + 1, double_rounding, zp, lo, hi);
            const int8_t o2 = tinycc_requant_ch(s2, mult, shift, g + 2, double_rounding, zp, lo, hi);
            const int8_t o3 = tinycc_requant_ch(s3, mult, shift, g + 3, double_rounding, zp, lo, hi);
            out[g] = o0;
            out[g + 1] = o1;
            out[g + 2] = o2;
            out[g + 3] = o3;
        }
    }
}

/*
 * Channel o's requantization with its constants in locals (m, s0, s1: mult[o], then shift[o]
 * or the (e, r) pair of modes 4 and 5): int8 stores may alias the arrays, so a loop that
 * stores would otherwise reload them after every output.
 */
/*
 * Mode 7 (the depthwise kernels only): mode 6 without the sign correction, for layers whose
 * clamp floor lo is at or above the output zero point zp (every ReLU and ReLU6 layer) and
 * whose multipliers are non-negative (QuantizeMultiplier of a positive scale): the lowering
 * (tinycc.kernels.depthwise.pairs_mode) checks both. Why it gives the same int8: mode 6 is
 *   y = (r + x - [acc < 0]) >> e,  x = (A m + 2^31) >> 32,  r = 2^(e-1) + zp 2^e,  e >= 1
 * with A the (doubled) accumulator. For A >= 0 the correction is 0 anyway. For A < 0 and
 * m >= 0, A m <= 0, so x <= (0 + 2^31) >> 32 = 0 (x = 0 where the product rounds to 0), and
 * both y = floor((x + 2^(e-1) - 1) / 2^e) + zp and y' = floor((x + 2^(e-1)) / 2^e) + zp are
 * at most floor(2^(e-1) / 2^e) + zp = zp <= lo: the clamp (SSAT to [-128, 127], then lo, with
 * -128 <= lo) gives lo for both. A layer without activation (lo = -128 < zp) keeps mode 6:
 * there a negative accumulator's output can lie above lo and the correction matters.
 */
TINYCC_INLINE int8_t tinycc_requant_local(int32_t acc, int32_t m, int32_t s0, int32_t s1, int32_t mode, int32_t zp,
                                          int32_t lo, int32_t hi)
{
    if (mode == 7) { /* s0: the right shift e, s1: the rounding constant r */
        int32_t y;
#if TINYCC_NN_DSP
        __asm__("smmlar %0, %1, %2, %3" : "=r"(y) : "r"(acc), "r"(m), "r"(s1));
#else
        y = (int32_t)(((int64_t)s1 * ((int64_t)1 << 32) + (int64_t)acc * m + ((int64_t)1 << 31)) >> 32);
#endif
        return (int8_t)tinycc_clamp_s8(y >> s0, lo, hi);
    }
    return mode >= 4 ? tinycc_requant_fast(acc, m, s0, s1, mode, lo, hi) : tinycc_requant_out(acc, m, s0, mode, zp, lo, hi);
}

/*
 * Two neighbouring outputs (2k, 2k+1) of one channel of a 3x3 depthwise line sweep, from the
 * bias b. The channel's line buffers interleave the 3 ring slots word by word (word j of slot
 * s at 3j + s, a word holding two neighbouring taps), so that one pointer p, at the pair's
 * first word of slot 0, reaches every tap at a fixed offset. ws holds the weights of the rows
 * the slots hold, in slot order (per slot (w0, w1), (w1, w2); as words on DSP cores), s is the
 * stride along the line.
 */
#if TINYCC_NN_DSP
TINYCC_INLINE void tinycc_dw_pair_taps(const int32_t *t, int32_t step, int32_t wa, int32_t wb, int32_t s,
                                       int32_t *a0, int32_t *a1)
{
    if (s == 1) { /* taps (t0, t1), (t2, t3): words t[0], t[step] */
        const int32_t x0 = t[0], x1 = t[step];
        *a0 = __smlad((int16x2_t)x0, (int16x2_t)wa, *a0);
        *a1 = __smlatb(x0, wa, *a1);
        *a0 = __smlabt(x1, wb, *a0);
        *a1 = __smlad((int16x2_t)x1, (int16x2_t)wb, *a1);
    } else { /* taps (t0, t1), (t2, t3), (t4, t5) */
        const int32_t x0 = t[0], x1 = t[step], x2 = t[2 * step];
        *a0 = __smlad((int16x2_t)x0, (int16x2_t)wa, *a0);
        *a1 = __smlad((int16x2_t)x1, (int16x2_t)wa, *a1);
        *a0 = __smlabt(x1, wb, *a0);
        *a1 = __smlabt(x2, wb, *a1);
    }
}

/* written out: gcc 12 keeps a loop over the 3 slots, with the weights on the stack. On DSP
 * cores a channel's 3 slots follow each other (half words each), so that a pair's words of
 * one slot are adjacent (one LDRD in tinycc_dw_lines_asm) */
TINYCC_INLINE void tinycc_dw_pair(const int32_t *p, int32_t half, const int32_t *ws, int32_t s, int32_t b,
                                  int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = b, a1 = b;
    tinycc_dw_pair_taps(p, 1, ws[0], ws[1], s, &a0, &a1);
    tinycc_dw_pair_taps(p + half, 1, ws[2], ws[3], s, &a0, &a1);
    tinycc_dw_pair_taps(p + 2 * half, 1, ws[4], ws[5], s, &a0, &a1);
    *acc0 = a0;
    *acc1 = a1;
}
#else
/* tap j of the slot whose first value is q */
TINYCC_INLINE int32_t tinycc_dw_tap(const int16_t *q, int32_t j)
{
    return q[(j >> 1) * 6 + (j & 1)];
}

TINYCC_INLINE void tinycc_dw_pair(const int16_t *p, int32_t half, const int16_t *ws, int32_t s, int32_t b,
                                  int32_t *acc0, int32_t *acc1)
{
    int32_t a0 = b, a1 = b, r;
    (void)half; /* the slots interleave word by word here */
    for (r = 0; r < 3; ++r) {
        const int16_t *q = p + 2 * r, *w = ws + 4 * r;
        a0 += tinycc_dw_tap(q, 0) * w[0] + tinycc_dw_tap(q, 1) * w[1] + tinycc_dw_tap(q, 2) * w[3];
        a1 += tinycc_dw_tap(q, s) * w[0] + tinycc_dw_tap(q, s + 1) * w[1] + tinycc_dw_tap(q, s + 2) * w[3];
    }
    *acc0 = a0;
    *acc1 = a1;
}
#endif

/*
 * Input line src (4 adjacent channels, pixels in_step bytes apart) sign-extended into the
 * channel-planar line buffers of the depthwise pair kernels: line index p + j holds pixel j
 * (j < n), as int16 pairs a word; word i of channel ch at l0[ch * cs + ws * i] (words of
 * other buffers may lie between: ws, cs in words). The words around the pixels keep their
 * padding, but a word shared by padding and a pixel gets the padding value z (DSP: the zero
 * point in both halves; plain C: the zero point).
 */
#if TINYCC_NN_DSP
/* the 4 words of pixels v0, v1 (4 channels each, as loaded): their halves packed first
 * (channels 0, 1 and 2, 3 of both), then one SXTB16 a word */
TINYCC_INLINE void tinycc_dw_fill_word(int32_t *d, int32_t cs, uint32_t v0, uint32_t v1)
{
    const uint32_t lo = tinycc_pkhbt(v0, v1), hi = tinycc_pkhtb(v1, v0);
    d[0] = (int32_t)__sxtb16(lo);
    d[cs] = (int32_t)tinycc_sxtb16_odd(lo);
    d[2 * cs] = (int32_t)__sxtb16(hi);
    d[3 * cs] = (int32_t)tinycc_sxtb16_odd(hi);
}

/* pixels v0 .. v3: each channel's two words side by side (ws = 1: one STRD each) */
TINYCC_INLINE void tinycc_dw_fill_quad(int32_t *d, int32_t ws, int32_t cs, uint32_t v0, uint32_t v1, uint32_t v2,
                                       uint32_t v3)
{
    const uint32_t lo0 = tinycc_pkhbt(v0, v1), hi0 = tinycc_pkhtb(v1, v0);
    const uint32_t lo1 = tinycc_pkhbt(v2, v3), hi1 = tinycc_pkhtb(v3, v2);
    d[0] = (int32_t)__sxtb16(lo0);
    d[ws] = (int32_t)__sxtb16(lo1);
    d[cs] = (int32_t)tinycc_sxtb16_odd(lo0);
    d[cs + ws] = (int32_t)tinycc_sxtb16_odd(lo1);
    d[2 * cs] = (int32_t)__sxtb16(hi0);
    d[2 * cs + ws] = (int32_t)__sxtb16(hi1);
    d[3 * cs] = (int32_t)tinycc_sxtb16_odd(hi0);
    d[3 * cs + ws] = (int32_t)tinycc_sxtb16_odd(hi1);
}

TINYCC_INLINE void tinycc_dw_fill_line(int32_t *l0, int32_t ws, int32_t cs, const int8_t *src, int32_t in_step,
                                       int32_t p, int32_t n, int32_t z)
{
    /* a padding pixel: the zero point in every byte (z's low byte), sign-extended as a pixel */
    const uint32_t zb = ((uint32_t)z & 0xFFu) * 0x01010101u;
    const int8_t *q = src;
    int32_t *d = l0 + ws * (p >> 1), k, left = n;
    if ((p & 1) && left > 0) { /* a word of (padding, pixel 0) */
        tinycc_dw_fill_word(d, cs, zb, (uint32_t)tinycc_load_s8x4(q));
        q += in_step;
        d += ws;
        --left;
    }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 2
#endif
    for (k = left >> 2; k > 0; --k, q += 4 * in_step, d += 2 * ws) { /* four pixels */
        tinycc_dw_fill_quad(d, ws, cs, (uint32_t)tinycc_load_s8x4(q), (uint32_t)tinycc_load_s8x4(q + in_step),
                            (uint32_t)tinycc_load_s8x4(q + 2 * in_step), (uint32_t)tinycc_load_s8x4(q + 3 * in_step));
    }
    if (left & 2) { /* two pixels */
        tinycc_dw_fill_word(d, cs, (uint32_t)tinycc_load_s8x4(q), (uint32_t)tinycc_load_s8x4(q + in_step));
        q += 2 * in_step;
        d += ws;
    }
    if (left & 1) { /* a word of (last pixel, padding) */
        tinycc_dw_fill_word(d, cs, (uint32_t)tinycc_load_s8x4(q), zb);
    }
}
#else
TINYCC_INLINE void tinycc_dw_fill_line(int16_t *l0, int32_t ws, int32_t cs, const int8_t *src, int32_t in_step,
                                       int32_t p, int32_t n, int32_t z)
{
    int32_t j, ch;
    (void)z; /* the padding halves are never written */
    for (j = 0; j < n; ++j) {
        for (ch = 0; ch < 4; ++ch) {
            const int32_t v = p + j; /* line index */
            l0[(ch * cs + ws * (v >> 1)) * 2 + (v & 1)] = src[j * in_step + ch];
        }
    }
}
#endif

#if TINYCC_NN_ASM
/*
 * The depthwise pair kernels' inner loops in assembly (tinycc_dw_lines_asm): one channel's
 * output lines, 4 outputs a step, then a pair and a single output where the line's length
 * asks for them, requantized and stored as they are done. gcc 12 spilled in the C loop (2
 * outputs a step: 6 weights, 3 constants, bias, 2 pointers and 2 accumulators) and reloaded
 * every tap word; here 4 accumulators share each row's weight words (one LDRD from the stack)
 * and data words (LDRD at fixed offsets from one pointer: the 3 rows the window reads lie
 * rb bytes apart), and the requantization constants stay in registers. Per 4 outputs: 3 x (2
 * LDRD, 1 LDR, 8 multiplies), the bias, 4 x 4 requantization (mode 7; 5 with mode 6), 2 loop
 * (the quad loop's end in a register, the requantization's temporary being a data register
 * then free) and one output step unless the last store's post-index does it (4 st <= 255): 52
 * instructions (stride 1), where the C loop took 68 (stride 1) and 80 (stride 2).
 *
 * The stack block (32 bytes): the weight words of rows 0..2 ((w0, w1), (w1, w2) each, rows in
 * the order of the data: row r at q + r * rb), the bias, the output pointer after the last line.
 *
 * Stride 1, outputs k = 0..3 from the words X0 = (t0, t1), X1 = (t2, t3), X2 = (t4, t5) of a
 * row, wa = (w0, w1), wb = (w1, w2):
 *   a0 += SMLAD(X0, wa) + SMLABT(X1, wb)     a1 += SMLATB(X0, wa) + SMLAD(X1, wb)
 *   a2 += SMLAD(X1, wa) + SMLABT(X2, wb)     a3 += SMLATB(X1, wa) + SMLAD(X2, wb)
 * stride 2, from X0 .. X4: a_k += SMLAD(X_k, wa) + SMLABT(X_k+1, wb).
 */
/* a row's 4 outputs; f: the first row (accumulators start from the bias, which waits in a2
 * (stride 1) or a3 (stride 2)) */
#define TINYCC_DW_Q1(ld0, ld1, b0, b1, b2, b3)                                                           \
    ld0 "smlad %[a0], %[x0], %[wa], %[" b0 "]\n\t"                                          \
    "smlatb %[a1], %[x0], %[wa], %[" b1 "]\n\t"                                             \
    "smlabt %[a0], %[x1], %[wb], %[a0]\n\t"                                                 \
    "smlad %[a1], %[x1], %[wb], %[a1]\n\t"                                                  \
    "smlatb %[a3], %[x1], %[wa], %[" b3 "]\n\t"                                             \
    "smlad %[a2], %[x1], %[wa], %[" b2 "]\n\t"                                              \
    ld1 "smlabt %[a2], %[x0], %[wb], %[a2]\n\t"                                             \
    "smlad %[a3], %[x0], %[wb], %[a3]\n\t"
#define TINYCC_DW_Q2(ld0, ld1, ld2, b0, b1, b2, b3)                                                      \
    ld0 "smlad %[a0], %[x0], %[wa], %[" b0 "]\n\t"                                          \
    "smlabt %[a0], %[x1], %[wb], %[a0]\n\t"                                                 \
    "smlad %[a1], %[x1], %[wa], %[" b1 "]\n\t"                                              \
    ld1 "smlabt %[a1], %[x0], %[wb], %[a1]\n\t"                                             \
    "smlad %[a2], %[x0], %[wa], %[" b2 "]\n\t"                                              \
    "smlabt %[a2], %[x1], %[wb], %[a2]\n\t"                                                 \
    "smlad %[a3], %[x1], %[wa], %[" b3 "]\n\t"                                              \
    ld2 "smlabt %[a3], %[x0], %[wb], %[a3]\n\t"
/* two outputs; the third word of stride 2 in a2, the bias in a3 */
#define TINYCC_DW_P(ld0, b0, b1)                                                                 \
    ld0 "smlad %[a0], %[x0], %[wa], %[" b0 "]\n\t"                                          \
    ".if %c[s] == 1\n\t"                                                                    \
    "smlatb %[a1], %[x0], %[wa], %[" b1 "]\n\t"                                             \
    "smlabt %[a0], %[x1], %[wb], %[a0]\n\t"                                                 \
    "smlad %[a1], %[x1], %[wb], %[a1]\n\t"                                                  \
    ".else\n\t"                                                                             \
    "smlabt %[a0], %[x1], %[wb], %[a0]\n\t"                                                 \
    "smlad %[a1], %[x1], %[wa], %[" b1 "]\n\t"                                              \
    "smlabt %[a1], %[a2], %[wb], %[a1]\n\t"                                                 \
    ".endif\n\t"
#define TINYCC_DW_S(ld0, b0)                                                                 \
    ld0 "smlad %[a0], %[x0], %[wa], %[" b0 "]\n\t"                                          \
    "smlabt %[a0], %[x1], %[wb], %[a0]\n\t"
#define TINYCC_DW_RQ(acc, off)                                                              \
    ".if %c[md] >= 6\n\t"                                                                   \
    "smmlar %[x0], %[" acc "], %[m], %[c]\n\t"                                               \
    ".if %c[md] == 6\n\t"                                                                   \
    "add %[x0], %[x0], %[" acc "], asr #31\n\t"                                               \
    ".endif\n\t"                                                                            \
    ".else\n\t"                                                                             \
    "smmla %[x0], %[" acc "], %[m], %[c]\n\t"                                                \
    ".endif\n\t"                                                                            \
    "asr %[x0], %[x0], %[e]\n\t"                                                              \
    "ssat %[x0], #8, %[x0]\n\t"                                                               \
    "strb %[x0], [%[o]" off "\n\t"
#define TINYCC_DW_W(r) "ldrd %[wa], %[wb], [sp, #" r "]\n\t"

/*
 * lines output lines of one channel (see above): q at row 0's first word of the first line,
 * o at its first output, w at the channel's 6 weight words, o_end the output pointer after
 * the last line; bp, mp, sp2 at the channel's bias (doubled here: the weights are), multiplier
 * m and (e, c) shift pair, loaded here (fewer registers for the caller to set up per channel).
 * Requantization mode 6, or 7 without the sign correction (tinycc_requant_local), full int8
 * range; mode 5's SMMLA form is written but no model here takes it, so TINYCC_DW_ASM_OK leaves
 * it to C. s, n_out, rb (bytes between rows), st (output step), lines, qskip and oskip (the
 * byte steps from a line's end to the next line's start): compile-time constants.
 */
TINYCC_INLINE void tinycc_dw_lines_asm(const int32_t *q, int8_t *o, const int32_t *w, const int32_t *bp,
                                       const int8_t *o_end, const int32_t *mp, const int32_t *sp2, int32_t s,
                                       int32_t n_out, int32_t rb, int32_t st, int32_t mode, int32_t lines,
                                       int32_t qskip, int32_t oskip)
{
    int32_t a0 = (int32_t)(uintptr_t)bp, a1 = (int32_t)(uintptr_t)o_end, a2 = (int32_t)(uintptr_t)mp;
    int32_t a3 = (int32_t)(uintptr_t)sp2, x0, x1, wa, wb, m, c, e;
    int32_t y = (int32_t)(uintptr_t)w;
    __asm__ volatile(
        "sub sp, #32\n\t"
        "ldrd %[x0], %[x1], [%[y]]\n\t"
        "ldrd %[wa], %[wb], [%[y], #8]\n\t"
        "strd %[x0], %[x1], [sp]\n\t"
        "strd %[wa], %[wb], [sp, #8]\n\t"
        "ldrd %[x0], %[x1], [%[y], #16]\n\t"
        "strd %[x0], %[x1], [sp, #16]\n\t"
        "ldr %[x0], [%[a0]]\n\t"
        "ldr %[m], [%[a2]]\n\t"
        "ldrd %[e], %[c], [%[a3]]\n\t"
        ".if %c[md] >= 6\n\t"
        "lsl %[x0], %[x0], #1\n\t" /* the doubled bias of the doubled weights */
        ".endif\n\t"
        "strd %[x0], %[a1], [sp, #24]\n\t" /* bias, o_end */
        "2:\n\t"
        ".if (%c[n] / 4)\n\t"
        ".if (%c[n] / 4) > 1\n\t"
        "addw %[y], %[q], #(%c[n] / 4) * 8 * %c[s]\n\t" /* the quad loop's end */
        "1:\n\t"
        ".endif\n\t"
        ".if %c[s] == 1\n\t"
        "ldr %[a2], [sp, #24]\n\t" TINYCC_DW_W("8")
        TINYCC_DW_Q1("ldrd %[x0], %[x1], [%[q], #%c[r1]]\n\t", "ldr %[x0], [%[q], #%c[r1] + 8]\n\t", "a2", "a2", "a2", "a2")
        TINYCC_DW_W("16")
        TINYCC_DW_Q1("ldrd %[x0], %[x1], [%[q], #%c[r1] * 2]\n\t", "ldr %[x0], [%[q], #%c[r1] * 2 + 8]\n\t", "a0", "a1", "a2", "a3")
        TINYCC_DW_W("0")
        TINYCC_DW_Q1("ldrd %[x0], %[x1], [%[q]], #8\n\t", "ldr %[x0], [%[q]]\n\t", "a0", "a1", "a2", "a3")
        ".else\n\t"
        "ldr %[a3], [sp, #24]\n\t" TINYCC_DW_W("8")
        TINYCC_DW_Q2("ldrd %[x0], %[x1], [%[q], #%c[r1]]\n\t", "ldrd %[x0], %[x1], [%[q], #%c[r1] + 8]\n\t",
                     "ldr %[x0], [%[q], #%c[r1] + 16]\n\t", "a3", "a3", "a3", "a3")
        TINYCC_DW_W("16")
        TINYCC_DW_Q2("ldrd %[x0], %[x1], [%[q], #%c[r1] * 2]\n\t", "ldrd %[x0], %[x1], [%[q], #%c[r1] * 2 + 8]\n\t",
                     "ldr %[x0], [%[q], #%c[r1] * 2 + 16]\n\t", "a0", "a1", "a2", "a3")
        TINYCC_DW_W("0")
        TINYCC_DW_Q2("ldrd %[x0], %[x1], [%[q]], #16\n\t", "ldrd %[x0], %[x1], [%[q], #-8]\n\t",
                     "ldr %[x0], [%[q]]\n\t", "a0", "a1", "a2", "a3")
        ".endif\n\t"
        ".if %c[st] * 4 <= 255\n\t" /* the last store steps o (an 8-bit post-index) */
        TINYCC_DW_RQ("a1", ", #%c[st]]") TINYCC_DW_RQ("a2", ", #%c[st] * 2]")
        TINYCC_DW_RQ("a3", ", #%c[st] * 3]") TINYCC_DW_RQ("a0", "], #%c[st] * 4")
        ".else\n\t"
        TINYCC_DW_RQ("a0", "]") TINYCC_DW_RQ("a1", ", #%c[st]]") TINYCC_DW_RQ("a2", ", #%c[st] * 2]")
        TINYCC_DW_RQ("a3", ", #%c[st] * 3]")
        "addw %[o], %[o], #%c[st] * 4\n\t"
        ".endif\n\t"
        ".if (%c[n] / 4) > 1\n\t"
        "cmp %[q], %[y]\n\t"
        "bne 1b\n\t"
        ".endif\n\t"
        ".endif\n\t"
        ".if (%c[n] %% 4) >= 2\n\t"
        ".if %c[s] == 1\n\t"
        "ldr %[a2], [sp, #24]\n\t" TINYCC_DW_W("8")
        TINYCC_DW_P("ldrd %[x0], %[x1], [%[q], #%c[r1]]\n\t", "a2", "a2")
        TINYCC_DW_W("16")
        TINYCC_DW_P("ldrd %[x0], %[x1], [%[q], #%c[r1] * 2]\n\t", "a0", "a1")
        TINYCC_DW_W("0")
        TINYCC_DW_P("ldrd %[x0], %[x1], [%[q]], #4\n\t", "a0", "a1")
        ".else\n\t"
        "ldr %[a3], [sp, #24]\n\t" TINYCC_DW_W("8")
        TINYCC_DW_P("ldrd %[x0], %[x1], [%[q], #%c[r1]]\n\t" "ldr %[a2], [%[q], #%c[r1] + 8]\n\t", "a3", "a3")
        TINYCC_DW_W("16")
        TINYCC_DW_P("ldrd %[x0], %[x1], [%[q], #%c[r1] * 2]\n\t" "ldr %[a2], [%[q], #%c[r1] * 2 + 8]\n\t", "a0", "a1")
        TINYCC_DW_W("0")
        TINYCC_DW_P("ldrd %[x0], %[x1], [%[q]], #8\n\t" "ldr %[a2], [%[q]]\n\t", "a0", "a1")
        ".endif\n\t"
        ".if %c[st] * 2 <= 255\n\t"
        TINYCC_DW_RQ("a1", ", #%c[st]]") TINYCC_DW_RQ("a0", "], #%c[st] * 2")
        ".else\n\t"
        TINYCC_DW_RQ("a0", "]") TINYCC_DW_RQ("a1", ", #%c[st]]")
        "addw %[o], %[o], #%c[st] * 2\n\t"
        ".endif\n\t"
        ".endif\n\t"
        ".if %c[n] %% 2\n\t"
        "ldr %[a1], [sp, #24]\n\t" TINYCC_DW_W("8")
        TINYCC_DW_S("ldrd %[x0], %[x1], [%[q], #%c[r1]]\n\t", "a1")
        TINYCC_DW_W("16")
        TINYCC_DW_S("ldrd %[x0], %[x1], [%[q], #%c[r1] * 2]\n\t", "a0")
        TINYCC_DW_W("0")
        TINYCC_DW_S("ldrd %[x0], %[x1], [%[q]]\n\t", "a0")
        ".if %c[st] <= 255\n\t"
        TINYCC_DW_RQ("a0", "], #%c[st]")
        ".else\n\t"
        TINYCC_DW_RQ("a0", "]")
        "addw %[o], %[o], #%c[st]\n\t"
        ".endif\n\t"
        ".endif\n\t"
        ".if %c[lines] > 1\n\t"
        ".if %c[qs] > 0\n\t"
        "addw %[q], %[q], #%c[qs]\n\t"
        ".elseif %c[qs] < 0\n\t"
        "subw %[q], %[q], #-(%c[qs])\n\t"
        ".endif\n\t"
        ".if %c[os] > 0\n\t"
        "addw %[o], %[o], #%c[os]\n\t"
        ".elseif %c[os] < 0\n\t"
        "subw %[o], %[o], #-(%c[os])\n\t"
        ".endif\n\t"
        "ldr %[wa], [sp, #28]\n\t"
        "cmp %[o], %[wa]\n\t"
        "bne 2b\n\t"
        ".endif\n\t"
        "add sp, #32\n\t"
        : [a0] "+&r"(a0), [a1] "+&r"(a1), [a2] "+&r"(a2), [a3] "+&r"(a3), [x0] "=&r"(x0), [x1] "=&r"(x1),
          [wa] "=&r"(wa), [wb] "=&r"(wb), [q] "+r"(q), [o] "+r"(o), [y] "+r"(y), [m] "=&r"(m), [c] "=&r"(c),
          [e] "=&r"(e)
        : [s] "i"(s), [md] "i"(mode), [n] "i"(n_out), [r1] "i"(rb), [st] "i"(st), [lines] "i"(lines), [qs] "i"(qskip), [os] "i"(oskip)
        : "cc", "memory");
}

/* whether tinycc_dw_lines_asm takes a layer (its constants' ranges: LDRD offsets up to 1020,
 * ADDW and STRB offsets up to 4095) */
#define TINYCC_DW_ASM_OK(s, n_out, rb, st, mode, lo, hi)                                     \
    (__builtin_constant_p(s) && __builtin_constant_p(n_out) && __builtin_constant_p(rb) &&    \
     __builtin_constant_p(st) && __builtin_constant_p(mode) && ((s) == 1 || (s) == 2) &&       \
     ((mode) == 6 || (mode) == 7) && (lo) == -128 && (hi) == 127 && (rb) % 4 == 0 &&          \
     2 * (rb) + 16 <= 1020 && (st) > 0 && 4 * (st) <= 4095 && (n_out) / 4 * 8 * (s) <= 4095)
/* the plane's line steps as ADDW / SUBW immediates */
#define TINYCC_DW_ASM_STEP_OK(x) (__builtin_constant_p(x) && (x) > -4096 && (x) < 4096)
#endif

#if TINYCC_NN_DSP
/*
 * The whole-plane form of tinycc_depthwise3x3_pairs_s8x4 for small planes (its plane flag):
 * every input line the plane needs is sign-extended once into `scratch` (per channel the
 * padded plane, mp lines of lw / 2 words, in the same channel-planar int16 pairs), then each
 * channel runs over all its output lines with its weights and requantization constants loaded
 * once, without the ring's per-line bookkeeping. The taps of a pair: words t, t + 1 (t + 2)
 * of lines r, r + 1, r + 2, as in the ring kernel. scratch: 16 * mp * (lw / 2) bytes, mp =
 * (m_out - 1) * sr + 3.
 */
TINYCC_INLINE void tinycc_dw_pair_plane_line(const int32_t *u, int32_t wa, int32_t wb, int32_t s, int32_t *a0,
                                             int32_t *a1)
{
    tinycc_dw_pair_taps(u, 1, wa, wb, s, a0, a1); /* a plane's lines are contiguous words */
}

TINYCC_INLINE void tinycc_depthwise3x3_plane_s8x4(const int8_t *x, int32_t n_in, int32_t m_in, int32_t in_step,
                                                  int32_t in_line, int32_t n_out, int32_t m_out, int32_t out_step,
                                                  int32_t out_line, int32_t s, int32_t sr, int32_t p, int32_t pr,
                                                  int32_t in_zp, const int16_t *wq, const int32_t *bias,
                                                  const int32_t *mult, const int32_t *shift, int32_t mode,
                                                  int32_t zp, int32_t lo, int32_t hi, int8_t *out, int32_t lw,
                                                  int8_t *scratch, int32_t first_group)
{
    const int32_t half = lw / 2, mp = (m_out - 1) * sr + 3, cs = mp * half; /* words per channel plane */
    int32_t *const buf = (int32_t *)(void *)scratch;
    const int32_t zw = (int32_t)(((uint32_t)in_zp & 0xFFFFu) * 0x10001u);
    const int32_t n = n_in < lw - p ? n_in : lw - p;
    const int32_t pairs = n_out / 2;
    const int32_t rq_mode = mode == 4 ? 6 : mode;
    int32_t i, ch, oy, l;
    for (l = 0; l < mp; ++l) { /* line l of the padded plane: input line l - pr */
        const int32_t iy = l - pr;
        int32_t *const line = buf + l * half;
        if (iy >= 0 && iy < m_in) { /* the words fill_line leaves: padding before and after */
            const int32_t first = p >> 1, last = n > 0 ? (p + n - 1) >> 1 : first - 1;
            for (ch = 0; ch < 4 && first_group; ++ch) {
                for (i = 0; i < first; ++i) {
                    line[ch * cs + i] = zw;
                }
                for (i = last + 1; i < half; ++i) {
                    line[ch * cs + i] = zw;
                }
            }
            tinycc_dw_fill_line(line, 1, cs, x + iy * in_line, in_step, p, n, zw);
        } else if (first_group) {
            for (ch = 0; ch < 4; ++ch) {
                for (i = 0; i < half; ++i) {
                    line[ch * cs + i] = zw;
                }
            }
        }
    }
    for (ch = 0; ch < 4; ++ch) {
        const int32_t b = mode == 4 || mode == 7 ? 2 * bias[ch] : bias[ch], m = mult[ch];
        const int32_t s0 = mode >= 4 ? shift[2 * ch] : shift[ch], s1 = mode >= 4 ? shift[2 * ch + 1] : 0;
        const int8_t *wb = (const int8_t *)(const void *)(wq + 12 * ch);
        const int32_t w0a = tinycc_load_s8x4(wb), w0b = tinycc_load_s8x4(wb + 4);
        const int32_t w1a = tinycc_load_s8x4(wb + 8), w1b = tinycc_load_s8x4(wb + 12);
        const int32_t w2a = tinycc_load_s8x4(wb + 16), w2b = tinycc_load_s8x4(wb + 20);
#if TINYCC_NN_ASM
        if (TINYCC_DW_ASM_OK(s, n_out, 4 * half, out_step, rq_mode, lo, hi) &&
            TINYCC_DW_ASM_STEP_OK(4 * sr * half - (n_out / 4 * 8 * s + (n_out % 4 >= 2 ? 4 * s : 0))) &&
            TINYCC_DW_ASM_STEP_OK(out_line - n_out * out_step) && __builtin_constant_p(m_out)) {
            /* every line of the channel in one call: lines sr * half words apart */
            tinycc_dw_lines_asm(buf + ch * cs, out + ch, (const int32_t *)(const void *)(wq + 12 * ch), bias + ch,
                                out + ch + m_out * out_line, mult + ch, shift + 2 * ch, s, n_out, 4 * half, out_step, rq_mode,
                                m_out, 4 * sr * half - (n_out / 4 * 8 * s + (n_out % 4 >= 2 ? 4 * s : 0)),
                                out_line - n_out * out_step);
            continue;
        }
#endif
        for (oy = 0; oy < m_out; ++oy) {
            const int32_t *q = buf + ch * cs + oy * sr * half;
            int8_t *o = out + oy * out_line + ch;
            int32_t k, a0, a1;
            if (pairs <= 8) { /* short lines: unrolled (VWW 6x6, 12x12: fewer loop and spill instructions) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4
#endif
                for (k = 0; k < pairs; ++k, q += s, o += 2 * out_step) {
                    a0 = b;
                    a1 = b;
                    tinycc_dw_pair_plane_line(q, w0a, w0b, s, &a0, &a1);
                    tinycc_dw_pair_plane_line(q + half, w1a, w1b, s, &a0, &a1);
                    tinycc_dw_pair_plane_line(q + 2 * half, w2a, w2b, s, &a0, &a1);
                    {
                        const int8_t q0 = tinycc_requant_local(a0, m, s0, s1, rq_mode, zp, lo, hi);
                        const int8_t q1 = tinycc_requant_local(a1, m, s0, s1, rq_mode, zp, lo, hi);
                        o[0] = q0;
                        o[out_step] = q1;
                    }
                }
            } else {
                for (k = 0; k < pairs; ++k, q += s, o += 2 * out_step) {
                    a0 = b;
                    a1 = b;
                    tinycc_dw_pair_plane_line(q, w0a, w0b, s, &a0, &a1);
                    tinycc_dw_pair_plane_line(q + half, w1a, w1b, s, &a0, &a1);
                    tinycc_dw_pair_plane_line(q + 2 * half, w2a, w2b, s, &a0, &a1);
                    {
                        const int8_t q0 = tinycc_requant_local(a0, m, s0, s1, rq_mode, zp, lo, hi);
                        const int8_t q1 = tinycc_requant_local(a1, m, s0, s1, rq_mode, zp, lo, hi);
                        o[0] = q0;
                        o[out_step] = q1;
                    }
                }
            }
            if (n_out & 1) {
                a0 = b;
                a1 = b;
                tinycc_dw_pair_plane_line(q, w0a, w0b, s, &a0, &a1);
                tinycc_dw_pair_plane_line(q + half, w1a, w1b, s, &a0, &a1);
                tinycc_dw_pair_plane_line(q + 2 * half, w2a, w2b, s, &a0, &a1);
                o[0] = tinycc_requant_local(a0, m, s0, s1, rq_mode, zp, lo, hi);
            }
        }
    }
}
#endif

/*
 * 3x3 depthwise convolution (dilation 1) of 4 adjacent channels over the whole output plane,
 * two outputs per step with SMLAD over adjacent taps. The plane is swept along "lines" (the
 * output rows, or the output columns when the caller swaps the axes: every step and stride is
 * a parameter): each input line the window needs is sign-extended once into a ring of 3 slots
 * of line buffers in `scratch`, lw int16 per channel (channel-planar, so that a word holds two
 * neighbouring taps of one channel; the slots interleaved word by word), the padding and the
 * lines outside the input holding the input zero point (which the folded bias expects). For one
 * channel and one line of outputs, outputs 2k and 2k+1 with stride 1 read the words (t0, t1)
 * and (t2, t3) of each of the 3 buffered lines:
 *   acc0 += SMLAD((t0, t1), (w0, w1)) + SMLABT((t2, .), (., w2))
 *   acc1 += SMLATB((., t1), (w0, .)) + SMLAD((t2, t3), (w1, w2))
 * and with stride 2 the words (t0, t1), (t2, t3), (t4, t5): 4 multiply instructions per 6
 * MACs either way. wq: the group's weights as int16, per channel 3 rows of (w0, w1, w1, w2)
 * (tinycc.kernels.depthwise.pair_weights), rows along the sweep's row axis; with mode 4 they
 * are stored doubled, so that the accumulators hold 2 acc, which SMMLAR takes as it is.
 *   x, out:     the group's first channel of the input and output
 *   n_in, m_in: input pixels along a line, input lines; in_step, in_line: their byte steps
 *   n_out, m_out, out_step, out_line: the same for the output
 *   s, sr:      the strides along a line (1 or 2) and across lines; p, pr: the paddings
 *   lw:         2 * s * ceil(n_out / 2) + 2 (even); scratch: 24 * lw bytes, word-aligned
 *   first_group: whether this is the layer's first group of channels: the padding words of the
 *               scratch are written then only (the later groups' lines fill the same words)
 * bias, mult, shift: the group's (mode as in tinycc_requant_ch, or 7: mode 4 where the sign
 * correction may go, tinycc_requant_local).
 */
TINYCC_INLINE void tinycc_depthwise3x3_pairs_s8x4(const int8_t *x, int32_t n_in, int32_t m_in, int32_t in_step,
                                                  int32_t in_line, int32_t n_out, int32_t m_out, int32_t out_step,
                                                  int32_t out_line, int32_t s, int32_t sr, int32_t p, int32_t pr,
                                                  int32_t in_zp, const int16_t *wq, const int32_t *bias,
                                                  const int32_t *mult, const int32_t *shift, int32_t mode,
                                                  int32_t zp, int32_t lo, int32_t hi, int8_t *out, int32_t lw,
                                                  int8_t *scratch, int32_t plane, int32_t first_group)
{
    /* per channel lw / 2 words of 3 slots: word j of slot sl of channel ch at (ch * half + j) * 3 + sl */
    const int32_t half = lw / 2;
#if TINYCC_NN_DSP
    int32_t *const buf = (int32_t *)(void *)scratch; /* written and read as words only */
    const int32_t zw = (int32_t)(((uint32_t)in_zp & 0xFFFFu) * 0x10001u);
#else
    int16_t *const buf = (int16_t *)(void *)scratch; /* two int16 a word */
#endif
    int32_t held[3] = {INT32_MIN, INT32_MIN, INT32_MIN}; /* the input line each slot holds (none yet) */
    const int32_t n = n_in < lw - p ? n_in : lw - p; /* input pixels a line buffer holds */
    const int32_t pairs = n_out / 2;
    const int32_t step = TINYCC_NN_DSP ? s : 6 * s; /* a pair's advance */
    const int32_t rq_mode = mode == 4 ? 6 : mode;
    int32_t i, ch, oy;
#if TINYCC_NN_DSP
    if (plane) { /* a small plane: extended whole (tinycc_depthwise3x3_plane_s8x4) */
        tinycc_depthwise3x3_plane_s8x4(x, n_in, m_in, in_step, in_line, n_out, m_out, out_step, out_line, s, sr, p,
                                       pr, in_zp, wq, bias, mult, shift, mode, zp, lo, hi, out, lw, scratch,
                                       first_group);
        return;
    }
#else
    (void)plane; /* the ring kernel, in a scratch at least as large */
#endif
    for (i = 0; i < 12 * half && first_group; ++i) { /* every slot starts as padding */
#if TINYCC_NN_DSP
        buf[i] = zw;
#else
        buf[2 * i] = (int16_t)in_zp;
        buf[2 * i + 1] = (int16_t)in_zp;
#endif
    }
    for (oy = 0; oy < m_out; ++oy) {
        int32_t r, row_of[3]; /* the kernel row each slot holds */
        for (r = 0; r < 3; ++r) {
            const int32_t iy = oy * sr - pr + r, sl = ((iy % 3) + 3) % 3;
            const int8_t *src = x + iy * in_line;
            row_of[sl] = r;
            if (held[sl] == iy) {
                continue;
            }
            held[sl] = iy;
            if (iy < 0 || iy >= m_in) { /* a line of padding */
                for (i = 0; i < 4 * half; ++i) {
#if TINYCC_NN_DSP
                    buf[(3 * (i / half) + sl) * half + i % half] = zw;
#else
                    buf[6 * i + 2 * sl] = (int16_t)in_zp;
                    buf[6 * i + 2 * sl + 1] = (int16_t)in_zp;
#endif
                }
                continue;
            }
#if TINYCC_NN_DSP
            tinycc_dw_fill_line(buf + sl * half, 1, 3 * half, src, in_step, p, n, zw);
#else
            tinycc_dw_fill_line(buf + 2 * sl, 3, 3 * half, src, in_step, p, n, in_zp);
#endif
        }
        for (ch = 0; ch < 4; ++ch) {
            const int32_t b = mode == 4 || mode == 7 ? 2 * bias[ch] : bias[ch], m = mult[ch];
            const int32_t s0 = mode >= 4 ? shift[2 * ch] : shift[ch], s1 = mode >= 4 ? shift[2 * ch + 1] : 0;
            int8_t *o = out + oy * out_line + ch;
            int32_t k, a0, a1;
#if TINYCC_NN_DSP
            const int32_t *q = buf + 3 * ch * half; /* slot 0's line */
            const int8_t *wb = (const int8_t *)(const void *)(wq + 12 * ch);
            const int8_t *w0 = wb + 8 * row_of[0], *w1 = wb + 8 * row_of[1], *w2 = wb + 8 * row_of[2];
            int32_t ws[6]; /* the weights in slot order (written out: gcc 12 keeps a loop) */
            ws[0] = tinycc_load_s8x4(w0);
            ws[1] = tinycc_load_s8x4(w0 + 4);
            ws[2] = tinycc_load_s8x4(w1);
            ws[3] = tinycc_load_s8x4(w1 + 4);
            ws[4] = tinycc_load_s8x4(w2);
            ws[5] = tinycc_load_s8x4(w2 + 4);
#if TINYCC_NN_ASM
            if (TINYCC_DW_ASM_OK(s, n_out, 4 * half, out_step, rq_mode, lo, hi)) {
                tinycc_dw_lines_asm(q, o, ws, bias + ch, o, mult + ch, shift + 2 * ch, s, n_out, 4 * half, out_step,
                                    rq_mode, 1, 0, 0);
                continue;
            }
#endif
#else
            const int16_t *q = buf + 6 * ch * half;
            int16_t ws[12];
            for (r = 0; r < 12; ++r) {
                ws[r] = wq[12 * ch + 4 * row_of[r >> 2] + (r & 3)];
            }
#endif
            for (k = 0; k < pairs; ++k, q += step, o += 2 * out_step) {
                tinycc_dw_pair(q, half, ws, s, b, &a0, &a1);
                {
                    const int8_t q0 = tinycc_requant_local(a0, m, s0, s1, rq_mode, zp, lo, hi);
                    const int8_t q1 = tinycc_requant_local(a1, m, s0, s1, rq_mode, zp, lo, hi);
                    o[0] = q0;
                    o[out_step] = q1;
                }
            }
            if (n_out & 1) { /* an odd line's last output */
                tinycc_dw_pair(q, half, ws, s, b, &a0, &a1);
                o[0] = tinycc_requant_local(a0, m, s0, s1, rq_mode, zp, lo, hi);
            }
        }
    }
}

#if TINYCC_NN_DSP
/* Word j of a Kx1 line pair step: both outputs' SMLAD with the line's word t[j] (where the
 * window reaches it: j < na for the first output, j < nb for the second). */
TINYCC_INLINE void tinycc_kx1_word(const int32_t *t, const int8_t *wa, const int8_t *wb, int32_t j, int32_t na,
                                   int32_t nb, int32_t *a0, int32_t *a1)
{
    if (j < nb) {
        const int32_t v = t[j];
        if (j < na) {
            *a0 = __smlad((int16x2_t)v, (int16x2_t)tinycc_load_s8x4(wa + 4 * j), *a0);
        }
        *a1 = __smlad((int16x2_t)v, (int16x2_t)tinycc_load_s8x4(wb + 4 * j), *a1);
    }
}
#endif

/*
 * Depthwise convolution of 4 adjacent channels with a window of kt taps along one axis and 1
 * across (Kx1 or 1xK, dilation 1, stride 1 along the taps), two outputs per step: each input
 * line is sign-extended once into one channel-planar int16 line buffer per channel (as in
 * tinycc_depthwise3x3_pairs_s8x4) and outputs 2k, 2k+1 of a channel read the words
 * (t0, t1), (t2, t3), ... of its line: acc0 += SMLAD((t2j, t2j+1), (w2j, w2j+1)) and
 * acc1 += SMLAD((t2j, t2j+1), (w2j-1, w2j)), the weights outside 0..kt-1 zero: ceil(kt / 2) +
 * floor(kt / 2) + 1 multiply instructions for 2 kt MACs. wq: per channel the na = ceil(kt / 2)
 * words (w0, w1), (w2, w3), ... then the nb = floor(kt / 2) + 1 words (0, w0), (w1, w2), ...
 * as int16 (tinycc.kernels.depthwise.kx1_weights; doubled with mode 4, as in the 3x3 kernel).
 *   x, out:  the group's first channel of the input and output
 *   n_in, m: input pixels along a line, lines (input line l gives output line l: the window
 *            is one pixel across, without padding there); in_step, in_line: their byte steps
 *   n_out, out_step, out_line: the output's; p: the padding before a line
 *   lw:      2 * ceil(n_out / 2) + 2 * nb; scratch: 8 * lw bytes, word-aligned
 *   first_group: the layer's first group of channels (the padding is written then only)
 */
TINYCC_INLINE void tinycc_depthwise_kx1_pairs_s8x4(const int8_t *x, int32_t n_in, int32_t m, int32_t in_step,
                                                   int32_t in_line, int32_t n_out, int32_t out_step,
                                                   int32_t out_line, int32_t kt, int32_t p, int32_t in_zp,
                                                   const int16_t *wq, const int32_t *bias, const int32_t *mult,
                                                   const int32_t *shift, int32_t mode, int32_t zp, int32_t lo,
                                                   int32_t hi, int8_t *out, int32_t lw, int8_t *scratch,
                                                   int32_t first_group)
{
    const int32_t half = lw / 2, na = (kt + 1) / 2, nb = kt / 2 + 1;
    const int32_t n = n_in < lw - p ? n_in : lw - p; /* input pixels a line buffer holds */
    const int32_t pairs = n_out / 2, rq_mode = mode == 4 ? 6 : mode;
    int32_t i, ch, l;
#if TINYCC_NN_DSP
    int32_t *const buf = (int32_t *)(void *)scratch; /* written and read as words only */
    const int32_t zw = (int32_t)(((uint32_t)in_zp & 0xFFFFu) * 0x10001u);
    for (i = 0; i < 4 * half && first_group; ++i) { /* the padding, once a layer */
        buf[i] = zw;
    }
#else
    int16_t *const buf = (int16_t *)(void *)scratch;
    for (i = 0; i < 4 * lw && first_group; ++i) {
        buf[i] = (int16_t)in_zp;
    }
#endif
    for (l = 0; l < m; ++l) {
#if TINYCC_NN_DSP
        tinycc_dw_fill_line(buf, 1, half, x + l * in_line, in_step, p, n, zw);
#else
        tinycc_dw_fill_line(buf, 1, half, x + l * in_line, in_step, p, n, in_zp);
#endif
        for (ch = 0; ch < 4; ++ch) {
            const int32_t b = mode == 4 || mode == 7 ? 2 * bias[ch] : bias[ch], mu = mult[ch];
            const int32_t s0 = mode >= 4 ? shift[2 * ch] : shift[ch], s1 = mode >= 4 ? shift[2 * ch + 1] : 0;
            const int16_t *wc = wq + 2 * (na + nb) * ch;
            int8_t *o = out + l * out_line + ch;
            int32_t k;
            for (k = 0; k < (n_out + 1) / 2; ++k, o += 2 * out_step) {
                int32_t a0 = b, a1 = b;
#if TINYCC_NN_DSP
                const int32_t *t = buf + ch * half + k;
                const int8_t *wa = (const int8_t *)(const void *)wc, *wb = wa + 4 * na;
                /* written out (kt <= 15): gcc 12 keeps the loop over the taps */
                tinycc_kx1_word(t, wa, wb, 0, na, nb, &a0, &a1);
                tinycc_kx1_word(t, wa, wb, 1, na, nb, &a0, &a1);
                tinycc_kx1_word(t, wa, wb, 2, na, nb, &a0, &a1);
                tinycc_kx1_word(t, wa, wb, 3, na, nb, &a0, &a1);
                tinycc_kx1_word(t, wa, wb, 4, na, nb, &a0, &a1);
                tinycc_kx1_word(t, wa, wb, 5, na, nb, &a0, &a1);
                tinycc_kx1_word(t, wa, wb, 6, na, nb, &a0, &a1);
                tinycc_kx1_word(t, wa, wb, 7, na, nb, &a0, &a1);
#else
                const int16_t *t = buf + ch * lw + 2 * k;
                int32_t j;
                for (j = 0; j < kt; ++j) {
                    a0 += t[j] * wc[j];
                    a1 += t[j + 1] * wc[j];
                }
#endif
                o[0] = tinycc_requant_local(a0, mu, s0, s1, rq_mode, zp, lo, hi);
                if (k < pairs) { /* an odd line's last step has one output */
                    o[out_step] = tinycc_requant_local(a1, mu, s0, s1, rq_mode, zp, lo, hi);
                }
            }
        }
    }
}

/*
 * IEEE-754 binary32 arithmetic on non-negative numbers, in integers (bit patterns in uint32_t,
 * whose order is the order of the values), rounding to nearest even as an FPU does. LiteRT's
 * int8 softmax computes in float from a table of expf values; these reproduce its float
 * operations bit for bit without a float instruction, so the library stays integer-only and
 * runs the same on cores without an FPU.
 */
static inline uint32_t tinycc_f32_add(uint32_t a, uint32_t b)
{
    uint32_t ea, eb, ma, mb, m, d, rem;
    if (a < b) {
        const uint32_t t = a;
        a = b;
        b = t;
    }
    if (b == 0u) {
        return a;
    }
    ea = a >> 23;
    eb = b >> 23;
    ma = a & 0x7FFFFFu;
    mb = b & 0x7FFFFFu;
    if (ea != 0u) ma |= 0x800000u; else ea = 1u; /* subnormals: exponent 1, no hidden bit */
    if (eb != 0u) mb |= 0x800000u; else eb = 1u;
    ma <<= 3; /* guard, round and sticky bits */
    mb <<= 3;
    d = ea - eb;
    if (d >= 27u) {
        mb = 1u; /* everything shifted out: only the sticky bit is left */
    } else if (d != 0u) {
        mb = (mb >> d) | ((mb & ((1u << d) - 1u)) != 0u ? 1u : 0u);
    }
    m = ma + mb;
    if (m >= (0x1000000u << 3)) { /* carry out of the significand */
        m = (m >> 1) | (m & 1u);
        ea++;
    }
    rem = m & 7u;
    m >>= 3;
    if (rem > 4u || (rem == 4u && (m & 1u) != 0u)) {
        m++;
        if (m == 0x1000000u) {
            m >>= 1;
            ea++;
        }
    }
    if (m < 0x800000u) { /* still subnormal */
        return m;
    }
    return (ea << 23) | (m & 0x7FFFFFu);
}

/* 1 / d for a normal d, correctly rounded. */
static inline uint32_t tinycc_f32_recip(uint32_t d)
{
    const uint32_t ed = d >> 23;
    const uint32_t md = (d & 0x7FFFFFu) | 0x800000u;
    const uint64_t num = (uint64_t)1 << 47;
    uint32_t q = (uint32_t)(num / md);
    const uint32_t r = (uint32_t)(num % md);
    uint32_t e = 253u - ed;
    if (q == 0x1000000u) { /* d is a power of two */
        return (254u - ed) << 23;
    }
    if (2u * r > md || (2u * r == md && (q & 1u) != 0u)) {
        q++;
        if (q == 0x1000000u) {
            q >>= 1;
            e++;
        }
    }
    return (e << 23) | (q & 0x7FFFFFu);
}

/* a * b for a >= 0 and a normal b, correctly rounded; results below 2^-126 come back as 0,
 * which is exact for what they are used for here (rounding to an integer). */
static inline uint32_t tinycc_f32_mul(uint32_t a, uint32_t b)
{
    const uint32_t ea = a >> 23, eb = b >> 23;
    uint64_t m;
    int32_t e;
    uint32_t mant, rem_hi;
    uint64_t rem, half;
    int32_t shift;
    if (ea == 0u) {
        return 0u;
    }
    m = (uint64_t)((a & 0x7FFFFFu) | 0x800000u) * ((b & 0x7FFFFFu) | 0x800000u); /* [2^46, 2^48) */
    e = (int32_t)ea + (int32_t)eb - 127;
    shift = 23;
    if (m >= ((uint64_t)1 << 47)) {
        shift = 24;
        e++;
    }
    mant = (uint32_t)(m >> shift);
    rem = m & (((uint64_t)1 << shift) - 1u);
    half = (uint64_t)1 << (shift - 1);
    rem_hi = rem > half || (rem == half && (mant & 1u) != 0u);
    mant += rem_hi;
    if (mant == 0x1000000u) {
        mant >>= 1;
        e++;
    }
    if (e <= 0) {
        return 0u;
    }
    return ((uint32_t)e << 23) | (mant & 0x7FFFFFu);
}

/* std::round of a non-negative float to an int32 (halves away from zero); p <= 2^30. */
static inline int32_t tinycc_f32_round(uint32_t p)
{
    const int32_t s = 150 - (int32_t)(p >> 23);
    const uint32_t m = (p & 0x7FFFFFu) | 0x800000u;
    if ((p >> 23) == 0u || s >= 25) {
        return 0; /* below 0.5 */
    }
    if (s <= 0) {
        return (int32_t)(m << -s);
    }
    return (int32_t)((m + (1u << (s - 1))) >> s);
}

/*
 * LiteRT's int8 softmax on one row (optimized_ops::Softmax with the table of
 * PopulateSoftmaxLookupTable, which its reference resolver uses too): the sum of table values
 * in row order, 1 / (sum * 1/256), each value times that, rounded, plus the zero point.
 * table[255 - v] = expf(-input_scale * beta * v) as float32 bit patterns.
 */
static inline void tinycc_softmax_litert_row(const int8_t *x, int32_t n, const uint32_t *table, int32_t zp,
                                             int8_t *out)
{
    int32_t j, max = -128;
    uint32_t sum = 0u, inv;
    const uint32_t *t;
    for (j = 0; j < n; ++j) {
        max = x[j] > max ? x[j] : max;
    }
    t = table + 255 - max;
    for (j = 0; j < n; ++j) {
        sum = tinycc_f32_add(sum, t[x[j]]);
    }
    /* sum >= 1 (the maximum contributes expf(0) = 1), so sum * 2^-8 is exact and normal */
    inv = tinycc_f32_recip(sum - (8u << 23));
    for (j = 0; j < n; ++j) {
        int32_t v = tinycc_f32_round(tinycc_f32_mul(t[x[j]], inv)) + zp;
        out[j] = (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
    }
}

/* onnxruntime's QuantizeLinear, DequantizeLinear, QLinearSoftmax and QLinearAdd, on float32 bit
 * patterns with integer instructions (see tinycc_requantize_f32). */
/* round_half_even(x / d) for float32 bit patterns x >= 0 (normal or zero) and a normal d > 0:
 * the quotient rounded to float32, then to an integer (saturating at 2^24). */
TINYCC_INLINE int32_t tinycc_f32_div_round(uint32_t x, uint32_t d)
{
    const uint32_t ex = (x >> 23) & 0xFFu, md = (d & 0x7FFFFFu) | 0x800000u;
    uint32_t q, r;
    int32_t i;
    if (ex == 0u) {
        return 0; /* zero, or a subnormal: below any quantization step */
    }
    /* q = (mx << 26) / md, in [2^25, 2^27), by long division in 32-bit steps (a Cortex-M has
     * no 64-bit division): 7, 7, 7 and 5 quotient bits, the remainder staying below md < 2^24 */
    r = (x & 0x7FFFFFu) | 0x800000u;
    q = r / md;
    r = r % md;
    for (i = 0; i < 4; ++i) {
        const int32_t bits = i < 3 ? 7 : 5;
        r <<= bits;
        q = (q << bits) | (r / md);
        r = r % md;
    }
    {   /* q has 26 or 27 bits: the float32 rounding, then the integer one, in 32 bits */
        const int32_t k = q >= 0x4000000u ? 3 : 2;
        const uint32_t up = ((q >> k) & 1u) | (r != 0u ? 1u : 0u);
        const int32_t sh = (int32_t)(d >> 23) + 26 - k - (int32_t)ex; /* value = (q >> k) * 2^-sh */
        q = (q + (1u << (k - 1)) - 1u + up) >> k;
        if (sh <= 0) {
            return sh < 0 || q >= 0x1000000u ? 0x1000000 : (int32_t)q;
        }
        if (sh > 26) {
            return 0;
        }
        return (int32_t)((q + (1u << (sh - 1)) - 1u + ((q >> sh) & 1u)) >> sh);
    }
}

/* QuantizeLinear: clamp(round_half_even(x / scale) + zp) for a float32 x and a positive
 * normal scale (bit patterns); infinities saturate, NaN gives -128. */
TINYCC_INLINE int8_t tinycc_quantize_f32(uint32_t x, uint32_t scale, int32_t zp)
{
    const uint32_t mag = x & 0x7FFFFFFFu;
    int32_t v;
    if (mag > 0x7F800000u) {
        return -128;
    }
    v = mag == 0x7F800000u ? 0x1000000 : tinycc_f32_div_round(mag, scale);
    v = ((x >> 31) != 0u ? -v : v) + zp;
    return (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
}

/* onnxruntime's int8 QLinearSoftmax on one row (QlinearSoftmaxCPU<int8_t>): table[uint8(127 -
 * max + x)] = exp(...) as float32 (built at compile time), summed in row order in float32;
 * each output clamp(round_half_even(table * y_scale / sum) + zp), where y_scale =
 * floor(1 / scale). (onnxruntime's uint8 kernel, which it runs for a QDQ model on x86, has the
 * same table and row sum, and its result moved down by 128 is this one.) */
static inline void tinycc_qlinear_softmax_row(const int8_t *x, int32_t n, const uint32_t *table,
                                              uint32_t y_scale, int32_t zp, int8_t *out)
{
    int32_t j, max = -128;
    uint32_t sum = 0u;
    for (j = 0; j < n; ++j) {
        max = x[j] > max ? x[j] : max;
    }
    for (j = 0; j < n; ++j) {
        sum = tinycc_f32_add(sum, table[(uint8_t)(127 - max + x[j])]);
    }
    for (j = 0; j < n; ++j) {
        const uint32_t t = table[(uint8_t)(127 - max + x[j])];
        const int32_t v = tinycc_f32_div_round(tinycc_f32_mul(t, y_scale), sum) + zp;
        out[j] = (int8_t)(v > 127 ? 127 : v);
    }
}

/* DequantizeLinear: the float32 bit pattern of (float)v * scale, |v| < 2^24, scale a positive
 * normal float32; products below 2^-126 come back as zero. */
TINYCC_INLINE uint32_t tinycc_dequantize_f32(int32_t v, uint32_t scale)
{
    const uint32_t a = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    uint64_t m = (uint64_t)a * ((scale & 0x7FFFFFu) | 0x800000u); /* exact, < 2^48 */
    const int32_t bits = tinycc_bits64(m);
    int32_t e = (int32_t)(scale >> 23) - 24 + bits; /* the biased exponent of the product */
    if (a == 0u) {
        return 0u;
    }
    if (bits > 24) {
        const int32_t extra = bits - 24;
        const uint64_t rem = m & (((uint64_t)1 << extra) - 1u), half = (uint64_t)1 << (extra - 1);
        m >>= extra;
        if (rem > half || (rem == half && (m & 1u) != 0u)) {
            m++;
            if (m == 0x1000000u) {
                m >>= 1;
                e++;
            }
        }
    }
    if (e <= 0) {
        return 0u;
    }
    return (v < 0 ? 0x80000000u : 0u) | ((uint32_t)e << 23) | ((uint32_t)m & 0x7FFFFFu);
}

/* m * 2^e (signed m, |m| < 2^62) rounded to 24 significant bits, half to even: the value
 * a float32 operation returns, kept unpacked (|*m| <= 2^24). */
TINYCC_INLINE void tinycc_round24(int64_t *m, int32_t *e)
{
    uint64_t a = *m < 0 ? 0u - (uint64_t)*m : (uint64_t)*m;
    const int32_t extra = tinycc_bits64(a) - 24;
    if (extra > 0) {
        const uint64_t rem = a & (((uint64_t)1 << extra) - 1u), half = (uint64_t)1 << (extra - 1);
        a >>= extra;
        *e += extra;
        if (rem > half || (rem == half && (a & 1u) != 0u)) {
            a++;
        }
    }
    *m = *m < 0 ? -(int64_t)a : (int64_t)a;
}

/* x * ym * 2^ye + zm * 2^ze for an 8-bit x and unpacked float32 operands y and z, as *m * 2^*e
 * (|*m| < 2^62): exact, or with the bits far below the float32 rounding point replaced by a
 * sticky bit, so that rounding it gives the correctly rounded result. */
TINYCC_INLINE void tinycc_fma_s8_exact(int32_t x, int32_t ym, int32_t ye, int64_t zm, int32_t ze, int64_t *m,
                                       int32_t *e)
{
    int64_t p = (int64_t)x * ym, q = zm;
    int32_t pe = ye, qe = ze, d;
    /* both terms with their leading bit at bit 32, exactly */
    if (p != 0) {
        d = 33 - tinycc_bits64((uint64_t)(p < 0 ? -p : p));
        p *= (int64_t)1 << d;
        pe -= d;
    }
    if (q != 0) {
        d = 33 - tinycc_bits64((uint64_t)(q < 0 ? -q : q));
        q *= (int64_t)1 << d;
        qe -= d;
    }
    if (p == 0 || q == 0) {
        *m = p + q;
        *e = p != 0 ? pe : qe;
        return;
    }
    if (pe < qe) { /* p: the larger exponent */
        int64_t t = p;
        int32_t te = pe;
        p = q;
        pe = qe;
        q = t;
        qe = te;
    }
    d = pe - qe;
    if (d <= 28) { /* exact in 64 bits */
        *m = p * ((int64_t)1 << d) + q;
        *e = qe;
    } else { /* q shifted into p's grid, the bits shifted out kept as a sticky bit: the
              * rounding point lies 30 bits higher, so the rounding is the same */
        const uint64_t qa = (uint64_t)(q < 0 ? -q : q);
        const int32_t sh = d - 28;
        const int64_t qs = sh >= 63 ? 1 : (int64_t)((qa >> sh) | ((qa & (((uint64_t)1 << sh) - 1u)) != 0u ? 1u : 0u));
        *m = p * ((int64_t)1 << 28) + (q < 0 ? -qs : qs);
        *e = pe - 28;
    }
}

/* fma(x, ym * 2^ye, zm * 2^ze) in float32 (one rounding), unpacked in *m, *e. */
TINYCC_INLINE void tinycc_fma_s8(int32_t x, int32_t ym, int32_t ye, int64_t zm, int32_t ze, int64_t *m,
                                 int32_t *e)
{
    tinycc_fma_s8_exact(x, ym, ye, zm, ze, m, e);
    tinycc_round24(m, e);
}

/* round_half_even(m * 2^e) for an unpacked float32, saturated to [-128, 127] + offset and
 * returned minus offset: offset 128 for onnxruntime's uint8 kernels (see tinycc_qlinear_add). */
TINYCC_INLINE int8_t tinycc_unpacked_to_s8(int64_t m, int32_t e, int32_t offset)
{
    const int32_t r = tinycc_round_f32_to_int((uint64_t)(m < 0 ? -m : m), e, 0);
    const int32_t v = (m < 0 ? -r : r) - offset;
    return (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
}

/* onnxruntime's QLinearAdd on x86-64 (MlasQLinearAddKernelAvx2Helper): with ra = sa / sc,
 * rb = sb / sc and fixed = zc - (ra * za + rb * zb) in float32, out = saturate(round_half_even(
 * fma(a, ra, fma(b, rb, fixed)))) on the raw values. The inner fma depends on b only: it comes
 * from a compile-time table, unpacked as t_m * 2^t_e. offset 128: the uint8 kernel that
 * onnxruntime runs for a QDQ model on x86 (values and zero points moved up by 128, which
 * changes the float32 rounding). */
TINYCC_INLINE int8_t tinycc_qlinear_add(int32_t a, int32_t t_m, int32_t t_e, int32_t ra_m, int32_t ra_e,
                                        int32_t offset)
{
    int64_t m;
    int32_t e;
    tinycc_fma_s8_exact(a + offset, ra_m, ra_e, t_m, t_e, &m, &e); /* rounded once, below */
    return tinycc_unpacked_to_s8(m, e, offset);
}

/* *m * 2^*e (unpacked float32) divided by a positive dm * 2^de (dm < 2^24), rounded to
 * float32: the quotient gets two guard bits and a sticky bit before the rounding. */
TINYCC_INLINE void tinycc_unpacked_div(int64_t *m, int32_t *e, uint32_t dm, int32_t de)
{
    uint64_t a = (uint64_t)(*m < 0 ? -*m : *m), q;
    int32_t ea = *e;
    const int32_t up = 24 - tinycc_bits64(a), dup = 24 - tinycc_bits64(dm);
    if (a == 0u) {
        return;
    }
    if (up > 0) { /* a in [2^23, 2^24] */
        a <<= up;
        ea -= up;
    }
    dm <<= dup; /* in [2^23, 2^24) */
    de -= dup;
    q = (a << 26) / dm;
    q = (q << 1) | ((a << 26) % dm != 0u ? 1u : 0u);
    q = *m < 0 ? 0u - q : q;
    *m = (int64_t)q;
    *e = ea - 27 - de;
    tinycc_round24(m, e);
}

/* onnxruntime's QLinearAveragePool for one output value (count_include_pad = 0): the window's
 * dequantized values (table: float32 bit patterns of x_scale * (v - zp), v = -128..127) summed in
 * float32 row by row, divided by the number of values in the input, then
 * clamp(round_half_even(y / y_scale + zp)). x: the input's first pixel, at this channel.
 * offset 128: onnxruntime's uint8 kernel (zp + 128 added in float32, see tinycc_qlinear_add). */
static inline int8_t tinycc_qlinear_average(const int8_t *x, int32_t h, int32_t w, int32_t channels, int32_t iy0,
                                            int32_t ix0, int32_t fh, int32_t fw, const uint32_t *table,
                                            uint32_t y_scale, int32_t zp, int32_t offset)
{
    const int32_t y0 = iy0 > 0 ? iy0 : 0, y1 = iy0 + fh < h ? iy0 + fh : h;
    const int32_t x0 = ix0 > 0 ? ix0 : 0, x1 = ix0 + fw < w ? ix0 + fw : w;
    int64_t m = 0;
    int32_t e = 0, iy, ix;
    for (iy = y0; iy < y1; ++iy) {
        for (ix = x0; ix < x1; ++ix) {
            const uint32_t v = table[x[(iy * w + ix) * channels] + 128];
            const int32_t biased = (int32_t)((v >> 23) & 0xFFu);
            int32_t vm = (int32_t)(v & 0x7FFFFFu) | (biased != 0 ? 0x800000 : 0);
            vm = (v >> 31) != 0u ? -vm : vm;
            tinycc_fma_s8(1, vm, (biased != 0 ? biased : 1) - 150, m, e, &m, &e);
        }
    }
    tinycc_unpacked_div(&m, &e, (uint32_t)((y1 - y0) * (x1 - x0)), 0);
    tinycc_unpacked_div(&m, &e, (y_scale & 0x7FFFFFu) | 0x800000u, (int32_t)(y_scale >> 23) - 150);
    tinycc_fma_s8(zp + offset, 1, 0, m, e, &m, &e);
    return tinycc_unpacked_to_s8(m, e, offset);
}

/* QuantizeLinear and DequantizeLinear of n values at the model's float32 edges, read and
 * written as 4-byte bit patterns (memcpy keeps C's aliasing rules). */
static inline void tinycc_quantize_f32_row(const void *x, int32_t n, uint32_t scale, int32_t zp, int8_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        uint32_t u;
        memcpy(&u, (const uint8_t *)x + 4 * i, sizeof u);
        out[i] = tinycc_quantize_f32(u, scale, zp);
    }
}

static inline void tinycc_dequantize_f32_row(const int8_t *x, int32_t n, int32_t zp, uint32_t scale, void *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        const uint32_t u = tinycc_dequantize_f32(x[i] - zp, scale);
        memcpy((uint8_t *)out + 4 * i, &u, sizeof u);
    }
}

/*
 * TFLite's integer LSTM (lstm_eval's 8x8_16 path, as LiteRT runs it): gates in int16, their
 * sigmoid and tanh in gemmlowp's 16-bit fixed point (FixedPoint<int16_t, n>: n integer bits,
 * 15 - n fractional). The helpers below are gemmlowp's, specialised to int16: plain adds and
 * negations wrap, products round (SaturatingRoundingDoublingHighMul), and the constants are
 * gemmlowp's 32-bit ones rounded to 16 bits (RescaleConstantInitializer).
 */
TINYCC_INLINE int16_t tinycc_sat16(int32_t x)
{
    return (int16_t)(x > 32767 ? 32767 : (x < -32768 ? -32768 : x));
}

TINYCC_INLINE int16_t tinycc_wrap16(int32_t x) /* gemmlowp's int16 Add, Sub and Neg */
{
    return (int16_t)(uint16_t)(uint32_t)x;
}

TINYCC_INLINE int16_t tinycc_srdhm16(int16_t a, int16_t b)
{
    const int32_t ab = (int32_t)a * b;
    if (a == b && a == -32768) {
        return 32767;
    }
    return (int16_t)((ab + (ab >= 0 ? (1 << 14) : (1 - (1 << 14)))) / (1 << 15));
}

TINYCC_INLINE int16_t tinycc_rdbpot16(int16_t x, int32_t exponent)
{
    const int32_t mask = (1 << exponent) - 1;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int16_t)((x >> exponent) + ((x & mask) > threshold ? 1 : 0));
}

/* SaturatingRoundingMultiplyByPOT<exponent> on int16. */
TINYCC_INLINE int16_t tinycc_srmpot16(int16_t x, int32_t exponent)
{
    if (exponent < 0) {
        return tinycc_rdbpot16(x, -exponent);
    }
    if (exponent > 0) {
        const int32_t threshold = (1 << (15 - exponent)) - 1;
        return x > threshold ? 32767 : (x < -threshold ? -32768 : (int16_t)(x * (1 << exponent)));
    }
    return x;
}

/* exp(a) for a in [-1/4, 0), Q0.15: a Taylor expansion around -1/8. */
TINYCC_INLINE int16_t tinycc_exp_quarter16(int16_t a)
{
    const int16_t constant_term = 28918; /* exp(-1/8) */
    const int16_t one_third = 10923;
    const int16_t x = tinycc_wrap16(a + (1 << 12)); /* a + 1/8 */
    const int16_t x2 = tinycc_srdhm16(x, x);
    const int16_t x3 = tinycc_srdhm16(x2, x);
    const int16_t x4 = tinycc_srdhm16(x2, x2);
    const int16_t x4_over_4 = tinycc_rdbpot16(x4, 2);
    const int16_t sum = tinycc_wrap16(tinycc_srdhm16(tinycc_wrap16(x4_over_4 + x3), one_third) + x2);
    const int16_t poly = tinycc_rdbpot16(sum, 1);
    return tinycc_sat16(constant_term + tinycc_srdhm16(constant_term, tinycc_wrap16(x + poly)));
}

/* exp(a) for a <= 0 with `integer_bits` integer bits in, Q0.15 out (exp_on_negative_values). */
static inline int16_t tinycc_exp_negative16(int16_t a, int32_t integer_bits)
{
    static const int16_t multipliers[7] = {25520, 19875, 12055, 4435, 600, 11, 0}; /* exp(-2^k), k=-2..4 */
    const int32_t fractional_bits = 15 - integer_bits;
    const int16_t quarter = (int16_t)(1 << (fractional_bits - 2));
    const int16_t a_mod_quarter_minus_quarter = tinycc_wrap16((a & (quarter - 1)) - quarter);
    const int16_t remainder = tinycc_wrap16(a_mod_quarter_minus_quarter - a);
    int16_t result = tinycc_exp_quarter16(tinycc_srmpot16(a_mod_quarter_minus_quarter, integer_bits));
    int32_t k;
    for (k = -2; k <= 4; ++k) {
        if (integer_bits > k && (remainder & (1 << (fractional_bits + k))) != 0) {
            result = tinycc_srdhm16(result, multipliers[k + 2]);
        }
    }
    if (integer_bits > 5 && a < -(1 << (fractional_bits + 5))) { /* below -32 */
        result = 0;
    }
    return a == 0 ? 32767 : result;
}

/* 1 / (1 + a) (one_minus == 0) or (1 - a) / (1 + a) (one_minus == 1) for a in (0, 1), Q0.15:
 * Newton-Raphson division in Q2.13. */
static inline int16_t tinycc_nr_divide16(int16_t a, int32_t one_minus)
{
    const int32_t sum = (int32_t)a + 32767;
    const int16_t half_denominator = (int16_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int16_t x = tinycc_wrap16(23130 + tinycc_srdhm16(half_denominator, -15420)); /* 48/17 - 32/17 d */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int16_t one_minus_dx = tinycc_wrap16((1 << 13) - tinycc_srdhm16(half_denominator, x));
        x = tinycc_wrap16(x + tinycc_srmpot16(tinycc_srdhm16(x, one_minus_dx), 2));
    }
    return one_minus ? tinycc_srmpot16(tinycc_wrap16(x - (1 << 13)), 2) : tinycc_srmpot16(x, 1);
}

/* gemmlowp::logistic: Q3.12 in, Q0.15 out (TFLite's ApplySigmoid). */
static inline int16_t tinycc_sigmoid16(int16_t a)
{
    const int16_t magnitude = a > 0 ? a : tinycc_wrap16(-a);
    const int16_t positive = tinycc_nr_divide16(tinycc_exp_negative16(tinycc_wrap16(-magnitude), 3), 0);
    if (a == 0) {
        return 16384;
    }
    return a > 0 ? positive : tinycc_wrap16(32767 - positive);
}

/* gemmlowp::tanh: `integer_bits` integer bits in, Q0.15 out (TFLite's ApplyTanh). */
static inline int16_t tinycc_tanh16(int16_t a, int32_t integer_bits)
{
    const int16_t negative_magnitude = a < 0 ? a : tinycc_wrap16(-a);
    const int16_t t = tinycc_nr_divide16(tinycc_exp_negative16(negative_magnitude, integer_bits + 1), 1);
    if (a == 0) {
        return 0;
    }
    return a < 0 ? tinycc_wrap16(-t) : t;
}

/*
 * One LSTM gate before its activation (CalculateLstmGateInteger8x8_16 without peephole or layer
 * norm): gate[j] = sat16(sat16(rq(bx[j] + wx[j] . x)) + rq(bh[j] + wh[j] . h)), rq the
 * requantization of `mode` (as in tinycc_requant_out) with q = {mx, sx, mh, sh}. The biases
 * have the input and output-state zero points folded in.
 */
static inline void tinycc_lstm_gate_s16(const int8_t *x, int32_t n_input, const int8_t *h, int32_t n_output,
                                        const int8_t *wx, const int8_t *wh, const int32_t *bx,
                                        const int32_t *bh, const int32_t *q, int32_t mode, int32_t n_cell,
                                        int16_t *gate)
{
    int32_t j;
    for (j = 0; j < n_cell; ++j) {
        int32_t acc = bx[j];
        int16_t g;
        tinycc_dot_s8_1x1(x, wx + j * n_input, n_input, &acc);
        g = tinycc_sat16(tinycc_requant_out32(acc, q[0], q[1], mode));
        acc = bh[j];
        tinycc_dot_s8_1x1(h, wh + j * n_output, n_output, &acc);
        gate[j] = tinycc_sat16(tinycc_requant_out32(acc, q[2], q[3], mode) + g);
    }
}

#endif /* TINYCC_NN_H */
