"""Verify: build a compiled library, run it (host or emulated Cortex-M), compare every output
byte with a reference interpreter run on the same inputs.

The reference is LiteRT's reference kernels (ai-edge-litert, BUILTIN_REF) for the default
rounding, and TFLM (the tflite-micro package) for `--rounding double`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import toolchain
from .compiler import CompileResult, compile_model, default_rounding
from .errors import TinyccError
from .targets import Target, load_target


def standard_inputs(shape, count_random: int = 2, seed: int = 0, dtype: str = "int8",
                    scale: float | None = None, zero_point: int = 0,
                    bounds: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Test inputs for one tensor: `count_random` random tensors, then the two extremes.

    bool: random, then all false and all true. int32 and int64 (indices, counts): random in
    `bounds` (inclusive; default the type's range, then the first random tensor on -100..100
    and the others on -3..3, so that equal values occur), then both bounds.
    int8 and int16: uniform over the type, then all minimum and all maximum. float32: when
    `scale` is given (the model quantizes its input with it), random values on the quantized
    range and just beyond it, values on the rounding ties (q + 1/2) * scale, then far below
    and far above the range; without it, standard normal values, then -100 and 100."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        xs = [rng.integers(0, 2, size=shape).astype(bool) for _ in range(count_random)]
        return xs + [np.zeros(shape, bool), np.ones(shape, bool)]
    if dtype in ("int32", "int64"):
        info = np.iinfo(dtype)
        lo, hi = bounds or (int(info.min), int(info.max))
        ranges = [(lo, hi)] * count_random if bounds else [(-100, 100)] + [(-3, 3)] * (count_random - 1)
        xs = [rng.integers(a, b + 1, size=shape).astype(dtype) for a, b in ranges]
        return xs + [np.full(shape, lo, dtype), np.full(shape, hi, dtype)]
    if dtype in ("int8", "int16"):
        info = np.iinfo(dtype)
        xs = [rng.integers(info.min, info.max + 1, size=shape, dtype=dtype) for _ in range(count_random)]
        return xs + [np.full(shape, info.min, dtype), np.full(shape, info.max, dtype)]
    if dtype != "float32":
        raise TinyccError(f"no standard inputs for {dtype} tensors")
    if scale is None:
        xs = [rng.standard_normal(size=shape).astype(np.float32) for _ in range(count_random)]
        return xs + [np.full(shape, -100, np.float32), np.full(shape, 100, np.float32)]
    q = [rng.uniform(-140, 140, size=shape) for _ in range(count_random)]
    if count_random >= 2:  # one of them on the ties
        q[-1] = np.floor(q[-1]) + 0.5
    xs = [(np.float64(scale) * (k - zero_point)).astype(np.float32) for k in q]
    return xs + [np.full(shape, -1000 * scale, np.float32), np.full(shape, 1000 * scale, np.float32)]


def model_inputs(graph, count_random: int = 2, seed: int = 0) -> list[np.ndarray]:
    """standard_inputs() for a model's input tensor: for a float32 input that the model
    quantizes first, on the quantized range."""
    t = graph.tensor(graph.inputs[0])
    scale, zp = None, 0
    if t.dtype in ("int32", "int64"):  # indices: within the rows of the table they pick from
        rows = [graph.tensor(op.inputs[1]).shape[0] for op in graph.consumers(t.index)
                if op.kind == "EMBEDDING_LOOKUP" and op.inputs[0] == t.index]
        rows += [graph.tensor(op.inputs[0]).shape[op.options.get("axis", 0)] for op in graph.consumers(t.index)
                 if op.kind == "GATHER" and op.inputs[1] == t.index]
        return standard_inputs(t.shape, count_random, seed, t.dtype, bounds=(0, min(rows) - 1) if rows else None)
    if t.dtype == "bool":
        return standard_inputs(t.shape, count_random, seed, "bool")
    if t.dtype == "float32":
        for op in graph.consumers(t.index):
            out = graph.tensor(op.outputs[0])
            if op.kind == "QUANTIZE" and out.quant is not None:
                scale, zp = out.quant.scalar()
    elif t.quant is None:
        raise TinyccError(f"input '{t.name}' is {t.dtype} without quantization")
    return standard_inputs(t.shape, count_random, seed, t.dtype, scale, zp)


def reference_outputs(model: str | Path, inputs: list[np.ndarray], rounding: str = "litert"):
    """The reference interpreter's outputs, flattened, in the output's own dtype."""
    if rounding == "onnxruntime":
        return onnxruntime_outputs(model, inputs)
    data = Path(model).read_bytes()
    if rounding == "double":
        from tflite_micro.python.tflite_micro import runtime
        interp = runtime.Interpreter.from_bytes(data, arena_size=len(data) * 10 + (1 << 20))  # its default: 10x
        outs = []
        for x in inputs:
            interp.set_input(x, 0)
            interp.invoke()
            outs.append(np.array(interp.get_output(0)).reshape(-1))
        return outs
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    interp = Interpreter(model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    outs = []
    for x in inputs:
        interp.set_tensor(i["index"], x.reshape(i["shape"]).astype(i["dtype"]))
        interp.invoke()
        outs.append(interp.get_tensor(o["index"]).reshape(-1).copy())
    return outs


ONNXRUNTIME = "onnxruntime (CPU, ORT_ENABLE_ALL without CommonSubexpressionElimination)"


def onnxruntime_outputs(model: str | Path, inputs: list[np.ndarray], fuse_all: bool = True) -> list[np.ndarray]:
    """onnxruntime's outputs, flattened: the CPU execution provider, all graph optimizations
    (which fuse each DQ -> op -> Q group into its QLinear kernel), one thread. fuse_all: without
    the common-subexpression pass, which merges the duplicated DequantizeLinear nodes of a
    tensor with several consumers (quantize_static's DedicatedQDQPair) back into one shared
    node, whose consumers onnxruntime then runs in float (see README, ONNX)."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    disabled = ["CommonSubexpressionElimination"] if fuse_all else []
    sess = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=disabled)
    i = sess.get_inputs()[0]
    return [sess.run(None, {i.name: x.reshape(i.shape)})[0].reshape(-1).copy() for x in inputs]


