"""Memory planning: every intermediate tensor gets an offset in one arena.

Lifetimes come from the kernel order: a tensor is live from the step that writes it to the
last step that reads it. Tensors that a RESHAPE only renames share one buffer. Placement is
greedy by size (largest first, lowest offset that does not collide with a tensor whose
lifetime overlaps), which is what TFLM's GreedyMemoryPlanner does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ir import Graph
from .lower import Alias

ALIGN = 16


@dataclass
class Buffer:
    """One region of memory that one or more tensors (aliases) occupy."""

    tensors: list[int]
    size: int
    first: int  # step index of the first write
    last: int  # step index of the last read
    home: str = "arena"  # arena, input or output (the caller's buffers)
    offset: int = 0


@dataclass
class MemoryPlan:
    arena_size: int
    buffers: list[Buffer]
    location: dict[int, tuple[str, int]] = field(default_factory=dict)  # tensor -> (home, offset)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(graph: Graph, steps: list) -> MemoryPlan:
    root = {}

    def find(t):
        while root.get(t, t) != t:
            t = root[t]
        return t
    for step in steps:
        if isinstance(step, Alias):
            root[find(step.target)] = find(step.source)

    groups: dict[int, Buffer] = {}
    for t in graph.tensors:
        if t.is_const:
            continue
        r = find(t.index)
        buf = groups.setdefault(r, Buffer([], 0, len(steps), -1))
        buf.tensors.append(t.index)
        buf.size = max(buf.size, t.nbytes)
    for i, step in enumerate(steps):
        if isinstance(step, Alias):
            continue
        reads = [x for x in step.inputs if isinstance(x, int)]
        for t in reads:
            buf = groups[find(t)]
            buf.first, buf.last = min(buf.first, i), max(buf.last, i)
        buf = groups[find(step.output)]
        buf.first, buf.last = min(buf.first, i), max(buf.last, i)
    for t in graph.inputs:
        groups[find(t)].home = "input"
    for t in graph.outputs:
        buf = groups[find(t)]
        buf.home = "output" if buf.home == "arena" else "input+output"

    placed: list[Buffer] = []
    used = [b for b in groups.values() if b.home == "arena" and b.last >= 0]
    for buf in sorted(used, key=lambda b: (-b.size, b.first)):
        conflicts = sorted((p for p in placed if p.first <= buf.last and buf.first <= p.last),
                           key=lambda p: p.offset)
        offset = 0
        for p in conflicts:
            if offset + buf.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        buf.offset = offset
        placed.append(buf)
    arena = max((_align(b.offset + b.size) for b in placed), default=0)
    plan = MemoryPlan(arena, list(groups.values()))
    for buf in groups.values():
        for t in buf.tensors:
            plan.location[t] = (buf.home, buf.offset)
    return plan
