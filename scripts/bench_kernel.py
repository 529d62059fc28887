#!/usr/bin/env python3
"""How long a notebook waits for its first output, before and after the kernel's slot seeding.

Starts the project's evcxr kernel with jupyter_client, runs a notebook's first two code cells (the
`:dep` cell and the `device()` cell) and prints the seconds from the kernel's start to the first
output, with the 1-minute load average at that moment (the machine is shared), for:

  (a) the first notebook on a machine with no kept build folder (an empty, private pool),
  (b) a second notebook opened while the first notebook's kernel still lives,
  (c) a warm start: a notebook opened again after both kernels ended (a slot used before).

Variants: "before" = branch `arch`'s launcher with the old `:dep llm-from-scratch = { path = ".." }`
(its pool line redirected to the private pool, nothing else changed); "after" = this clone's
launcher with the notebook's own `:dep` line. Each variant gets its own empty pool under --pool
(deleted at the end unless --keep), so nothing touches the real ~/.cache/.../evcxr-slots.

Usage: source scripts/env.sh && python scripts/bench_kernel.py [--variants before,after]
       [--notebooks NB1 NB2] [--pool DIR] [--keep] [--timeout S]
A cold build takes ~4-6 min on 2 cores; the whole run (both variants) ~15-20 min.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OLD_DEP = ':dep llm-from-scratch = { path = ".." }'
BEFORE_REF = "arch"
# The one line of the old launcher that names the pool, and its replacement (the private pool).
OLD_POOL_LINE = 'pool="$LLM_FS_HOME/evcxr-slots"'
PRIVATE_POOL_LINE = 'pool="${LLM_FS_KERNEL_POOL:-$LLM_FS_HOME/evcxr-slots}"'
SCENARIOS = {
    "a": "first notebook, no slot yet",
    "b": "second notebook, first kernel alive",
    "c": "warm start, no live kernel",
}


def first_cells(nb_path: Path) -> list[str]:
    """The notebook's `:dep` cell and the cell after it (the one that calls `device()`)."""
    nb = json.loads(nb_path.read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    if not code[0].startswith(":dep llm-from-scratch") or "device()" not in code[1]:
        raise SystemExit(f"{nb_path.name}: the first code cells are not the `:dep` and `device()` cells")
    return code[:2]


def write_kernel(root: Path, variant: str, pool: Path) -> str:
    """A kernelspec named llm-fs-bench-VARIANT under root/kernels whose launcher uses pool."""
    kdir = root / f"launcher-{variant}"
    kdir.mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "env.sh", kdir / "env.sh")
    if variant == "before":
        text = subprocess.run(["git", "-C", str(REPO), "show", f"{BEFORE_REF}:scripts/kernel-launcher.sh"],
                              check=True, capture_output=True, text=True).stdout
        if text.count(OLD_POOL_LINE) != 1:
            raise SystemExit(f"{BEFORE_REF}:scripts/kernel-launcher.sh has no line {OLD_POOL_LINE!r}")
        text = text.replace(OLD_POOL_LINE, PRIVATE_POOL_LINE)
    else:
        text = (REPO / "scripts" / "kernel-launcher.sh").read_text()
    (kdir / "launch.sh").write_text(text)
    name = f"llm-fs-bench-{variant}"
    spec = root / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["/bin/bash", str(kdir / "launch.sh"), "{connection_file}"],
        "display_name": f"bench {variant}", "language": "rust", "interrupt_mode": "message",
        "env": {"LLM_FS_KERNEL_POOL": str(pool)},
    }))
    return name


