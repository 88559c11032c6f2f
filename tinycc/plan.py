"""Memory planning: every intermediate tensor (and kernel scratch buffer) gets an offset in one
arena.

1. Order: among the topological orders of the kernels, the one with the smallest peak of live
   bytes (a search over the sets of finished steps; residual branches are where it matters).
2. Lifetimes: a buffer is live from the step that writes it to the last step that reads it.
   Tensors that a RESHAPE only renames share one buffer. With ``io_in_arena`` the model's
   input is live from the start and its output to the end, both in the arena.
3. Overlaps: a kernel may write its output over an input whose last use it is, ``delta``
   bytes below it, when the access trace of its C code proves every aliased input byte is
   read before it is overwritten (see tinycc.kernels.inplace). Such pairs are "pinned" at that
   distance and placed as one group.
4. Placement: several algorithms place the groups (greedy by size, greedy by conflicts, with
   and without the overlaps, then a hill climb over the placement order with a fixed seed);
   the smallest arena wins. Each group goes to the lowest aligned offset where none of its
   buffers collides with a placed buffer whose lifetime it shares.

The lower bound is the largest number of bytes live at one step (an overlapping pair counted
as its union), below which no placement can go.

5. Scratch growth (`grow_scratch`): some kernels go faster with more scratch (a convolution's
   blocks of int16 windows, tinycc.lower.conv.conv_block_tiles) and are lowered first with the
   least they can take. Once planned, each such step is offered the arena bytes not live at
   its step (the arena size minus the union of the live buffers' placed intervals) on top of
   its own, and lowered again with the largest scratch within that; the steps are then planned
   again. If the arena grew (the freed bytes were not one hole), half the offer is tried, then
   none: the arena stays what the least scratch gave.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .errors import TinyccError
from .ir import Graph
from .lower import Alias, CKernel, Kernel

ALIGN = 16
#: Hill climbing: a fixed seed and a fixed number of moves, so that a build is reproducible;
#: the time cap only guards very large graphs.
SEARCH_SEED, SEARCH_MOVES = 7, 1500  # no time limit: the same model always gets the same plan
MAX_ORDER_STATES = 20000


@dataclass
class Buffer:
    """One region of memory that one or more tensors (aliases) occupy."""

    tensors: list[int]
    size: int
    first: int  # step index of the first write
    last: int  # step index of the last read
    home: str = "arena"  # arena, input or output (the caller's buffers)
    offset: int = 0
    scratch: str | None = None  # the kernel whose scratch buffer this is

    @property
    def key(self):
        return ("scratch", self.scratch) if self.scratch else self.tensors[0]


@dataclass
class Overlap:
    """Declared in-place execution: step `step` writes tensor `output` `delta` bytes below
    `input` (offset(input) - offset(output) == delta), proven safe by the kernel's trace."""

    step: int
    kernel: str
    input: int
    output: int
    delta: int


