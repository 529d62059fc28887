//! Llama 3.2 and Qwen3 from Hugging Face's files (the book's bonus material for chapter 5):
//! `config.json`, the weights (`model.safetensors`, or shards listed in
//! `model.safetensors.index.json`) and `tokenizer.json`, loaded into the book's
//! [`DecoderModel`] key by key.
//!
//! | Hugging Face (`model.` prefix) | book | |
//! |---|---|---|
//! | `embed_tokens.weight` | `tok_emb.weight` | `[vocab, emb]` |
//! | `layers.{i}.input_layernorm.weight` | `trf_blocks.{i}.norm1.weight` (Qwen3: `.scale`) | `[emb]` |
//! | `layers.{i}.self_attn.q_proj.weight` | `trf_blocks.{i}.att.W_query.weight` | `[heads * head_dim, emb]` |
//! | `layers.{i}.self_attn.k_proj.weight`, `v_proj` | `att.W_key.weight`, `att.W_value.weight` | `[kv_heads * head_dim, emb]` |
//! | `layers.{i}.self_attn.o_proj.weight` | `att.out_proj.weight` | `[emb, heads * head_dim]` |
//! | `layers.{i}.self_attn.q_norm.weight`, `k_norm` (Qwen3) | `att.q_norm.scale`, `att.k_norm.scale` | `[head_dim]` |
//! | `layers.{i}.post_attention_layernorm.weight` | `trf_blocks.{i}.norm2.*` | `[emb]` |
//! | `layers.{i}.mlp.gate_proj.weight`, `up_proj`, `down_proj` | `ff.fc1.weight`, `ff.fc2.weight`, `ff.fc3.weight` | |
//! | `norm.weight` | `final_norm.*` | `[emb]` |
//! | `lm_head.weight` (untied models only; no prefix) | `out_head.weight` | `[vocab, emb]` |
//!
//! Every tensor is copied as it is (Hugging Face's `nn.Linear` stores `[out, in]` like ours).
//!
//! `config.json` comes in two styles, which load to the same [`DecoderConfig`]: as the hub
//! serves the published models (`rope_theta` and `rope_scaling` at the top level) and as
//! `transformers` 5 writes it (a `rope_parameters` object holding `rope_theta`, `rope_type`
//! and the scaling factors).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tch::nn::VarStore;
use tch::{Device, Kind};

use crate::error::{Error, Result};
use crate::nn::decoder::{DecoderConfig, DecoderModel, Family};
use crate::nn::modern::RopeFreqConfig;
use crate::nn::tensor_file::SafetensorsFile;
use crate::text::tokenizer::HfTokenizer;

/// The model families a Hugging Face folder may hold, from `config.json`'s `model_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfFamily {
    /// `gpt2`: loaded by [`crate::nn::gpt2`].
    Gpt2,
    /// `llama` or `qwen3`: loaded here.
    Decoder(Family),
}

/// The `model_type` of `config.json` at `path`, as one of the families this crate loads; any
/// other is an error naming the file and the key.
pub fn detect_family(path: &Path) -> Result<HfFamily> {
    let json = read_json(path)?;
    match json.get("model_type").and_then(Value::as_str) {
        Some("gpt2") => Ok(HfFamily::Gpt2),
        Some("llama") => Ok(HfFamily::Decoder(Family::Llama32)),
        Some("qwen3") => Ok(HfFamily::Decoder(Family::Qwen3)),
        other => Err(Error::Config {
            what: format!("{} key 'model_type'", path.display()),
            reason: match other {
                Some(t) => format!("'{t}' is not a known architecture (known: gpt2, llama, qwen3)"),
                None => "missing (expected gpt2, llama or qwen3)".into(),
            },
        }),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Format { path: path.into(), reason: format!("not JSON: {e}") })
}

