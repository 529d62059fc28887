#!/usr/bin/env python3
"""Give every chapter notebook slide metadata, so JupyterLab's RISE extension (jupyterlab-rise)
presents it as slides, one idea per slide.

Each cell gets `metadata.slideshow.slide_type`, decided from the notebook's content alone:

  * "slide" (a new slide, left to right): the first cell, and a markdown cell that opens a
    section (its first line is a `#` or `##` heading);
  * "subslide" (a new slide below, within the section): a `###` (or deeper) heading; an
    explanation (a markdown cell without a heading) that follows code: the next idea; and a code
    cell whose output is long (more than LONG_OUTPUT_LINES lines of text, or a figure after an
    explanation that is long already), so it gets the screen to itself;
  * "fragment" (appears on the next key press, on the same slide): a code cell right after its
    explanation;
  * "-" (continues the slide): anything else (a second code cell in a row, a markdown cell after
    a markdown cell).

Usage:
  scripts/slides.py [NOTEBOOK ...]          set the metadata (default: every notebooks/*.ipynb;
                                            notebooks/exercises/ and notebooks/zh/ are left alone)
  scripts/slides.py --check [NOTEBOOK ...]  change nothing; exit 1, naming each notebook and cell,
                                            when a cell lacks its slide type or has a stale one

A Chinese notebook (notebooks/zh/<name>, named on the command line) presents the slides of its
English twin notebooks/<name>: each cell's slide type is that of the English cell with the same id
(scripts/zh_notebooks.py keeps the two notebooks' cell metadata identical), not one computed from
the Chinese text, whose lengths differ.

Only the `slideshow` metadata changes; sources, outputs and the file's JSON layout stay as they
are (the notebooks are not executed). Running it twice changes nothing the second time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"

# More lines of text output than this, and a code cell gets a slide of its own.
LONG_OUTPUT_LINES = 20
# An explanation longer than this many lines leaves no room on its slide for a figure.
LONG_EXPLANATION_LINES = 12


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def _heading_level(cell: dict) -> int:
    """The level of the markdown heading on the cell's first non-blank line (0: no heading)."""
    if cell.get("cell_type") != "markdown":
        return 0
    for line in _source(cell).splitlines():
        if line.strip():
            stripped = line.lstrip()
            hashes = len(stripped) - len(stripped.lstrip("#"))
            return hashes if 0 < hashes <= 6 and stripped[hashes:hashes + 1] == " " else 0
    return 0


def _output_lines(cell: dict) -> int:
    """Lines of text in a code cell's outputs (streams, and results without a figure)."""
    n = 0
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            text = out.get("text", "")
        else:
            data = out.get("data", {})
            if any(m.startswith("image/") for m in data):
                continue
            text = data.get("text/plain", "")
        n += len((text if isinstance(text, str) else "".join(text)).splitlines())
    return n


def _has_figure(cell: dict) -> bool:
    return any(any(m.startswith("image/") for m in out.get("data", {})) for out in cell.get("outputs", []))


def slide_types(cells: list[dict]) -> list[str]:
    """The slide type of each cell (see the module's docstring)."""
    types: list[str] = []
    previous: dict | None = None
    for index, cell in enumerate(cells):
        level = _heading_level(cell)
        kind = cell.get("cell_type")
        if index == 0 or level in (1, 2):
            t = "slide"
        elif level >= 3:
            t = "subslide"
        elif kind == "markdown":
            t = "subslide" if previous is not None and previous.get("cell_type") == "code" else "-"
        elif kind == "code":
            after_text = previous is not None and previous.get("cell_type") == "markdown"
            long_text = previous is not None and len(_source(previous).splitlines()) > LONG_EXPLANATION_LINES
            if _output_lines(cell) > LONG_OUTPUT_LINES or (after_text and long_text and _has_figure(cell)):
                t = "subslide"
            elif after_text:
                t = "fragment"
            else:
                t = "-"
        else:  # raw cells
            t = "-"
        types.append(t)
        previous = cell
    return types


