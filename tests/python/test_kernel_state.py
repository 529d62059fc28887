"""A cell that panics or returns an error must not cost the learner the variables of earlier cells
(a model trained for minutes): evcxr preserves them (its `preserve_vars_on_panic`, on by default in
0.22). This test trains a tiny model with the library in the project's kernel, runs a panicking
cell and a cell whose `?` returns an error, then uses the model again.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]

TRAIN = """\
:dep llm-from-scratch = {{ path = "{repo}", default-features = false }}
use llm_from_scratch::ch04::{{GptConfig, GptModel}};
use llm_from_scratch::ch05::{{calc_loss_batch, AdamW}};
use llm_from_scratch::tch::{{nn, Device, Kind, Tensor}};
llm_from_scratch::set_seed(123);
let vs = nn::VarStore::new(Device::Cpu);
let model = GptModel::new(&vs.root(), &GptConfig::tiny());
let mut optimizer = AdamW::new(&vs, 1e-3, 0.1);
let input = Tensor::randint(100, [2, 8], (Kind::Int64, Device::Cpu));
let target = input.roll(&[-1], &[1]);
for _ in 0..3 {{
    let loss = calc_loss_batch(&input, &target, &model, Device::Cpu, true);
    optimizer.backward_step(&loss);
}}
let trained = calc_loss_batch(&input, &target, &model, Device::Cpu, false).double_value(&[]);
println!("trained loss {{trained:.6}}");
std::fs::write("{dir}/trained", format!("{{trained}}"))?;"""

# Each failing cell leaves a file before the failure and would leave another after it: the files,
# not the cells' outputs, show where it stopped (evcxr may send a cell's output after the cell
# is reported done, when nbclient no longer records it; see scripts/run_notebooks.py).
PANIC = """\
std::fs::write("{dir}/panic-before", "")?;
let empty: Vec<u8> = Vec::new();
println!("{{}}", empty[3]);
std::fs::write("{dir}/panic-after", "")?;"""
ERR = """\
std::fs::write("{dir}/err-before", "")?;
fn load() -> Result<u32, String> {{ Err("no such file: weights.safetensors".into()) }}
let n = load()?;
std::fs::write("{dir}/err-after", "")?;"""
USE = """\
let again = calc_loss_batch(&input, &target, &model, Device::Cpu, false).double_value(&[]);
println!("model kept: {{}}", again == trained);
std::fs::write("{dir}/{name}", format!("model kept: {{}}", again == trained))?;"""
STEP = """\
optimizer.backward_step(&calc_loss_batch(&input, &target, &model, Device::Cpu, true));
let stepped = calc_loss_batch(&input, &target, &model, Device::Cpu, false).double_value(&[]);
println!("trains on: {{}}", stepped.is_finite() && stepped != trained);
std::fs::write("{dir}/step", format!("trains on: {{}}", stepped.is_finite() && stepped != trained))?;"""


def text(cell) -> str:
    return "".join(o.get("text", "") + o.get("evalue", "") + str(o.get("data", "")) for o in cell.outputs)


@pytest.mark.kernel
def test_variables_survive_a_panicking_cell_and_an_error(tmp_path):
    nb = nbformat.v4.new_notebook()
    d = tmp_path
    cells = (TRAIN.format(repo=REPO, dir=d), PANIC.format(dir=d), USE.format(dir=d, name="use1"), ERR.format(dir=d),
             USE.format(dir=d, name="use2"), STEP.format(dir=d))
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "llm-from-scratch", "display_name": "Rust (LLM from scratch)", "language": "rust"}
    NotebookClient(nb, timeout=900, kernel_name="llm-from-scratch", allow_errors=True).execute()
    # Outputs are read from files the cells write (see PANIC): a late stdout message is not lost.
    outputs = [text(c) for c in nb.cells]
    assert (d / "trained").exists(), f"the model trained: {outputs}"
    for failing in ("panic", "err"):
        assert (tmp_path / f"{failing}-before").exists(), f"the {failing} cell ran: {[text(c) for c in nb.cells]}"
        assert not (tmp_path / f"{failing}-after").exists(), f"the {failing} cell stopped at its failure"
    read = lambda name: (d / name).read_text() if (d / name).exists() else f"(no {name}: {outputs})"
    assert read("use1") == "model kept: true", f"after the panic: {read('use1')}"
    assert read("use2") == "model kept: true", f"after the error: {read('use2')}"
    assert read("step") == "trains on: true", f"the optimizer is kept too: {read('step')}"