@dataclass
class MemoryPlan:
    arena_size: int
    buffers: list[Buffer]
    location: dict[int, tuple[str, int]] = field(default_factory=dict)  # tensor -> (home, offset)
    steps: list = field(default_factory=list)  # the execution order the plan is for
    lower_bound: int = 0
    algorithm: str = "greedy by size"
    tried: dict[str, int] = field(default_factory=dict)  # algorithm -> arena bytes
    overlaps: list[Overlap] = field(default_factory=list)
    scratch: dict[str, int] = field(default_factory=dict)  # kernel name -> arena offset
    io_in_arena: bool = False
    state_bytes: int = 0  # variable tensors at the start of the arena, kept between runs

    def to_json(self) -> dict:
        return {"arena_bytes": self.arena_size, "lower_bound": self.lower_bound,
                "state_bytes": self.state_bytes,
                "algorithm": self.algorithm, "tried": self.tried, "io_in_arena": self.io_in_arena,
                "order": [s.op.index for s in self.steps],
                "buffers": [{"tensors": b.tensors, "scratch": b.scratch, "bytes": b.size,
                             "first": b.first, "last": b.last, "home": b.home,
                             "offset": b.offset if b.home in ("arena", "state") else None}
                            for b in self.buffers],
                "overlaps": [vars(o) for o in self.overlaps]}


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(graph: Graph, steps: list, kernel_c: dict | None = None, io_in_arena: bool = False,
                overlaps: bool = True) -> MemoryPlan:
    """kernel_c ({name: (params, body)} from emit) enables traced overlaps; without it, none."""
    # a stateful model keeps its own order: a variable is read before it is assigned, which
    # the tensors' producers and consumers do not say
    order = list(steps) if graph.state else choose_order(graph, steps, io_in_arena)
    buffers, root = build_buffers(graph, order, io_in_arena)
    state_bytes = place_state(graph, buffers, root, len(order))
    pins = find_pins(graph, order, buffers, root, kernel_c) if overlaps and kernel_c else []
    bound = lower_bound(buffers, pins)
    results = _strategies(buffers, pins)
    tried = {r[0]: r[1] + state_bytes for r in results}
    name, size, offsets, used_pins = min(results, key=lambda r: r[1])  # ties: the first
    for b in buffers:
        if b.home != "state":
            b.offset = offsets.get(id(b), 0) + state_bytes
    plan = MemoryPlan(size + state_bytes, buffers, steps=order, lower_bound=bound + state_bytes,
                      algorithm=name, tried=tried, overlaps=[p.overlap for p in used_pins],
                      io_in_arena=io_in_arena, state_bytes=state_bytes)
    for b in buffers:
        if b.scratch:
            plan.scratch[b.scratch] = b.offset
        for t in b.tensors:
            plan.location[t] = (b.home, b.offset)
    return plan


# --- order ----------------------------------------------------------------------------------

def _reads(step) -> list[int]:
    if isinstance(step, Alias):
        return [step.source]
    return [x for x in step.inputs if isinstance(x, int)]


def _writes(step) -> int:
    return step.target if isinstance(step, Alias) else step.output


def choose_order(graph: Graph, steps: list, io_in_arena: bool = False) -> list:
    """The topological order with the smallest peak of live bytes: a search over downsets
    (sets of finished steps), best peak first, ties to the model's own order."""
    n = len(steps)
    producer = {_writes(s): i for i, s in enumerate(steps)}
    deps = [{producer[t] for t in _reads(s) if t in producer} for s in steps]
    consumers: dict[int, set] = {}
    for i, s in enumerate(steps):
        for t in _reads(s):
            consumers.setdefault(t, set()).add(i)
    kept = set(graph.outputs)
    inputs = [t for t in graph.inputs if io_in_arena]

    def cost(done: frozenset, i: int) -> int:
        live = sum(graph.tensor(_writes(steps[j])).nbytes for j in done
                   if (consumers.get(_writes(steps[j]), set()) - done) or _writes(steps[j]) in kept)
        live += sum(graph.tensor(t).nbytes for t in inputs if consumers.get(t, set()) - done)
        if isinstance(steps[i], Alias):  # no new bytes: the output is the input
            return live
        return live + graph.tensor(steps[i].output).nbytes + getattr(steps[i], "scratch_bytes", 0)

    frontier = {frozenset(): (0, ())}
    for _ in range(n):
        nxt: dict = {}
        for done, (peak, seq) in frontier.items():
            for i in range(n):
                if i in done or not deps[i] <= done:
                    continue
                cand = (max(peak, cost(done, i)), seq + (i,))
                key = done | {i}
                if key not in nxt or cand < nxt[key]:
                    nxt[key] = cand
        if len(nxt) > MAX_ORDER_STATES:
            return list(steps)
        frontier = nxt
    (_, seq), = frontier.values()
    return [steps[i] for i in seq]


# --- buffers and lifetimes ------------------------------------------------------------------

def build_buffers(graph: Graph, steps: list, io_in_arena: bool):
    root: dict[int, int] = {}

    def find(t):
        while root.get(t, t) != t:
            t = root[t]
        return t
    for step in steps:
        if isinstance(step, Alias):
            root[find(step.target)] = find(step.source)
    groups: dict[int, Buffer] = {}
    for t in graph.tensors:
        if not t.is_const:
            buf = groups.setdefault(find(t.index), Buffer([], 0, len(steps), -1))
            buf.tensors.append(t.index)
            buf.size = max(buf.size, t.nbytes)
    scratch = []
    for i, step in enumerate(steps):
        if isinstance(step, Alias):
            continue
        for t in _reads(step) + [step.output]:
            buf = groups[find(t)]
            buf.first, buf.last = min(buf.first, i), max(buf.last, i)
        if getattr(step, "scratch_bytes", 0):
            scratch.append(Buffer([], step.scratch_bytes, i, i, scratch=step.name))
    _homes(graph, groups, find, len(steps), io_in_arena)
    return list(groups.values()) + scratch, find


