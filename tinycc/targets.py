"""Boards and CPUs, read from the TOML files in targets/."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from .errors import TargetError

TARGETS_DIR = Path(__file__).resolve().parent.parent / "targets"


@dataclass(frozen=True)
class QemuMachine:
    machine: str
    flash_origin: int
    ram_origin: int


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    cpu: str
    clock_hz: int
    ram_bytes: int
    flash_bytes: int
    has_fpu: bool
    has_dsp: bool
    cflags: tuple[str, ...] = ()
    emulated_by: str | None = None
    qemu: QemuMachine | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def is_host(self) -> bool:
        return self.cpu == "host"

    def emulator(self) -> "Target":
        """The emulated board that runs this target's code (itself if it is one)."""
        if self.qemu is not None:
            return self
        if self.emulated_by is None:
            raise TargetError(f"target {self.name} has no emulated board to verify on")
        return load_target(self.emulated_by)


def _from_toml(path: Path) -> Target:
    data = tomllib.loads(path.read_text())
    qemu = data.pop("qemu", None)
    data["cflags"] = tuple(data.get("cflags", ()))
    return Target(**data, qemu=QemuMachine(**qemu) if qemu else None, path=path)


def available_targets() -> list[Target]:
    return [_from_toml(p) for p in sorted(TARGETS_DIR.glob("*.toml"))]


def load_target(name: str) -> Target:
    path = TARGETS_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(t.name for t in available_targets())
        raise TargetError(f"unknown target '{name}'; known targets: {known}")
    return _from_toml(path)
