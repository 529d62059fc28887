"""The instructor flow of chapters/INSTRUCTORS.md, on chapter 2's exercises: nbgrader makes the
student copy from the solution notebook, then grades three submissions with the Rust kernel.

  * every answer right: full marks,
  * one wrong answer (2.3's window count off by one): that exercise's point lost, the others kept,
  * one answer that panics (2.1, the `todo!()` stub left in) and one that returns an `Err` through
    `?` (2.4): zero for those two, full marks for the others, and grading finishes.

evcxr reports a panic and an `Err` only as text with an "ok" reply; the test shows that the
course's executor (scripts/nbgrader_rust.py) makes both count. It runs three kernels in a copy
of the course folder (about a minute each when the kernel's build folder is warm).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
COURSE = REPO / "notebooks" / "exercises"
ASSIGNMENT = "ch02"
NOTEBOOK = "ch02-exercises"
CHECKS = ["ex2_1_check", "ex2_2_check", "ex2_3_check", "ex2_4_check"]
STUB = 'todo!("your answer")'

sys.path.insert(0, str(REPO / "scripts"))
import nbgrader_rust  # noqa: E402



def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, LLM_FS_REPO=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def cells_by_id(nb) -> dict:
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def answer(source: str) -> str:
    """A solution cell's text as a student would hand it in: the solution, without its markers."""
    return "\n".join(ln for ln in source.splitlines() if "BEGIN SOLUTION" not in ln and "END SOLUTION" not in ln)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """Generate the assignment, autograde three submissions; the scores per student and check."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(COURSE / "nbgrader_config.py", course)
    shutil.copytree(COURSE / "source" / ASSIGNMENT, course / "source" / ASSIGNMENT)
    nbgrader(course, "generate_assignment", ASSIGNMENT)

    release = nbformat.read(course / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    solutions = cells_by_id(nbformat.read(course / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4))

    def submit(student: str, answers: dict[str, str]) -> None:
        nb = nbformat.from_dict(release)
        for gid, cell in cells_by_id(nb).items():
            if cell.metadata["nbgrader"]["solution"]:
                cell.source = answers.get(gid, answer(solutions[gid].source))
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{NOTEBOOK}.ipynb")

    submit("right", {})
    windows = answer(solutions["ex2_3_answer"].source)
    submit("wrong", {"ex2_3_answer": windows.replace("(n_tokens - max_length).div_ceil", "(n_tokens - max_length + 1).div_ceil")})
    release_cells = cells_by_id(release)
    bad_train = answer(solutions["ex2_4_answer"].source).replace("train_bpe(text, 1000,", "train_bpe(text, 100,")
    submit("failing", {"ex2_1_answer": release_cells["ex2_1_answer"].source, "ex2_4_answer": bad_train})
    assert "train_bpe(text, 100," in bad_train and "+ 1).div_ceil" in cells_by_id(
        nbformat.read(course / "submitted" / "wrong" / ASSIGNMENT / f"{NOTEBOOK}.ipynb", as_version=4)
    )["ex2_3_answer"].source, "the wrong answers were planted"

    proc = nbgrader(course, "autograde", ASSIGNMENT)
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("right", "wrong", "failing"):
            sub = gb.find_submission_notebook(NOTEBOOK, ASSIGNMENT, student)
            scores[student] = {g.name: (g.score, g.max_score) for g in sub.grades}
    return {"course": course, "release": release_cells, "scores": scores, "log": proc.stderr}


@pytest.mark.kernel
def test_the_student_copy_has_the_stubs_and_no_solution(graded):
    cells = graded["release"]
    answers = [gid for gid, c in cells.items() if c.metadata["nbgrader"]["solution"]]
    assert answers == [c.replace("check", "answer") for c in CHECKS], f"one answer cell per exercise: {answers}"
    for gid in answers:
        source = cells[gid].source
        assert STUB in source, f"{gid}: the stub replaces the solution: {source!r}"
        assert "SOLUTION" not in source, f"{gid}: the markers are gone: {source!r}"
    assert "train_bpe(text, 1000" not in cells["ex2_4_answer"].source, "no solution code is left"
    for gid in CHECKS:
        meta = cells[gid].metadata["nbgrader"]
        assert meta["grade"] and meta["locked"] and meta["points"] == 1, f"{gid}: a locked check worth 1 point: {meta}"


@pytest.mark.kernel
def test_right_answers_get_full_marks(graded):
    assert graded["scores"]["right"] == {gid: (1.0, 1.0) for gid in CHECKS}, graded["log"][-4000:]


@pytest.mark.kernel
def test_a_wrong_answer_loses_its_exercise_only(graded):
    want = {gid: (1.0, 1.0) for gid in CHECKS} | {"ex2_3_check": (0.0, 1.0)}
    assert graded["scores"]["wrong"] == want, graded["log"][-4000:]


@pytest.mark.kernel
def test_a_panic_and_an_err_get_zero_and_grading_goes_on(graded):
    want = {gid: (1.0, 1.0) for gid in CHECKS} | {"ex2_1_check": (0.0, 1.0), "ex2_4_check": (0.0, 1.0)}
    assert graded["scores"]["failing"] == want, graded["log"][-4000:]
    autograded = graded["course"] / "autograded" / "failing" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    cells = cells_by_id(nbformat.read(autograded, as_version=4))
    for gid, why in [("ex2_1_check", "not yet implemented"), ("ex2_4_check", "vocab")]:
        errors = [o for o in cells[gid].outputs if o.output_type == "error"]
        assert errors and errors[0].ename == nbgrader_rust.FAILED, f"{gid}: an ExerciseFailed error: {cells[gid].outputs}"
        assert why in errors[0].evalue, f"{gid}: the error says why ({why!r}): {errors[0].evalue}"


class TestMarkFailure:
    """The executor's judgement on synthetic outputs (what evcxr sends, seen in a real run)."""

    @staticmethod
    def cell(*outputs):
        return nbformat.from_dict({"cell_type": "code", "source": "x", "metadata": {}, "outputs": list(outputs)})

    def test_a_panic_on_stderr_becomes_an_error(self):
        c = self.cell({"output_type": "stream", "name": "stderr", "text": "thread '<unnamed>' (1) panicked at src/lib.rs:1:1:\n✘ Exercise 2.1: hint\n"})
        assert nbgrader_rust.mark_failure(c)
        assert c.outputs[-1].output_type == "error" and "Exercise 2.1" in c.outputs[-1].evalue

    def test_an_err_value_becomes_an_error_placed_before_it(self):
        # nbgrader reads outputs in order and would take a value first as the cell's score.
        c = self.cell({"output_type": "execute_result", "data": {"text/plain": 'Err("bad")'}, "metadata": {}, "execution_count": 1})
        assert nbgrader_rust.mark_failure(c)
        assert [o.output_type for o in c.outputs] == ["error", "execute_result"]

    def test_a_clean_cell_is_left_alone(self):
        c = self.cell({"output_type": "stream", "name": "stdout", "text": "✔ Exercise 2.1: right\n"})
        assert not nbgrader_rust.mark_failure(c) and len(c.outputs) == 1

    def test_the_crate_is_pinned_to_this_checkout(self):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(':dep llm-from-scratch = { path = "../../../..", default-features = false }')])
        nbgrader_rust.pin_crate(nb, Path("/some/clone"))
        assert nb.cells[0].source == ':dep llm-from-scratch = { path = "/some/clone", default-features = false }'


