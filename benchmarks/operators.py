#!/usr/bin/env python3
"""The operator table: which TFLite builtins tinycc compiles, in which activation types,
next to the operator list of TFLM's op resolver.

An operator counts as supported for a type only if a model in the test zoos (tests/models/,
examples/models/, and their subfolders) uses it with activations of that type and tinycc
compiles that model (this script compiles each one for the host); the tests compare every
zoo model with the reference interpreter, so each mark is backed by a test. ONNX op types are listed from the ONNX zoo the same way.

    python3 benchmarks/operators.py            # markdown table on stdout
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import tempfile  # noqa: E402

from tinycc import compile_model  # noqa: E402
from tinycc.errors import TinyccError  # noqa: E402
from tinycc.frontend import load_model  # noqa: E402
from tinycc.lower import LOWERINGS  # noqa: E402

# The builtin operators TFLM's MicroMutableOpResolver can register (tflite-micro at commit
# 90b983c2, 2026-08-20, micro_mutable_op_resolver.h), by their TFLite builtin names; the
# signal-processing and vendor custom ops (FilterBank, Rfft, Window, EthosU, ...) left out.
TFLM_OPS = """ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL
BATCH_TO_SPACE_ND BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS
CUMSUM DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE DETECTION_POSTPROCESS DIV
DYNAMIC_UPDATE_SLICE EMBEDDING_LOOKUP ELU EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD
FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D
LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX MAXIMUM
MAX_POOL_2D MIRROR_PAD MEAN MINIMUM MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE
READ_VARIABLE REDUCE_ALL REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE RESIZE_BILINEAR
RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND
SPACE_TO_DEPTH SPLIT SPLIT_V SQUEEZE SQRT SQUARE SQUARED_DIFFERENCE STRIDED_SLICE SUB SUM SVDF
TANH TRANSPOSE_CONV TRANSPOSE UNPACK UNIDIRECTIONAL_SEQUENCE_LSTM VAR_HANDLE WHILE ZEROS_LIKE""".split()

TYPES = ("int8", "int16", "float32", "int32", "bool")


def activation_type(graph, op) -> str:
    """The type an operator computes in: its first non-constant input's, else its output's (an
    IF_SELECT's values, not its bool condition)."""
    for i in op.inputs[1:] if op.kind == "IF_SELECT" else op.inputs:
        if i >= 0 and not graph.tensor(i).is_const and graph.tensor(i).dtype in TYPES:
            return graph.tensor(i).dtype
    out = graph.tensor(op.outputs[0]) if op.outputs else None
    return out.dtype if out is not None else "?"


def zoo_models() -> list[Path]:
    found = []
    for root in (REPO / "tests" / "models", REPO / "examples" / "models"):
        found += sorted(root.rglob("*.tflite"))
    return found


def file_op_names(path: Path) -> set[str]:
    """The operators written in the file, before the importer folds any away."""
    import tflite
    m = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    codes = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    sg = m.Subgraphs(0)
    return {codes.get(max(m.OperatorCodes(sg.Operators(i).OpcodeIndex()).BuiltinCode(),
                          m.OperatorCodes(sg.Operators(i).OpcodeIndex()).DeprecatedBuiltinCode()), "?")
            for i in range(sg.OperatorsLength())}


def tflite_support() -> dict[str, set[str]]:
    """operator -> the types it is tested in; "folded" for one the importer folds to constants."""
    seen: dict[str, set[str]] = defaultdict(set)
    for path in zoo_models():
        try:
            graph = load_model(path)
            with tempfile.TemporaryDirectory() as tmp:
                compile_model(path, "host", Path(tmp) / "lib", measure_code=False)
        except TinyccError as exc:  # refused: no evidence for its operators
            print(f"note: {path.relative_to(REPO)}: {exc}", file=sys.stderr)
            continue
        for op in graph.operators:  # an IF is inlined at import: its IF_SELECTs stand for it
            seen["IF" if op.kind == "IF_SELECT" else op.kind].add(activation_type(graph, op))
        for kind in file_op_names(path) - {op.kind for op in graph.operators}:
            seen[kind].add("folded")
    return seen


def onnx_support() -> dict[str, set[str]]:
    """ONNX op type -> {"int8", "float32"}: int8 for the quantized models (QDQ or QLinear),
    float32 for the others."""
    seen: dict[str, set[str]] = defaultdict(set)
    paths = sorted((REPO / "tests" / "models").rglob("*.onnx"))
    if not paths:
        return seen
    import onnx
    for path in paths:
        model = onnx.load(str(path))
        ops = [node.op_type for node in model.graph.node]
        kind = "int8" if any(o == "QuantizeLinear" or o.startswith("QLinear") for o in ops) else "float32"
        for o in ops:
            seen[o].add(kind)
    return seen


def main() -> int:
    seen = tflite_support()
    names = sorted((set(seen) | set(TFLM_OPS) | set(LOWERINGS)) - {"IF_SELECT"})
    print(f"| TFLite operator | {' | '.join(TYPES)} | in TFLM's resolver |")
    print("|---|" + ":-:|" * (len(TYPES) + 1))
    for n in names:
        marks = ["yes" if t in seen.get(n, ()) else "" for t in TYPES]
        if seen.get(n) == {"folded"}:
            marks[0] = "folded at import"
        elif n in LOWERINGS and not any(marks):
            marks[0] = "lowered, no zoo model"
        print(f"| {n} | {' | '.join(marks)} | {'yes' if n in TFLM_OPS else ''} |")
    folded = sorted(n for n in seen if seen[n] == {"folded"})
    print(f"\nFolded to constants at import (tested in a zoo model): {', '.join(folded)}")
    missing = [n for n in TFLM_OPS if not any(t in seen.get(n, ()) for t in TYPES) and n not in folded]
    print(f"\nTFLM operators with no tested support in tinycc ({len(missing)} of {len(TFLM_OPS)}): "
          + ", ".join(missing))
    onnx_ops = onnx_support()
    if onnx_ops:
        print("\n| ONNX op type | int8 (QDQ / QLinear) | float32 |\n|---|:-:|:-:|")
        for n in sorted(onnx_ops):
            print(f"| {n} | {'yes' if 'int8' in onnx_ops[n] else ''} | {'yes' if 'float32' in onnx_ops[n] else ''} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
