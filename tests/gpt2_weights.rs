//! Chapter 5.5: GPT-2 weights in Hugging Face's format load into the book's `GptModel` and give
//! the logits and the greedy continuation of Hugging Face's own `GPT2LMHeadModel`.
//!
//! The reference is a tiny random GPT-2 written by `tests/fixtures/hf_gpt2_tiny.py` (with
//! `transformers`, run here when its output is missing or older than the script) in three
//! layouts: `save_pretrained`'s (prefix `transformer.`, tied head), the hub's (no prefix, mask
//! buffers) and an untied one (with `lm_head.weight`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llm_from_scratch::ch04::{generate_text_simple, AttentionImpl, GptConfig, GptModel};
use llm_from_scratch::data::DataStore;
use llm_from_scratch::gpt2::{load_hf_gpt2, Gpt2Checkpoint};
use llm_from_scratch::{rng_lock, Error};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

mod common;

const TOLERANCE: f64 = 1e-4;

fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::fixture("hf_gpt2_tiny.py", &[], "hf_gpt2_tiny", "io.safetensors"))
}

fn io() -> BTreeMap<String, Tensor> {
    let path = fixture().join("io.safetensors");
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

/// Load a checkpoint folder (building the model draws random numbers: hold the RNG lock).
fn load(dir: &Path) -> (nn::VarStore, GptModel, GptConfig) {
    let _rng = rng_lock();
    Gpt2Checkpoint::locate(dir.to_str().unwrap(), &DataStore::from_env())
        .and_then(|c| c.load(Device::Cpu))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    f64::try_from((a - b).abs().max()).unwrap()
}

/// The model's logits for the fixture's inputs match `logits_<label>` on both attention paths,
/// and its greedy continuation of the prompt equals `greedy_<label>` exactly.
fn assert_matches_transformers(model: &mut GptModel, cfg: &GptConfig, label: &str) {
    let io = io();
    for attn_impl in [AttentionImpl::Explicit, AttentionImpl::Sdpa] {
        model.set_attention_impl(attn_impl);
        let logits = tch::no_grad(|| model.forward_t(&io["input_ids"], false));
        let diff = max_diff(&logits, &io[&format!("logits_{label}")]);
        assert!(diff < TOLERANCE, "{label}, {attn_impl:?}: logits differ from transformers' by {diff}");
    }
    let want = &io[&format!("greedy_{label}")];
    let new_tokens = want.size()[1] - io["prompt"].size()[1];
    let got = generate_text_simple(&*model, &io["prompt"], new_tokens, cfg.context_length);
    assert_eq!(
        Vec::<i64>::try_from(got.flatten(0, -1)).unwrap(),
        Vec::<i64>::try_from(want.flatten(0, -1)).unwrap(),
        "{label}: greedy ids differ from transformers'"
    );
}

#[test]
fn save_pretrained_files_give_the_logits_and_greedy_ids_of_transformers() {
    let (vs, mut model, cfg) = load(&fixture().join("tied"));
    let want = GptConfig { vocab_size: 300, context_length: 64, emb_dim: 64, n_heads: 4, n_layers: 2, drop_rate: 0.1, qkv_bias: true };
    assert_eq!(cfg, want, "the sizes come from config.json (64 positions, not 1024)");
    let vars = vs.variables();
    assert!(vars["out_head.weight"].equal(&vars["tok_emb.weight"]), "weight tying: out_head = wte");
    assert_matches_transformers(&mut model, &cfg, "tied");
}

#[test]
fn hub_layout_without_prefix_and_with_mask_buffers_loads_the_same_weights() {
    let keys: Vec<String> = Tensor::read_safetensors(fixture().join("hub_layout/model.safetensors"))
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(keys.iter().all(|k| !k.starts_with("transformer.")) && keys.contains(&"h.1.attn.bias".to_string()), "{keys:?}");
    let (_vs, mut model, cfg) = load(&fixture().join("hub_layout"));
    assert_matches_transformers(&mut model, &cfg, "tied");
}

#[test]
fn untied_files_fill_out_head_from_lm_head() {
    let (vs, mut model, cfg) = load(&fixture().join("untied"));
    let vars = vs.variables();
    assert!(max_diff(&vars["out_head.weight"], &vars["tok_emb.weight"]) > 0.1, "out_head must come from lm_head.weight");
    assert_matches_transformers(&mut model, &cfg, "untied");
}

/// A scratch folder for modified copies of the fixture, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("llm-fs-gpt2-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The tied fixture's tensors, changed by `edit`, written to `<scratch>/<name>`.
fn edited_copy(scratch: &Scratch, name: &str, edit: fn(&mut BTreeMap<String, Tensor>)) -> PathBuf {
    let mut tensors: BTreeMap<String, Tensor> =
        Tensor::read_safetensors(fixture().join("tied/model.safetensors")).unwrap().into_iter().collect();
    edit(&mut tensors);
    let path = scratch.0.join(name);
    let named: Vec<(&String, &Tensor)> = tensors.iter().collect();
    Tensor::write_safetensors(&named, &path).unwrap();
    path
}

/// A fresh model for the fixture's config, with a copy of its initial `tok_emb.weight`.
fn fresh_model() -> (nn::VarStore, GptConfig, Tensor) {
    let cfg = GptConfig::from_hf_config_json(fixture().join("tied/config.json")).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let _rng = rng_lock();
    let _model = GptModel::new(&vs.root(), &cfg);
    let before = vs.variables()["tok_emb.weight"].copy();
    (vs, cfg, before)
}

#[test]
fn a_missing_tensor_is_named_and_nothing_is_copied() {
    let scratch = Scratch::new("missing");
    let path = edited_copy(&scratch, "missing.safetensors", |t| {
        let _ = t.remove("transformer.h.1.mlp.c_fc.weight").unwrap();
    });
    let (vs, cfg, before) = fresh_model();
    let err = load_hf_gpt2(&vs, &cfg, &path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::MissingTensor { .. }), "{msg}");
    assert!(msg.contains("'transformer.h.1.mlp.c_fc.weight'") && msg.contains("missing.safetensors"), "{msg}");
    assert!(vs.variables()["tok_emb.weight"].equal(&before), "a failed load must not change the model");
}

