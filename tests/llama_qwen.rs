//! Chapter 5's bonus: Llama 3.2 and Qwen3 from scratch, against Hugging Face `transformers`.
//!
//! The reference is written by `tests/fixtures/hf_llama_qwen_tiny.py` (run here when its output
//! is missing or older than the script): each part's inputs and outputs, four tiny random
//! models saved by `save_pretrained` (Llama tied with llama3 RoPE scaling and GQA, Llama untied
//! with one KV head, Qwen3 tied with head_dim != emb/heads, Qwen3 untied in shards), their
//! logits and greedy ids, two configs in the hub's style, and a tiny `tokenizer.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llm_from_scratch::bonus_llama_qwen::{
    causal_attention, detect_family, generate, generate_cached, repeat_kv, CachedLm, DecoderConfig,
    DecoderModel, Family, HfDecoder, HfFamily, HfTokenizer, RmsNorm, Rope, RopeFreqConfig, SwiGluFeedForward, Tokenizer,
};
use llm_from_scratch::{rng_lock, Error};
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

mod common;

const TOLERANCE: f64 = 1e-4;

fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::fixture("hf_llama_qwen_tiny.py", &[], "hf_llama_qwen_tiny", "io.safetensors"))
}

fn read(name: &str) -> BTreeMap<String, Tensor> {
    let path = fixture().join(name);
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    f64::try_from((a - b).abs().max()).unwrap()
}

fn load(label: &str) -> HfDecoder {
    let _rng = rng_lock();
    HfDecoder::load_dir(fixture().join(label), Device::Cpu, Kind::Float).unwrap_or_else(|e| panic!("{label}: {e}"))
}

fn ids(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.flatten(0, -1)).unwrap()
}

/// Logits within 1e-4 of transformers' (whole sequence, and fed through the cache in two
/// pieces), greedy ids equal to transformers' with and without the cache.
fn assert_matches_transformers(loaded: &HfDecoder, label: &str) {
    let io = read("io.safetensors");
    let model = &loaded.model;
    let want = &io[&format!("logits_{label}")];
    let logits = tch::no_grad(|| model.forward_t(&io["input_ids"], false));
    let diff = max_diff(&logits, want);
    assert!(diff < TOLERANCE, "{label}: logits differ from transformers' by {diff}");
    let mut cache = model.new_cache();
    let (first, rest) = (io["input_ids"].narrow(1, 0, 7), io["input_ids"].narrow(1, 7, 5));
    let cached = tch::no_grad(|| Tensor::cat(&[model.forward_cached(&first, &mut cache), model.forward_cached(&rest, &mut cache)], 1));
    let diff = max_diff(&cached, want);
    assert!(diff < TOLERANCE, "{label}: logits through the KV cache differ by {diff}");
    assert_eq!(cache.len(), 12, "{label}: the cache holds every position");

    let want = ids(&io[&format!("greedy_{label}")]);
    let new_tokens = want.len() as i64 - io["prompt"].size()[1];
    let uncached = ids(&generate(model, &io["prompt"], new_tokens, model.context_length(), 0.0, None, None));
    assert_eq!(uncached, want, "{label}: greedy ids without cache differ from transformers'");
    let cached = ids(&generate_cached(model, &mut model.new_cache(), &io["prompt"], new_tokens, 0.0, None, None));
    assert_eq!(cached, want, "{label}: greedy ids with the KV cache differ from transformers'");
}

#[test]
fn rmsnorm_equals_llama_rmsnorm() {
    let parts = read("parts.safetensors");
    let vs = nn::VarStore::new(Device::Cpu);
    let mut norm = RmsNorm::new(&vs.root(), 16, 1e-5, "weight");
    norm.weight = parts["rmsnorm_weight"].shallow_clone();
    let diff = max_diff(&norm.forward(&parts["rmsnorm_x"]), &parts["rmsnorm_y"]);
    assert!(diff < 1e-5, "RMSNorm differs from LlamaRMSNorm by {diff}");
}

