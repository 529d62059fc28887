#!/usr/bin/env python3
"""Build and check the Chinese notebooks (notebooks/zh/), so that their code never drifts from the
English notebooks'.

Every chapter and appendix notebook (notebooks/ch*.ipynb, notebooks/appendix-*.ipynb) has a Chinese
twin of the same file name in notebooks/zh/. The twin is the English notebook with Chinese markdown:
code cells, cell order, cell ids, cell metadata and notebook metadata are the English ones; only
the markdown cells' sources are Chinese, and the outputs are those of running the Chinese notebook
(its figures are drawn in Chinese: notebooks/zh/.llm-lang). The one allowed difference in code: the
first `:dep` cell names the crate one folder further up (`path = ".."` in notebooks/, `path =
"../.."` in notebooks/zh/).

Usage:
  zh_notebooks.py build [--execute [--timeout S]] [NAME ...]
      For each English notebook (default: all; a NAME is a file name or its start, e.g. ch05),
      write notebooks/zh/<name>.ipynb from the English notebook and the existing Chinese one:
      each markdown cell takes the Chinese source of the cell with the same id; an English
      markdown cell without a Chinese twin is copied in English, flagged (cell metadata
      `"zh": {"untranslated": true}`) and listed; a Chinese cell whose English twin is gone is
      dropped and listed. Code cells keep the Chinese notebook's outputs when it was executed on
      this very code (its stamp matches), else they take the English outputs (and no stamp).
      --execute then runs each Chinese notebook with scripts/run_notebooks.py --update, in the
      mode its English notebook was run in (QUICK below), without LLM_DATA_DIR (so outputs name no
      folder of this machine) and without LLM_LANG (the figures' language comes from
      notebooks/zh/.llm-lang), and prints the seconds each took.
  zh_notebooks.py check [--zh DIR] [--en DIR]
      Exit 1, one line per problem naming the notebook and the cell id, when a Chinese notebook is
      missing, when its cells (ids, order, kinds), code, cell metadata or notebook metadata differ
      from the English notebook's (beyond the `:dep` path), when a markdown cell is flagged
      untranslated, or when its outputs are not those of an executed run: the stamp
      `metadata.llm_from_scratch.executed_code_sha256` that scripts/run_notebooks.py --update
      writes is missing or is not the hash of the current code cells, the execution counts are
      not 1, 2, 3, ... in order, a cell has an error output, or the stamp's `llm_quick` is not the
      mode of QUICK below. An English notebook with a stamp
      must match it too (the English notebooks executed before the stamp existed have none).
      The last line reads "zh check: N notebook(s) in sync, M with problems".
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_notebooks import STAMP_KEY, code_sha256  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EN_DIR = REPO / "notebooks"
ZH_DIR = EN_DIR / "zh"
EN_DEP_PATH = 'path = ".."'
ZH_DEP_PATH = 'path = "../.."'
UNTRANSLATED = {"untranslated": True}
# The cell metadata key where the runner (nbclient, record_timing) records when a cell ran.
RUN_METADATA = "execution"
# LLM_QUICK for each notebook, as the committed English outputs were run (their "quick mode:"
# lines): chapter 5 in the learner's full mode (the book's numbers), chapters 6-7 and the
# appendices in quick mode, chapters 1-4 (which have no quick mode) without it.
QUICK = {"ch01": None, "ch02": None, "ch03": None, "ch04": None, "ch05": None,
         "ch06": "1", "ch07": "1", "appendix-a": "1", "appendix-d": "1", "appendix-e": "1"}


def english_notebooks(en_dir: Path = EN_DIR) -> list[Path]:
    """The chapter and appendix notebooks (the bonus notebooks have no Chinese edition)."""
    return sorted(p for p in en_dir.glob("*.ipynb") if p.name.startswith(("ch", "appendix-")))


def quick_mode(name: str) -> str | None:
    for prefix, quick in QUICK.items():
        if name.startswith(prefix):
            return quick
    return "1"


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write(path: Path, nb: dict) -> None:
    """The layout nbformat writes (and the committed notebooks have)."""
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(src)


def set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def dep_cell_index(nb: dict) -> int | None:
    """The index of the first code cell that starts with `:dep`."""
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and source(cell).lstrip().startswith(":dep"):
            return i
    return None


def zh_code(en_cell: dict) -> str:
    """The Chinese notebook's source of the English `:dep` cell: the crate one folder further up."""
    return source(en_cell).replace(EN_DEP_PATH, ZH_DEP_PATH, 1)


