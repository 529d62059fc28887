"""Tests of scripts/check_notebooks.py: the check of the committed notebooks passes on a good
notebook and fails on each planted defect, naming it. (The test command runs the check itself on
the committed notebooks, as its own phase.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import check_notebooks  # noqa: E402

SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><title>a figure</title></svg>'


def good_notebook() -> nbformat.NotebookNode:
    """Executed, clean, with one figure."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A lesson\nSome prose that mentions /tmp/ is fine in markdown."),
        nbformat.v4.new_code_cell(
            'println!("{}", x.show());',
            execution_count=1,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="tensor([[1, 2],\n        [3, 4]])\n")],
        ),
        nbformat.v4.new_code_cell(
            'llm_from_scratch::diagram("ch01-three-stages")?',
            execution_count=2,
            outputs=[nbformat.v4.new_output("display_data", data={"image/svg+xml": SVG})],
        ),
        nbformat.v4.new_code_cell(
            'println!("saved to {}", "runs/spam/model.safetensors");',
            execution_count=3,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="saved to ~/runs/spam and https://example.org/tmp/x\n")],
        ),
    ]
    return nb


def problems_of(nb: nbformat.NotebookNode, tmp_path: Path, name: str = "lesson.ipynb") -> list[str]:
    path = tmp_path / name
    nbformat.write(nb, path)
    return check_notebooks.notebook_problems(path)


def test_good_notebook_passes(tmp_path):
    assert problems_of(good_notebook(), tmp_path) == []


@pytest.mark.parametrize(
    "plant, expected",
    [
        (lambda nb: nb.cells[1].update(execution_count=None), "never executed"),
        (lambda nb: nb.cells[1].update(source="  \n"), "an empty code cell"),
        (
            lambda nb: nb.cells[1].outputs.append(
                nbformat.v4.new_output("error", ename="Error", evalue="mismatched types", traceback=[])
            ),
            "error output: mismatched types",
        ),
        (
            lambda nb: nb.cells[1].outputs.append(
                nbformat.v4.new_output("stream", name="stderr", text="thread 'main' panicked at src/lib.rs:1:1:\nboom\n")
            ),
            "panic",
        ),
        (
            lambda nb: nb.cells[3].outputs[0].update(text="saved to /home/learner/runs/spam\n"),
            "a path of the machine that ran it ('/home/learner')",
        ),
        (
            lambda nb: nb.cells[3].outputs[0].update(text="read /tmp/llm-from-scratch-ch06/train.csv\n"),
            "('/tmp')",
        ),
        (lambda nb: nb.cells[3].outputs[0].update(text="data in /root/.cache/data\n"), "('/root')"),
        (
            lambda nb: nb.cells[1].outputs[0].update(text="[[1, 2],\n [3, 4]]\nTensor[[2, 2], Int64]\n"),
            "a tch tensor trailer 'Tensor[[2, 2], Int64]'",
        ),
        (
            lambda nb: nb.cells[2].outputs.__setitem__(
                0, nbformat.v4.new_output("execute_result", data={"text/plain": 'Svg("<svg xmlns=...")'}, execution_count=2)
            ),
            "a figure shown as text",
        ),
    ],
    ids=["unexecuted", "empty", "error", "panic", "home", "tmp", "root", "trailer", "figure-as-text"],
)
def test_planted_defect_fails(tmp_path, plant, expected):
    nb = good_notebook()
    plant(nb)
    problems = problems_of(nb, tmp_path)
    assert any(expected in p for p in problems), problems


def test_a_chapter_needs_its_figures(tmp_path):
    # ch04's notebook must show at least MIN_FIGURES["ch04"] figures; the good notebook has one.
    assert check_notebooks.MIN_FIGURES["ch04"] > 1
    problems = problems_of(good_notebook(), tmp_path, "ch04-gpt-model.ipynb")
    assert problems == [f"ch04-gpt-model.ipynb: 1 figure(s) in its outputs, its chapter needs at least {check_notebooks.MIN_FIGURES['ch04']}"]
    # The same name in another folder (a translated edition) needs the same figures.
    (tmp_path / "zh").mkdir()
    assert problems_of(good_notebook(), tmp_path / "zh", "ch04-gpt-model.ipynb") == problems


def test_command_line_fails_on_a_bad_notebook_and_names_it(tmp_path):
    nb = good_notebook()
    nb.cells[1].outputs[0]["text"] = "Tensor[[2], Float]\n"
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nb, bad)
    good = tmp_path / "good.ipynb"
    nbformat.write(good_notebook(), good)
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "check_notebooks.py"), str(good), str(bad)], capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAILED bad.ipynb: cell 1" in run.stdout
    assert run.stdout.strip().splitlines()[-1] == "notebook check: 1 passed, 1 failed"