#[test]
fn rope_frequencies_and_rotation_equal_transformers() {
    let parts = read("parts.safetensors");
    let llama = DecoderConfig::llama32_1b();
    let rope = Rope::new(llama.head_dim, llama.rope_base, llama.rope_freq.as_ref(), Device::Cpu);
    let want = &parts["rope_inv_freq_llama32"];
    let rel = f64::try_from(((&rope.inv_freq - want).abs() / want).max()).unwrap();
    assert!(rel < 1e-6, "llama3-scaled inverse frequencies differ from transformers' by {rel} (relative)");
    // The scaling changes something: the plain frequencies differ from the scaled ones.
    let plain = Rope::new(llama.head_dim, llama.rope_base, None, Device::Cpu);
    assert!(f64::try_from(((&plain.inv_freq - want).abs() / want).max()).unwrap() > 1.0, "llama3 scaling divides slow frequencies by up to 32");

    let qwen = DecoderConfig::qwen3_0_6b();
    let rope_q = Rope::new(qwen.head_dim, qwen.rope_base, None, Device::Cpu);
    let want = &parts["rope_inv_freq_qwen3"];
    let rel = f64::try_from(((&rope_q.inv_freq - want).abs() / want).max()).unwrap();
    assert!(rel < 1e-6, "Qwen3's inverse frequencies differ from transformers' by {rel} (relative)");

    let (cos, sin) = rope.cos_sin(8000, 5);
    let diff = max_diff(&Rope::apply(&parts["rope_q"], &cos, &sin), &parts["rope_q_rotated"]);
    assert!(diff < 1e-4, "queries rotated at positions 8000..8004 differ from apply_rotary_pos_emb by {diff}");
}

#[test]
fn swiglu_equals_llama_mlp() {
    let parts = read("parts.safetensors");
    let vs = nn::VarStore::new(Device::Cpu);
    let mut ff = {
        let _rng = rng_lock();
        SwiGluFeedForward::new(&vs.root(), 16, 40)
    };
    ff.fc1.weight = parts["mlp_gate_proj_weight"].shallow_clone();
    ff.fc2.weight = parts["mlp_up_proj_weight"].shallow_clone();
    ff.fc3.weight = parts["mlp_down_proj_weight"].shallow_clone();
    let diff = max_diff(&ff.forward(&parts["mlp_x"]), &parts["mlp_y"]);
    assert!(diff < 1e-5, "SwiGLU differs from LlamaMLP by {diff}");
}

#[test]
fn grouped_query_attention_equals_repeat_kv_attention_over_cached_positions() {
    let parts = read("parts.safetensors");
    let (q, k, v) = (&parts["gqa_q"], &parts["gqa_k"], &parts["gqa_v"]);
    let out = causal_attention(q, &repeat_kv(k, 2), &repeat_kv(v, 2)).transpose(1, 2); // [1, 5, 4, 8]
    let diff = max_diff(&out, &parts["gqa_out"]);
    assert!(diff < 1e-5, "attention over 2 cached + 5 new positions differs from eager_attention_forward by {diff}");
    // repeat_kv is repeat_interleave: query heads 0 and 1 share KV head 0, heads 2 and 3 head 1.
    assert!(repeat_kv(k, 2).equal(&k.repeat_interleave_self_int(2, 1, None)), "repeat_kv = repeat_interleave(dim=1)");
}

#[test]
fn llama_tied_with_gqa_and_llama3_scaling_matches_transformers() {
    let loaded = load("llama_tied");
    assert_eq!(loaded.cfg.family, Family::Llama32);
    assert!(loaded.cfg.tie_word_embeddings && loaded.model.out_head.is_none(), "the head is the embedding");
    assert_eq!((loaded.cfg.n_heads, loaded.cfg.n_kv_groups), (4, 2));
    assert_eq!(loaded.cfg.rope_freq, Some(RopeFreqConfig { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context_length: 64 }));
    assert!(loaded.vs.variables().contains_key("trf_blocks.1.att.W_query.weight"), "the book's names");
    assert_matches_transformers(&loaded, "llama_tied");
}

#[test]
fn llama_untied_with_one_kv_head_matches_transformers() {
    let loaded = load("llama_untied");
    assert!(loaded.model.out_head.is_some() && loaded.cfg.rope_freq.is_none() && loaded.cfg.n_kv_groups == 1);
    assert_matches_transformers(&loaded, "llama_untied");
}

#[test]
fn qwen3_tied_with_qk_norm_and_own_head_dim_matches_transformers() {
    let loaded = load("qwen3_tied");
    assert_eq!((loaded.cfg.family, loaded.cfg.head_dim, loaded.cfg.qk_norm), (Family::Qwen3, 32, true));
    assert!(loaded.vs.variables().contains_key("trf_blocks.0.att.q_norm.scale"), "the book's Qwen3 names");
    assert_matches_transformers(&loaded, "qwen3_tied");
}