def notebook_paths(args: list[str]) -> list[Path]:
    """The notebooks named, or every chapter notebook (notebooks/*.ipynb, not its subfolders)."""
    if args:
        return [Path(a) for a in args]
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def applies_to(path: Path) -> bool:
    """Whether a notebook is a chapter notebook, which must have slide metadata: one directly in
    notebooks/ (notebooks/exercises/ and notebooks/zh/ are not presented as slides)."""
    return path.suffix == ".ipynb" and path.resolve().parent.name == "notebooks"


def english_twin(path: Path) -> Path | None:
    """The English notebook of a Chinese one (notebooks/zh/<name> -> notebooks/<name>), if any."""
    twin = path.resolve().parent.parent / path.name
    return twin if path.resolve().parent.name == "zh" and twin.exists() else None


def wanted_types(path: Path, nb: dict) -> list[str]:
    """The slide type each cell should have: from its own content, or, in a Chinese notebook,
    those of its English twin's cells (by cell id; a cell without a twin: from its content)."""
    own = slide_types(nb.get("cells", []))
    twin = english_twin(path)
    if twin is None:
        return own
    en_cells = json.loads(twin.read_text(encoding="utf-8")).get("cells", [])
    by_id = dict(zip((c.get("id") for c in en_cells), slide_types(en_cells)))
    return [by_id.get(c.get("id"), t) for c, t in zip(nb.get("cells", []), own)]


def stale_cells(nb: dict, types: list[str] | None = None) -> list[tuple[int, str, str | None]]:
    """(cell index, wanted slide type, present slide type or None) of each cell that is wrong
    (`types`: the wanted types, by default computed from the cells)."""
    wrong = []
    types = slide_types(nb.get("cells", [])) if types is None else types
    for index, (cell, want) in enumerate(zip(nb.get("cells", []), types)):
        have = cell.get("metadata", {}).get("slideshow", {}).get("slide_type")
        if have != want:
            wrong.append((index, want, have))
    return wrong


def slide_problems(path: Path, nb: dict) -> list[str]:
    """One line per cell whose slide metadata is missing or stale (empty when all are right)."""
    return [
        f"{path.name} cell {index}: slide_type {have!r}, want {want!r} (run scripts/slides.py {path.name})"
        for index, want, have in stale_cells(nb, wanted_types(path, nb))
    ]


def dumps(nb: dict) -> str:
    """The notebook as nbformat writes it: 1-space indent, sorted keys, non-ASCII kept, a final newline."""
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def set_slide_metadata(nb: dict, types: list[str] | None = None) -> int:
    """Set every cell's slide type (`types`, by default computed from the cells); returns how many
    cells changed."""
    changed = 0
    types = slide_types(nb.get("cells", [])) if types is None else types
    for cell, want in zip(nb.get("cells", []), types):
        meta = cell.setdefault("metadata", {})
        if meta.get("slideshow", {}).get("slide_type") != want:
            meta.setdefault("slideshow", {})["slide_type"] = want
            changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    if any(a.startswith("-") for a in args):
        print(__doc__)
        return 2
    paths = notebook_paths(args)
    if not paths:
        print("slides: no notebook found", file=sys.stderr)
        return 1
    failed = 0
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if check:
            problems = slide_problems(path, nb)
            if problems:
                failed += 1
                for p in problems[:5]:
                    print(f"FAILED {p}")
                if len(problems) > 5:
                    print(f"FAILED {path.name}: and {len(problems) - 5} more cells")
            continue
        types = wanted_types(path, nb)
        changed = set_slide_metadata(nb, types)
        if changed:
            path.write_text(dumps(nb), encoding="utf-8")
        print(f"{path.name}: {changed} cell(s) updated; {types.count('slide')} slides, {types.count('subslide')} subslides")
    if check:
        print(f"slide check: {len(paths) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
