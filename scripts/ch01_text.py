#!/usr/bin/env python3
"""Write chapter 1's markdown as plain text: assets/text/ch01-en.md and assets/text/ch01-zh.md.

Chapter 2's notebook compares tokenizers on English and Chinese text that the project wrote
itself: the markdown cells of notebooks/ch01-understanding-llms.ipynb and of its Chinese twin
notebooks/zh/ch01-understanding-llms.ipynb (the two have the same cells, one Chinese markdown cell
per English one, so the texts are parallel section by section). The library compiles the two files
in (`llm_from_scratch::text::samples`), and a test checks that they still match the notebooks.

Each markdown cell becomes one section, introduced by a comment line that names its notebook and
cell id:

    <!-- notebooks/ch01-understanding-llms.ipynb cell 028606e0 -->

Usage: python scripts/ch01_text.py [--check]   (--check: fail if a file is out of date)
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    "en": "notebooks/ch01-understanding-llms.ipynb",
    "zh": "notebooks/zh/ch01-understanding-llms.ipynb",
}


def render(notebook: str) -> str:
    nb = json.loads((ROOT / notebook).read_text(encoding="utf-8"))
    sections = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"]).strip()
        sections.append(f"<!-- {notebook} cell {cell['id']} -->\n\n{text}\n")
    return "\n".join(sections)


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for lang, notebook in NOTEBOOKS.items():
        out = ROOT / "assets" / "text" / f"ch01-{lang}.md"
        text = render(notebook)
        if check:
            if not out.exists() or out.read_text(encoding="utf-8") != text:
                stale.append(str(out.relative_to(ROOT)))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            print(f"wrote {out.relative_to(ROOT)} ({len(text)} characters) from {notebook}")
    if stale:
        print("out of date (run python scripts/ch01_text.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
