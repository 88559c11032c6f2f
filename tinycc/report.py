"""`tinycc report build/kws`: where the RAM and the flash go, from the output folder alone.

Reads metadata.json (the plan: every buffer's offset, size and lifetime) and the sources, and
writes into the folder:

- memory.png: the arena over the layers, each buffer a box from its first to its last use at
  its offset (made with matplotlib);
- memory.md: one row per layer: the tensors live, their bytes, and the kernel's code bytes
  (measured by compiling src/ with -ffunction-sections for the target's CPU).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import TinyccError


def load(out_dir: Path) -> dict:
    meta_path = Path(out_dir) / "metadata.json"
    if not meta_path.is_file():
        raise TinyccError(f"{out_dir} has no metadata.json: is it a folder written by `tinycc compile`?")
    meta = json.loads(meta_path.read_text())
    if "plan" not in meta:
        raise TinyccError(f"{meta_path} has no memory plan (written by an older tinycc); compile again")
    return meta


def kernel_code_bytes(out_dir: Path, meta: dict) -> dict[str, int]:
    """{C function: .text bytes}, built at -Os for the target's CPU; {} without a compiler."""
    from .targets import load_target
    target = load_target(meta["target"])
    cc, size = ("gcc", "size") if target.is_host else ("arm-none-eabi-gcc", "arm-none-eabi-size")
    if shutil.which(cc) is None or shutil.which(size) is None:
        return {}
    flags = [] if target.is_host else list(target.cflags)
    if meta.get("kernels") == "cmsis-nn":  # the layer's own function; CMSIS-NN's code is not counted
        from .cmsis_nn import include_flags
        try:
            flags += include_flags()
        except TinyccError:
            return {}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted((Path(out_dir) / "src").glob("*.c")):
            obj = Path(tmp) / (src.stem + ".o")
            cmd = [cc, "-std=c99", "-Os", "-ffunction-sections", *flags, "-I", str(Path(out_dir) / "include"),
                   "-I", str(src.parent), "-c", str(src), "-o", str(obj)]
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                return {}
            listing = subprocess.run([size, "-A", str(obj)], capture_output=True, text=True).stdout
            for m in re.finditer(r"^\.text\.(\w+)\s+(\d+)", listing, re.M):
                out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(2))
    return out


def layer_rows(meta: dict, code: dict[str, int]) -> list[dict]:
    plan = meta["plan"]
    names = {t["index"]: t["name"].split(";")[0] for t in meta["tensors"]}
    ops = {o["index"]: o for o in meta["ops"]}
    rows = []
    for step, op_index in enumerate(plan["order"]):
        op = ops[op_index]
        live = [b for b in plan["buffers"] if b["home"] in ("arena", "state") and b["first"] <= step <= b["last"]]
        rows.append({"step": step, "op": f"{op['op']} #{op_index}", "kernel": op.get("kernel", "-"),
                     "live": [names.get(b["tensors"][0], "?") if b["tensors"] else f"scratch of {b['scratch']}"
                              for b in live],
                     "bytes": _union(live),
                     "code": code.get(op.get("kernel", ""), None)})
    return rows


def _union(buffers: list[dict]) -> int:
    """Bytes the live buffers occupy: an in-place pair shares some, so not the plain sum."""
    total, end = 0, 0
    for b in sorted(buffers, key=lambda b: b["offset"]):
        lo, hi = max(b["offset"], end), b["offset"] + b["bytes"]
        total += max(0, hi - lo)
        end = max(end, hi)
    return total


def draw(meta: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    plan = meta["plan"]
    n = len(plan["order"])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * n + 3), 5))
    colors = plt.get_cmap("tab20")
    for k, b in enumerate(b for b in plan["buffers"] if b["home"] in ("arena", "state") and b["first"] <= b["last"]):
        last = min(b["last"], n - 1)
        ax.add_patch(Rectangle((b["first"] - 0.4, b["offset"]), last - b["first"] + 0.8, b["bytes"],
                               facecolor=colors(k % 20), edgecolor="black", linewidth=0.5, alpha=0.85))
        if b["bytes"] > 0.06 * max(plan["arena_bytes"], 1):
            label = str(b["tensors"][0]) if b["tensors"] else "scratch"
            ax.text((b["first"] + last) / 2, b["offset"] + b["bytes"] / 2, label, ha="center", va="center", fontsize=7)
    ax.axhline(plan["arena_bytes"], color="red", linewidth=1, label=f"arena {plan['arena_bytes']:,} B")
    ax.axhline(plan["lower_bound"], color="gray", linestyle="--", linewidth=1,
               label=f"lower bound {plan['lower_bound']:,} B")
    ops = {o["index"]: o["op"] for o in meta["ops"]}
    ax.set_xticks(range(n))
    ax.set_xticklabels([f"{ops[i]} #{i}" for i in plan["order"]], rotation=75, fontsize=7)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0, max(plan["arena_bytes"], 1) * 1.08)
    ax.set_ylabel("arena offset (bytes)")
    ax.set_title(f"{meta['name']}: tensors in the arena over the layers ({plan['algorithm']})")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(meta: dict, rows: list[dict]) -> str:
    plan = meta["plan"]
    lines = [f"# Memory of {meta['name']} ({meta['target']})", "",
             f"Arena {plan['arena_bytes']:,} B (lower bound {plan['lower_bound']:,} B; input and output "
             f"{'inside' if plan['io_in_arena'] else 'in the caller' + chr(39) + 's buffers'}), "
             f"planned by {plan['algorithm']}. "
             f"Weights {meta['weight_bytes']:,} B, code {meta.get('code_bytes') or 0:,} B.", "",
             "![arena](memory.png)", "",
             "| step | layer | kernel code B | bytes live | tensors live |", "|---:|---|---:|---:|---|"]
    for r in rows:
        code = "-" if r["code"] is None else f"{r['code']:,}"
        lines.append(f"| {r['step']} | {r['op']} | {code} | {r['bytes']:,} | {', '.join(r['live'])} |")
    if plan["overlaps"]:
        lines += ["", "In place (output written over an input it has read, proven by the kernel's trace):", ""]
        lines += [f"- {o['kernel']}: output {o['output']} starts {o['delta']} B below input {o['input']}"
                  for o in plan["overlaps"]]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path) -> Path:
    """Write memory.png and memory.md into the folder; return the .md path."""
    out_dir = Path(out_dir)
    meta = load(out_dir)
    rows = layer_rows(meta, kernel_code_bytes(out_dir, meta))
    draw(meta, out_dir / "memory.png")
    md = out_dir / "memory.md"
    md.write_text(table(meta, rows))
    return md
