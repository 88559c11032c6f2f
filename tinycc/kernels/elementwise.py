"""Element-wise kernels."""

from __future__ import annotations

from tvm.script import tirx as T


def add_mode(rounding: str, s1: int, s2: int, so: int) -> int:
    """tinycc_add_s8's mode: 0 single rounding, 3 double with every shift <= 0, else 1."""
    if rounding == "single":
        return 0
    return 3 if max(s1, s2, so) <= 0 else 1


def add(size: int, in1_zp: int, in2_zp: int, m1: int, s1: int, m2: int, s2: int,
        mo: int, so: int, out_zp: int, act_min: int, act_max: int, rounding: str):
    """TFLite's quantized ADD of same-shaped tensors (both inputs shifted left by 20, rescaled,
    summed, rescaled) through the tinycc_add_s8 micro-kernel. With every shift <= 0 the
    intermediate values stay below 2^28 and the micro-kernel's cheap rounding is exact."""
    mode = add_mode(rounding, s1, s2, so)

    @T.prim_func(private=True)
    def kernel(a: T.Buffer((size,), "int8"), b: T.Buffer((size,), "int8"), out: T.Buffer((size,), "int8")):
        T.evaluate(T.call_extern("void", "tinycc_add_s8", T.address_of(a[0]), T.address_of(b[0]), size, in1_zp,
                                 in2_zp, m1, s1, m2, s2, mo, so, mode, out_zp, act_min, act_max,
                                 T.address_of(out[0])))
    return kernel
