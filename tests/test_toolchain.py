"""Tests of tinycc.toolchain: the harness built and run on the host and on QEMU.

Fixtures (tests/fixtures/): hand-written libraries with the interface of a
generated one.
  addone: output = input + 1 (saturated), through a 16-byte arena;
          -DADDONE_BUG_OVERRUN writes one byte past the arena,
          -DADDONE_BUG_FAIL makes the run function return 3.
  spin:   runs a two-instruction loop 1000 * (input[0] + 256 * input[1]) times;
          input[2] != 0 loops forever, input[3] != 0 stores to an unmapped
          address.  Arena size 0.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tinycc import toolchain as tc
from tinycc.errors import TargetError, ToolchainError
from tinycc.targets import load_target

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ADDONE = FIXTURES / "addone"
SPIN = FIXTURES / "spin"
ADDONE_SIZE = 37

BOARDS = ["mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505"]

needs_arm = pytest.mark.skipif(
    shutil.which(tc.ARM_CC) is None or shutil.which(tc.QEMU) is None,
    reason="needs gcc-arm-none-eabi and qemu-system-arm",
)


def addone_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        np.arange(-18, -18 + ADDONE_SIZE, dtype=np.int8),
        np.full(ADDONE_SIZE, 127, dtype=np.int8),
        np.full(ADDONE_SIZE, -128, dtype=np.int8),
        rng.integers(-128, 128, ADDONE_SIZE).astype(np.int8),
    ]


def addone_expected(x: np.ndarray) -> bytes:
    return np.minimum(x.astype(np.int16) + 1, 127).astype(np.int8).tobytes()


def spin_input(blocks: int = 0, hang: bool = False, fault: bool = False) -> np.ndarray:
    return np.array([blocks & 0xFF, blocks >> 8, int(hang), int(fault)], dtype=np.uint8)


# ------------------------------------------------------------------ sources


def test_write_harness_sources(tmp_path):
    inputs = [np.array([1, -2, 127], np.int8), np.array([255, 0, 128], np.uint8)]
    tc.write_harness_sources(tmp_path, "tiny_net", inputs)
    model_h = (tmp_path / "harness_model.h").read_text()
    assert '#include "tiny_net.h"' in model_h
    assert "#define MODEL_RUN tiny_net_run" in model_h
    assert "#define MODEL_ARENA_SIZE TINY_NET_ARENA_SIZE" in model_h
    assert "#define MODEL_INPUT_SIZE TINY_NET_INPUT_SIZE" in model_h
    assert "#define MODEL_OUTPUT_SIZE TINY_NET_OUTPUT_SIZE" in model_h
    inputs_c = (tmp_path / "harness_inputs.c").read_text()
    assert "const int8_t harness_inputs[2][MODEL_INPUT_SIZE]" in inputs_c
    assert "const int harness_num_inputs = 2;" in inputs_c
    assert "1, -2, 127," in inputs_c
    assert "-1, 0, -128," in inputs_c  # uint8 is taken as the same bytes


def test_write_harness_sources_rejects_bad_inputs(tmp_path):
    with pytest.raises(ToolchainError, match="differ in size"):
        tc.write_harness_sources(tmp_path, "m", [np.zeros(3, np.int8), np.zeros(4, np.int8)])
    with pytest.raises(ToolchainError, match="int8"):
        tc.write_harness_sources(tmp_path, "m", [np.zeros(3, np.float32)])
    with pytest.raises(ToolchainError, match="identifier"):
        tc.write_harness_sources(tmp_path, "bad-name", [np.zeros(3, np.int8)])


# ------------------------------------------------------------------ host


@pytest.mark.parametrize("sanitize", [False, True])
def test_host_addone(tmp_path, sanitize):
    inputs = addone_inputs()
    exe = tc.build_host(ADDONE, "addone", inputs, tmp_path, sanitize=sanitize)
    result = tc.run_host(exe)
    assert result.outputs == [addone_expected(x) for x in inputs]
    assert result.instructions is None
    assert result.stdout.rstrip().endswith("done")
    first = result.stdout.splitlines()[0]
    assert first == "output 0 " + addone_expected(inputs[0]).hex()


@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang")
def test_host_clang_zero_arena(tmp_path):
    exe = tc.build_host(SPIN, "spin", [spin_input(2)], tmp_path, cc="clang", sanitize=True)
    assert tc.run_host(exe).outputs == [bytes([2, 0, 0, 0])]


def test_host_no_inputs(tmp_path):
    exe = tc.build_host(ADDONE, "addone", [], tmp_path)
    result = tc.run_host(exe)
    assert result.outputs == []


def test_host_sanitizer_catches_one_byte_arena_overrun(tmp_path):
    exe = tc.build_host(
        ADDONE, "addone", addone_inputs()[:1], tmp_path,
        sanitize=True, extra_cflags=["-DADDONE_BUG_OVERRUN"],
    )
    with pytest.raises(ToolchainError, match="AddressSanitizer: heap-buffer-overflow"):
        tc.run_host(exe)


def test_host_run_function_failure(tmp_path):
    exe = tc.build_host(ADDONE, "addone", addone_inputs(), tmp_path, extra_cflags=["-DADDONE_BUG_FAIL"])
    with pytest.raises(ToolchainError, match="returned 3 on input 0"):
        tc.run_host(exe)


def _broken_library(root: Path, body: str) -> Path:
    (root / "include").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "include" / "broken.h").write_text(
        "#include <stdint.h>\n"
        "#define BROKEN_ARENA_SIZE 0\n#define BROKEN_INPUT_SIZE 2\n#define BROKEN_OUTPUT_SIZE 2\n"
        "int broken_run(const int8_t *input, int8_t *output, void *arena);\n"
    )
    (root / "src" / "broken.c").write_text('#include "broken.h"\n' + body)
    return root


def test_compiler_error_carries_stderr(tmp_path):
    lib = _broken_library(
        tmp_path / "lib",
        "int broken_run(const int8_t *input, int8_t *output, void *arena)\n"
        "{ int unused_thing; (void)input; (void)output; (void)arena; return 0; }\n",
    )
    with pytest.raises(ToolchainError, match="unused_thing") as exc:
        tc.build_host(lib, "broken", [np.zeros(2, np.int8)], tmp_path / "build")
    assert "broken.c" in str(exc.value)


def test_input_size_mismatch(tmp_path):
    with pytest.raises(ToolchainError, match="has 5 bytes but the model addone takes 37"):
        tc.build_host(ADDONE, "addone", [np.zeros(5, np.int8)], tmp_path)


def test_missing_tools(tmp_path, monkeypatch):
    monkeypatch.setattr(tc.shutil, "which", lambda name: None)
    with pytest.raises(ToolchainError, match="gcc-arm-none-eabi"):
        tc.build_target(ADDONE, "addone", addone_inputs(), tmp_path, load_target("mps2-an386"))
    with pytest.raises(ToolchainError, match="qemu-system-arm"):
        tc.run_qemu(tmp_path / "x.elf", load_target("mps2-an386"))
    with pytest.raises(ToolchainError, match="binutils-arm-none-eabi"):
        tc.arm_size(tmp_path / "x.elf")


def test_host_target_is_not_a_board(tmp_path):
    with pytest.raises(TargetError):
        tc.build_target(ADDONE, "addone", addone_inputs(), tmp_path, load_target("host"))


# ------------------------------------------------------------------ QEMU


def test_insns_per_tick():
    # 1 ns per instruction (-icount shift=0) at the SysTick clock of the board.
    assert tc.insns_per_tick(load_target("mps2-an386")) == 40  # 25 MHz
    assert tc.insns_per_tick(load_target("mps2-an505")) == 50  # 20 MHz
    assert tc.insns_per_tick(load_target("stm32l4r5")) == 40  # runs on mps2-an386


@pytest.fixture(scope="module")
def addone_elfs(tmp_path_factory):
    return {}


def _addone_elf(cache: dict, tmp_path_factory, board: str) -> Path:
    if board not in cache:
        build = tmp_path_factory.mktemp(f"addone-{board}")
        cache[board] = tc.build_target(ADDONE, "addone", addone_inputs(), build, load_target(board))
    return cache[board]


@needs_arm
@pytest.mark.parametrize("board", BOARDS)
def test_qemu_addone(board, addone_elfs, tmp_path_factory):
    target = load_target(board)
    elf = _addone_elf(addone_elfs, tmp_path_factory, board)
    result = tc.run_qemu(elf, target, timeout=60)
    inputs = addone_inputs()
    assert result.outputs == [addone_expected(x) for x in inputs]
    assert result.instructions is not None and len(result.instructions) == len(inputs)
    # ~16 instructions per byte; one tick is 40-50 instructions.
    assert all(200 < n < 2000 for n in result.instructions), result.instructions
    assert result.stack_bytes is not None and all(0 <= s < 256 for s in result.stack_bytes)
    # The arena is a 16-byte-aligned static array in .bss.
    size = tc.arm_size(elf)
    assert size["bss"] >= 16 and size["text"] > 0


@needs_arm
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an505"])
def test_qemu_instruction_count_is_deterministic(board, addone_elfs, tmp_path_factory):
    target = load_target(board)
    elf = _addone_elf(addone_elfs, tmp_path_factory, board)
    first = tc.run_qemu(elf, target, timeout=60)
    second = tc.run_qemu(elf, target, timeout=60)
    assert first.instructions == second.instructions
    assert first.stdout == second.stdout


@needs_arm
@pytest.mark.parametrize("board", BOARDS + ["rp2040"])
def test_qemu_instruction_count_is_accurate(board, tmp_path):
    """A loop of exactly 2 * 1000 * blocks instructions is counted to within a tick."""
    target = load_target(board)
    per_tick = tc.insns_per_tick(target)
    blocks = [0, 1, 10, 100]
    elf = tc.build_target(SPIN, "spin", [spin_input(b) for b in blocks], tmp_path, target)
    result = tc.run_qemu(elf, target, timeout=60)
    counts = result.instructions
    assert result.outputs == [bytes(spin_input(b)) for b in blocks]
    # spin(0) is a handful of instructions: the overhead is subtracted.
    assert 0 <= counts[0] <= per_tick + 20, counts
    for b, n in zip(blocks[1:], counts[1:]):
        assert abs((n - counts[0]) - 2000 * b) <= 2 * per_tick, (b, counts)
    # The empty measurement costs some instructions, fewer than a tick or two.
    assert result.overhead is not None and 0 < result.overhead < 100


@needs_arm
@pytest.mark.parametrize("board", ["mps2-an385", "mps2-an505"])
def test_qemu_instruction_count_across_counter_wraps(board, tmp_path):
    """With SysTick reloading every 256 ticks, the 200000-instruction loop wraps
    the counter about 20 times; the count stays right (plus ~10 instructions
    of interrupt handler per wrap)."""
    target = load_target(board)
    per_tick = tc.insns_per_tick(target)
    blocks = [0, 100]
    elf = tc.build_target(
        SPIN, "spin", [spin_input(b) for b in blocks], tmp_path, target,
        extra_cflags=["-DHARNESS_SYSTICK_RELOAD=0xFFu"],
    )
    counts = tc.run_qemu(elf, target, timeout=60).instructions
    wraps = 200_000 // (256 * per_tick)
    assert -2 * per_tick <= (counts[1] - counts[0]) - 200_000 <= 2 * per_tick + 30 * wraps, counts


@needs_arm
def test_qemu_timeout(tmp_path):
    target = load_target("mps2-an385")
    elf = tc.build_target(SPIN, "spin", [spin_input(hang=True)], tmp_path, target)
    with pytest.raises(ToolchainError, match="did not answer within 2 s"):
        tc.run_qemu(elf, target, timeout=2)


@needs_arm
def test_qemu_fault_is_reported(tmp_path):
    target = load_target("mps2-an386")
    elf = tc.build_target(SPIN, "spin", [spin_input(fault=True)], tmp_path, target)
    with pytest.raises(ToolchainError, match=r"HardFault.*bfar=0xeffffff0"):
        tc.run_qemu(elf, target, timeout=30)


@needs_arm
def test_qemu_arena_overrun_and_failure(tmp_path):
    target = load_target("mps2-an386")
    elf = tc.build_target(
        ADDONE, "addone", addone_inputs(), tmp_path / "a", target, extra_cflags=["-DADDONE_BUG_OVERRUN"]
    )
    with pytest.raises(ToolchainError, match="past the end of its 16-byte arena"):
        tc.run_qemu(elf, target, timeout=30)
    elf = tc.build_target(
        ADDONE, "addone", addone_inputs(), tmp_path / "b", target, extra_cflags=["-DADDONE_BUG_FAIL"]
    )
    with pytest.raises(ToolchainError, match="returned 3 on input 0"):
        tc.run_qemu(elf, target, timeout=30)


@needs_arm
def test_qemu_compile_error(tmp_path):
    lib = _broken_library(tmp_path / "lib", "int broken_run(void) { return 0 }\n")
    with pytest.raises(ToolchainError, match="arm-none-eabi-gcc failed to compile"):
        tc.build_target(lib, "broken", [np.zeros(2, np.int8)], tmp_path / "build", load_target("mps2-an386"))


def _big_library(root: Path, weights: int, arena: int) -> Path:
    """A library with `weights` bytes of const data and an `arena`-byte arena,
    touching both ends of each."""
    (root / "include").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "include" / "big.h").write_text(
        "#include <stdint.h>\n"
        f"#define BIG_ARENA_SIZE {arena}\n#define BIG_ARENA_ALIGN 16\n"
        "#define BIG_INPUT_SIZE 2\n#define BIG_OUTPUT_SIZE 4\n"
        "int big_run(const int8_t *input, int8_t *output, void *arena);\n"
    )
    (root / "src" / "big.c").write_text(
        '#include "big.h"\n'
        f"static const uint8_t weights[{weights}] = {{5, [{weights} - 1] = 9}};\n"
        "int big_run(const int8_t *input, int8_t *output, void *arena)\n{\n"
        "    volatile int8_t *a = (volatile int8_t *)arena;\n"
        "    const volatile uint8_t *w = weights;\n"
        "    a[0] = input[0];\n"
        "    a[BIG_ARENA_SIZE - 1] = input[1];\n"
        "    output[0] = a[0];\n"
        "    output[1] = a[BIG_ARENA_SIZE - 1];\n"
        f"    output[2] = (int8_t)w[0];\n"
        f"    output[3] = (int8_t)w[{weights} - 1];\n"
        "    return 0;\n}\n"
    )
    return root


@needs_arm
@pytest.mark.parametrize("board", BOARDS)
def test_qemu_memory_map_holds_large_models(board, tmp_path):
    """Weights near the end of FLASH and an arena near the end of RAM are usable,
    so the origins and sizes in the board's TOML are real memory."""
    target = load_target(board)
    weights = target.flash_bytes - 160 * 1024  # leave room for the harness and libc
    arena = target.ram_bytes - 96 * 1024  # leave room for .data, stack and heap
    lib = _big_library(tmp_path / "lib", weights, arena)
    elf = tc.build_target(lib, "big", [np.array([3, -4], np.int8)], tmp_path / "build", target)
    result = tc.run_qemu(elf, target, timeout=60)
    assert result.outputs == [bytes([3, 0xFC, 5, 9])]


@needs_arm
def test_program_too_big_for_board(tmp_path):
    target = load_target("mps2-an386")
    lib = _big_library(tmp_path / "lib", 1000, target.ram_bytes)
    with pytest.raises(ToolchainError, match="does not fit the memory of the emulated board mps2-an386"):
        tc.build_target(lib, "big", [np.array([3, -4], np.int8)], tmp_path / "build", target)
