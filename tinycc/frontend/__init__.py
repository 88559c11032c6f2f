"""Model importers, chosen by file suffix."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelError
from ..ir import Graph
from . import onnx_reader, tflite_reader

# suffix -> loader(path) -> Graph. A new format is one entry here.
IMPORTERS = {
    ".tflite": tflite_reader.load,
    ".onnx": onnx_reader.load,
}


def load_model(path: str | Path) -> Graph:
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    importer = IMPORTERS.get(path.suffix.lower())
    if importer is None:
        known = ", ".join(sorted(IMPORTERS))
        raise ModelError(f"cannot read '{path.name}': unknown model format (known: {known})")
    return importer(path)
