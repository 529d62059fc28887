"""Tests of scripts/zh_notebooks.py: the Chinese notebooks (notebooks/zh/) are in sync with the
English ones in the repository, and each planted drift (changed code, a stale stamp, a missing
notebook, an untranslated cell, a wrong `:dep` path, ...) fails the check, naming the notebook and
the cell. The drifts are planted in temporary copies of chapter 1's two notebooks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import run_notebooks  # noqa: E402
import zh_notebooks  # noqa: E402

NAME = "ch01-understanding-llms.ipynb"


def check(en: Path, zh: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "zh_notebooks.py"), "check", "--en", str(en), "--zh", str(zh)],
        capture_output=True, text=True,
    )


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def pair(tmp_path):
    """Copies of chapter 1's English and Chinese notebooks, as after `build --execute`: the
    Chinese one built from the English one and stamped as a run of its code (its execution counts
    and outputs are those committed)."""
    en, zh = tmp_path / "notebooks", tmp_path / "notebooks" / "zh"
    zh.mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / NAME, en / NAME)
    shutil.copy(REPO / "notebooks" / "zh" / NAME, zh / NAME)
    assert zh_notebooks.build_one(en / NAME, zh / NAME) == [], "chapter 1 is fully translated"
    nb = read(zh / NAME)
    run_notebooks.stamp_executed(nb)
    nb["metadata"]["llm_from_scratch"]["llm_quick"] = None  # chapter 1 runs without LLM_QUICK
    zh_notebooks.write(zh / NAME, nb)
    return en, zh


def first(nb: dict, kind: str, skip: int = 0) -> dict:
    return [c for c in nb["cells"] if c["cell_type"] == kind][skip]


def test_the_repository_is_in_sync():
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "zh_notebooks.py"), "check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    n = len(zh_notebooks.english_notebooks())
    assert n == 10, "seven chapters and three appendices"
    assert run.stdout.strip().splitlines()[-1] == f"zh check: {n} notebook(s) in sync, 0 with problems"


def test_the_planted_pair_passes(pair):
    run = check(*pair)
    assert run.returncode == 0, run.stdout
    assert run.stdout.strip() == "zh check: 1 notebook(s) in sync, 0 with problems"


def plant_code_change(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    cell = first(nb, "code", 1)
    cell["source"] = cell["source"] + ["\n// changed in the Chinese copy only"]
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: cell {cell['id']}: code differs from the English cell"


def plant_english_code_change(en: Path, zh: Path) -> str:
    # The English code changed (and was re-executed): the Chinese copy is behind.
    nb = read(en / NAME)
    cell = first(nb, "code", 1)
    cell["source"] = cell["source"] + ["\n// a new line in English"]
    zh_notebooks.write(en / NAME, nb)
    return f"zh/{NAME}: cell {cell['id']}: code differs from the English cell"


def plant_stale_stamp(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    nb["metadata"]["llm_from_scratch"]["executed_code_sha256"] = "0" * 64
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: the outputs are of a run of other code (stale stamp)"


def plant_quick_mode(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    nb["metadata"]["llm_from_scratch"]["llm_quick"] = "1"
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: executed with LLM_QUICK=1, its English notebook's mode is LLM_QUICK=unset"


def plant_no_stamp(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    del nb["metadata"]["llm_from_scratch"]
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: no stamp of an executed run"


def plant_missing(en: Path, zh: Path) -> str:
    (zh / NAME).unlink()
    return f"{NAME}: no Chinese notebook for {NAME}"


def plant_untranslated(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    cell = first(nb, "markdown", 2)
    cell["metadata"]["zh"] = {"untranslated": True}
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: cell {cell['id']}: untranslated"


def plant_dep_path(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    dep = nb["cells"][zh_notebooks.dep_cell_index(nb)]
    zh_notebooks.set_source(dep, zh_notebooks.source(dep).replace('path = "../.."', 'path = ".."'))
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: cell {dep['id']}: the :dep cell must name the crate with path = \"../..\""


def plant_dep_features(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    dep = nb["cells"][zh_notebooks.dep_cell_index(nb)]
    zh_notebooks.set_source(dep, zh_notebooks.source(dep).replace("default-features = false", "default-features = true"))
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: cell {dep['id']}: the :dep cell differs from the English one beyond its path"


def plant_order(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    nb["cells"][1], nb["cells"][2] = nb["cells"][2], nb["cells"][1]
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: cell order differs from the English notebook from position 1"


def plant_execution_order(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    a, b = first(nb, "code", 1), first(nb, "code", 2)
    a["execution_count"], b["execution_count"] = b["execution_count"], a["execution_count"]
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: cell {a['id']}: execution count 3, expected 2"


def plant_error_output(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    cell = first(nb, "code", 1)
    cell["outputs"].append({"output_type": "error", "ename": "Error", "evalue": "mismatched types", "traceback": []})
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: cell {cell['id']}: an error output"


def plant_slide_type(en: Path, zh: Path) -> str:
    nb = read(zh / NAME)
    cell = first(nb, "markdown", 1)
    cell["metadata"]["slideshow"] = {"slide_type": "skip"}
    zh_notebooks.write(zh / NAME, nb)
    return f"zh/{NAME}: cell {cell['id']}: cell metadata differ"


def plant_stale_english_stamp(en: Path, zh: Path) -> str:
    # An English notebook that has a stamp must match it too.
    nb = read(en / NAME)
    nb["metadata"]["llm_from_scratch"] = {"executed_code_sha256": "0" * 64, "llm_quick": None}
    zh_notebooks.write(en / NAME, nb)
    return f"{NAME}: the outputs are of a run of other code (stale stamp): re-execute it"


@pytest.mark.parametrize(
    "plant",
    [plant_code_change, plant_english_code_change, plant_stale_stamp, plant_quick_mode, plant_no_stamp, plant_missing, plant_untranslated,
     plant_dep_path, plant_dep_features, plant_order, plant_execution_order, plant_error_output, plant_slide_type,
     plant_stale_english_stamp],
    ids=lambda f: f.__name__.removeprefix("plant_"),
)
def test_a_planted_drift_fails_the_check(pair, plant):
    expected = plant(*pair)
    run = check(*pair)
    assert run.returncode == 1, run.stdout
    failed = [ln for ln in run.stdout.splitlines() if ln.startswith("FAILED ")]
    assert any(expected in ln for ln in failed), f"expected {expected!r} among:\n{run.stdout}"
    assert run.stdout.strip().splitlines()[-1] == "zh check: 0 notebook(s) in sync, 1 with problems"


def test_build_takes_code_from_english_and_flags_untranslated_cells(pair, capsys):
    en, zh = pair
    nb = read(en / NAME)
    code = first(nb, "code", 1)
    code["source"] = ["let answer = 42;"]
    md = first(nb, "markdown", 1)
    zh_text = zh_notebooks.source(next(c for c in read(zh / NAME)["cells"] if c["id"] == md["id"]))
    gone = first(nb, "markdown", 3)
    nb["cells"].remove(gone)
    new = {"cell_type": "markdown", "id": "new-english-cell", "metadata": {}, "source": ["A new English paragraph."]}
    nb["cells"].insert(3, new)
    zh_notebooks.write(en / NAME, nb)

    assert zh_notebooks.build([NAME], False, en, zh) == 0
    out = capsys.readouterr().out
    assert f"{NAME}: cell new-english-cell: untranslated (copied in English)" in out, out
    assert f"{NAME}: cell {gone['id']}: dropped (its English cell is gone)" in out, out

    built = read(zh / NAME)
    assert [c["id"] for c in built["cells"]] == [c["id"] for c in nb["cells"]], "the English cells, in order"
    cells = {c["id"]: c for c in built["cells"]}
    assert zh_notebooks.source(cells[code["id"]]) == "let answer = 42;", "code comes from English"
    assert zh_notebooks.source(cells[md["id"]]) == zh_text, "markdown stays Chinese"
    assert cells["new-english-cell"]["metadata"]["zh"] == {"untranslated": True}
    # The code changed, so the Chinese outputs are no run of it: the stamp is gone until executed.
    assert "llm_from_scratch" not in built["metadata"]
    run = check(en, zh)
    assert run.returncode == 1
    assert f"FAILED zh/{NAME}: cell new-english-cell: untranslated" in run.stdout, run.stdout
    assert f"FAILED zh/{NAME}: no stamp of an executed run" in run.stdout, run.stdout
    # Built again after the code was executed (stamped), the Chinese outputs and stamp are kept.
    run_notebooks.stamp_executed(built)
    built["metadata"]["llm_from_scratch"]["llm_quick"] = None
    zh_notebooks.write(zh / NAME, built)
    zh_notebooks.build([NAME], False, en, zh)
    assert read(zh / NAME)["metadata"]["llm_from_scratch"] == built["metadata"]["llm_from_scratch"]


def test_the_stamp_is_the_hash_of_the_code_cells():
    nb = {"metadata": {}, "cells": [
        {"cell_type": "markdown", "source": "# a title"},
        {"cell_type": "code", "source": ["let x = 1;\n", "x"]},
        {"cell_type": "code", "source": "x + 1"},
    ]}
    run_notebooks.stamp_executed(nb)
    stamp = nb["metadata"]["llm_from_scratch"]
    assert stamp["executed_code_sha256"] == run_notebooks.code_sha256(["let x = 1;\nx", "x + 1"])
    assert stamp["executed_code_sha256"] != run_notebooks.code_sha256(["let x = 1;\nx", "x + 2"]), "any code change changes it"
    assert stamp["executed_code_sha256"] != run_notebooks.code_sha256(["let x = 1;\nxx + 1"]), "cell boundaries count"