SOURCES = sorted((COURSE / "source").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", SOURCES, ids=[p.parent.name for p in SOURCES])
def test_every_solution_notebook_follows_the_course_conventions(path):
    """Static: the layout nbgrader and the instructor flow rely on (chapters/INSTRUCTORS.md)."""
    assert path.name == f"{path.parent.name}-exercises.ipynb", "source/<id>/<id>-exercises.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "llm-from-scratch" and nb.metadata["kernelspec"]["language"] == "rust"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source == ':dep llm-from-scratch = { path = "../../../..", default-features = false }', code[0].source
    assert "?" in code[1].source, "the setup cell uses `?` (evcxr shows errors, and figures, from then on)"
    meta = [c.metadata.get("nbgrader") for c in nb.cells]
    assert all(meta), "every cell has nbgrader metadata"
    ids = [m["grade_id"] for m in meta]
    assert len(ids) == len(set(ids)), f"grade ids are unique: {ids}"
    checks = 0
    for i, (cell, m) in enumerate(zip(nb.cells, meta)):
        has_markers = "// BEGIN SOLUTION" in cell.source and "// END SOLUTION" in cell.source
        if m["solution"]:
            assert cell.cell_type == "code" and has_markers and not m["grade"], f"{m['grade_id']}: a code cell with the markers"
            statement, check = nb.cells[i - 1], nb.cells[i + 1]
            assert statement.cell_type == "markdown" and statement.metadata["nbgrader"]["locked"], f"{m['grade_id']}: a statement first"
            assert check.metadata["nbgrader"]["grade"], f"{m['grade_id']}: a check after it"
        else:
            assert "SOLUTION" not in cell.source and m["locked"], f"{m['grade_id']}: only answer cells are unlocked or marked"
        if m["grade"]:
            checks += 1
            assert cell.cell_type == "code" and m["points"] > 0 and "check_" in cell.source, f"{m['grade_id']}: calls a check"
            assert m["grade_id"].endswith("_check"), m["grade_id"]
    assert checks >= 4, f"{path.name}: the book's exercises and at least two of the project's ({checks} checks)"


def test_the_runner_and_the_checker_take_the_solution_notebooks():
    import check_notebooks
    import run_notebooks

    assert SOURCES, "the course has solution notebooks"
    defaults = run_notebooks.default_notebooks()
    assert all(p in defaults for p in SOURCES), "`make test` executes every solution notebook"
    assert not any("release" in p.parts for p in defaults), "the student copies are not run"
    assert [check_notebooks.min_figures(p) for p in SOURCES] == [0] * len(SOURCES), "exercise notebooks need not draw"
