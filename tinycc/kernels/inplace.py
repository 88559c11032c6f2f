"""In-place execution: when may a kernel's output overlap one of its inputs?

A kernel may write its output over an input whose last use it is, if every input byte is read
for the last time before the output byte at the same address is first written. Whether that
holds depends on the kernel's loop order (and on the micro-kernels it calls), which changes as
kernels get faster; so it is not assumed per operator but measured on the very C code that
ships.

`trace_kernels` compiles the generated kernels with GCC's ThreadSanitizer instrumentation,
which calls ``__tsan_readN(addr)`` / ``__tsan_writeN(addr)`` before every load and store
(inlined micro-kernels included), and links them against our own definitions of those hooks
instead of the TSan runtime. Running each kernel once on separate buffers gives, per byte:

- ``last_read[i]``: 1 + the number of output writes made before the last read of input byte i
  (0 = never read);
- ``first_write[j]``: the rank of the write that first stores to output byte j (NEVER = no
  write).

The rule: with the output placed ``delta`` bytes below the input (output byte j shares its
address with input byte ``j - delta``), the overlap is safe iff ``last_read[i] <=
first_write[i + delta]`` for every aliased pair: a read counted with rank k happens before
write k. The C compiler cannot move a load of the input past a store to the output, as the two
pointers may alias (no `restrict`, and int8_t may alias anything), so the order holds at any
optimization level. These kernels' access patterns do not depend on the data; each is still
traced on two inputs and the worse of the two kept.

Fail closed: a kernel that does not compile or link against the hooks, that writes into an
input, or that calls memcpy-like functions we cannot see, gets no trace and no overlap.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NEVER = np.iinfo(np.int64).max
MICROKERNELS_DIR = Path(__file__).resolve().parent.parent.parent / "runtime" / "kernels"
SEEDS = (1, 2)

_HOOKS = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef struct { uintptr_t lo, hi; long *t; int out; } tr_range;
static tr_range tr_r[16];
static int tr_n, tr_bad;
static long tr_writes;
static void tr_mark(const void *p, size_t n, int write)
{
    uintptr_t a = (uintptr_t)p;
    int r;
    for (r = 0; r < tr_n; r++) {
        uintptr_t x;
        if (a >= tr_r[r].hi || a + n <= tr_r[r].lo) continue;
        if (write && !tr_r[r].out) { tr_bad = 1; continue; }  /* a kernel writing its input */
        if (write) ++tr_writes;
        for (x = a; x < a + n; x++) {
            long *t;
            if (x < tr_r[r].lo || x >= tr_r[r].hi) continue;
            t = &tr_r[r].t[x - tr_r[r].lo];
            if (write) { if (*t == 0) *t = tr_writes; }
            else if (!tr_r[r].out && *t < tr_writes + 1) *t = tr_writes + 1;
        }
    }
}
#define R(n) void __tsan_read##n(void *p) { tr_mark(p, n, 0); } \
             void __tsan_unaligned_read##n(void *p) { tr_mark(p, n, 0); }
#define W(n) void __tsan_write##n(void *p) { tr_mark(p, n, 1); } \
             void __tsan_unaligned_write##n(void *p) { tr_mark(p, n, 1); }
R(1) R(2) R(4) R(8) R(16) W(1) W(2) W(4) W(8) W(16)
void __tsan_read_range(void *p, unsigned long n) { tr_mark(p, n, 0); }
void __tsan_write_range(void *p, unsigned long n) { tr_mark(p, n, 1); }
void __tsan_func_entry(void *p) { (void)p; }
void __tsan_func_exit(void) {}
void __tsan_init(void) {}
void *tr_memcpy(void *d, const void *s, size_t n) { tr_mark(s, n, 0); tr_mark(d, n, 1); return memmove(d, s, n); }
void *tr_memset(void *d, int v, size_t n) { tr_mark(d, n, 1); return memset(d, v, n); }
static void tr_track(void *p, size_t n, long *t, int out)
{
    tr_r[tr_n].lo = (uintptr_t)p; tr_r[tr_n].hi = (uintptr_t)p + n; tr_r[tr_n].t = t;
    tr_r[tr_n].out = out; tr_n++;
}
static void tr_dump(const char *path, const long *a, size_t n)
{
    FILE *f = fopen(path, "wb"); fwrite(a, sizeof(long), n, f); fclose(f);
}
static void *tr_load(const char *path, size_t n)
{
    void *p = calloc(n ? n : 1, 1);
    FILE *f = fopen(path, "rb");
    if (f) { size_t got = fread(p, 1, n, f); (void)got; fclose(f); }
    return p;
}
"""

