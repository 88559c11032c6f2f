"""Emit C: kernels through TVM's C code generator, the entry function and the weights by tinycc.

TVM gives a PrimFunc a packed (TVM FFI) wrapper when it has a global symbol. A private
PrimFunc whose parameters are plain pointers, with the buffers declared inside the body, is
emitted as an ordinary C function instead; this module rewrites each kernel into that form,
builds them all in one module, and cuts the functions out of the generated file (which also
carries TVM's headers, which the library must not need).
"""

from __future__ import annotations

import re

import numpy as np
import tvm
from tvm import tirx

from .lower import CKernel, Const, Kernel

_PARAM_C_TYPES = {"int8": "int8_t", "int32": "int32_t", "float32": "float", "int16": "int16_t",
                  "uint32": "uint32_t", "uint8": "uint8_t", "int64": "int64_t", "uint16": "uint16_t",
                  "bool": "bool"}


def to_plain_c_signature(func, param_names: list[str]):
    """Buffer parameters -> pointer parameters with DeclBuffer statements in the body."""
    params, decls = [], []
    for p, name in zip(func.params, param_names):
        h = tirx.Var(name, tvm.ir.PointerType(tvm.ir.PrimType(p.dtype)))
        params.append(h)
        decls.append(tirx.DeclBuffer(p, data=h))
    body = tirx.SeqStmt(decls + [func.body])
    return tirx.PrimFunc(params, body, attrs=func.attrs).without_attr("global_symbol")


def generate_kernels_c(kernels: list[Kernel]) -> dict[str, str]:
    """Build every kernel with TVM's C target; return {function name: C definition}."""
    written = {k.name: (k.params, k.body) for k in kernels if isinstance(k, CKernel)}  # no TVM
    kernels = [k for k in kernels if not isinstance(k, CKernel)]
    if not kernels:
        return written
    funcs = {}
    for k in kernels:
        names = ["state" if isinstance(x, int) and x in k.state else _param_name(x)
                 for x in k.inputs] + ["output"]
        funcs[k.name] = to_plain_c_signature(k.func, names)
    if len(funcs) == 1:  # a lone function would be made the module's packed entry point
        funcs["tinycc_unused_kernel"] = next(iter(funcs.values()))
    mod = tvm.IRModule(funcs)
    # storage rewrite off: it would reuse one scalar under several names, hard to read
    config = {"tirx.disable_assert": True, "tirx.disable_storage_rewrite": True}
    with tvm.transform.PassContext(config=config):
        lib = tvm.tirx.build(mod, target=tvm.target.Target({"kind": "c"}))
    out = _split_functions(lib.inspect_source(), [k.name for k in kernels])
    out = {k.name: (out[k.name][0], exact_float_literals(out[k.name][1], k.func)) for k in kernels}
    return {**written, **out}


_C_FLOAT = re.compile(r"-?\d\.\d{6}e[+-]\d+f")


def exact_float_literals(body: str, func) -> str:
    """TVM's C generator prints a float32 constant with 7 significant digits (1.661905e+01f),
    which does not always give back the same float (16.619047164916992 is another float than
    16.61905). Rewrite those literals with the shortest decimal that does, taking the exact
    values from the PrimFunc's TVMScript."""
    if not _C_FLOAT.search(body):
        return body
    exact = {}
    for text in re.findall(r"T\.float32\((-?[\d.]+(?:e[+-]?\d+)?)\)", func.script()):
        v = np.float32(float(text))
        printed = f"{float(v):.6e}f"
        if np.float32(float(printed[:-1])) != v:
            if exact.get(printed, v) != v:
                raise RuntimeError(f"two float constants print as {printed} in one kernel")
            exact[printed] = v
    for printed, v in exact.items():
        literal = str(v)  # numpy: the shortest decimal that gives back this float32
        literal = literal + ("f" if "." in literal or "e" in literal else ".0f")
        body = re.sub(rf"(?<![\w.]){re.escape(printed)}", literal, body)
    return body


def _param_name(x) -> str:
    if isinstance(x, Const):
        return x.name.rsplit("_", 1)[-1] if x.name.endswith(("_weights", "_bias", "_table")) \
            else x.name.split("_")[-1]
    return "input"


def _split_functions(source: str, names: list[str]) -> dict[str, str]:
    out = {}
    for name in names:
        m = re.search(rf"^TVM_DLL void {re.escape(name)}\(([^()]*)\) {{\n(.*?)^}}\n",
                      source, re.S | re.M)
        if m is None:
            raise RuntimeError(f"TVM's C output has no definition of {name}")
        params, body = m.group(1), m.group(2)
        body = _drop_dead_arrays(body)
        unused = [p.split()[-1] for p in params.split(",")
                  if not re.search(rf"\b{re.escape(p.split()[-1])}\b", body)]
        body = "".join(f"  (void){u};  /* folded away at compile time */\n" for u in unused) + body
        out[name] = (params, body)
    return out


def _drop_dead_arrays(body: str) -> str:
    """Remove local arrays that the simplifier left without a use (e.g. a padding buffer of a
    layer that turned out to need no padding)."""
    for m in re.finditer(r"^\s+\w+ (\w+)\[\d+\];\n", body, re.M):
        if len(re.findall(rf"\b{m.group(1)}\b", body)) == 1:
            body = body.replace(m.group(0), "", 1)
    return body


def constify(params: str, writable: str = "output") -> str:
    """Every pointer parameter but the output is read-only: say so in the signature."""
    parts = [p.strip() for p in params.split(",")]
    return ", ".join(p if p.endswith(" " + writable) else "const " + p for p in parts)


def c_array(c_type: str, name: str, arr: np.ndarray, per_line: int = 16, attr: str = "") -> str:
    flat = arr.reshape(-1)
    if arr.dtype == np.float32:
        items = [float(v).hex() + "f" for v in flat]
        per_line = 4
    else:
        items = [str(int(v)) for v in flat]
        if arr.dtype == np.uint32:
            items = [f"0x{int(v):08x}u" for v in flat]
            per_line = 8
        elif arr.dtype == np.int32:
            items = [f"{v}" if v != str(-(1 << 31)) else "(-2147483647 - 1)" for v in items]
            per_line = 8
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"const {c_type} {name}[{flat.size}]{attr} = {{\n    {body}\n}};\n"


def c_type_of(arr: np.ndarray) -> str:
    return _PARAM_C_TYPES[str(arr.dtype)]