impl DecoderConfig {
    /// The config of a Hugging Face Llama or Qwen3 `config.json`: `vocab_size`,
    /// `max_position_embeddings`, `hidden_size`, `num_attention_heads`, `num_hidden_layers`,
    /// `intermediate_size`, `num_key_value_heads` (default: the number of heads), `head_dim`
    /// (default `hidden_size / num_attention_heads`), `rms_norm_eps`, `tie_word_embeddings`
    /// (default false, as in `transformers`), and the rotary settings in either style (see the
    /// [module documentation](self)).
    ///
    /// Settings the model cannot follow are errors naming the file and the key: an unknown
    /// `model_type`, `hidden_act` other than `silu`, `attention_bias` or `mlp_bias` true, a
    /// `rope_type` other than `default` and `llama3`, Qwen3's sliding window.
    pub fn from_hf_config_json(path: impl AsRef<Path>) -> Result<DecoderConfig> {
        let path = path.as_ref();
        let family = match detect_family(path)? {
            HfFamily::Decoder(family) => family,
            HfFamily::Gpt2 => {
                return Err(Error::Config {
                    what: format!("{} key 'model_type'", path.display()),
                    reason: "'gpt2' is loaded by nn::gpt2, not as Llama or Qwen3".into(),
                })
            }
        };
        let json = read_json(path)?;
        let err = |key: &str, reason: String| Error::Config { what: format!("{} key '{key}'", path.display()), reason };
        let get = |key: &str| json.get(key).filter(|v| !v.is_null());
        let int = |key: &str| -> Result<Option<i64>> {
            get(key).map(|v| v.as_i64().ok_or_else(|| err(key, format!("expected an integer, found {v}")))).transpose()
        };
        let float = |obj: &Value, key: &str, full: &str| -> Result<Option<f64>> {
            obj.get(key)
                .filter(|v| !v.is_null())
                .map(|v| v.as_f64().ok_or_else(|| err(full, format!("expected a number, found {v}"))))
                .transpose()
        };
        let required = |key: &str| -> Result<i64> { int(key)?.ok_or_else(|| err(key, "missing".into())) };
        let flag = |key: &str| get(key).and_then(Value::as_bool).unwrap_or(false);

        let emb_dim = required("hidden_size")?;
        let n_heads = required("num_attention_heads")?;
        if n_heads < 1 {
            return Err(err("num_attention_heads", format!("must be positive, not {n_heads}")));
        }
        if let Some(act) = get("hidden_act").and_then(Value::as_str) {
            if act != "silu" {
                return Err(err("hidden_act", format!("'{act}': the SwiGLU feed-forward uses silu")));
            }
        }
        for key in ["attention_bias", "mlp_bias"] {
            if flag(key) {
                return Err(err(key, "true: these models have no biases, and neither does this implementation".into()));
            }
        }
        if family == Family::Qwen3 && flag("use_sliding_window") {
            return Err(err("use_sliding_window", "true: only full attention is implemented".into()));
        }

        // The rotary settings: transformers 5's `rope_parameters`, or the hub's top-level
        // `rope_theta` + `rope_scaling`.
        let (rope, rope_key) = match get("rope_parameters") {
            Some(p) => (p.clone(), "rope_parameters"),
            None => {
                let mut p = get("rope_scaling").cloned().unwrap_or_else(|| serde_json::json!({}));
                if !p.is_object() {
                    return Err(err("rope_scaling", format!("expected an object or null, found {p}")));
                }
                if let Some(theta) = get("rope_theta") {
                    p["rope_theta"] = theta.clone();
                }
                (p, "rope_scaling")
            }
        };
        let sub = |k: &str| if k == "rope_theta" && rope_key == "rope_scaling" { "rope_theta".to_string() } else { format!("{rope_key}.{k}") };
        let rope_type = rope.get("rope_type").or_else(|| rope.get("type")).and_then(Value::as_str).unwrap_or("default");
        let rope_base = float(&rope, "rope_theta", &sub("rope_theta"))?.unwrap_or(10_000.0);
        let rope_freq = match rope_type {
            "default" => None,
            "llama3" => {
                let need = |k: &str| -> Result<f64> { float(&rope, k, &sub(k))?.ok_or_else(|| err(&sub(k), "missing".into())) };
                let original = match float(&rope, "original_max_position_embeddings", &sub("original_max_position_embeddings"))? {
                    Some(v) => v as i64,
                    None => required("max_position_embeddings")?,
                };
                Some(RopeFreqConfig {
                    factor: need("factor")?,
                    low_freq_factor: need("low_freq_factor")?,
                    high_freq_factor: need("high_freq_factor")?,
                    original_context_length: original,
                })
            }
            other => return Err(err(&sub("rope_type"), format!("'{other}' is not implemented (default and llama3 are)"))),
        };

        let cfg = DecoderConfig {
            family,
            vocab_size: required("vocab_size")?,
            context_length: required("max_position_embeddings")?,
            emb_dim,
            n_heads,
            n_layers: required("num_hidden_layers")?,
            hidden_dim: required("intermediate_size")?,
            head_dim: int("head_dim")?.unwrap_or(emb_dim / n_heads),
            n_kv_groups: int("num_key_value_heads")?.unwrap_or(n_heads),
            qk_norm: family == Family::Qwen3,
            rope_base,
            rope_freq,
            rms_norm_eps: float(&json, "rms_norm_eps", "rms_norm_eps")?.unwrap_or(1e-6),
            tie_word_embeddings: flag("tie_word_embeddings"),
        };
        cfg.validate(&path.display().to_string())?;
        Ok(cfg)
    }
}

