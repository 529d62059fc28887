#!/usr/bin/env python3
"""Check the committed notebooks, as a learner reads them on a code host, without running them.

A notebook fails, naming the notebook and the cell, when it has:

  * a code cell that was never executed (no execution count), or an empty code cell,
  * an error, a panic, text on stderr or an `Err` value (as scripts/run_notebooks.py judges a run;
    the cell tags "allow-error" and "allow-panic" are honoured),
  * an absolute path of the machine that ran it in an output (a home folder, /root, /tmp, ...):
    outputs name files relative to the notebook or under `~`,
  * a tch tensor trailer (`Tensor[[2, 3], Float]`): tensors are printed as PyTorch prints them,
    with `llm_from_scratch::Show` (`x.show()`),
  * a figure shown as text (`Svg("<svg ...")`) instead of drawn,
  * fewer figures (images in its outputs) than its chapter needs: every chapter of the book has
    figures, so every notebook shows at least one (see MIN_FIGURES),
  * (a chapter notebook, directly in notebooks/) a cell without its slide type, or a stale one:
    run scripts/slides.py on it (JupyterLab's RISE presents the notebook as slides).

Usage: check_notebooks.py [NOTEBOOK ...]
(default: every notebooks/*.ipynb, notebooks/*/*.ipynb and notebooks/exercises/source/*/*.ipynb)
Exit status 0 when every notebook passes, 1 otherwise; the last line reads
"notebook check: N passed, M failed".
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import _describe, _texts, cell_problems, default_notebooks  # noqa: E402
from slides import applies_to, slide_problems  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# An absolute path under a home or temporary folder, or this project's build machines' work
# folder, not preceded by a character that would make it part of a URL or a longer path.
MACHINE_PATH = re.compile(
    r"(?<![\w.~/-])(?:/home/[^/\s]+|/root|/Users/[^/\s]+|/tmp|/var/tmp|/var/folders|/private/var|/work|"
    r"[A-Za-z]:\\Users\\[^\\\s]+)(?=[/\\\s\"'),:]|$)"
)
# What tch's Display appends to a tensor's values.
TENSOR_TRAILER = re.compile(r"Tensor\[(?:\[[\d, ]*\], \w+|Undefined)\]")
IMAGE_MIMES = ("image/svg+xml", "image/png", "image/jpeg")
# The least number of figures each notebook shows (by the start of its file name): the book's
# chapters all have figures; these are the diagrams and charts each notebook draws today, so a
# figure that goes missing (or draws as text) fails the check.
MIN_FIGURES = {
    "ch01": 6,
    "ch02": 5,
    "ch03": 6,
    "ch04": 4,
    "ch05": 6,
    "ch06": 5,
    "ch07": 4,
    "appendix-a": 4,
    "appendix-d": 5,
    "appendix-e": 3,
    "bonus-dpo": 5,
    "bonus-kv-cache": 4,
    "bonus-gpt-to-llama-qwen": 4,
}


def min_figures(nb_path: Path) -> int:
    """The figures a notebook must show, by its chapter (0 for a notebook of no known chapter, and
    for the exercise notebooks, `<chapter>-exercises.ipynb`, which need not draw)."""
    if nb_path.name.endswith("-exercises.ipynb"):
        return 0
    for prefix, n in MIN_FIGURES.items():
        if nb_path.name.startswith(prefix):
            return n
    return 0


def _output_texts(output: dict) -> list[str]:
    """Every text in an output, images' SVG text included (a path could hide in a figure's title)."""
    texts = _texts(output)
    if output.get("output_type") in ("execute_result", "display_data"):
        svg = output.get("data", {}).get("image/svg+xml")
        if svg:
            texts.append(svg if isinstance(svg, str) else "".join(svg))
    return texts


def notebook_problems(nb_path: Path, nb: dict | None = None, machine_paths: bool = True) -> list[str]:
    """Every problem of one committed notebook, one line each (empty when it passes).

    `nb`: the notebook already read (the runner passes the copy it just executed), else it is read
    from `nb_path`. `machine_paths=False` leaves out the path check (a run on a test machine may
    name its own data folder; only committed outputs must not)."""
    import nbformat

    if nb is None:
        try:
            # nbformat joins the multi-line strings the files store as lists.
            nb = nbformat.reads(nb_path.read_text(encoding="utf-8"), as_version=4)
        except Exception as e:  # unreadable file, bad JSON, not a notebook
            return [f"{nb_path.name}: cannot read it as a notebook: {e}"]
    problems: list[str] = []
    figures = 0
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        where = _describe(nb_path, index, cell)
        source = "".join(cell.get("source", ""))
        if not source.strip():
            problems.append(f"{where}: an empty code cell")
            continue
        if cell.get("execution_count") is None:
            problems.append(f"{where}: never executed (run the notebook and commit its outputs)")
        problems.extend(f"{where}: {p}" for p in cell_problems(cell))
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if any(m in data for m in IMAGE_MIMES):
                figures += 1
            for text in _output_texts(output):
                m = MACHINE_PATH.search(text) if machine_paths else None
                if m:
                    line = next(ln for ln in text.splitlines() if m.group(0) in ln)
                    problems.append(f"{where}: a path of the machine that ran it ({m.group(0)!r}) in {line.strip()[:120]!r}")
                if output.get("output_type") == "execute_result" and text.lstrip().startswith('Svg("'):
                    problems.append(
                        f"{where}: a figure shown as text (Svg(...)): evcxr prints the value of the session's first "
                        "cell that uses `?` with Debug; use `?` in an earlier cell"
                    )
                m = TENSOR_TRAILER.search(text)
                if m:
                    problems.append(f"{where}: a tch tensor trailer {m.group(0)!r} (print tensors with `.show()`)")
    need = min_figures(nb_path)
    if figures < need:
        problems.append(f"{nb_path.name}: {figures} figure(s) in its outputs, its chapter needs at least {need}")
    if applies_to(nb_path):
        problems.extend(slide_problems(nb_path, nb))
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a.startswith("-") for a in args):
        print(__doc__)
        return 2
    paths = [Path(a) for a in args] or default_notebooks() + sorted((REPO / "notebooks").glob("*/*.ipynb"))
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    if not paths:
        print("notebook check: no notebook found", file=sys.stderr)
        return 1
    failed = 0
    for nb_path in paths:
        problems = notebook_problems(nb_path)
        if problems:
            failed += 1
            for p in problems:
                print(f"FAILED {p}")
        else:
            print(f"ok     {nb_path.name}")
    print(f"notebook check: {len(paths) - failed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