class Kernel:
    """One kernel started in notebooks/ (so the `:dep` path ".." finds the crate)."""

    def __init__(self, root: Path, name: str, log: Path):
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        self.log = log
        self.t0 = time.monotonic()
        self.km = KernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(root / "kernels")]))
        with open(log, "w") as out:  # the launcher's messages and cargo's progress
            self.km.start_kernel(cwd=str(REPO / "notebooks"), stdout=out, stderr=subprocess.STDOUT)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=300)

    def run(self, cells: list[str], timeout: float) -> tuple[float | None, float]:
        """Execute cells in order; returns (seconds from the kernel's start to the first output,
        seconds to the end of the last cell). Exits naming the cell on an error."""
        first = None
        for i, code in enumerate(cells):
            msg_id = self.kc.execute(code)
            errors = []
            deadline = time.monotonic() + timeout
            while True:
                msg = self.kc.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind in ("stream", "execute_result", "display_data", "error") and first is None:
                    first = time.monotonic() - self.t0
                if kind == "error":
                    errors.append(content.get("evalue") or content.get("ename"))
                elif kind == "stream" and content.get("name") == "stderr":
                    errors.append(content["text"])
                if kind == "status" and content["execution_state"] == "idle":
                    break
            if errors:
                raise SystemExit(f"cell {i} ({code.splitlines()[0]!r}) failed: {' '.join(errors)[:2000]}")
        return first, time.monotonic() - self.t0

    def stop(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)

    def compiled(self) -> tuple[int, list[str]]:
        """How many crates cargo compiled so far, and the launcher's own messages."""
        lines = self.log.read_text(errors="replace").splitlines()
        return (sum(1 for ln in lines if ln.lstrip().startswith("Compiling ")),
                [ln for ln in lines if ln.startswith("llm-from-scratch kernel:")])


def slots_line(pool: Path) -> str:
    """The pool's folders, marking the ones that started as a copy."""
    names = []
    for s in sorted(p for p in pool.glob("slot-*") if p.is_dir()):
        seeded = s / ".llm-fs-seeded-from"
        names.append(s.name + (f" (copy of {Path(seeded.read_text().strip()).name})" if seeded.exists() else ""))
    return ", ".join(names) or "none"


def bench_variant(root: Path, variant: str, notebooks: list[Path], timeout: float) -> dict[str, tuple[float, float, int]]:
    pool = root / f"pool-{variant}"
    name = write_kernel(root, variant, pool)
    results: dict[str, tuple[float, float, int]] = {}

    def measure(key: str, nb: Path) -> Kernel:
        cells = first_cells(nb)
        if variant == "before":
            cells[0] = OLD_DEP
        print(f"[{variant}] ({key}) {SCENARIOS[key]}: {nb.name}, load {os.getloadavg()[0]:.2f} at start", flush=True)
        k = Kernel(root, name, root / f"kernel-{variant}-{key}.log")
        first, done = k.run(cells, timeout)
        load = os.getloadavg()[0]
        crates, said = k.compiled()
        results[key] = (first if first is not None else done, load, crates)
        for line in said:
            print(f"[{variant}] ({key}) {line}", flush=True)
        print(f"[{variant}] ({key}) first output after {results[key][0]:.1f} s (both cells done after {done:.1f} s), "
              f"load {load:.2f}; {crates} crates compiled; slots: {slots_line(pool)}", flush=True)
        return k

    first_kernel = measure("a", notebooks[0])
    try:
        second_kernel = measure("b", notebooks[1])
        second_kernel.stop()
    finally:
        first_kernel.stop()
    time.sleep(2)  # the kernels exit and let go of their slots
    measure("c", notebooks[0]).stop()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="before,after", help="comma-separated: before, after")
    ap.add_argument("--notebooks", nargs=2, type=Path, default=[REPO / "notebooks" / "ch01-understanding-llms.ipynb",
                                                                REPO / "notebooks" / "ch02-working-with-text.ipynb"])
    ap.add_argument("--pool", type=Path, help="folder for the private pools (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the private pools")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per cell (default 1800)")
    args = ap.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="llm-fs-bench-kernel-", dir=args.pool))
    print(f"private pools in {root}; {os.cpu_count()} cores", flush=True)
    table: dict[str, dict[str, tuple[float, float, int]]] = {}
    try:
        for variant in args.variants.split(","):
            table[variant] = bench_variant(root, variant, [nb.resolve() for nb in args.notebooks], args.timeout)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    variants = list(table)
    print("\n| scenario | " + " | ".join(variants) + " | load (1 min) |")
    print("|---|" + "---|" * len(variants) + "---|")
    for key, what in SCENARIOS.items():
        cells = [f"{table[v][key][0]:.0f} s ({table[v][key][2]} crates compiled)" for v in variants]
        loads = " / ".join(f"{table[v][key][1]:.1f}" for v in variants)
        print(f"| ({key}) {what} | " + " | ".join(cells) + f" | {loads} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