def stamp(nb: dict) -> str | None:
    return nb.get("metadata", {}).get(STAMP_KEY, {}).get("executed_code_sha256")


def _without_stamp(metadata: dict) -> dict:
    return {k: v for k, v in metadata.items() if k != STAMP_KEY}


def _cell_metadata(metadata: dict) -> dict:
    """A cell's metadata but what a run records (nbclient's timestamps, "execution") and the
    Chinese notebook's own flag ("zh")."""
    return {k: v for k, v in metadata.items() if k not in (RUN_METADATA, "zh")}


def _with_run_metadata(en_metadata: dict, zh_metadata: dict) -> dict:
    """The English cell's metadata with the Chinese run's timestamps."""
    out = _cell_metadata(en_metadata)
    if RUN_METADATA in zh_metadata:
        out[RUN_METADATA] = zh_metadata[RUN_METADATA]
    return out


# ---------------------------------------------------------------------------------------- build


def build_one(en_path: Path, zh_path: Path) -> list[str]:
    """Write the Chinese notebook of one English notebook; returns what needs a translator."""
    en = read(en_path)
    old = read(zh_path) if zh_path.exists() else {"cells": [], "metadata": {}}
    old_cells = {c.get("id"): c for c in old["cells"]}
    # The Chinese outputs are kept only if they are those of a run of this very code.
    dep = dep_cell_index(en)
    expected_code = [zh_code(c) if i == dep else source(c) for i, c in enumerate(en["cells"]) if c["cell_type"] == "code"]
    keep_outputs = stamp(old) is not None and stamp(old) == code_sha256(expected_code)

    notes: list[str] = []
    cells = []
    for i, en_cell in enumerate(en["cells"]):
        cell = copy.deepcopy(en_cell)
        zh_cell = old_cells.get(en_cell.get("id"))
        if cell["cell_type"] == "code":
            if i == dep:
                set_source(cell, zh_code(en_cell))
            if keep_outputs and zh_cell is not None and zh_cell["cell_type"] == "code":
                cell["outputs"] = zh_cell.get("outputs", [])
                cell["execution_count"] = zh_cell.get("execution_count")
                cell["metadata"] = _with_run_metadata(cell.get("metadata", {}), zh_cell.get("metadata", {}))
        elif cell["cell_type"] == "markdown":
            translated = (
                zh_cell is not None
                and zh_cell["cell_type"] == "markdown"
                and not zh_cell.get("metadata", {}).get("zh", {}).get("untranslated")
            )
            if translated:
                cell["source"] = zh_cell["source"]
            else:
                cell.setdefault("metadata", {})["zh"] = dict(UNTRANSLATED)
                notes.append(f"{zh_path.name}: cell {cell.get('id')}: untranslated (copied in English)")
        cells.append(cell)
    en_ids = {c.get("id") for c in en["cells"]}
    for c in old["cells"]:
        if c.get("id") not in en_ids and c["cell_type"] == "markdown":
            notes.append(f"{zh_path.name}: cell {c.get('id')}: dropped (its English cell is gone): {source(c)[:60]!r}")
    nb = copy.deepcopy(en)
    nb["cells"] = cells
    nb["metadata"] = _without_stamp(en.get("metadata", {}))
    if keep_outputs:
        nb["metadata"][STAMP_KEY] = old["metadata"][STAMP_KEY]
    zh_path.parent.mkdir(parents=True, exist_ok=True)
    write(zh_path, nb)
    return notes


