"""The memory plan, checked by code that shares nothing with the planner but the kernels' access
traces: no two tensors live at the same step share a byte, unless the plan declares it and the
rule below allows it. Then every model runs under ASan and UBSan with the arena as a heap block
of exactly the planned size, bit-exact with the reference.

The rule for a declared overlap (step s writes tensor `output` `delta` bytes below tensor
`input`, offset(input) - offset(output) == delta): `input` is read for the last time at s,
`output` is first written at s, and in the trace of the kernel's C code each input byte i
aliased with output byte j = i + delta is read for the last time before, or in the same
computation as, the first write of j: last_read[i] <= first_write[j].
"""

from __future__ import annotations

import numpy as np
import pytest

from tinycc import compile_model, toolchain
from tinycc.kernels.inplace import NEVER, trace_kernels
from tinycc.lower import Alias, Kernel
from tinycc.plan import ALIGN, plan_memory
from tinycc.verify import reference_outputs, standard_inputs, verify

from conftest import ALL_MODELS, model_path


def lifetimes(lib):
    """tensor -> [first step, last step], from the kernel order alone; an alias (RESHAPE) is one
    tensor with its source, so the pair gets the union."""
    steps, g, io = lib.plan.steps, lib.graph, lib.plan.io_in_arena
    same = {}
    for s in steps:
        if isinstance(s, Alias):
            same[s.target] = same.get(s.source, s.source)
    live = {}
    for i, s in enumerate(steps):
        if isinstance(s, Kernel):
            for t in [x for x in s.inputs if isinstance(x, int)] + [s.output]:
                r = same.get(t, t)
                lo, hi = live.get(r, (i, i))
                live[r] = (min(lo, i), max(hi, i))
    for t in g.inputs:
        if io and same.get(t, t) in live:
            live[same.get(t, t)] = (0, live[same.get(t, t)][1])
    for t in g.outputs:
        if io and same.get(t, t) in live:
            live[same.get(t, t)] = (live[same.get(t, t)][0], len(steps))
    return {t: live[same.get(t, t)] for t in list(same) + list(live)}, same


def rule_holds(trace, inp, delta) -> bool:
    lr, fw = trace.last_read[inp], trace.first_write
    for i in range(lr.size):
        j = i + delta
        if 0 <= j < fw.size and lr[i] > fw[j]:
            return False
    return True


def check_plan(lib) -> int:
    """Assert the plan is sound; return the number of declared overlaps it uses."""
    plan, g = lib.plan, lib.graph
    live, same = lifetimes(lib)
    root = lambda t: same.get(t, t)  # noqa: E731
    declared = {(root(o.input), root(o.output)): o for o in plan.overlaps}
    kernels = {s.name: s for s in plan.steps if isinstance(s, Kernel)}
    traces = trace_kernels([kernels[o.kernel] for o in plan.overlaps], lib.kernel_c, g)
    boxes = []
    for t, (first, last) in live.items():
        home, off = plan.location[t]
        if home == "arena":
            assert off % ALIGN == 0 and off + g.tensor(t).nbytes <= plan.arena_size, t
            boxes.append((t, first, last, off, off + g.tensor(t).nbytes))
    for name, off in plan.scratch.items():
        step = next(i for i, s in enumerate(plan.steps) if getattr(s, "name", None) == name)
        boxes.append((("scratch", name), step, step, off, off + kernels[name].scratch_bytes))
    for n, (a, fa, la, oa, ea) in enumerate(boxes):
        for b, fb, lb, ob, eb in boxes[n + 1:]:
            if fa > lb or fb > la or ea <= ob or eb <= oa:
                continue  # not live together, or disjoint bytes
            if isinstance(a, int) and isinstance(b, int) and same.get(a, a) == same.get(b, b):
                assert oa == ob, f"alias {a}, {b} at different offsets"
                continue
            o = declared.get((root(a), root(b))) or declared.get((root(b), root(a)))
            assert o is not None, f"tensors {a} and {b} overlap while both are live"
            step = plan.steps[o.step]
            assert lb == fa == o.step or la == fb == o.step, f"{a}, {b} share more than step {o.step}"
            assert live[o.input][1] == o.step and live[o.output][0] == o.step
            assert plan.location[o.input][1] - plan.location[o.output][1] == o.delta
            assert o.input in step.inputs and o.output == step.output
            assert rule_holds(traces[o.kernel], o.input, o.delta), f"{o.kernel} overwrites unread input"
    return len(plan.overlaps)