def compare(ours: np.ndarray, ref: np.ndarray, tolerance: tuple[float, float] | None = None):
    """(values that differ, largest difference). Integers and, without a tolerance, floats
    must be identical (floats bit for bit); with tolerance (atol, rtol) a float differs when
    |ours - ref| > atol + rtol * |ref|."""
    if ours.dtype.kind == "f":
        a, b = ours.astype(np.float64), ref.astype(np.float64)
        with np.errstate(invalid="ignore"):  # inf - inf
            diff = np.abs(a - b)
        diff[a == b] = 0  # equal infinities
        diff[np.isnan(a) != np.isnan(b)] = np.inf
        diff[np.isnan(a) & np.isnan(b)] = 0
        if tolerance is None:
            bad = ours.view(np.uint32) != ref.astype(ours.dtype).view(np.uint32)
        else:
            atol, rtol = tolerance
            bad = (diff > atol + rtol * np.abs(b)) | ((np.isinf(a) | np.isinf(b)) & (a != b))
        return int(bad.sum()), float(diff.max(initial=0))
    diff = np.abs(ours.astype(np.int64) - ref.astype(np.int64))
    return int((diff > 0).sum()), int(diff.max(initial=0))


#: The bound tinycc states for float32 models whose kernels call the C library's expf / tanhf
#: (LOGISTIC, TANH, SOFTMAX), whose rounding differs between C libraries: |ours - ref| <=
#: atol + rtol * |ref| (measured: 2.4e-7 and 2.7e-7 at most; see tests/test_float.py).
FLOAT_TOLERANCE = (1e-6, 1e-5)


#: The bound for float32 ONNX models against onnxruntime, whose float kernels (MLAS) sum in
#: another order, with fused multiply-adds, and have their own exp / tanh / logistic
#: (measured on the float zoo: 7.2e-7 at most where |ref| < 1, 7.6e-6 at |ref| = 80; see
#: tests/test_onnx.py).
ONNX_FLOAT_TOLERANCE = (1e-5, 1e-5)


