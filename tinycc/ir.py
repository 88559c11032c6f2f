"""The model IR that flows between the pipeline stages.

A `Graph` is what a frontend produces: tensors with shapes, dtypes and quantization
parameters (constants carry their data), and operators in execution order. Every later
stage reads it; none mutates it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Quant:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per `axis`."""

    scale: np.ndarray  # float32, one entry per tensor or per channel
    zero_point: np.ndarray  # int64, same length as scale
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def scalar(self) -> tuple[float, int]:
        """(scale, zero_point) of a per-tensor quantization, scale kept as float32."""
        return np.float32(self.scale[0]), int(self.zero_point[0])


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: int8, int32, float32, ...
    quant: Quant | None = None
    data: np.ndarray | None = None  # constant contents, already shaped
    is_variable: bool = False  # state kept from one run to the next (see `initial`)
    initial: np.ndarray | None = None  # a variable's value before the first run (and after reset)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        if self.dtype == "resource":  # a resource variable's handle: no bytes of its own
            return 0
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class Operator:
    index: int  # position in the model's operator list
    kind: str  # TFLite builtin name, e.g. CONV_2D
    inputs: list[int]  # tensor indices, -1 for an omitted optional input
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class Graph:
    name: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    source_sha256: str = ""
    source_format: str = ""

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    @property
    def state(self) -> list[Tensor]:
        """The variable tensors: a model with any is stateful."""
        return [t for t in self.tensors if t.is_variable]

    def consumers(self, tensor_index: int) -> list[Operator]:
        return [op for op in self.operators if tensor_index in op.inputs]

    @staticmethod
    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()
