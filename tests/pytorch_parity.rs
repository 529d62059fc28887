//! The crate's `GptModel` against the book's architecture in PyTorch
//! (`tests/fixtures/gpt_pytorch.py`, run here with `python` when its outputs are missing):
//! same initial weights bit for bit under `torch.manual_seed(123)`, same logits within 1e-4 for
//! PyTorch's weights, and weights saved here load in PyTorch and give the same logits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llm_from_scratch::ch04::{load_safetensors, save_safetensors, AttentionImpl, GptConfig, GptModel};
use llm_from_scratch::{rng_lock, set_seed};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

mod common;

const TOLERANCE: f64 = 1e-4;

/// Run the fixture script with `args`, panicking with its output when it fails.
fn run_script(args: &[&str]) {
    common::run_fixture_script("gpt_pytorch.py", args);
}

/// The reference fixture's folder, created by the Python script on first use (and again when
/// the script is newer than its output).
fn reference() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::fixture("gpt_pytorch.py", &["reference"], "gpt_pytorch", "config.json"))
}

fn read(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    f64::try_from((a - b).abs().max()).unwrap()
}

#[test]
fn pytorch_weights_give_pytorch_logits_on_both_attention_paths() {
    let dir = reference();
    let cfg = GptConfig::from_json_file(dir.join("config.json")).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    // Creating parameters draws random numbers: hold the lock so seeded tests are not disturbed.
    let mut model = {
        let _rng = rng_lock();
        GptModel::new(&vs.root(), &cfg)
    };
    // The file is PyTorch's whole state_dict, `trf_blocks.{i}.att.mask` buffers included.
    load_safetensors(&vs, dir.join("weights.safetensors")).unwrap();
    let io = read(&dir.join("io.safetensors"));
    let (input_ids, want) = (&io["input_ids"], &io["logits"]);
    assert_eq!(want.size(), [2, 12, cfg.vocab_size]);
    for attn_impl in [AttentionImpl::Explicit, AttentionImpl::Sdpa] {
        model.set_attention_impl(attn_impl);
        let logits = tch::no_grad(|| model.forward_t(input_ids, false));
        let diff = max_diff(&logits, want);
        assert!(diff < TOLERANCE, "{attn_impl:?}: logits differ from PyTorch's by {diff}");
    }
}

#[test]
fn seed_123_initialisation_equals_pytorch_bit_for_bit() {
    let dir = reference();
    let cfg = GptConfig::from_json_file(dir.join("config.json")).unwrap();
    let theirs = read(&dir.join("weights.safetensors"));
    let _rng = rng_lock();
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = GptModel::new(&vs.root(), &cfg);
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    // tok_emb, pos_emb, final_norm (2), out_head; per block 8 attention, 4 feed-forward, 4 norm tensors.
    assert_eq!(names.len(), 5 + 16 * cfg.n_layers as usize, "parameter tensors (with qkv bias)");
    for name in names {
        let ours = &vs.variables()[&name];
        let want = theirs.get(&name).unwrap_or_else(|| panic!("PyTorch's state_dict has no '{name}'"));
        assert!(ours.equal(want), "'{name}' differs from PyTorch's seed-123 init by {}", max_diff(ours, want));
    }
}

#[test]
fn weights_saved_here_load_in_pytorch_with_the_same_logits() {
    let dir = reference();
    let cfg = GptConfig::from_json_file(dir.join("config.json")).unwrap();
    let model_vs = nn::VarStore::new(Device::Cpu);
    let model = {
        let _rng = rng_lock();
        set_seed(7);
        GptModel::new(&model_vs.root(), &cfg)
    };
    let tag = std::process::id();
    let weights = dir.join(format!("rust_weights_{tag}.safetensors"));
    let logits_path = dir.join(format!("pytorch_logits_{tag}.safetensors"));
    save_safetensors(&model_vs, &weights).unwrap();
    let args = ["logits", "--config", "config.json", "--weights", "", "--input", "io.safetensors", "--out", ""];
    let (config, input) = (dir.join("config.json"), dir.join("io.safetensors"));
    let mut args: Vec<&str> = args.to_vec();
    args[2] = config.to_str().unwrap();
    args[4] = weights.to_str().unwrap();
    args[6] = input.to_str().unwrap();
    args[8] = logits_path.to_str().unwrap();
    run_script(&args);
    let input_ids = &read(&input)["input_ids"];
    let theirs = &read(&logits_path)["logits"];
    let ours = tch::no_grad(|| model.forward_t(input_ids, false));
    let diff = max_diff(&ours, theirs);
    std::fs::remove_file(&weights).unwrap();
    std::fs::remove_file(&logits_path).unwrap();
    assert!(diff < TOLERANCE, "PyTorch's logits with our weights differ by {diff}");
}
