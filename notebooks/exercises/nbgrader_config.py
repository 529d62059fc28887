"""nbgrader's configuration of the exercise notebooks (this folder is the course directory).

Instructor flow: chapters/INSTRUCTORS.md. Run nbgrader from this folder, with the project's
environment (`source scripts/env.sh`):

    nbgrader generate_assignment ch02     # source/ch02 -> release/ch02 (solutions removed)
    nbgrader autograde ch02               # submitted/<student>/ch02 -> autograded/..., grades
    nbgrader generate_feedback ch02       # autograded/... -> feedback/...

The notebooks run on the project's Rust kernel (evcxr, kernelspec `llm-from-scratch`, language
`rust`): solution regions are marked with Rust comments and replaced by a `todo!()` that compiles
wherever an expression of any type is expected; autograding runs them with `RustExecute`
(scripts/nbgrader_rust.py), which turns every failure evcxr reports as text (a panic, an `Err`
from `?`, an `Err` value) into an error the grader counts.
"""

import os
import sys
from pathlib import Path

# The checkout whose crate and scripts grade the notebooks: this folder's grandparent, or
# LLM_FS_REPO when the course folder is a copy elsewhere (the tests do that).
repo = Path(os.environ.get("LLM_FS_REPO") or Path(__file__).resolve().parents[2])
sys.path.insert(0, str(repo / "scripts"))

from nbconvert.preprocessors import ClearMetadataPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)
from nbgrader_rust import RustExecute  # noqa: E402

c = get_config()  # noqa: F821 (defined by the config loader)

c.CourseDirectory.course_id = "llm-from-scratch"
c.CourseDirectory.root = str(Path(__file__).resolve().parent)

# Solution regions, in Rust comments; the stub is a `todo!()`, which type-checks as any type, so a
# solution region is the body of a function (or block) whose type is spelled out.
c.ClearSolutions.begin_solution_delimeter = "// BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "// END SOLUTION"
c.ClearSolutions.code_stub = {"rust": '// YOUR CODE HERE\ntodo!("your answer")'}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Executing a notebook: the first `:dep` compiles the crate in the kernel's build folder (a few
# seconds when the folder is warm, minutes when cold), so cells get generous time.
c.Execute.timeout = 1200
c.Execute.startup_timeout = 300
c.Execute.kernel_name = "llm-from-scratch"

# nbgrader's autograde steps, with the Rust executor in place of `Execute`.
c.Autograde.autograde_preprocessors = [
    RustExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
