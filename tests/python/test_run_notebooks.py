"""Tests of scripts/run_notebooks.py: the notebook runner must fail on every kind of failure.

The unit tests judge synthetic cell outputs; the kernel tests execute small notebooks with the
project's evcxr kernel (a few seconds each: no crate is compiled).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import run_notebooks  # noqa: E402

KERNELSPEC = {"name": "llm-from-scratch", "display_name": "Rust (LLM from scratch)", "language": "rust"}


def stream(name: str, text: str) -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def result(text: str) -> dict:
    return {"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}, "execution_count": 1}


def cell(*outputs: dict, tags: list[str] | None = None) -> dict:
    return {"cell_type": "code", "source": "x", "metadata": {"tags": tags or []}, "outputs": list(outputs)}


class TestCellProblems:
    def test_clean_cell_passes(self):
        assert run_notebooks.cell_problems(cell(stream("stdout", "hello\n"), result("42"))) == []

    def test_error_output_fails(self):
        err = {"output_type": "error", "ename": "Error", "evalue": "mismatched types", "traceback": []}
        (p,) = run_notebooks.cell_problems(cell(err))
        assert "mismatched types" in p

    def test_panic_split_over_stderr_outputs_fails(self):
        # evcxr sends a panic as many small stderr outputs.
        c = cell(stream("stderr", "\n"), stream("stderr", "thread '<unnamed>' panicked at src/lib.rs:3:1:\n"),
                 stream("stderr", "index out of bounds\n"))
        (p,) = run_notebooks.cell_problems(c)
        assert p.startswith("panic:") and "index out of bounds" in p

    def test_panic_on_stdout_fails(self):
        assert run_notebooks.cell_problems(cell(stream("stdout", "x panicked at a.rs:1:1:\nboom\n")))

    def test_question_mark_err_on_stderr_fails(self):
        (p,) = run_notebooks.cell_problems(cell(stream("stderr", "checksum mismatch\n")))
        assert "checksum mismatch" in p

    def test_download_progress_on_stderr_is_not_an_error(self):
        progress = stream("stderr", "downloading openai-community/gpt2/config.json from https://huggingface.co/x/config.json\n")
        assert run_notebooks.cell_problems(cell(progress)) == []
        (p,) = run_notebooks.cell_problems(cell(progress, stream("stderr", "Error: no network\n")))
        assert "no network" in p

    def test_err_value_fails(self):
        (p,) = run_notebooks.cell_problems(cell(result('Err("bad")')))
        assert "Err" in p

    def test_allow_error_tag_accepts_stderr_and_err_values_but_not_panics(self):
        ok = cell(stream("stderr", "expected error\n"), result('Err("shown on purpose")'), tags=["allow-error"])
        assert run_notebooks.cell_problems(ok) == []
        bad = cell(stream("stderr", "thread 'x' panicked at a.rs:1:1:\nboom\n"), tags=["allow-error"])
        assert run_notebooks.cell_problems(bad)

    def test_allow_panic_tag_accepts_a_panic_but_not_an_error_output(self):
        panic = stream("stderr", "thread 'x' panicked at a.rs:1:1:\nboom\n")
        assert run_notebooks.cell_problems(cell(panic, tags=["allow-panic"])) == []
        assert run_notebooks.cell_problems(cell(panic))
        error = {"output_type": "error", "ename": "Error", "evalue": "compile error", "traceback": []}
        assert run_notebooks.cell_problems(cell(error, tags=["allow-panic"]))

    def test_order_puts_chapters_before_appendices(self):
        names = ["appendix-a-x.ipynb", "ch02-y.ipynb", "ch01-z.ipynb", "appendix-d.ipynb"]
        got = [p.name for p in run_notebooks.notebook_order([Path(n) for n in names])]
        assert got == ["ch01-z.ipynb", "ch02-y.ipynb", "appendix-a-x.ipynb", "appendix-d.ipynb"]


def write_notebook(path: Path, *cells: str, tags: dict[int, list[str]] | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    for i, t in (tags or {}).items():
        nb.cells[i].metadata["tags"] = t
    nbformat.write(nb, path)
    return path


def run(tmp_path: Path, *notebooks: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_notebooks.py"), "--timeout", "120", "--out", str(tmp_path / "out"),
         *map(str, notebooks)],
        capture_output=True, text=True, timeout=600,
    )


@pytest.mark.kernel
class TestWithKernel:
    def test_clean_notebook_passes_and_copy_is_written(self, tmp_path):
        nb = write_notebook(tmp_path / "good.ipynb", 'println!("hi {}", 40 + 2);', "let x = 3;\nx * 2")
        r = run(tmp_path, nb)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "notebooks: 1 passed, 0 failed" in r.stdout
        executed = nbformat.read(tmp_path / "out" / "good.ipynb", as_version=4)
        assert "hi 42" in executed.cells[0].outputs[0]["text"]

    def test_update_runs_in_the_notebooks_folder_and_stamps_the_code(self, tmp_path):
        # The kernel starts in the notebook's own folder, as in Jupyter (notebooks/zh/.llm-lang is
        # read from there), and --update records the hash of the code it ran.
        (tmp_path / "zh").mkdir()
        nb = write_notebook(tmp_path / "zh" / "here.ipynb", 'println!("{}", std::env::current_dir().unwrap().display());')
        r = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "run_notebooks.py"), "--update", "--out", str(tmp_path / "out"), str(nb)],
            capture_output=True, text=True, timeout=600, env=dict(os.environ, LLM_QUICK="1"),
        )
        assert r.returncode == 0, r.stdout + r.stderr
        executed = nbformat.read(nb, as_version=4)
        assert executed.cells[0].outputs[0]["text"].strip() == str((tmp_path / "zh").resolve()), executed.cells[0].outputs
        stamp = executed.metadata["llm_from_scratch"]
        assert stamp == {"executed_code_sha256": run_notebooks.code_sha256([executed.cells[0].source]), "llm_quick": "1"}

    def test_panicking_cell_fails_naming_notebook_and_cell(self, tmp_path):
        nb = write_notebook(tmp_path / "panics.ipynb", 'println!("before");', 'let v: Vec<u8> = vec![];\nv[3]',
                            'println!("after");')
        r = run(tmp_path, nb)
        assert r.returncode == 1, r.stdout
        assert "FAILED panics.ipynb: cell 1" in r.stdout and "panicked at" in r.stdout, r.stdout
        assert "notebooks: 0 passed, 1 failed" in r.stdout

    def test_cell_returning_err_through_question_mark_fails(self, tmp_path):
        nb = write_notebook(tmp_path / "err.ipynb",
                            'fn load() -> Result<u32, String> { Err("file missing: data.txt".to_string()) }',
                            "let n = load()?;\nn")
        r = run(tmp_path, nb)
        assert r.returncode == 1, r.stdout
        assert "FAILED err.ipynb: cell 1" in r.stdout and "file missing: data.txt" in r.stdout, r.stdout

    def test_cell_whose_value_is_err_fails(self, tmp_path):
        nb = write_notebook(tmp_path / "errvalue.ipynb", 'let r: Result<u32, String> = Err("nope".into());\nr')
        r = run(tmp_path, nb)
        assert r.returncode == 1 and "FAILED errvalue.ipynb: cell 0" in r.stdout, r.stdout

    def test_compile_error_fails(self, tmp_path):
        nb = write_notebook(tmp_path / "compile.ipynb", 'let z: i32 = "text";')
        r = run(tmp_path, nb)
        assert r.returncode == 1 and "FAILED compile.ipynb: cell 0" in r.stdout, r.stdout

    def test_timeout_fails(self, tmp_path):
        nb = write_notebook(tmp_path / "slow.ipynb", "std::thread::sleep(std::time::Duration::from_secs(60));")
        r = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "run_notebooks.py"), "--timeout", "15", "--out", str(tmp_path / "o"),
             str(nb)], capture_output=True, text=True, timeout=300)
        assert r.returncode == 1 and "FAILED slow.ipynb: cell 0" in r.stdout and "timed out" in r.stdout, r.stdout

    def test_outputs_the_committed_check_rejects_fail_the_run(self, tmp_path):
        # A tch tensor printed raw (its trailer line), and a chapter notebook without its figures.
        nb = write_notebook(tmp_path / "trailer.ipynb", 'println!("[1., 2.]\nTensor[[2], Float]");')
        r = run(tmp_path, nb)
        assert r.returncode == 1 and "FAILED trailer.ipynb: cell 0" in r.stdout and "tensor trailer" in r.stdout, r.stdout
        nb = write_notebook(tmp_path / "ch04-gpt-model.ipynb", 'println!("no figure");')
        r = run(tmp_path, nb)
        assert r.returncode == 1 and "0 figure(s) in its outputs, its chapter needs at least" in r.stdout, r.stdout

    def test_allow_error_tag_lets_a_deliberate_error_through(self, tmp_path):
        nb = write_notebook(tmp_path / "shown.ipynb", 'let r: Result<u32, String> = Err("shown".into());\nr',
                            tags={0: ["allow-error"]})
        r = run(tmp_path, nb)
        assert r.returncode == 0, r.stdout

@pytest.mark.kernel
def test_a_trained_model_survives_a_panicking_cell_and_an_err(tmp_path):
    """Issue 13: evcxr keeps earlier variables when a cell panics or returns an `Err` (its
    `:preserve_vars_on_panic`, on by default): train a tiny model, panic, fail with `?`, use it.
    Compiles the crate in the kernel's build folder (seconds when it is warm)."""
    dep = ':dep llm-from-scratch = { path = "%s", default-features = false }' % REPO
    train = """use llm_from_scratch::{ch04, ch05, tch};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};
let cfg = ch04::GptConfig { vocab_size: 50, context_length: 8, emb_dim: 16, n_heads: 2, n_layers: 1, ..ch04::GptConfig::tiny() };
let vs = nn::VarStore::new(Device::Cpu);
let model = ch04::GptModel::new(&vs.root(), &cfg);
let mut optimizer = ch05::AdamW::new(&vs, 1e-2, 0.0);
let ids = Tensor::randint(50, [2, 8], (Kind::Int64, Device::Cpu));
let loss = model.forward_t(&ids, true).view([-1, 50]).cross_entropy_for_logits(&ids.view([-1]));
optimizer.backward_step(&loss);
let trained = model.forward_t(&ids, false).sum(Kind::Float).double_value(&[]);"""
    use = 'let again = model.forward_t(&ids, false).sum(Kind::Float).double_value(&[]);\nprintln!("{} the same: {}", %s, again == trained);'
    nb = write_notebook(tmp_path / "survives.ipynb", dep, train, "let v: Vec<u8> = vec![];\nv[3]", use % '"after the panic"',
                        'let n: u32 = "x".parse::<u32>().map_err(|e| e.to_string())?;\nn', use % '"after the error"',
                        tags={2: ["allow-panic"], 4: ["allow-error"]})
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run_notebooks.py"), "--timeout", "900", "--out", str(tmp_path / "out"), str(nb)],
        capture_output=True, text=True, timeout=1200,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    executed = nbformat.read(tmp_path / "out" / "survives.ipynb", as_version=4)
    assert "panicked at" in "".join(o.get("text", "") for o in executed.cells[2].outputs), "the panic is shown"
    assert executed.cells[3].outputs[0]["text"] == "after the panic the same: true\n"
    assert executed.cells[5].outputs[0]["text"] == "after the error the same: true\n"
