#!/usr/bin/env python3
"""Execute the project's notebooks headless and fail loudly.

Runs every notebook under notebooks/ and every exercise (solution) notebook under
notebooks/exercises/source/ (chapters first, then appendices), one kernel each, with the
project's Jupyter kernel `llm-from-scratch`, and writes the executed copies to target/notebooks/
(outside the source tree). A notebook fails, naming the notebook and the cell, on:

  * an error output (a compile error, an evcxr command that failed, ...),
  * "panicked at" anywhere in a cell's output (evcxr reports a panic as text, and a headless
    `jupyter execute` would still exit 0),
  * text on stderr: a `?` that returned `Err` makes evcxr print the error there (the reply still
    says "ok"), and nothing else in these notebooks writes to stderr but the data module's
    progress lines ("downloading <file> from <url>"), which are not counted,
  * a cell whose value is an `Err(...)`,
  * a cell that runs past --timeout seconds, or a kernel that dies,
  * outputs that scripts/check_notebooks.py rejects (a tch tensor trailer, a figure shown as
    text, fewer figures than the chapter needs), machine paths aside.

Usage: run_notebooks.py [--timeout S] [--out DIR] [--update] [NOTEBOOK ...]
Exit status: 0 when every notebook ran clean, 1 otherwise. The last line reads
"notebooks: N passed, M failed".

A cell that shows an error on purpose (teaching what a bad input does) carries the cell tag
"allow-error": then stderr text and an `Err` value are accepted; panics and error outputs never are.
A cell that panics on purpose (showing that the variables of earlier cells survive a panic, evcxr's
`:preserve_vars_on_panic`, on by default) carries "allow-panic": then its panic is accepted too.

--update writes the executed outputs back into the source notebooks (to commit the outputs of a
real run, so the notebooks read well on a code host), with a stamp in the notebook's metadata:
`metadata.llm_from_scratch = {"executed_code_sha256": <code_sha256 of the code cells' sources>,
"llm_quick": <LLM_QUICK during the run, or null>}`, so a check can tell outputs of a run of the
current code from stale ones (scripts/zh_notebooks.py check does).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KERNEL = "llm-from-scratch"
# The solution notebooks of the exercises (nbgrader's source folder, one folder per chapter).
EXERCISES = REPO / "notebooks" / "exercises" / "source"
PANIC = "panicked at"
ALLOW_ERROR_TAG = "allow-error"
ALLOW_PANIC_TAG = "allow-panic"
# stderr lines that report progress, not errors: the data module's `downloading <file> from <url>`.
# How long the runner waits, after a cell's "idle" status, for output the kernel sends late.
LATE_OUTPUT_S = 0.2
PROGRESS_LINE = re.compile(r"^downloading \S+ from \S+$")
# The notebook metadata key of the stamp --update writes.
STAMP_KEY = "llm_from_scratch"


def code_sha256(sources: list[str]) -> str:
    """The hash the stamp records: SHA-256 of the JSON list of the code cells' sources, in order."""
    return hashlib.sha256(json.dumps(sources, ensure_ascii=False).encode("utf-8")).hexdigest()


def stamp_executed(nb: dict) -> None:
    """Record in the notebook's metadata which code its outputs come from, and in which mode."""
    sources = [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
               for c in nb["cells"] if c.get("cell_type") == "code"]
    nb["metadata"][STAMP_KEY] = {"executed_code_sha256": code_sha256(sources), "llm_quick": os.environ.get("LLM_QUICK")}


class NotebookFailure(Exception):
    """A notebook failed; the message names the notebook and the cell."""


def _texts(output: dict) -> list[str]:
    """All text carried by one cell output (stream text, plain-text data, traceback)."""
    out: list[str] = []
    kind = output.get("output_type")
    if kind == "stream":
        out.append(output.get("text", ""))
    elif kind in ("execute_result", "display_data"):
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/"):
                out.append(value if isinstance(value, str) else "".join(value))
    elif kind == "error":
        out.append(output.get("ename", ""))
        out.append(output.get("evalue", ""))
        out.extend(output.get("traceback", []))
    return out


def cell_problems(cell: dict) -> list[str]:
    """Why this executed cell counts as failed: one line per problem, empty when it is fine."""
    problems: list[str] = []
    tags = cell.get("metadata", {}).get("tags", [])
    allow_panic = ALLOW_PANIC_TAG in tags
    allow_error = ALLOW_ERROR_TAG in tags or allow_panic
    outputs = cell.get("outputs", [])
    stderr = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr")
    stderr = "\n".join(line for line in stderr.splitlines() if not PROGRESS_LINE.match(line.strip()))
    for output in outputs:
        if output.get("output_type") == "error":
            what = output.get("evalue") or "".join(output.get("traceback", [])) or output.get("ename", "")
            problems.append(f"error output: {_first_lines(what)}")
            continue
        if output.get("output_type") == "stream":
            continue  # judged as a whole below (evcxr splits stderr into many small outputs)
        for text in _texts(output):
            if PANIC in text:
                if not allow_panic:
                    problems.append(f"panic: {_panic_excerpt(text)}")
            elif not allow_error and output.get("output_type") == "execute_result" and text.lstrip().startswith("Err("):
                problems.append(f"the cell's value is an Err: {_first_lines(text)}")
    stdout = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") != "stderr")
    for text in (stdout, stderr):
        if PANIC in text and not allow_panic:
            problems.append(f"panic: {_panic_excerpt(text)}")
    if stderr.strip() and PANIC not in stderr and not allow_error:
        problems.append(f"stderr (an Err returned by `?`, or an error message): {_first_lines(stderr)}")
    return problems