@pytest.mark.parametrize("io_in_arena", [False, True], ids=["io-outside", "io-in-arena"])
@pytest.mark.parametrize("name", ALL_MODELS)
def test_no_live_tensors_overlap(name, io_in_arena, tmp_path):
    res = compile_model(model_path(name), "host", tmp_path / name, measure_code=False,
                        io_in_arena=io_in_arena)
    check_plan(res.library)
    assert res.library.plan.lower_bound <= res.arena_bytes


@pytest.mark.parametrize("name", ALL_MODELS)
def test_sanitized_run_in_an_exact_arena(name, tmp_path):
    """ASan + UBSan; the harness mallocs exactly ARENA_SIZE bytes, so one byte past it traps."""
    report = verify(model_path(name), "host", sanitize=True, work_dir=tmp_path)
    assert report.ok, report.summary()


@pytest.mark.parametrize("name", ["tiny_kws", "tiny_resnet", "kws_ref_model", "str_ww_ref_model"])
def test_io_in_arena_sanitized(name, tmp_path):
    """Input and output inside the arena, run with NULL buffers through the header's accessors."""
    res = compile_model(model_path(name), "host", tmp_path / "lib", io_in_arena=True)
    xs = standard_inputs(res.library.input.shape)
    exe = toolchain.build_host(tmp_path / "lib", res.library.name, xs, tmp_path / "build", sanitize=True)
    outs = toolchain.run_host(exe).outputs
    for got, want in zip(outs, reference_outputs(model_path(name), xs)):
        assert np.array_equal(np.frombuffer(got, np.int8), want)
    header = (tmp_path / "lib" / "include" / f"{res.library.name}.h").read_text()
    N = res.library.name.upper()
    assert f"#define {N}_INPUT_OFFSET " in header and f"#define {N}_OUTPUT_OFFSET " in header


def test_overlaps_shrink_the_arena(tmp_path):
    res = compile_model(model_path("tiny_kws"), "host", tmp_path / "k", measure_code=False)
    lib = res.library
    assert check_plan(lib) > 0
    plain = plan_memory(lib.graph, lib.plan.steps, None)
    assert plain.overlaps == [] and lib.plan.arena_size < plain.arena_size


def test_rule_rejects_an_unsafe_overlap(tmp_path):
    """A 3x3 convolution written over its own input at the same offset would read overwritten
    rows; the trace must say so."""
    res = compile_model(model_path("tiny_resnet"), "host", tmp_path / "r", measure_code=False)
    lib = res.library
    conv = next(k for k in lib.kernels if k.op.kind == "CONV_2D" and k.op.index > 0)
    trace = trace_kernels([conv], lib.kernel_c, lib.graph)[conv.name]
    assert trace is not None and not rule_holds(trace, conv.inputs[0], 0)
    assert (trace.first_write != NEVER).all()


def test_untraceable_kernel_gets_no_overlap(tmp_path):
    res = compile_model(model_path("tiny_kws"), "host", tmp_path / "k", measure_code=False)
    lib = res.library
    broken = {k: (params, "  this is not C;\n") for k, (params, _) in lib.kernel_c.items()}
    assert plan_memory(lib.graph, lib.plan.steps, broken).overlaps == []


def test_order_lowers_the_peak_of_a_branchy_graph(tmp_path):
    """The planner may run a residual block's branches in another order than the model lists
    them; whatever it picks is a topological order and never raises the bound."""
    res = compile_model(model_path("tiny_resnet"), "host", tmp_path / "r", measure_code=False)
    lib = res.library
    pos = {id(s): i for i, s in enumerate(lib.plan.steps)}
    producer = {s.output if isinstance(s, Kernel) else s.target: s for s in lib.plan.steps}
    for s in lib.plan.steps:
        reads = [x for x in s.inputs if isinstance(x, int)] if isinstance(s, Kernel) else [s.source]
        assert all(pos[id(producer[t])] < pos[id(s)] for t in reads if t in producer)
    given = plan_memory(lib.graph, list(lib.steps), lib.kernel_c)
    assert lib.plan.lower_bound <= given.lower_bound


def test_deterministic(tmp_path):
    a = compile_model(model_path("gesture"), "host", tmp_path / "a", measure_code=False)
    b = compile_model(model_path("gesture"), "host", tmp_path / "b", measure_code=False)
    assert a.library.plan.to_json() == b.library.plan.to_json()