def place_state(graph: Graph, buffers: list[Buffer], find, n_steps: int) -> int:
    """Variable tensors (a stateful model's state) live through the whole run and from one run
    to the next: they take the start of the arena, in tensor order, and nothing else overlaps
    them. Returns their bytes (aligned); the rest of the plan goes above."""
    by_root = {b.key: b for b in buffers}
    offset = 0
    for t in graph.state:
        b = by_root[find(t.index)]
        if b.home == "state":
            continue
        if b.home != "arena":
            raise TinyccError(f"variable tensor '{t.name}' is also the model's {b.home}; "
                              "tinycc keeps state only inside the arena")
        b.home, b.first, b.last, b.offset = "state", 0, n_steps, offset
        offset = _align(offset + b.size)
    return offset


def _homes(graph, groups, find, n_steps, io_in_arena):
    for t in graph.inputs:
        buf = groups[find(t)]
        if io_in_arena:
            buf.first = 0  # written by the caller before the run
        else:
            buf.home = "input"
    for t in graph.outputs:
        buf = groups[find(t)]
        if io_in_arena:
            buf.last = n_steps  # read by the caller after the run
        else:
            buf.home = "output" if buf.home == "arena" else "input+output"


# --- overlaps -------------------------------------------------------------------------------

@dataclass
class _Pin:
    inp: Buffer
    out: Buffer
    delta: int
    overlap: Overlap

    @property
    def footprint(self) -> int:
        return max(self.out.size, self.delta + self.inp.size)


def find_pins(graph, steps, buffers, find, kernel_c) -> list[_Pin]:
    """For each kernel, the best proven overlap of its output with an input it reads last."""
    from .kernels.inplace import safe_deltas, trace_kernels
    by_root = {b.key: b for b in buffers}
    kernels = [(i, s) for i, s in enumerate(steps) if isinstance(s, Kernel)]
    # a CKernel's access order is its C library's (CMSIS-NN's, per CPU): not traced, no overlap
    candidates = [(i, s) for i, s in kernels
                  if not isinstance(s, CKernel) and _in_place_inputs(s, i, by_root, find)]
    traces = trace_kernels([s for _, s in candidates], kernel_c, graph)
    pins = []
    for i, k in candidates:
        trace = traces.get(k.name)
        if trace is None:
            continue
        out = by_root[find(k.output)]
        best = None
        for t in _in_place_inputs(k, i, by_root, find):
            inp = by_root[find(t)]
            for delta in safe_deltas(trace.last_read[t], trace.first_write, ALIGN):
                pin = _Pin(inp, out, delta, Overlap(i, k.name, t, k.output, delta))
                if best is None or pin.footprint < best.footprint:
                    best = pin
        if best is not None and best.footprint < best.inp.size + best.out.size:
            pins.append(best)
    return pins


def _in_place_inputs(k, i, by_root, find) -> list[int]:
    out = by_root[find(k.output)]
    if out.home != "arena":
        return []
    res = []
    for t in dict.fromkeys(x for x in k.inputs if isinstance(x, int)):
        b = by_root[find(t)]
        if b is not out and b.home == "arena" and b.last == i:
            res.append(t)
    return res


def lower_bound(buffers: list[Buffer], pins: list[_Pin]) -> int:
    arena = [b for b in buffers if b.home == "arena" and b.first <= b.last]
    steps = {s for b in arena for s in range(b.first, b.last + 1)}
    best = 0
    for s in steps:
        live = sum(b.size for b in arena if b.first <= s <= b.last)
        for p in pins:
            if p.overlap.step == s:
                live -= p.inp.size + p.out.size - p.footprint
        best = max(best, live)
    return best


# --- placement ------------------------------------------------------------------------------

def _overlaps_in_time(a: Buffer, b: Buffer) -> bool:
    return a.first <= b.last and b.first <= a.last