#[test]
fn qwen3_untied_from_sharded_files_matches_transformers() {
    let dir = fixture().join("qwen3_sharded");
    assert!(!dir.join("model.safetensors").exists() && dir.join("model.safetensors.index.json").exists());
    let loaded = load("qwen3_sharded");
    assert!(loaded.model.out_head.is_some());
    assert_matches_transformers(&loaded, "qwen3_sharded");
}

#[test]
fn both_config_styles_load_to_the_same_config_and_logits() {
    for (new_style, hub) in [("llama_tied", "llama_hub"), ("qwen3_tied", "qwen3_hub")] {
        let text = std::fs::read_to_string(fixture().join(hub).join("config.json")).unwrap();
        assert!(text.contains("\"rope_theta\"") && !text.contains("rope_parameters"), "{hub} is in the hub's style");
        let a = DecoderConfig::from_hf_config_json(fixture().join(new_style).join("config.json")).unwrap();
        let b = DecoderConfig::from_hf_config_json(fixture().join(hub).join("config.json")).unwrap();
        assert_eq!(a, b, "{new_style} and {hub} must give the same config");
        assert_matches_transformers(&load(hub), new_style);
    }
}

#[test]
fn detect_family_reads_model_type() {
    assert_eq!(detect_family(&fixture().join("llama_tied/config.json")).unwrap(), HfFamily::Decoder(Family::Llama32));
    assert_eq!(detect_family(&fixture().join("qwen3_sharded/config.json")).unwrap(), HfFamily::Decoder(Family::Qwen3));
}

#[test]
fn tokenizer_json_encodes_and_decodes_as_hugging_face_does() {
    let tok = HfTokenizer::from_file(fixture().join("tokenizer.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture().join("tokenizer_cases.json")).unwrap()).unwrap();
    assert_eq!(tok.vocab_size() as u64, cases["vocab_size"].as_u64().unwrap(), "vocabulary size with added tokens");
    for case in cases["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want = |k: &str| -> Vec<u32> { case[k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect() };
        assert_eq!(tok.encode_text(text).unwrap(), want("plain"), "{text:?} without added special tokens");
        assert_eq!(tok.encode_with_special_tokens(text).unwrap(), want("with_special"), "{text:?} with the BOS token");
        assert_eq!(tok.decode_ids(&want("plain")).unwrap(), case["decoded"].as_str().unwrap(), "{text:?} decoded");
    }
    assert!(matches!(tok.decode_ids(&[5000]), Err(Error::UnknownTokenId { id: 5000, .. })), "an id outside the vocabulary");
}

/// A scratch folder holding a copy of a fixture folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn copy_of(label: &str, tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("llm-fs-llama-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(fixture().join(label)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        Scratch(dir)
    }

    fn edit_config(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = self.0.join("config.json");
        let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(&path, json.to_string()).unwrap();
    }

    fn load_err(&self) -> String {
        let _rng = rng_lock();
        HfDecoder::load_dir(&self.0, Device::Cpu, Kind::Float).unwrap_err().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_unknown_architecture_is_named_with_file_and_key() {
    let scratch = Scratch::copy_of("llama_tied", "arch");
    scratch.edit_config(|j| j["model_type"] = "mistral".into());
    let msg = scratch.load_err();
    assert!(msg.contains("config.json") && msg.contains("'model_type'") && msg.contains("'mistral'"), "{msg}");
    scratch.edit_config(|j| {
        j["model_type"] = "llama".into();
        j["rope_parameters"]["rope_type"] = "yarn".into();
    });
    let msg = scratch.load_err();
    assert!(msg.contains("config.json") && msg.contains("'rope_parameters.rope_type'") && msg.contains("yarn"), "{msg}");
}

#[test]
fn a_missing_shard_is_named_with_the_index_and_key() {
    let scratch = Scratch::copy_of("qwen3_sharded", "shard");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.0.join("model.safetensors.index.json")).unwrap()).unwrap();
    let (name, shard) = index["weight_map"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).unwrap();
    std::fs::remove_file(scratch.0.join(&shard)).unwrap();
    let msg = scratch.load_err();
    assert!(msg.contains("model.safetensors.index.json") && msg.contains(&format!("'weight_map.{name}'")) && msg.contains(&shard), "{msg}");
}

