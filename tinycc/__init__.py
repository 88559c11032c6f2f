"""tinycc: compile machine-learning models into standalone C libraries for microcontrollers."""

__version__ = "0.1.0"

from .compiler import CompileResult, compile_model  # noqa: E402

__all__ = ["compile_model", "CompileResult", "__version__"]
