#!/usr/bin/env python3
"""Check that chapters/GLOSSARY.md covers every term the English notebooks introduce.

The chapter and appendix notebooks mark a new term in their markdown in two ways: **bold** (the
key terms of a section: **self-attention**, **perplexity**) and *italic* on first use (*token*,
*hidden state*). This script reads the markdown cells of notebooks/ch0*.ipynb and
notebooks/appendix-*.ipynb (or the notebooks given), collects every bold and every italic span,
and fails listing each one that is neither an English entry of the glossary nor a deliberate
exclusion (scripts/glossary_exclusions.tsv: emphasis such as *not*, titles such as *The Verdict*,
each with its reason).

Not counted as terms:
  * text inside code (fenced blocks, `inline code`), math ($...$) and link targets;
  * a bold run-in heading that ends a phrase with . ? ! or : ("**The idea.**", "**Why -100 in
    particular?**"): the notebooks open paragraphs with them;
  * labels "Exercise 2.1", "Stage 1 — ..." (bold or italic).

A term matches a glossary entry case-insensitively, with dashes unified, "fine-tuning" and
"finetuning" taken as one spelling, and also in its singular
(*tokens* → token) or adjective form (*autoregressively* → autoregressive). A glossary entry's
English cell may list variants separated by " / " and an abbreviation or alternative in
parentheses: "byte pair encoding (BPE)" covers "byte pair encoding" and "BPE".

An exclusion that no term uses any more also fails the check, so the list stays small and true.

Usage: glossary_check.py [--glossary FILE] [--exclusions FILE] [--list] [NOTEBOOK ...]
Exit status 0 when every term is covered, 1 otherwise (the missing terms are listed, each with
the notebook and cell where it first appears).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GLOSSARY = REPO / "chapters" / "GLOSSARY.md"
EXCLUSIONS = REPO / "scripts" / "glossary_exclusions.tsv"

FENCED = re.compile(r"```.*?```", re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
INLINE_MATH = re.compile(r"\$[^$\n]*\$")
LINK_TARGET = re.compile(r"\]\([^)]*\)")
HTML_TAG = re.compile(r"<[^>\n]+>")
BOLD = re.compile(r"\*\*(?!\s)([^*\n]+?)(?<!\s)\*\*|__(?!\s)([^_\n]+?)(?<!\s)__")
ITALIC = re.compile(r"(?<![*\w])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![*\w])|(?<![_\w])_(?!\s)([^_\n]+?)(?<!\s)_(?![_\w])")
RUN_IN = re.compile(r"[.?!:]$")
LABEL = re.compile(r"^(Exercise|Stage) \d")


@dataclass
class Term:
    text: str  # as written in the notebook
    notebook: str  # file name
    cell: str  # cell id
    kind: str  # "bold" or "italic"


def default_notebooks() -> list[Path]:
    nb = REPO / "notebooks"
    return sorted(nb.glob("ch0*.ipynb")) + sorted(nb.glob("appendix-*.ipynb"))


def prose(markdown: str) -> str:
    """The markdown without code, math, link targets and HTML tags."""
    for pattern in (FENCED, DISPLAY_MATH, INLINE_CODE, INLINE_MATH, LINK_TARGET, HTML_TAG):
        markdown = pattern.sub(" ", markdown)
    return markdown


def terms_of_markdown(markdown: str) -> list[tuple[str, str]]:
    """(kind, text) of every introduced term in one markdown cell, in order."""
    text = prose(markdown)
    found: list[tuple[str, str]] = []
    for m in BOLD.finditer(text):
        term = (m.group(1) or m.group(2)).strip()
        if RUN_IN.search(term) or LABEL.match(term):
            continue
        found.append(("bold", term))
    text = BOLD.sub(" ", text)
    for m in ITALIC.finditer(text):
        term = (m.group(1) or m.group(2)).strip()
        if not LABEL.match(term):
            found.append(("italic", term))
    return found


def notebook_terms(paths: list[Path]) -> list[Term]:
    terms: list[Term] = []
    for path in paths:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] != "markdown":
                continue
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            for kind, text in terms_of_markdown(source):
                terms.append(Term(text, path.name, cell.get("id", f"#{i}"), kind))
    return terms


def norm(text: str) -> str:
    text = text.lower().replace("–", "-").replace("—", "-").replace("’", "'")
    text = re.sub(r"fine-?tun", "finetun", text)  # fine-tuning, finetuning: one term
    text = re.sub(r"\s+", " ", text).strip(" .,;:!?'\"")
    return text


def forms(text: str) -> set[str]:
    """The normalised forms a notebook term may match: itself, singular, adjective."""
    t = norm(text)
    out = {t}
    if t.endswith("ies"):
        out.add(t[:-3] + "y")
    if t.endswith("es"):
        out.add(t[:-2])
    if t.endswith("s"):
        out.add(t[:-1])
    if t.endswith("ly"):
        out.add(t[:-2])
    return out


def glossary_entries(path: Path) -> set[str]:
    """The normalised English forms the glossary lists (first column of its tables)."""
    entries: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|") or re.match(r"^\|\s*-", line):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cells or cells[0].lower() in ("english", ""):
            continue
        english = re.sub(r"[*`]", "", cells[0])
        for variant in english.split(" / "):
            entries.add(norm(variant))
            inner = re.findall(r"\(([^)]*)\)", variant)
            base = re.sub(r"\s*\([^)]*\)", "", variant)
            entries.add(norm(base))
            for alt in inner:
                entries.add(norm(alt))
    entries.discard("")
    return entries


def exclusions(path: Path) -> dict[str, str]:
    """term (normalised) -> reason, from a TSV of `term<TAB>reason` lines (# comments)."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        term, sep, reason = line.partition("\t")
        if not sep or not reason.strip():
            raise SystemExit(f"{path}:{n}: expected `term<TAB>reason`, got {line!r}")
        out[norm(term)] = reason.strip()
    return out


def check(notebooks: list[Path], glossary: Path, excluded_path: Path) -> tuple[list[Term], list[str]]:
    """(missing terms, first occurrence each; exclusions no notebook term uses)."""
    entries = glossary_entries(glossary)
    excluded = exclusions(excluded_path)
    used: set[str] = set()
    missing: dict[str, Term] = {}
    for term in notebook_terms(notebooks):
        f = forms(term.text)
        hit = f & set(excluded)
        used |= hit
        if f & entries or hit:
            continue
        missing.setdefault(norm(term.text), term)
    stale = sorted(set(excluded) - used)
    return list(missing.values()), stale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/ch0*.ipynb, notebooks/appendix-*.ipynb")
    ap.add_argument("--glossary", type=Path, default=GLOSSARY)
    ap.add_argument("--exclusions", type=Path, default=EXCLUSIONS)
    ap.add_argument("--list", action="store_true", help="print every term found (kind, notebook, cell, term) and exit")
    args = ap.parse_args(argv)
    notebooks = args.notebooks or default_notebooks()
    if args.list:
        for t in notebook_terms(notebooks):
            print(f"{t.kind}\t{t.notebook}\t{t.cell}\t{t.text}")
        return 0
    missing, stale = check(notebooks, args.glossary, args.exclusions)
    for t in missing:
        print(f"missing from {args.glossary.name}: {t.text!r} ({t.kind}, first in {t.notebook} cell {t.cell})")
    for s in stale:
        print(f"stale exclusion in {args.exclusions.name}: {s!r} (no notebook term uses it)")
    n_terms = len({norm(t.text) for t in notebook_terms(notebooks)})
    ok = not missing and not stale
    print(f"glossary check: {n_terms} distinct terms in {len(notebooks)} notebooks, "
          f"{len(missing)} missing, {len(stale)} stale exclusions{'' if ok else ' -- FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