#[test]
fn a_tensor_of_the_wrong_shape_is_named_with_both_shapes() {
    let scratch = Scratch::copy_of("llama_tied", "shape");
    let path = scratch.0.join("model.safetensors");
    let mut tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(&path).unwrap().into_iter().collect();
    let key = "model.layers.1.self_attn.k_proj.weight";
    let narrowed = tensors[key].narrow(0, 0, 16).contiguous();
    tensors.insert(key.into(), narrowed);
    let named: Vec<(&String, &Tensor)> = tensors.iter().collect();
    Tensor::write_safetensors(&named, &path).unwrap();
    let msg = scratch.load_err();
    assert!(msg.contains(key) && msg.contains("model.safetensors") && msg.contains("[32, 64]") && msg.contains("[16, 64]"), "{msg}");
}

#[test]
fn a_tokenizer_that_does_not_fit_the_vocabulary_is_named_with_file_and_key() {
    let scratch = Scratch::copy_of("llama_tied", "vocab");
    scratch.edit_config(|j| j["vocab_size"] = 200.into());
    let msg = scratch.load_err();
    assert!(msg.contains("tokenizer.json") && msg.contains("config.json key 'vocab_size'") && msg.contains("200 rows"), "{msg}");
}

#[test]
fn parameter_counts_of_the_real_configs_match_the_published_figures() {
    // Exact figures from the book's notebooks (REFERENCE.md).
    let llama = DecoderConfig::llama32_1b().param_counts();
    assert_eq!((llama.total, llama.unique), (1_498_482_688, 1_235_814_400), "Llama 3.2 1B total / unique");
    let qwen = DecoderConfig::qwen3_0_6b().param_counts();
    assert_eq!((qwen.total, qwen.unique), (751_632_384, 596_049_920), "Qwen3 0.6B total / unique");
    // The model cards' rounded figures: unique parameters, and without the embedding.
    for (cfg, name, billions, non_embedding) in [
        (DecoderConfig::llama32_3b(), "Llama 3.2 3B", 3.21, None),
        (DecoderConfig::qwen3_0_6b(), "Qwen3 0.6B", 0.6, Some(0.44)),
        (DecoderConfig::qwen3_1_7b(), "Qwen3 1.7B", 1.7, Some(1.4)),
        (DecoderConfig::qwen3_4b(), "Qwen3 4B", 4.0, Some(3.6)),
        (DecoderConfig::qwen3_8b(), "Qwen3 8B", 8.2, Some(6.95)),
    ] {
        let c = cfg.param_counts();
        let b = c.unique as f64 / 1e9;
        let digits = if billions < 1.0 || billions == 3.21 || billions == 6.95 { 100.0 } else { 10.0 };
        assert_eq!((b * digits).round() / digits, billions, "{name}: {} unique parameters", c.unique);
        if let Some(ne) = non_embedding {
            let heads = if cfg.tie_word_embeddings { 1 } else { 2 };
            let n = (c.unique - heads * c.embedding) as f64 / 1e9;
            let digits = if ne == 6.95 || ne == 0.44 { 100.0 } else { 10.0 };
            assert_eq!((n * digits).round() / digits, ne, "{name}: {n}B without the embedding");
        }
    }
}

#[test]
fn a_random_tiny_model_generates_the_same_ids_with_and_without_cache() {
    let vs = nn::VarStore::new(Device::Cpu);
    let model = {
        let _rng = rng_lock();
        tch::manual_seed(123);
        DecoderModel::new(&vs.root(), &DecoderConfig::qwen3_tiny())
    };
    let prompt = Tensor::from_slice(&[1i64, 2, 3, 4, 1, 2, 3, 4]).view([2, 4]);
    let a = generate_cached(&model, &mut model.new_cache(), &prompt, 10, 0.0, None, None);
    let b = generate(&model, &prompt, 10, model.context_length(), 0.0, None, None);
    assert_eq!(ids(&a), ids(&b), "a batch of two prompts, cached and uncached");
    assert_eq!(a.size(), vec![2, 14]);
}

#[test]
fn a_bfloat16_model_loads_and_stays_close_to_float32() {
    let io = read("io.safetensors");
    let loaded = {
        let _rng = rng_lock();
        HfDecoder::load_dir(fixture().join("qwen3_tied"), Device::Cpu, Kind::BFloat16).unwrap()
    };
    assert!(loaded.vs.variables().values().all(|t| t.kind() == Kind::BFloat16), "every weight in bfloat16");
    let logits = tch::no_grad(|| loaded.model.forward_t(&io["input_ids"], false)).to_kind(Kind::Float);
    let want = &io["logits_qwen3_tied"];
    let scale = f64::try_from(want.abs().max()).unwrap();
    let diff = max_diff(&logits, want);
    assert!(diff < 0.03 * scale, "bfloat16 logits differ by {diff} (largest logit {scale}; measured 1.1% of it)");
}