def execute(zh_path: Path, timeout: int | None = None) -> tuple[bool, float]:
    """Run one Chinese notebook with the runner (--update), in its English notebook's mode."""
    env = dict(os.environ)
    env.pop("LLM_DATA_DIR", None)  # outputs must name no folder of this machine
    env.pop("LLM_QUICK", None)
    env.pop("LLM_LANG", None)  # the figures' language comes from notebooks/zh/.llm-lang
    quick = quick_mode(zh_path.name)
    if quick is not None:
        env["LLM_QUICK"] = quick
    t0 = time.monotonic()
    cmd = [sys.executable, str(REPO / "scripts" / "run_notebooks.py"), "--update", str(zh_path)]
    if timeout is not None:
        cmd[2:2] = ["--timeout", str(timeout)]
    run = subprocess.run(cmd, env=env)
    return run.returncode == 0, time.monotonic() - t0


def select(names: list[str], en_dir: Path) -> list[Path]:
    all_paths = english_notebooks(en_dir)
    if not names:
        return all_paths
    chosen = []
    for name in names:
        hits = [p for p in all_paths if p.name.startswith(Path(name).name.removesuffix(".ipynb"))]
        if not hits:
            raise SystemExit(f"zh build: no English chapter or appendix notebook named {name!r}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def build(names: list[str], run: bool, en_dir: Path = EN_DIR, zh_dir: Path = ZH_DIR, timeout: int | None = None) -> int:
    failed = 0
    for en_path in select(names, en_dir):
        zh_path = zh_dir / en_path.name
        for note in build_one(en_path, zh_path):
            print(note)
        print(f"built  {zh_path.relative_to(REPO) if zh_path.is_relative_to(REPO) else zh_path}", flush=True)
        if run:
            ok, seconds = execute(zh_path, timeout)
            failed += not ok
            print(f"{'executed' if ok else 'FAILED to execute'} {zh_path.name} "
                  f"(LLM_QUICK={quick_mode(zh_path.name) or 'unset'}) in {seconds:.0f} s", flush=True)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------- check


def run_problems(path: Path, nb: dict, required: bool) -> list[str]:
    """Whether the outputs are those of an executed run of the current code."""
    problems = []
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    recorded = stamp(nb)
    if recorded is None:
        if required:
            problems.append(f"{path.name}: no stamp of an executed run (metadata.{STAMP_KEY}.executed_code_sha256): "
                            "run `scripts/zh_notebooks.py build --execute`")
    elif recorded != code_sha256([source(c) for c in code]):
        again = "run `scripts/zh_notebooks.py build --execute`" if required else "re-execute it"
        problems.append(f"{path.name}: the outputs are of a run of other code (stale stamp): {again}")
    if recorded is None and not required:
        return problems
    for n, cell in enumerate(code, start=1):
        if cell.get("execution_count") != n:
            problems.append(f"{path.name}: cell {cell.get('id')}: execution count {cell.get('execution_count')}, "
                            f"expected {n} (cells run in order, once)")
            break
    for cell in code:
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            problems.append(f"{path.name}: cell {cell.get('id')}: an error output")
    return problems


def sync_problems(en_path: Path, zh_path: Path) -> list[str]:
    """Every way the Chinese notebook differs from its English twin, one line each."""
    if not zh_path.exists():
        return [f"{zh_path.name}: no Chinese notebook for {en_path.name} (run `scripts/zh_notebooks.py build {en_path.stem}`)"]
    en, zh = read(en_path), read(zh_path)
    name = f"zh/{zh_path.name}"
    problems = []
    en_ids = [c.get("id") for c in en["cells"]]
    zh_ids = [c.get("id") for c in zh["cells"]]
    if en_ids != zh_ids:
        missing = [i for i in en_ids if i not in zh_ids]
        extra = [i for i in zh_ids if i not in en_ids]
        if missing:
            problems.append(f"{name}: cells missing (ids of the English notebook): {', '.join(map(str, missing))}")
        if extra:
            problems.append(f"{name}: cells the English notebook does not have: {', '.join(map(str, extra))}")
        if not missing and not extra:
            first = next(i for i, (a, b) in enumerate(zip(en_ids, zh_ids)) if a != b)
            problems.append(f"{name}: cell order differs from the English notebook from position {first} (cell {zh_ids[first]})")
    zh_cells = {c.get("id"): c for c in zh["cells"]}
    dep = dep_cell_index(en)
    for i, en_cell in enumerate(en["cells"]):
        cid = en_cell.get("id")
        zh_cell = zh_cells.get(cid)
        if zh_cell is None:
            continue
        where = f"{name}: cell {cid}"
        if zh_cell["cell_type"] != en_cell["cell_type"]:
            problems.append(f"{where}: a {zh_cell['cell_type']} cell, the English one is {en_cell['cell_type']}")
            continue
        flag = zh_cell.get("metadata", {}).get("zh")
        if _cell_metadata(zh_cell.get("metadata", {})) != _cell_metadata(en_cell.get("metadata", {})):
            problems.append(f"{where}: cell metadata differ from the English cell's")
        if en_cell["cell_type"] == "markdown":
            if flag and flag.get("untranslated"):
                problems.append(f"{where}: untranslated (flagged by build; translate it and remove the flag)")
            continue
        if flag is not None:
            problems.append(f"{where}: a code cell with a \"zh\" metadata entry")
        if i == dep:
            if ZH_DEP_PATH not in source(zh_cell):
                problems.append(f"{where}: the :dep cell must name the crate with {ZH_DEP_PATH} "
                                f"(the notebook is one folder deeper than the English one)")
            elif source(zh_cell) != zh_code(en_cell):
                problems.append(f"{where}: the :dep cell differs from the English one beyond its path")
        elif source(zh_cell) != source(en_cell):
            problems.append(f"{where}: code differs from the English cell (`scripts/zh_notebooks.py build {en_path.stem}` takes it from English)")
    if _without_stamp(zh.get("metadata", {})) != _without_stamp(en.get("metadata", {})):
        problems.append(f"{name}: notebook metadata differ from the English notebook's")
    ran = zh.get("metadata", {}).get(STAMP_KEY, {})
    if stamp(zh) is not None and ran.get("llm_quick") != quick_mode(zh_path.name):
        problems.append(f"{name}: executed with LLM_QUICK={ran.get('llm_quick') or 'unset'}, its English notebook's "
                        f"mode is LLM_QUICK={quick_mode(zh_path.name) or 'unset'} (`build --execute` runs it so)")
    problems.extend(f"zh/{p}" for p in run_problems(zh_path, zh, required=True))
    problems.extend(run_problems(en_path, en, required=False))
    return problems


def check(en_dir: Path = EN_DIR, zh_dir: Path = ZH_DIR) -> int:
    en_paths = english_notebooks(en_dir)
    if not en_paths:
        print(f"zh check: no English chapter or appendix notebook in {en_dir}")
        return 1
    bad = 0
    for en_path in en_paths:
        problems = sync_problems(en_path, zh_dir / en_path.name)
        bad += bool(problems)
        for p in problems:
            print(f"FAILED {p}")
    strays = [p for p in sorted(zh_dir.glob("*.ipynb")) if not (en_dir / p.name).exists()]
    for stray in strays:
        print(f"FAILED zh/{stray.name}: no English notebook of that name")
    print(f"zh check: {len(en_paths) - bad} notebook(s) in sync, {bad + len(strays)} with problems")
    return 1 if bad or strays else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("build", help="write notebooks/zh/ from the English notebooks and the Chinese markdown")
    b.add_argument("names", nargs="*", help="notebooks (file names or their start, e.g. ch05); default: all")
    b.add_argument("--execute", action="store_true", help="then execute each with scripts/run_notebooks.py --update")
    b.add_argument("--timeout", type=int, help="seconds per cell for the runner (its default: 1800)")
    c = sub.add_parser("check", help="fail when a Chinese notebook drifted from its English twin")
    for p in (b, c):
        p.add_argument("--en", type=Path, default=EN_DIR, help=argparse.SUPPRESS)
        p.add_argument("--zh", type=Path, default=ZH_DIR, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mode == "build":
        return build(args.names, args.execute, args.en, args.zh, args.timeout)
    return check(args.en, args.zh)


if __name__ == "__main__":
    sys.exit(main())