def _groups(buffers: list[Buffer], pins: list[_Pin]):
    """Merge pinned pairs into groups of (buffer, relative offset); drop a pin whose group
    would put two other live-together buffers on the same bytes."""
    group = {id(b): [(b, 0)] for b in buffers}
    allowed = set()
    used = []
    for p in pins:
        ga, go = group[id(p.inp)], group[id(p.out)]
        if ga is go:
            continue
        rel_in = dict((id(b), r) for b, r in ga)[id(p.inp)]
        rel_out = dict((id(b), r) for b, r in go)[id(p.out)]
        shift = rel_out + p.delta - rel_in  # move ga so that inp sits delta above out
        merged = [(b, r + shift) for b, r in ga] + go
        pair = frozenset((id(p.inp), id(p.out)))
        if _clashes(merged, allowed | {pair}):
            continue
        low = min(r for _, r in merged)
        merged = [(b, r - low) for b, r in merged]
        for b, _ in merged:
            group[id(b)] = merged
        allowed.add(pair)
        used.append(p)
    unique = {id(g): g for g in group.values()}
    return [g for g in unique.values() if any(b.home == "arena" for b, _ in g)], used


def _clashes(members, allowed) -> bool:
    for i, (a, ra) in enumerate(members):
        for b, rb in members[i + 1:]:
            if frozenset((id(a), id(b))) in allowed or not _overlaps_in_time(a, b):
                continue
            if ra < rb + b.size and rb < ra + a.size:
                return True
    return False


def _place(groups, order) -> tuple[int, dict]:
    placed: list[tuple[Buffer, int]] = []
    offsets = {}
    for gi in order:
        members = groups[gi]
        base = _lowest_base(members, placed)
        for b, r in members:
            offsets[id(b)] = base + r
            placed.append((b, base + r))
    arena = max((_align(off + b.size) for b, off in placed), default=0)
    return arena, offsets


def _lowest_base(members, placed) -> int:
    conflicts = [(m, r, p, off) for m, r in members for p, off in placed if _overlaps_in_time(m, p)]
    cands = sorted({0} | {_align(off + p.size) - r for m, r, p, off in conflicts
                          if _align(off + p.size) - r >= 0})
    for base in cands:
        if all(not (base + r < off + p.size and off < base + r + m.size) for m, r, p, off in conflicts):
            return base
    raise AssertionError("unreachable: the highest candidate is above every conflict")


def _extent(g) -> int:
    return max(r + b.size for b, r in g)


def _strategies(buffers, pins) -> list:
    """[(name, arena, offsets, pins used)] for each algorithm, the searches last."""
    arena_bufs = [b for b in buffers if b.home == "arena" and b.first <= b.last]
    results = []
    for label, ps in [("", pins)] + ([(" without overlaps", [])] if pins else []):
        for name in _ORDERS:
            results.append((name + label, *_evaluate(arena_bufs, ps, name)[:3]))
    if pins:
        results.append(_select_pins(arena_bufs, pins))
    name, arena, offsets, used = min(results, key=lambda r: r[1])
    results.append(("hill climbing from " + name, *_hill_climb(arena_bufs, pins, used, name)))
    return results


_ORDERS = ("greedy by size", "greedy by conflicts")


def _order(groups, name) -> list[int]:
    if name == "greedy by size":
        key = lambda g: (-_extent(groups[g]), _first(groups[g]))  # noqa: E731
    else:
        key = lambda g: (-_conflict_bytes(groups, g), _first(groups[g]))  # noqa: E731
    return sorted(range(len(groups)), key=key)


def _evaluate(arena_bufs, pins, name):
    # the pins that save most are merged first: a later pin may clash with them
    groups, used = _groups(arena_bufs, sorted(pins, key=lambda p: p.footprint - p.inp.size - p.out.size))
    arena, offsets = _place(groups, _order(groups, name))
    return arena, offsets, used, groups