#[test]
fn a_wrong_shape_is_named_with_both_shapes() {
    let scratch = Scratch::new("shape");
    let path = edited_copy(&scratch, "shape.safetensors", |t| {
        let w = t["transformer.h.0.attn.c_proj.weight"].narrow(1, 0, 32).contiguous();
        t.insert("transformer.h.0.attn.c_proj.weight".into(), w);
    });
    let (vs, cfg, _) = fresh_model();
    let err = load_hf_gpt2(&vs, &cfg, &path).unwrap_err();
    match &err {
        Error::ShapeMismatch { name, expected, found } => {
            assert_eq!((name.as_str(), expected.as_slice(), found.as_slice()), ("transformer.h.0.attn.c_proj.weight", &[64i64, 64][..], &[64i64, 32][..]));
        }
        other => panic!("expected ShapeMismatch, got {other}"),
    }
    // A model built for another context length: the positional embedding does not fit.
    let short = GptConfig { context_length: 32, ..cfg };
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = {
        let _rng = rng_lock();
        GptModel::new(&vs.root(), &short)
    };
    let msg = load_hf_gpt2(&vs, &short, fixture().join("tied/model.safetensors")).unwrap_err().to_string();
    assert!(msg.contains("'transformer.wpe.weight'") && msg.contains("[32, 64]") && msg.contains("[64, 64]"), "{msg}");
}

