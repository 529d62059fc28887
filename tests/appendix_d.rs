//! Appendix D against the book's PyTorch code (`tests/fixtures/appendix_d.py`, run with `python`
//! when its outputs are missing): the learning-rate schedule, the clipped gradient norm of a
//! seeded small GPT model, and the combined `train_model`, step for step.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llm_from_scratch::appendix_d::*;
use llm_from_scratch::ch02::{DataLoader, GptDatasetV1};
use llm_from_scratch::ch04::{load_safetensors, GptConfig, GptModel};
use llm_from_scratch::plot::Figure;
use llm_from_scratch::rng_lock;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn reference_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::fixture("appendix_d.py", &[], "appendix_d", "reference.json"))
}

fn reference() -> serde_json::Value {
    let path = reference_dir().join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("a JSON array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn read(name: &str) -> HashMap<String, Tensor> {
    let path = reference_dir().join(name);
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

/// The fixture's model with its seed-123 weights (loaded from PyTorch's file).
fn model() -> (VarStore, GptModel, GptConfig) {
    let cfg = GptConfig::from_json_file(reference_dir().join("config.json")).unwrap();
    assert_eq!(cfg.drop_rate, 0.0, "the parity run needs a deterministic model");
    let vs = VarStore::new(Device::Cpu);
    let model = GptModel::new(&vs.root(), &cfg);
    load_safetensors(&vs, reference_dir().join("initial.safetensors")).unwrap();
    (vs, model, cfg)
}

/// The fixture's loaders: windows of 16 tokens, stride 16, batch 2, unshuffled.
fn loaders() -> (DataLoader<GptDatasetV1>, DataLoader<GptDatasetV1>) {
    let data = read("data.safetensors");
    let ids = |name: &str| -> Vec<u32> { Vec::<i64>::try_from(&data[name]).unwrap().into_iter().map(|i| i as u32).collect() };
    let train = GptDatasetV1::from_token_ids(&ids("train_ids"), 16, 16).unwrap();
    let val = GptDatasetV1::from_token_ids(&ids("val_ids"), 16, 16).unwrap();
    (DataLoader::new(train, 2, false, true, 0).unwrap(), DataLoader::new(val, 2, false, false, 0).unwrap())
}

#[test]
fn book_schedule_equals_the_book_formula_in_python() {
    // 9 batches x 15 epochs, 27 warmup steps, peak 1e-3, initial = min = 1e-5.
    let want = floats(&reference()["book_lrs"]);
    let schedule = LrSchedule::book(135).unwrap();
    assert_eq!((schedule.warmup_steps, schedule.total_steps), (27, 135));
    let got = schedule.lrs();
    assert_eq!(got.len(), want.len());
    for (step, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-18, "step {step}: lr {g} vs Python's {w}");
    }
    // The landmarks: first step, last warmup step, first decay step, mid-decay, last step.
    for (step, lr) in [(0, 1e-5), (26, 0.000_963_333_333_333_333_3), (27, 1e-3), (81, 5.05e-4), (134, 1.0209409709310705e-5)] {
        assert!((got[step] - lr).abs() < 1e-12, "step {step}: {} != {lr}", got[step]);
    }
    let svg = LrSchedulePlot::from_schedule(&schedule).to_svg().unwrap();
    assert!(svg.as_str().contains("end of warmup (step 27)"));
}

#[test]
fn clipping_one_batch_gives_pytorchs_norm() {
    let want = &reference()["clip_demo"];
    let _rng = rng_lock();
    let (vs, model, _) = model();
    let (train, _) = loaders();
    let (input, target) = train.iter_epoch(0).next().unwrap();
    let loss = calc_loss_batch(&input, &target, &model, Device::Cpu, true);
    let loss_value = loss.double_value(&[]);
    assert!((loss_value - want["loss"].as_f64().unwrap()).abs() < 1e-4, "loss {loss_value} vs {}", want["loss"]);
    let mut opt = AdamW::new(&vs, 1e-3, 0.1);
    opt.zero_grad();
    opt.backward(&loss);
    let max_grad = |opt: &AdamW| {
        opt.params.iter().filter_map(|(n, _)| opt.grad(n)).map(|g| g.max().double_value(&[])).fold(f64::MIN, f64::max)
    };
    let close = |got: f64, want: &serde_json::Value, rel: f64, what: &str| {
        let want = want.as_f64().unwrap();
        assert!((got - want).abs() <= rel * want.abs(), "{what}: {got} vs PyTorch's {want}");
    };
    close(max_grad(&opt), &want["max_grad_before"], 1e-3, "largest gradient before clipping");
    let total = opt.clip_grad_norm(1.0);
    assert!(total > 1.0, "the norm {total} must exceed max_norm for the test to clip");
    close(total, &want["total_norm"], 1e-4, "global gradient norm (clip_grad_norm_'s return value)");
    close(max_grad(&opt), &want["max_grad_after"], 1e-3, "largest gradient after clipping");
    let norms: Vec<Tensor> = opt.params.iter().filter_map(|(n, _)| opt.grad(n)).map(|g| g.norm()).collect();
    let after = Tensor::stack(&norms, 0).norm().double_value(&[]);
    assert!((after - 1.0).abs() < 1e-5, "norm after clipping {after}");
}

#[test]
fn train_model_follows_the_book_step_for_step() {
    let want = reference();
    let _rng = rng_lock();
    let (vs, model, cfg) = model();
    let (train, val) = loaders();
    let mut optimizer = AdamW::new(&vs, 1e-3, 0.1);
    let n_epochs = 3;
    let total = (train.len() * n_epochs) as i64;
    assert_eq!(total, want["total_steps"].as_i64().unwrap());
    let warmup_steps = warmup_steps_for(total, 0.2);
    assert_eq!(warmup_steps, want["warmup_steps"].as_i64().unwrap());
    let run = train_model(
        &model,
        &train,
        &val,
        &mut optimizer,
        Device::Cpu,
        n_epochs,
        2,
        1,
        "Every effort moves you",
        common::gpt2(),
        cfg.context_length,
        warmup_steps,
        1e-5,
        1e-5,
    )
    .unwrap();

    let want_lrs = floats(&want["track_lrs"]);
    assert_eq!(run.track_lrs.len(), want_lrs.len(), "one learning rate per step");
    for (step, (g, w)) in run.track_lrs.iter().zip(&want_lrs).enumerate() {
        assert!((g - w).abs() <= 1e-18, "step {step}: lr {g} vs the book's {w}");
    }
    let want_clipped: Vec<(i64, f64)> = want["clipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(
        run.grad_norms.iter().map(|p| p.0).collect::<Vec<_>>(),
        want_clipped.iter().map(|p| p.0).collect::<Vec<_>>(),
        "clipping from the end of warmup on (global_step >= warmup_steps)"
    );
    for ((step, g), (_, w)) in run.grad_norms.iter().zip(&want_clipped) {
        assert!((g - w).abs() < 1e-3 * w, "step {step}: norm before clipping {g} vs PyTorch's {w}");
    }
    let h = &run.history;
    assert_eq!(h.tokens_seen, want["tokens_seen"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect::<Vec<_>>());
    for (name, got, want) in [("train", &h.train_losses, floats(&want["train_losses"])), ("val", &h.val_losses, floats(&want["val_losses"]))] {
        assert_eq!(got.len(), want.len(), "{name}: evaluations");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 2e-4, "{name} loss at evaluation {i}: {g} vs PyTorch's {w}");
        }
    }
    assert_eq!(h.samples.len(), n_epochs, "a sample after each epoch");
    // The weights after 12 steps of AdamW with the schedule and clipping.
    let final_weights = read("final.safetensors");
    let vars = vs.variables();
    let mut worst = (String::new(), 0.0f64);
    for (name, want) in &final_weights {
        let diff = (&vars[name] - want).abs().max().double_value(&[]);
        if diff > worst.1 {
            worst = (name.clone(), diff);
        }
    }
    assert_eq!(final_weights.len(), vars.len(), "every parameter compared");
    assert!(worst.1 < 1e-5, "largest difference to PyTorch's trained weights: {} in {}", worst.1, worst.0);
    let moved = (&vars["out_head.weight"] - &read("initial.safetensors")["out_head.weight"]).abs().max().double_value(&[]);
    assert!(moved > 1e-4, "training moved the weights ({moved})");
    let _ = Kind::Float;
}