/// The tensors of a Hugging Face checkpoint: one `model.safetensors`, or the shards that
/// `model.safetensors.index.json`'s `weight_map` lists.
#[derive(Debug)]
pub struct HfTensors {
    /// The files (one, or the shards in the index's order).
    pub files: Vec<SafetensorsFile>,
    /// Each tensor's name → its file in `files`.
    pub index: BTreeMap<String, usize>,
}

impl HfTensors {
    /// The weights of folder `dir`: `model.safetensors` if present, else the index and its
    /// shards. A shard the index names but the folder lacks, or a tensor the index places in a
    /// shard that does not hold it, is an error naming the index file and the key.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let single = dir.join("model.safetensors");
        if single.is_file() {
            let file = SafetensorsFile::open(&single)?;
            let index = file.names().map(|n| (n.to_string(), 0)).collect();
            return Ok(Self { files: vec![file], index });
        }
        let index_path = dir.join("model.safetensors.index.json");
        if !index_path.is_file() {
            return Err(Error::io(
                &single,
                std::io::Error::new(std::io::ErrorKind::NotFound, "neither model.safetensors nor model.safetensors.index.json is in the folder"),
            ));
        }
        let json = read_json(&index_path)?;
        let map = json.get("weight_map").and_then(Value::as_object).ok_or_else(|| Error::Config {
            what: format!("{} key 'weight_map'", index_path.display()),
            reason: "missing or not an object".into(),
        })?;
        let mut shard_of: BTreeMap<String, usize> = BTreeMap::new();
        let mut files = Vec::new();
        let mut index = BTreeMap::new();
        for (name, shard) in map {
            let shard = shard.as_str().ok_or_else(|| Error::Config {
                what: format!("{} key 'weight_map.{name}'", index_path.display()),
                reason: format!("expected a file name, found {shard}"),
            })?;
            let i = match shard_of.get(shard) {
                Some(&i) => i,
                None => {
                    let path = dir.join(shard);
                    if !path.is_file() {
                        return Err(Error::Config {
                            what: format!("{} key 'weight_map.{name}'", index_path.display()),
                            reason: format!("the shard {} is missing", path.display()),
                        });
                    }
                    files.push(SafetensorsFile::open(&path)?);
                    shard_of.insert(shard.to_string(), files.len() - 1);
                    files.len() - 1
                }
            };
            if !files[i].entries.contains_key(name) {
                return Err(Error::Config {
                    what: format!("{} key 'weight_map.{name}'", index_path.display()),
                    reason: format!("the shard {shard} holds no tensor of that name"),
                });
            }
            index.insert(name.clone(), i);
        }
        Ok(Self { files, index })
    }

    /// The file that holds tensor `name`.
    pub fn file_of(&self, name: &str) -> Option<&SafetensorsFile> {
        self.index.get(name).map(|&i| &self.files[i])
    }
}

