"""tinycc: compile machine-learning models into standalone C libraries for microcontrollers."""

__version__ = "0.1.0"
