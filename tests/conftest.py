"""Shared fixtures: where the models are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "models"
MLPERF_DIR = Path(os.environ.get("TINYCC_MLPERF_DIR", REPO.parent / "shared" / "models" / "mlperf-tiny"))
MLPERF_MODELS = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8", "str_ww_ref_model"]
EXAMPLE_MODELS = ["gesture", "tiny_kws", "tiny_resnet", "tiny_ae"]


def model_path(name: str) -> Path:
    if name in EXAMPLE_MODELS:
        return EXAMPLES / f"{name}.tflite"
    path = MLPERF_DIR / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"MLPerf Tiny model {path} is not on this machine "
                    "(set TINYCC_MLPERF_DIR to the folder holding the mlcommons/tiny .tflite files)")
    return path


ALL_MODELS = EXAMPLE_MODELS + MLPERF_MODELS
