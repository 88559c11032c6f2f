"""The errors tinycc reports to a user: each one a sentence, never a traceback."""


class TinyccError(Exception):
    """Base class: the message is meant for the user as it is."""


class ModelError(TinyccError):
    """The model file cannot be read: missing, truncated, corrupt."""


class UnsupportedOpError(TinyccError):
    """The model uses an operator (or a form of one) that tinycc does not lower."""

    def __init__(self, op_name: str, index: int, detail: str = ""):
        self.op_name, self.index = op_name, index
        msg = f"unsupported operator {op_name} at index {index} in the model"
        super().__init__(msg + (f": {detail}" if detail else ""))


class FitError(TinyccError):
    """The compiled model does not fit the target's memory."""


class TargetError(TinyccError):
    """Unknown target, or a target that cannot do what was asked."""


class ToolchainError(TinyccError):
    """A compiler, emulator or board failed or did not answer."""