def default_tolerance(graph) -> tuple[float, float] | None:
    """FLOAT_TOLERANCE for a model with float kernels that call libm; None (bit for bit) for
    every other model: integer kernels, and float ones that only add, multiply, divide and
    compare in the reference's order. ONNX_FLOAT_TOLERANCE for a float32 ONNX model."""
    from .lower.float32 import LIBM_OPS, is_float
    if graph.source_format == "onnx" and any(is_float(graph, op) for op in graph.operators):
        return ONNX_FLOAT_TOLERANCE
    uses_libm = any(op.kind in LIBM_OPS and is_float(graph, op) for op in graph.operators)
    return FLOAT_TOLERANCE if uses_libm else None


@dataclass
class VerifyReport:
    model: str
    target: str  # what the code was compiled for
    ran_on: str  # host or the emulated board
    rounding: str
    reference: str
    mismatches: list[int]  # per input: output values that differ
    max_abs_diff: list[float]
    instructions: list[int] | None = None
    compile: CompileResult | None = None
    tolerance: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.mismatches)

    def summary(self) -> str:
        n = len(self.mismatches)
        lines = [f"{self.model} for {self.target}, run on {self.ran_on}, {self.rounding} rounding, "
                 f"against {self.reference}:"]
        for k in range(n):
            ins = f", {self.instructions[k]:,} instructions" if self.instructions else ""
            status = ("bit-exact" if not self.max_abs_diff[k] else
                      f"within {self.tolerance} (max difference {self.max_abs_diff[k]:g})") \
                if not self.mismatches[k] else \
                f"{self.mismatches[k]} values differ (max {self.max_abs_diff[k]:g})"
            lines.append(f"  input {k}: {status}{ins}")
        lines.append(("OK: every output byte matches" if self.tolerance is None else
                      f"OK: every output within atol {self.tolerance[0]:g} + rtol {self.tolerance[1]:g}")
                     if self.ok else "FAILED: outputs differ")
        return "\n".join(lines)


def verify(model: str | Path, target: str | Target = "mps2-an386", rounding: str | None = None,
           inputs: list[np.ndarray] | None = None, work_dir: str | Path | None = None,
           sanitize: bool = False, opt: str = "-O2", fuse_rows: bool = False,
           tolerance: tuple[float, float] | None | str = "auto", kernels: str = "tinycc",
           knobs: dict | None = None) -> VerifyReport:
    """tolerance: (atol, rtol) for float outputs; None: bit for bit; "auto": the model's
    default_tolerance(). kernels: "cmsis-nn" hands the layers CMSIS-NN takes to it (then the
    default rounding, and the reference, is TFLM's)."""
    target = load_target(target) if isinstance(target, str) else target
    rounding = rounding or default_rounding(kernels)
    with tempfile.TemporaryDirectory(prefix="tinycc-verify-") as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        result = compile_model(model, target, work / "lib", rounding=rounding, measure_code=False,
                               fuse_rows=fuse_rows, kernels=kernels, knobs=knobs)
        lib = result.library
        rounding = lib.rounding  # an ONNX model is matched against onnxruntime
        if tolerance == "auto":
            tolerance = default_tolerance(lib.graph)
        if inputs is None:
            inputs = model_inputs(lib.graph)
        ref = reference_outputs(model, inputs, rounding)
        if target.is_host:
            exe = toolchain.build_host(work / "lib", lib.name, inputs, work / "build", sanitize=sanitize)
            run = toolchain.run_host(exe)
            ran_on = "host" + (" (ASan+UBSan)" if sanitize else "")
        else:
            emu = target.emulator()
            elf = toolchain.build_target(work / "lib", lib.name, inputs, work / "build", target, opt=opt)
            run = toolchain.run_qemu(elf, emu)
            ran_on = f"{emu.name} (QEMU)"
    if len(run.outputs) != len(inputs):
        raise TinyccError(f"the harness printed {len(run.outputs)} outputs for {len(inputs)} inputs")
    ours = [np.frombuffer(b, dtype=lib.output.dtype) for b in run.outputs]
    diffs = [compare(a, b, tolerance) for a, b in zip(ours, ref)]
    return VerifyReport(
        model=Path(model).name, target=target.name, ran_on=ran_on, rounding=rounding,
        reference={"double": "TFLM (tflite-micro)", "onnxruntime": ONNXRUNTIME}.get(rounding, "LiteRT BUILTIN_REF"),
        mismatches=[d[0] for d in diffs], max_abs_diff=[d[1] for d in diffs],
        instructions=run.instructions, compile=result, tolerance=tolerance)