# Seen by the kernels (instrumented): memcpy and memset go through hooks we can see.
_KERNEL_PRELUDE = """#include <stdint.h>
#include <stdbool.h>
#include <string.h>
void *tr_memcpy(void *d, const void *s, size_t n);
void *tr_memset(void *d, int v, size_t n);
#define memcpy(d, s, n) tr_memcpy(d, s, n)
#define memmove(d, s, n) tr_memcpy(d, s, n)
#define memset(d, v, n) tr_memset(d, v, n)
"""


@dataclass
class Trace:
    last_read: dict  # tensor index (parameter position while cached) -> int64 array per byte
    first_write: np.ndarray  # int64 per output byte

    def for_tensors(self, k) -> "Trace":
        """Key the reads by the kernel's tensor indices (one tensor may be passed twice)."""
        reads = {}
        for pos, arr in self.last_read.items():
            t = k.inputs[pos]
            reads[t] = np.maximum(reads[t], arr) if t in reads else arr
        return Trace(reads, self.first_write)


def _params(params: str) -> list[tuple[str, str]]:
    out = []
    for p in params.split(","):
        m = re.fullmatch(r"\s*(?:const\s+)?(\w+)\s*\*\s*(\w+)\s*", p)
        if m is None:
            return []
        out.append((m.group(1), m.group(2)))
    return out


def _nbytes(arg, graph) -> int:
    return graph.tensor(arg).nbytes if isinstance(arg, int) else arg.array.nbytes


def _runner(k, params: str, graph, folder: Path) -> str | None:
    """A driver function: buffers for every parameter, hooks on the tensors, dumps after."""
    args = list(k.inputs) + [k.output]
    if len(_params(params)) != len(args):
        return None
    lines, call = [f"void {k.name}({params});", f"static void run_{k.name}(unsigned seed) {{",
                   "    size_t i;", "    srand(seed); tr_n = 0; tr_writes = 0;"], []
    for pos, arg in enumerate(args):
        n = _nbytes(arg, graph)
        if isinstance(arg, int):
            out = int(pos == len(args) - 1)
            lines += [f"    unsigned char *d{pos} = malloc({n}); long *t{pos} = calloc({n}, sizeof(long));",
                      f"    for (i = 0; i < {n}; i++) d{pos}[i] = (unsigned char)rand();",
                      f"    tr_track(d{pos}, {n}, t{pos}, {out});"]
        else:
            np.ascontiguousarray(arg.array).tofile(folder / f"{k.name}.{pos}.bin")
            lines.append(f'    void *d{pos} = tr_load("../{k.name}.{pos}.bin", {n});')
        call.append(f"(void *)d{pos}")
    lines.append(f"    {k.name}({', '.join(call)});")
    lines += [f'    tr_dump("{k.name}.{pos}", t{pos}, {_nbytes(a, graph)});'
              for pos, a in enumerate(args) if isinstance(a, int)]
    return "\n".join(lines + ["}", ""])


def _compile(items: list, graph, folder: Path) -> Path | None:
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    kernels = _KERNEL_PRELUDE + "".join(f'#include "{h.name}"\n' for h in sorted(MICROKERNELS_DIR.glob("*.h")))
    kernels += "".join(f"void {k.name}({params}) {{\n{body}}}\n" for k, params, body in items)
    runners = [_runner(k, params, graph, folder) for k, params, _ in items]
    if any(r is None for r in runners):
        return None
    calls = "".join(f'    if (!strcmp(argv[1], "{k.name}")) run_{k.name}(seed);\n' for k, _, _ in items)
    driver = _HOOKS + "".join(runners) + (
        "int main(int argc, char **argv)\n{\n    unsigned seed;\n    if (argc < 3) return 2;\n"
        f"    seed = (unsigned)atoi(argv[2]);\n{calls}    return tr_bad ? 3 : 0;\n}}\n")
    (folder / "kernels.c").write_text(kernels)
    (folder / "driver.c").write_text(driver)
    exe = folder / "trace"
    steps = [[gcc, "-std=gnu99", "-O1", "-fsanitize=thread", "-fno-tree-loop-distribute-patterns", "-w",
              "-I", str(MICROKERNELS_DIR), "-c", "kernels.c", "-o", "kernels.o"],
             [gcc, "-std=gnu99", "-O1", "-w", "driver.c", "kernels.o", "-o", exe.name, "-lm"]]
    for cmd in steps:
        if subprocess.run(cmd, cwd=folder, capture_output=True, text=True).returncode != 0:
            return None
    return exe