def _panic_excerpt(text: str) -> str:
    """The "panicked at" line and the panic message after it."""
    lines = text.splitlines()
    i = next(i for i, ln in enumerate(lines) if PANIC in ln)
    return _first_lines("\n".join(lines[i : i + 2]), 2)


def _first_lines(text: str, n: int = 6) -> str:
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    more = " ..." if len(lines) > n else ""
    return " | ".join(lines[:n]) + more


def _describe(nb_path: Path, index: int, cell: dict) -> str:
    source = "".join(cell.get("source", "")).strip().splitlines()
    first = source[0] if source else ""
    return f"{nb_path.name}: cell {index} ({first[:70]!r})"


class LateOutput:
    """Mixin for an nbclient `NotebookClient` (nbconvert's and nbgrader's executors are ones):
    evcxr can send a cell's stdout or stderr after its "idle" status (evcxr issue #353), which
    nbclient would drop. Keep reading until the kernel is quiet for a moment, so that late output
    (an `Err` printed on stderr, the end of a panic) is recorded and judged too."""

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        from queue import Empty

        from nbclient.exceptions import CellExecutionComplete
        from nbclient.util import ensure_async

        await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=LATE_OUTPUT_S))
            except (Empty, asyncio.TimeoutError):
                return
            if msg["parent_header"].get("msg_id") == parent_msg_id and msg["msg_type"] != "status":
                try:
                    self.process_message(msg, cell, cell_index)
                except CellExecutionComplete:
                    pass


def run_notebook(nb_path: Path, out_dir: Path, timeout: int, kernel: str, update: bool) -> float | None:
    """Execute one notebook; raise NotebookFailure naming the cell on the first failing cell.
    Returns the seconds from the kernel's start to the first cell output (None if none)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(nb_path, as_version=4)
    t0 = time.monotonic()
    first_output: list[float] = []

    class CheckingClient(LateOutput, NotebookClient):
        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            try:
                result = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            except CellTimeoutError as e:
                raise NotebookFailure(f"{_describe(nb_path, cell_index, cell)}: timed out after {timeout} s") from e
            except DeadKernelError as e:
                raise NotebookFailure(f"{_describe(nb_path, cell_index, cell)}: the kernel died ({e})") from e
            if cell.get("outputs") and not first_output:
                first_output.append(time.monotonic() - t0)
            problems = cell_problems(cell)
            if problems:
                raise NotebookFailure(f"{_describe(nb_path, cell_index, cell)}: " + "; ".join(problems))
            return result

    client = CheckingClient(
        nb,
        kernel_name=kernel,
        timeout=timeout,
        startup_timeout=120,
        allow_errors=True,  # errors are judged by cell_problems (which also catches panics)
        record_timing=True,
        # The kernel starts in the notebook's own folder, so `:dep ... { path = ".." }` finds the crate.
        resources={"metadata": {"path": str(nb_path.parent)}},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        client.execute()
    finally:
        nbformat.write(nb, out_dir / nb_path.name)
    # What the committed-notebook check asks of outputs holds for this run too: no tch tensor
    # trailer, every figure drawn (not shown as text), as many figures as the chapter needs.
    from check_notebooks import notebook_problems
    from slides import applies_to, set_slide_metadata

    if applies_to(nb_path):
        set_slide_metadata(nb)  # new outputs may move a slide boundary (a long output gets its own)
    problems = notebook_problems(nb_path, nb, machine_paths=False)
    if problems:
        raise NotebookFailure("; ".join(problems))
    if update:
        stamp_executed(nb)
        nbformat.write(nb, nb_path)
    return first_output[0] if first_output else None


def default_notebooks() -> list[Path]:
    """The chapters' notebooks and the exercise notebooks' sources (nbgrader's solution copies;
    the student copies it generates under notebooks/exercises/release/ are not run)."""
    return sorted((REPO / "notebooks").glob("*.ipynb")) + sorted(EXERCISES.glob("*/*.ipynb"))


def notebook_order(paths: list[Path]) -> list[Path]:
    """Chapters (ch01, ch02, ...) first, then appendices, each sorted by name."""
    return sorted(paths, key=lambda p: (not p.name.startswith("ch"), p.name))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb and the exercises' sources")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    ap.add_argument("--out", type=Path, default=REPO / "target" / "notebooks", help="folder for executed copies")
    ap.add_argument("--kernel", default=KERNEL, help=f"kernel name (default {KERNEL})")
    ap.add_argument("--update", action="store_true", help="write outputs back into the source notebooks")
    args = ap.parse_args(argv)

    paths = args.notebooks or default_notebooks()
    if not paths:
        print("notebooks: no notebook found", file=sys.stderr)
        return 1
    passed, failed = 0, 0
    for nb_path in notebook_order([p.resolve() for p in paths]):
        t0 = time.monotonic()
        print(f"notebooks: running {nb_path.name} ...", flush=True)
        try:
            first = run_notebook(nb_path, args.out, args.timeout, args.kernel, args.update)
        except NotebookFailure as e:
            failed += 1
            print(f"FAILED {e}", flush=True)
        except Exception as e:  # kernel start-up failures, unreadable notebooks, ...
            failed += 1
            print(f"FAILED {nb_path.name}: {type(e).__name__}: {e}", flush=True)
        else:
            passed += 1
            first_s = f", first output after {first:.0f} s" if first is not None else ""
            print(f"ok     {nb_path.name} ({time.monotonic() - t0:.0f} s{first_s})", flush=True)
    print(f"executed copies in {args.out}")
    print(f"notebooks: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