/// The map from Hugging Face names to the book's parameter names for `cfg` (file name, book
/// name, expected shape), in model order. The output head appears only for untied configs.
pub fn hf_decoder_key_map(cfg: &DecoderConfig) -> Vec<(String, String, Vec<i64>)> {
    let (d, q, kv, h) = (cfg.emb_dim, cfg.n_heads * cfg.head_dim, cfg.n_kv_groups * cfg.head_dim, cfg.hidden_dim);
    let norm = cfg.family.norm_param();
    let mut map = vec![("model.embed_tokens.weight".to_string(), "tok_emb.weight".to_string(), vec![cfg.vocab_size, d])];
    for i in 0..cfg.n_layers {
        let (hf, b) = (format!("model.layers.{i}"), format!("trf_blocks.{i}"));
        let mut line = |hf_name: &str, book: &str, shape: Vec<i64>| map.push((format!("{hf}.{hf_name}"), format!("{b}.{book}"), shape));
        line("input_layernorm.weight", &format!("norm1.{norm}"), vec![d]);
        line("self_attn.q_proj.weight", "att.W_query.weight", vec![q, d]);
        line("self_attn.k_proj.weight", "att.W_key.weight", vec![kv, d]);
        line("self_attn.v_proj.weight", "att.W_value.weight", vec![kv, d]);
        line("self_attn.o_proj.weight", "att.out_proj.weight", vec![d, q]);
        if cfg.qk_norm {
            line("self_attn.q_norm.weight", &format!("att.q_norm.{norm}"), vec![cfg.head_dim]);
            line("self_attn.k_norm.weight", &format!("att.k_norm.{norm}"), vec![cfg.head_dim]);
        }
        line("post_attention_layernorm.weight", &format!("norm2.{norm}"), vec![d]);
        line("mlp.gate_proj.weight", "ff.fc1.weight", vec![h, d]);
        line("mlp.up_proj.weight", "ff.fc2.weight", vec![h, d]);
        line("mlp.down_proj.weight", "ff.fc3.weight", vec![d, h]);
    }
    map.push(("model.norm.weight".into(), format!("final_norm.{norm}"), vec![d]));
    if !cfg.tie_word_embeddings {
        map.push(("lm_head.weight".into(), "out_head.weight".into(), vec![cfg.vocab_size, d]));
    }
    map
}

/// Whether a file tensor is one that loading may skip: the rotary `inv_freq` buffers older
/// exports hold, and `lm_head.weight` of a tied model (the head is the embedding).
fn skippable(name: &str, cfg: &DecoderConfig) -> bool {
    name.ends_with(".rotary_emb.inv_freq") || (cfg.tie_word_embeddings && name == "lm_head.weight")
}

