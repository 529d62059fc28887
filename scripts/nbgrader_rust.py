"""nbgrader for the project's Rust kernel: the executor that `notebooks/exercises/nbgrader_config.py`
puts in place of nbgrader's own `Execute` for `nbgrader autograde`.

nbgrader takes a test cell as failed only when its outputs hold an `error` (or, since 0.9, a
stderr stream placed before any value). evcxr reports a panic (a wrong answer's `✘` message, a
`todo!()` left in) and an `Err` returned by `?` only as text on stderr with an "ok" reply, may
send that text after the cell's "idle" status (which nbclient drops), and shows an `Err` value as
an ordinary result (which nbgrader would read as a full mark). `RustExecute`:

  * reads a cell's late output as the notebook runner does (`run_notebooks.LateOutput`),
  * judges every executed cell with the runner's own rules (`run_notebooks.cell_problems`: an
    error output, "panicked at", text on stderr, an `Err` value) and, when the cell failed, adds
    an `error` output named `ExerciseFailed` before any value, so the grader gives the cell zero,
  * points the notebook's `:dep llm-from-scratch = { path = ... }` at this checkout (a submission
    is graded in autograded/<student>/<assignment>/, one folder deeper than the source it came
    from, so the relative path of the source would miss the crate).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

REPO = Path(os.environ.get("LLM_FS_REPO") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(REPO / "scripts"))
from run_notebooks import LateOutput, cell_problems  # noqa: E402

from nbgrader.preprocessors import Execute  # noqa: E402

DEP = re.compile(r'^(:dep\s+llm-from-scratch\s*=\s*\{\s*path\s*=\s*)"[^"]*"', re.MULTILINE)
FAILED = "ExerciseFailed"


def mark_failure(cell: dict) -> bool:
    """Add an `error` output to an executed code cell that failed by the runner's rules (before
    its first value, since nbgrader reads the outputs in order). True when the cell failed."""
    from nbformat.notebooknode import NotebookNode

    outputs = cell.get("outputs", [])
    if any(o.get("output_type") == "error" for o in outputs):
        return True
    problems = cell_problems(cell)
    if not problems:
        return False
    error = NotebookNode(output_type="error", ename=FAILED, evalue="; ".join(problems), traceback=[f"{FAILED}: {p}" for p in problems])
    at = next((i for i, o in enumerate(outputs) if o.get("output_type") == "execute_result"), len(outputs))
    outputs.insert(at, error)
    cell["outputs"] = outputs
    return True


def pin_crate(nb: dict, repo: Path = REPO) -> None:
    """Point every `:dep llm-from-scratch = { path = "..." }` at `repo`."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["source"] = DEP.sub(lambda m: f'{m.group(1)}"{repo.as_posix()}"', cell["source"])


class RustExecute(LateOutput, Execute):
    """nbgrader's `Execute` for the evcxr kernel: every failure of a cell becomes an `error`."""

    def preprocess(self, nb, resources=None, km=None):
        pin_crate(nb)
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        # (nbconvert executes each cell here, through nbclient's own `execute_cell`.)
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.get("cell_type") == "code" and mark_failure(cell):
            error = next(o for o in cell["outputs"] if o.get("output_type") == "error")
            self.log.info("cell %d failed: %s", index, str(error.get("evalue", ""))[:200])
        return cell, resources