def _select_pins(arena_bufs, pins):
    """Which overlaps to use: a chain of them drifts down the arena, so all of them is not
    always best. Start from all, drop or restore one pin at a time while that helps."""
    chosen = list(pins)
    best = min(((_evaluate(arena_bufs, chosen, n)[:3], n) for n in _ORDERS), key=lambda r: r[0][0])
    for _ in range(2):
        for p in pins:
            trial = [q for q in chosen if q is not p] if p in chosen else chosen + [p]
            cand = min(((_evaluate(arena_bufs, trial, n)[:3], n) for n in _ORDERS), key=lambda r: r[0][0])
            if cand[0][0] < best[0][0]:
                best, chosen = cand, trial
    (arena, offsets, used), name = best
    return name + " with selected overlaps", arena, offsets, used


def _first(g) -> int:
    return min(b.first for b, _ in g)


def _conflict_bytes(groups, gi) -> int:
    me = groups[gi]
    return sum(b.size for g in groups for b, _ in g if g is not me
               for m, _ in me if _overlaps_in_time(m, b)) + _extent(me)


def _hill_climb(arena_bufs, pins, used, name):
    """A search over the placement order and the set of overlaps together: a move swaps two
    buffers in the order (a group is placed where its first member stands) or toggles one
    overlap; it is kept when the arena does not grow. Fixed seed and move count."""
    rng = random.Random(SEARCH_SEED)
    chosen = [p for p in pins if p in used]
    groups, _ = _groups(arena_bufs, chosen)
    rank = {id(b): i for i, gi in enumerate(_order(groups, _ORDERS[0] if "size" in name else _ORDERS[1]))
            for b, _ in groups[gi]}
    order = sorted(arena_bufs, key=lambda b: rank[id(b)])
    best = _placed(arena_bufs, chosen, order)
    for _ in range(SEARCH_MOVES):
        if len(order) < 2:
            break
        trial_order, trial_pins = list(order), list(chosen)
        if pins and rng.random() < 0.3:
            p = rng.choice(pins)
            trial_pins = [q for q in chosen if q is not p] if p in chosen else chosen + [p]
        else:
            i, j = rng.sample(range(len(order)), 2)
            trial_order[i], trial_order[j] = trial_order[j], trial_order[i]
        cand = _placed(arena_bufs, trial_pins, trial_order)
        if cand[0] <= best[0]:
            best, order, chosen = cand, trial_order, trial_pins
    return best


def _placed(arena_bufs, pins, order):
    """(arena, offsets, pins used) with groups placed in the order of their first member."""
    groups, used = _groups(arena_bufs, sorted(pins, key=lambda p: p.footprint - p.inp.size - p.out.size))
    where = {id(b): gi for gi, g in enumerate(groups) for b, _ in g}
    seen = list(dict.fromkeys(where[id(b)] for b in order if id(b) in where))
    arena, offsets = _place(groups, seen)
    return arena, offsets, used


# --- scratch growth -------------------------------------------------------------------------

def step_slack(memory: MemoryPlan) -> list[int]:
    """Per step of memory.steps: the arena bytes that no buffer live at that step covers (the
    arena size minus the length of the union of the live arena buffers' placed intervals)."""
    slack = []
    for i in range(len(memory.steps)):
        spans = sorted((b.offset, b.offset + b.size) for b in memory.buffers
                       if b.home in ("arena", "state") and b.first <= i <= b.last and b.size)
        covered, end = 0, 0
        for lo, hi in spans:
            lo = max(lo, end)
            if hi > lo:
                covered += hi - lo
                end = hi
        slack.append(max(memory.arena_size - covered, 0))
    return slack


def grow_scratch(memory: MemoryPlan, replan, fractions=(1.0, 0.5)):
    """Step 5 of the module's docstring. replan(steps) plans the steps with some kernels lowered
    again (returns (MemoryPlan, anything)); returns that pair for the grown steps, or None when
    no step grew or every try made the arena larger."""
    if not any(getattr(s, "regrow", None) for s in memory.steps):
        return None
    slack = step_slack(memory)
    for fraction in fractions:
        swaps = {}
        for i, s in enumerate(memory.steps):
            if getattr(s, "regrow", None) is None:
                continue
            budget = (_align(s.scratch_bytes) + int(slack[i] * fraction)) // ALIGN * ALIGN
            grown = s.regrow(budget)
            if grown is not None and grown.scratch_bytes > s.scratch_bytes:
                swaps[id(s)] = grown
        if not swaps:
            return None
        result = replan([swaps.get(id(s), s) for s in memory.steps])
        if result[0].arena_size <= memory.arena_size:
            return result
    return None