/// Copy the tensors of `tensors` into the variables of `vs`, which hold a [`DecoderModel`]
/// built with `cfg`. Everything is checked before anything is copied: each tensor the model
/// needs must be there with its shape (else [`Error::MissingTensor`] or
/// [`Error::ShapeMismatch`] naming the file's key), the files may hold nothing else (else
/// [`Error::UnexpectedTensor`]). Values are converted to the variables' kind and device.
pub fn load_hf_decoder(vs: &VarStore, cfg: &DecoderConfig, tensors: &HfTensors) -> Result<()> {
    let map = hf_decoder_key_map(cfg);
    let vars = vs.variables();
    let where_ = |name: &str| tensors.file_of(name).map(|f| f.path.clone()).unwrap_or_else(|| first_path(tensors));
    for (hf, book, shape) in &map {
        let file = tensors.file_of(hf).ok_or_else(|| Error::MissingTensor { name: hf.clone(), path: first_path(tensors) })?;
        let found = &file.entries[hf].shape;
        if found != shape {
            return Err(Error::ShapeMismatch { name: format!("{hf} (in {})", file.path.display()), expected: shape.clone(), found: found.clone() });
        }
        assert!(vars.contains_key(book), "hf_decoder_key_map names '{book}', which the model lacks");
    }
    let mapped: BTreeSet<&str> = map.iter().map(|(hf, _, _)| hf.as_str()).collect();
    if let Some(name) = tensors.index.keys().find(|n| !mapped.contains(n.as_str()) && !skippable(n, cfg)) {
        return Err(Error::UnexpectedTensor { name: name.clone(), path: where_(name) });
    }
    let targets: BTreeSet<&str> = map.iter().map(|(_, book, _)| book.as_str()).collect();
    if let Some(name) = vars.keys().find(|n| !targets.contains(n.as_str())) {
        return Err(Error::MissingTensor { name: format!("{name} (a model parameter no file tensor fills)"), path: first_path(tensors) });
    }
    let _no_grad = tch::no_grad_guard();
    for (hf, book, _) in &map {
        let src = tensors.file_of(hf).expect("checked above").read(hf)?;
        let mut dst = vars[book].shallow_clone();
        dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
    }
    Ok(())
}

fn first_path(tensors: &HfTensors) -> PathBuf {
    tensors.files.first().map(|f| f.path.clone()).unwrap_or_default()
}

/// A Llama 3.2 or Qwen3 model loaded from a Hugging Face folder, with its tokenizer when the
/// folder has `tokenizer.json`.
#[derive(Debug)]
pub struct HfDecoder {
    pub vs: VarStore,
    pub model: DecoderModel,
    pub cfg: DecoderConfig,
    pub tokenizer: Option<HfTokenizer>,
    pub dir: PathBuf,
}

impl HfDecoder {
    /// Load folder `dir`: `config.json` ([`DecoderConfig::from_hf_config_json`]), then
    /// `tokenizer.json` if present (its ids must fit the model's vocabulary:
    /// [`HfTokenizer::check_vocab`]), then the weights ([`HfTensors::open_dir`],
    /// [`load_hf_decoder`]) into a model of `kind` (e.g. `Kind::Float`, or `Kind::BFloat16` to
    /// halve the memory) built on the CPU and moved to `device`. Building the model draws random
    /// numbers: hold [`crate::util::device::rng_lock`] in tests.
    pub fn load_dir(dir: impl AsRef<Path>, device: Device, kind: Kind) -> Result<Self> {
        let dir = dir.as_ref();
        let config_path = dir.join("config.json");
        let cfg = DecoderConfig::from_hf_config_json(&config_path)?;
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = if tokenizer_path.is_file() {
            let tok = HfTokenizer::from_file(&tokenizer_path)?;
            tok.check_vocab(cfg.vocab_size, &config_path)?;
            Some(tok)
        } else {
            None
        };
        let tensors = HfTensors::open_dir(dir)?;
        let mut vs = VarStore::new(Device::Cpu);
        let model = DecoderModel::new(&vs.root(), &cfg);
        load_hf_decoder(&vs, &cfg, &tensors)?;
        if kind != Kind::Float {
            vs.set_kind(kind);
        }
        vs.set_device(device);
        // The rotary frequencies are not variables: move them by hand (they stay float32).
        let mut model = model;
        model.rope.inv_freq = model.rope.inv_freq.to_device(device);
        Ok(Self { vs, model, cfg, tokenizer, dir: dir.to_path_buf() })
    }
}