#[test]
fn an_unexpected_tensor_is_an_error_but_mask_buffers_are_skipped() {
    let scratch = Scratch::new("extra");
    let extra = edited_copy(&scratch, "extra.safetensors", |t| {
        t.insert("transformer.h.0.attn.rotary".into(), Tensor::zeros([4], (tch::Kind::Float, Device::Cpu)));
    });
    let buffers = edited_copy(&scratch, "buffers.safetensors", |t| {
        t.insert("transformer.h.0.attn.masked_bias".into(), Tensor::from(-1e4f32));
        t.insert("transformer.h.1.attn.bias".into(), Tensor::ones([1, 1, 64, 64], (tch::Kind::Float, Device::Cpu)).tril(0));
    });
    let (vs, cfg, _) = fresh_model();
    let err = load_hf_gpt2(&vs, &cfg, &extra).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::UnexpectedTensor { .. }) && msg.contains("'transformer.h.0.attn.rotary'"), "{msg}");
    load_hf_gpt2(&vs, &cfg, &buffers).unwrap_or_else(|e| panic!("mask buffers must be skipped: {e}"));
}

#[test]
fn truncated_or_damaged_files_are_errors_naming_the_file() {
    let scratch = Scratch::new("truncated");
    let bytes = std::fs::read(fixture().join("tied/model.safetensors")).unwrap();
    let (vs, cfg, before) = fresh_model();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for (name, content) in [
        ("half.safetensors", bytes[..bytes.len() / 2].to_vec()),
        ("one-byte-short.safetensors", bytes[..bytes.len() - 1].to_vec()),
        ("header-only.safetensors", bytes[..8 + header_len].to_vec()),
        ("cut-header.safetensors", bytes[..8 + header_len / 2].to_vec()),
        ("four-bytes.safetensors", bytes[..4].to_vec()),
        ("text.safetensors", b"this is not a safetensors file at all".to_vec()),
    ] {
        let path = scratch.0.join(name);
        std::fs::write(&path, content).unwrap();
        let err = load_hf_gpt2(&vs, &cfg, &path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Format { .. }) && msg.contains(name), "{name}: {msg}");
    }
    assert!(vs.variables()["tok_emb.weight"].equal(&before), "failed loads must not change the model");
}

#[test]
fn a_model_without_qkv_bias_is_refused() {
    let (_, cfg, _) = fresh_model();
    let no_bias = GptConfig { qkv_bias: false, ..cfg };
    let vs = nn::VarStore::new(Device::Cpu);
    let msg = load_hf_gpt2(&vs, &no_bias, fixture().join("tied/model.safetensors")).unwrap_err().to_string();
    assert!(msg.contains("qkv_bias: true"), "{msg}");
}

#[test]
fn names_resolve_through_the_data_module_and_folders_need_both_files() {
    let scratch = Scratch::new("store");
    let local = scratch.0.join("data");
    for name in ["gpt2", "gpt2-medium"] {
        let dir = local.join("openai-community").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["config.json", "model.safetensors"] {
            std::fs::copy(fixture().join("tied").join(file), dir.join(file)).unwrap();
        }
    }
    let store = DataStore::new(Some(local.clone()), scratch.0.join("cache"));
    // gpt2-medium has no published checksum: the file is taken as it is, and loads.
    let checkpoint = Gpt2Checkpoint::locate("gpt2-medium", &store).unwrap();
    assert_eq!(checkpoint.weights_path, local.join("openai-community/gpt2-medium/model.safetensors"));
    let (_vs, mut model, cfg) = {
        let _rng = rng_lock();
        checkpoint.load(Device::Cpu).unwrap()
    };
    assert_matches_transformers(&mut model, &cfg, "tied");
    // gpt2 has one: the tiny model in its place is refused, with both hashes.
    let msg = Gpt2Checkpoint::locate("gpt2", &store).unwrap_err().to_string();
    assert!(msg.contains("checksum mismatch") && msg.contains("openai-community/gpt2/config.json"), "{msg}");
    // A folder without model.safetensors.
    let half = scratch.0.join("half");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::copy(fixture().join("tied/config.json"), half.join("config.json")).unwrap();
    let msg = Gpt2Checkpoint::locate(half.to_str().unwrap(), &store).unwrap_err().to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("half"), "{msg}");
}