def _run(items: list, graph, folder: Path) -> bool:
    """Compile the kernels into one program; run each kernel once per seed (a folder per seed)."""
    exe = _compile(items, graph, folder)
    if exe is None:
        return False
    for seed in SEEDS:
        (folder / str(seed)).mkdir(exist_ok=True)
        for k, _, _ in items:
            if subprocess.run([str(exe), k.name, str(seed)], cwd=folder / str(seed),
                              capture_output=True).returncode != 0:
                return False
    return True


def _load(k, folder: Path) -> Trace:
    args = list(k.inputs) + [k.output]
    reads = {}
    for pos, arg in enumerate(args):
        if not isinstance(arg, int):
            continue
        per_byte = np.fromfile(folder / f"{k.name}.{pos}", dtype=np.int64)
        if pos == len(args) - 1:
            per_byte[per_byte == 0] = NEVER
            return Trace(reads, per_byte)
        reads[pos] = per_byte
    raise AssertionError("unreachable: the output is the last parameter")


def _worst(k, folder: Path) -> Trace:
    a, b = (_load(k, folder / str(seed)) for seed in SEEDS)
    reads = {t: np.maximum(a.last_read[t], b.last_read[t]) for t in a.last_read}
    return Trace(reads, np.minimum(a.first_write, b.first_write))


_CACHE: dict[str, Trace | None] = {}


def trace_kernels(kernels, kernel_c: dict, graph) -> dict:
    """{kernel name: Trace or None}; None when the kernel cannot be traced (then: no overlap)."""
    keys, todo = {}, []
    for k in kernels:
        params, body = kernel_c[k.name]
        shapes = [(graph.tensor(a).shape if isinstance(a, int) else a.array.tobytes()) for a in k.inputs]
        keys[k.name] = hashlib.sha256(f"{k.name}|{params}|{body}|{shapes}".encode()).hexdigest()
        if keys[k.name] not in _CACHE:
            todo.append((k, params, body))
    if todo:
        _trace_all(todo, graph, keys)
    return {k.name: _CACHE[keys[k.name]] and _CACHE[keys[k.name]].for_tensors(k) for k in kernels}


def _trace_all(items, graph, keys) -> None:
    """All kernels in one program; if that fails, one at a time, so that one kernel we cannot
    trace costs only its own overlap."""
    with tempfile.TemporaryDirectory(prefix="tinycc-trace-") as tmp:
        if _run(items, graph, Path(tmp)):
            for k, _, _ in items:
                _CACHE[keys[k.name]] = _worst(k, Path(tmp))
            return
    if len(items) == 1:
        _CACHE[keys[items[0][0].name]] = None
        return
    for item in items:
        _trace_all([item], graph, keys)


# --- the rule -------------------------------------------------------------------------------

def overlap_safe(last_read: np.ndarray, first_write: np.ndarray, delta: int) -> bool:
    """Output byte j at the address of input byte j - delta: every aliased input byte is read
    for the last time no later than the aliased output byte is first written."""
    n_in, n_out = last_read.size, first_write.size
    lo, hi = max(0, -delta), min(n_in, n_out - delta)  # input bytes i with 0 <= i + delta < n_out
    if lo >= hi:
        return True
    return bool(np.all(last_read[lo:hi] <= first_write[lo + delta:hi + delta]))


def safe_deltas(last_read: np.ndarray, first_write: np.ndarray, align: int) -> list[int]:
    """The few placements worth trying: the smallest aligned delta >= 0 (output just below the
    input), and 0 (same start) or the largest aligned delta <= 0 when the output is smaller."""
    out = []
    for delta in _candidates(last_read, first_write, align):
        if overlap_safe(last_read, first_write, delta):
            out.append(delta)
    return out


def _candidates(last_read, first_write, align) -> list[int]:
    """0, and the smallest aligned delta >= 0 that the suffix minimum of first_write allows:
    with g[j] = min(first_write[j:]) <= first_write[j], input byte i is safe wherever
    i + delta >= J(i), the first j with g[j] >= last_read[i] (g is sorted, J a search)."""
    n_in, n_out = last_read.size, first_write.size
    g = np.minimum.accumulate(first_write[::-1])[::-1]
    j = np.searchsorted(g, last_read, side="left")
    need = int(np.max(j - np.arange(n_in))) if n_in else 0
    cands = {0, _round_up(max(need, 0), align)}
    return sorted(c for c in cands if -n_out < c < n_in + n_out)


def _round_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align
