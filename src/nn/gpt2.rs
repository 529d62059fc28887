//! Chapter 5.5, "Loading pretrained weights from OpenAI": GPT-2's weights, as Hugging Face
//! serves them (`model.safetensors` + `config.json`), copied into the book's [`GptModel`].
//!
//! | step | here |
//! |---|---|
//! | the sizes of the model (`n_embd`, `n_layer`, `n_head`, `n_positions`, `vocab_size`) | [`GptConfig::from_hf_config_json`] |
//! | reading a safetensors file one tensor at a time | [`SafetensorsFile`] |
//! | which file tensor becomes which book parameter | [`hf_gpt2_key_map`], [`HfLayout`] |
//! | the copy: qkv split, Conv1D transpose, weight tying | [`load_hf_gpt2`] |
//! | `gpt2` ... `gpt2-xl` by name (download + cache, or `LLM_DATA_DIR`), or a local folder | [`Gpt2Checkpoint`], [`GptModel::from_pretrained_gpt2`] |
//!
//! The book downloads OpenAI's TensorFlow checkpoint and assigns its arrays; Hugging Face's
//! copy of the same weights holds the same numbers under these names (`h.{i}` is block `i`):
//!
//! | Hugging Face | book | how |
//! |---|---|---|
//! | `wte.weight` `[vocab, emb]` | `tok_emb.weight`, and `out_head.weight` | as is (GPT-2 ties its output head to the token embedding) |
//! | `wpe.weight` `[n_positions, emb]` | `pos_emb.weight` | as is |
//! | `h.{i}.ln_1.weight` / `.bias` | `trf_blocks.{i}.norm1.scale` / `.shift` | as is |
//! | `h.{i}.attn.c_attn.weight` `[emb, 3 emb]` | `att.W_query.weight`, `att.W_key.weight`, `att.W_value.weight` | split in three along the last axis, each transposed |
//! | `h.{i}.attn.c_attn.bias` `[3 emb]` | `att.W_query.bias`, `att.W_key.bias`, `att.W_value.bias` | split in three |
//! | `h.{i}.attn.c_proj.weight` `[emb, emb]` | `att.out_proj.weight` | transposed |
//! | `h.{i}.ln_2.*` | `trf_blocks.{i}.norm2.*` | as is |
//! | `h.{i}.mlp.c_fc.weight` `[emb, 4 emb]` | `ff.layers.0.weight` | transposed |
//! | `h.{i}.mlp.c_proj.weight` `[4 emb, emb]` | `ff.layers.2.weight` | transposed |
//! | `ln_f.*` | `final_norm.scale` / `.shift` | as is |
//! | `lm_head.weight` (only in untied files) | `out_head.weight` | as is |
//!
//! GPT-2's linear layers are `Conv1D` modules, which store their weight as `[in, out]` (the
//! transpose of `nn.Linear`'s `[out, in]`), hence the transposes. A file written by
//! `GPT2LMHeadModel.save_pretrained` prefixes every name with `transformer.` (and leaves out the
//! tied `lm_head.weight`); the hub's `openai-community/gpt2` file has no prefix and also holds
//! the causal-mask buffers `h.{i}.attn.bias`. Both load.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tch::nn::{self, VarStore};
use tch::{Device, Tensor};

use crate::nn::config::GptConfig;
use crate::text::data::{DataStore, HfCheckpoint, HF_GPT2_CHECKPOINTS};
use crate::error::{Error, Result};
use crate::nn::model::GptModel;
pub use crate::nn::tensor_file::{SafetensorsEntry, SafetensorsFile};

/// The LayerNorm epsilon of the book's `LayerNorm` (and of GPT-2).
const BOOK_LAYER_NORM_EPS: f64 = 1e-5;

impl GptConfig {
    /// The sizes of a Hugging Face GPT-2 model from its `config.json`: `vocab_size`,
    /// `n_positions` (the context length; older files also call it `n_ctx`), `n_embd`,
    /// `n_head`, `n_layer`; `qkv_bias` is true (GPT-2 has query/key/value biases) and
    /// `drop_rate` is `resid_pdrop` (0.1 for OpenAI's models; GPT-2 has three dropout rates,
    /// which are equal there, the book has one).
    ///
    /// Settings this crate's model cannot follow are errors rather than silent differences:
    /// `layer_norm_epsilon` other than 1e-5, an `activation_function` other than GPT-2's tanh
    /// GELU (`gelu_new`), `n_inner` other than `4 n_embd`, `scale_attn_by_inverse_layer_idx`.
    /// Every error names the file and the key.
    pub fn from_hf_config_json(path: impl AsRef<Path>) -> Result<GptConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::Format { path: path.into(), reason: format!("not JSON: {e}") })?;
        let err = |key: &str, reason: String| Error::Config { what: format!("{} key '{key}'", path.display()), reason };
        let int = |key: &str| -> Result<Option<i64>> {
            match json.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or_else(|| err(key, format!("expected an integer, found {v}"))),
            }
        };
        let required = |key: &str| -> Result<i64> { int(key)?.ok_or_else(|| err(key, "missing".into())) };
        if let Some(model_type) = json.get("model_type").and_then(|v| v.as_str()) {
            if model_type != "gpt2" {
                return Err(err("model_type", format!("'{model_type}' is not a GPT-2 model")));
            }
        }
        let context_length = match int("n_positions")? {
            Some(n) => n,
            None => int("n_ctx")?.ok_or_else(|| err("n_positions", "missing (and no 'n_ctx' either)".into()))?,
        };
        let emb_dim = required("n_embd")?;
        let cfg = GptConfig {
            vocab_size: required("vocab_size")?,
            context_length,
            emb_dim,
            n_heads: required("n_head")?,
            n_layers: required("n_layer")?,
            drop_rate: json.get("resid_pdrop").and_then(|v| v.as_f64()).unwrap_or(0.1),
            qkv_bias: true,
        };
        if let Some(eps) = json.get("layer_norm_epsilon").and_then(|v| v.as_f64()) {
            if (eps - BOOK_LAYER_NORM_EPS).abs() > 1e-12 {
                return Err(err("layer_norm_epsilon", format!("{eps}: the book's LayerNorm uses {BOOK_LAYER_NORM_EPS}")));
            }
        }
        if let Some(act) = json.get("activation_function").and_then(|v| v.as_str()) {
            if act != "gelu_new" && act != "gelu_pytorch_tanh" {
                return Err(err("activation_function", format!("'{act}': the book's GELU is the tanh approximation ('gelu_new')")));
            }
        }
        if let Some(n_inner) = int("n_inner")? {
            if n_inner != 4 * emb_dim {
                return Err(err("n_inner", format!("{n_inner}: the book's feed-forward layer has 4 * n_embd = {}", 4 * emb_dim)));
            }
        }
        if json.get("scale_attn_by_inverse_layer_idx").and_then(|v| v.as_bool()) == Some(true) {
            return Err(err("scale_attn_by_inverse_layer_idx", "true: the book scales every block's scores alike".into()));
        }
        cfg.validate().map_err(|e| match e {
            Error::Config { reason, .. } => Error::Config { what: path.display().to_string(), reason },
            other => other,
        })?;
        Ok(cfg)
    }
}

/// How a Hugging Face GPT-2 tensor becomes book parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfLayout {
    /// Copied unchanged (embeddings, LayerNorm scale/shift, biases, `lm_head.weight`).
    AsIs,
    /// A `Conv1D` weight `[in, out]` becomes a `Linear` weight `[out, in]`.
    Transposed,
    /// `c_attn.weight` `[emb, 3 emb]`: split into three `[emb, emb]` along the last axis (query,
    /// key, value), each transposed.
    SplitQkvWeight,
    /// `c_attn.bias` `[3 emb]`: split into three `[emb]` (query, key, value).
    SplitQkvBias,
}

/// One line of the name map: a file tensor (without the `transformer.` prefix), its shape in
/// the file, and the book parameters it fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfKeyMapping {
    pub hf_key: String,
    pub hf_shape: Vec<i64>,
    pub book_keys: Vec<String>,
    pub layout: HfLayout,
}

/// The map from Hugging Face GPT-2 names to the book's parameter names for `cfg`, in file
/// order. With `tied` (no `lm_head.weight` in the file), `wte.weight` fills both `tok_emb.weight`
/// and `out_head.weight`; otherwise `lm_head.weight` fills `out_head.weight`. Every parameter of
/// `GptModel::new(cfg)` (with `qkv_bias`) appears exactly once.
pub fn hf_gpt2_key_map(cfg: &GptConfig, tied: bool) -> Vec<HfKeyMapping> {
    let (v, c, d) = (cfg.vocab_size, cfg.context_length, cfg.emb_dim);
    let line = |hf_key: String, hf_shape: &[i64], book_keys: Vec<String>, layout: HfLayout| HfKeyMapping {
        hf_key,
        hf_shape: hf_shape.to_vec(),
        book_keys,
        layout,
    };
    let mut wte_targets = vec!["tok_emb.weight".to_string()];
    if tied {
        wte_targets.push("out_head.weight".to_string());
    }
    let mut map = vec![
        line("wte.weight".into(), &[v, d], wte_targets, HfLayout::AsIs),
        line("wpe.weight".into(), &[c, d], vec!["pos_emb.weight".into()], HfLayout::AsIs),
    ];
    for i in 0..cfg.n_layers {
        let (h, b) = (format!("h.{i}"), format!("trf_blocks.{i}"));
        let qkv = |what: &str| ["W_query", "W_key", "W_value"].iter().map(|w| format!("{b}.att.{w}.{what}")).collect();
        map.extend([
            line(format!("{h}.ln_1.weight"), &[d], vec![format!("{b}.norm1.scale")], HfLayout::AsIs),
            line(format!("{h}.ln_1.bias"), &[d], vec![format!("{b}.norm1.shift")], HfLayout::AsIs),
            line(format!("{h}.attn.c_attn.weight"), &[d, 3 * d], qkv("weight"), HfLayout::SplitQkvWeight),
            line(format!("{h}.attn.c_attn.bias"), &[3 * d], qkv("bias"), HfLayout::SplitQkvBias),
            line(format!("{h}.attn.c_proj.weight"), &[d, d], vec![format!("{b}.att.out_proj.weight")], HfLayout::Transposed),
            line(format!("{h}.attn.c_proj.bias"), &[d], vec![format!("{b}.att.out_proj.bias")], HfLayout::AsIs),
            line(format!("{h}.ln_2.weight"), &[d], vec![format!("{b}.norm2.scale")], HfLayout::AsIs),
            line(format!("{h}.ln_2.bias"), &[d], vec![format!("{b}.norm2.shift")], HfLayout::AsIs),
            line(format!("{h}.mlp.c_fc.weight"), &[d, 4 * d], vec![format!("{b}.ff.layers.0.weight")], HfLayout::Transposed),
            line(format!("{h}.mlp.c_fc.bias"), &[4 * d], vec![format!("{b}.ff.layers.0.bias")], HfLayout::AsIs),
            line(format!("{h}.mlp.c_proj.weight"), &[4 * d, d], vec![format!("{b}.ff.layers.2.weight")], HfLayout::Transposed),
            line(format!("{h}.mlp.c_proj.bias"), &[d], vec![format!("{b}.ff.layers.2.bias")], HfLayout::AsIs),
        ]);
    }
    map.push(line("ln_f.weight".into(), &[d], vec!["final_norm.scale".into()], HfLayout::AsIs));
    map.push(line("ln_f.bias".into(), &[d], vec!["final_norm.shift".into()], HfLayout::AsIs));
    if !tied {
        map.push(line("lm_head.weight".into(), &[v, d], vec!["out_head.weight".into()], HfLayout::AsIs));
    }
    map
}

/// Whether `key` (without the `transformer.` prefix) is one of GPT-2's buffers, which the file
/// may hold and loading skips: the causal mask `h.{i}.attn.bias` and `h.{i}.attn.masked_bias`.
fn is_hf_buffer(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("h.") else { return false };
    let Some((layer, name)) = rest.split_once('.') else { return false };
    !layer.is_empty() && layer.bytes().all(|c| c.is_ascii_digit()) && (name == "attn.bias" || name == "attn.masked_bias")
}

/// Copy a Hugging Face GPT-2 `model.safetensors` into the variables of `vs`, which hold a
/// [`GptModel`] built with `cfg` (which must have `qkv_bias: true`).
///
/// Everything is checked before anything is copied, so a failed load leaves the model as it
/// was: every tensor the model needs must be in the file (else [`Error::MissingTensor`] naming
/// the file's key), with the shape `cfg` implies (else [`Error::ShapeMismatch`] naming the
/// file's key and both shapes); the file may hold no other tensors than GPT-2's mask buffers
/// (else [`Error::UnexpectedTensor`]); every variable of `vs` is assigned exactly once. Names may
/// carry the `transformer.` prefix of `save_pretrained` or not (the hub's layout). Values are
/// converted to each variable's kind and device; the copies run without gradient tracking.
///
/// # Shapes
/// see the table in the [module documentation](self).
pub fn load_hf_gpt2(vs: &VarStore, cfg: &GptConfig, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if !cfg.qkv_bias {
        return Err(Error::Config {
            what: "GptConfig".into(),
            reason: "GPT-2's weights have query/key/value biases: build the model with qkv_bias: true".into(),
        });
    }
    let file = SafetensorsFile::open(path)?;
    // Names without the `transformer.` prefix -> names in the file.
    let mut keys: BTreeMap<&str, &str> = BTreeMap::new();
    for name in file.names() {
        let short = name.strip_prefix("transformer.").unwrap_or(name);
        if let Some(other) = keys.insert(short, name) {
            return Err(Error::Format { path: path.into(), reason: format!("both '{other}' and '{name}' hold '{short}'") });
        }
    }
    let prefix = if file.names().any(|n| n.starts_with("transformer.")) { "transformer." } else { "" };
    let map = hf_gpt2_key_map(cfg, !keys.contains_key("lm_head.weight"));

    // Check everything first.
    let vars = vs.variables();
    let mut targets = BTreeSet::new();
    for m in &map {
        let file_key = keys.get(m.hf_key.as_str()).ok_or_else(|| Error::MissingTensor {
            name: if m.hf_key == "lm_head.weight" { m.hf_key.clone() } else { format!("{prefix}{}", m.hf_key) },
            path: path.into(),
        })?;
        let found = &file.entries[*file_key].shape;
        if found != &m.hf_shape {
            return Err(Error::ShapeMismatch { name: file_key.to_string(), expected: m.hf_shape.clone(), found: found.clone() });
        }
        for book_key in &m.book_keys {
            if !vars.contains_key(book_key) {
                return Err(Error::Config {
                    what: format!("{}: '{file_key}'", path.display()),
                    reason: format!("the model has no parameter '{book_key}' to receive it"),
                });
            }
            assert!(targets.insert(book_key.as_str()), "hf_gpt2_key_map assigns '{book_key}' twice");
        }
    }
    let mapped: BTreeSet<&str> = map.iter().map(|m| m.hf_key.as_str()).collect();
    if let Some((_, name)) = keys.iter().find(|(short, _)| !mapped.contains(*short) && !is_hf_buffer(short)) {
        return Err(Error::UnexpectedTensor { name: name.to_string(), path: path.into() });
    }
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    if let Some(name) = names.into_iter().find(|n| !targets.contains(n.as_str())) {
        return Err(Error::MissingTensor {
            name: format!("{name} (a model parameter that a GPT-2 file does not provide)"),
            path: path.into(),
        });
    }

    // Then copy, one file tensor at a time.
    let _no_grad = tch::no_grad_guard();
    for m in &map {
        let src = file.read(keys[m.hf_key.as_str()])?;
        // One part per book parameter (`wte.weight` fills two when the head is tied).
        let parts: Vec<Tensor> = match m.layout {
            HfLayout::AsIs => m.book_keys.iter().map(|_| src.shallow_clone()).collect(),
            HfLayout::Transposed => vec![src.tr()], // [in, out] -> [out, in]
            HfLayout::SplitQkvWeight => src.chunk(3, -1).iter().map(|w| w.tr()).collect(), // 3 x [emb, emb], transposed
            HfLayout::SplitQkvBias => src.chunk(3, -1), // 3 x [emb]
        };
        assert_eq!(parts.len(), m.book_keys.len(), "{}: one part per book parameter", m.hf_key);
        for (book_key, part) in m.book_keys.iter().zip(&parts) {
            let var = &vars[book_key];
            let expected = var.size();
            if part.size() != expected {
                return Err(Error::ShapeMismatch { name: book_key.clone(), expected, found: part.size() });
            }
            var.shallow_clone().f_copy_(part)?;
        }
    }
    Ok(())
}

/// Where a GPT-2 checkpoint's two files are: found by [`Gpt2Checkpoint::locate`] from a model
/// name (through the data module) or a local folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt2Checkpoint {
    /// The Hugging Face name (`gpt2`, ...) or the folder given.
    pub name: String,
    pub config_path: PathBuf,
    pub weights_path: PathBuf,
}

/// Names accepted for each checkpoint besides its Hugging Face name: the crate's presets.
const GPT2_ALIASES: &[(&str, &str)] = &[
    ("gpt2-small", "gpt2"),
    ("124M", "gpt2"),
    ("355M", "gpt2-medium"),
    ("774M", "gpt2-large"),
    ("1558M", "gpt2-xl"),
];

impl Gpt2Checkpoint {
    /// The checkpoint named `name_or_path`: a folder holding `config.json` and
    /// `model.safetensors` (what `save_pretrained` writes), or one of `gpt2`, `gpt2-medium`,
    /// `gpt2-large`, `gpt2-xl` (also `openai-community/gpt2`, ..., and the presets' names
    /// `gpt2-small`, `124M`, `355M`, `774M`, `1558M`), fetched through `store`: from its local
    /// folder (`LLM_DATA_DIR/openai-community/<name>/...`), the cache, or Hugging Face.
    pub fn locate(name_or_path: &str, store: &DataStore) -> Result<Self> {
        let dir = Path::new(name_or_path);
        if dir.is_dir() {
            let (config_path, weights_path) = (dir.join("config.json"), dir.join("model.safetensors"));
            for p in [&config_path, &weights_path] {
                if !p.is_file() {
                    return Err(Error::io(p, std::io::Error::new(std::io::ErrorKind::NotFound, "a GPT-2 folder needs config.json and model.safetensors")));
                }
            }
            return Ok(Self { name: name_or_path.to_string(), config_path, weights_path });
        }
        let checkpoint = Self::checkpoint_named(name_or_path)?;
        let fetch = |file| {
            store.fetch(file).map_err(|e| match e {
                Error::Download(msg) => Error::Download(format!(
                    "GPT-2 '{}': {msg} Or pass the path of a folder holding config.json and model.safetensors.",
                    checkpoint.name
                )),
                other => other,
            })
        };
        Ok(Self {
            name: checkpoint.name.to_string(),
            config_path: fetch(&checkpoint.config)?,
            weights_path: fetch(&checkpoint.weights)?,
        })
    }

    /// The data module's entry for a GPT-2 name (see [`locate`](Self::locate)).
    pub fn checkpoint_named(name: &str) -> Result<&'static HfCheckpoint> {
        let short = name.strip_prefix("openai-community/").unwrap_or(name);
        let short = GPT2_ALIASES.iter().find(|(alias, _)| *alias == short).map(|(_, n)| *n).unwrap_or(short);
        HF_GPT2_CHECKPOINTS.iter().find(|c| c.name == short).ok_or_else(|| Error::InvalidArgument {
            name: "GPT-2 model",
            reason: format!(
                "'{name}' is neither a folder holding config.json and model.safetensors nor a GPT-2 name ({})",
                HF_GPT2_CHECKPOINTS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Build the model `config.json` describes on `device` and copy the weights into it.
    /// (Building draws the random initial values first, from libtorch's global generator.)
    pub fn load(&self, device: Device) -> Result<(VarStore, GptModel, GptConfig)> {
        let cfg = GptConfig::from_hf_config_json(&self.config_path)?;
        let vs = nn::VarStore::new(device);
        let model = GptModel::new(&vs.root(), &cfg);
        load_hf_gpt2(&vs, &cfg, &self.weights_path)?;
        Ok((vs, model, cfg))
    }
}

impl GptModel {
    /// OpenAI's pretrained GPT-2 in the book's model (chapter 5.5): `gpt2` (124M),
    /// `gpt2-medium`, `gpt2-large` or `gpt2-xl` from Hugging Face (downloaded once into the
    /// cache, or read from `LLM_DATA_DIR/openai-community/<name>/`), or a local folder holding
    /// `config.json` and `model.safetensors`. Returns the var store (for training or saving),
    /// the model and its config (`qkv_bias: true`, the context length of `config.json`).
    ///
    /// ```no_run
    /// use llm_from_scratch::ch04::GptModel;
    /// let (vs, gpt, cfg) = GptModel::from_pretrained_gpt2("gpt2", tch::Device::Cpu)?;
    /// assert_eq!((cfg.emb_dim, cfg.context_length), (768, 1024));
    /// # Ok::<(), llm_from_scratch::Error>(())
    /// ```
    pub fn from_pretrained_gpt2(name_or_path: &str, device: Device) -> Result<(VarStore, GptModel, GptConfig)> {
        Gpt2Checkpoint::locate(name_or_path, &DataStore::from_env())?.load(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_map_assigns_every_parameter_of_the_model_once() {
        let _rng = crate::util::device::rng_lock();
        let cfg = GptConfig { qkv_bias: true, n_layers: 3, ..GptConfig::tiny() };
        let vs = VarStore::new(Device::Cpu);
        let _model = GptModel::new(&vs.root(), &cfg);
        let mut want: Vec<String> = vs.variables().into_keys().collect();
        want.sort();
        for tied in [true, false] {
            let map = hf_gpt2_key_map(&cfg, tied);
            let mut got: Vec<String> = map.iter().flat_map(|m| m.book_keys.clone()).collect();
            got.sort();
            assert_eq!(got, want, "tied = {tied}");
            // 2 embeddings + 12 tensors per block + 2 final norm (+ lm_head when untied).
            assert_eq!(map.len() as i64, 4 + 12 * cfg.n_layers + i64::from(!tied), "tied = {tied}");
        }
    }

    #[test]
    fn buffers_are_recognised_and_parameters_are_not() {
        assert!(is_hf_buffer("h.0.attn.bias") && is_hf_buffer("h.11.attn.masked_bias"));
        for key in ["h.0.attn.c_attn.bias", "h.x.attn.bias", "h..attn.bias", "wte.weight", "attn.bias"] {
            assert!(!is_hf_buffer(key), "{key}");
        }
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = Gpt2Checkpoint::checkpoint_named("gpt3").unwrap_err().to_string();
        assert!(err.contains("'gpt3'") && err.contains("gpt2, gpt2-medium, gpt2-large, gpt2-xl"), "{err}");
        assert_eq!(Gpt2Checkpoint::checkpoint_named("openai-community/gpt2-xl").unwrap().name, "gpt2-xl");
        assert_eq!(Gpt2Checkpoint::checkpoint_named("124M").unwrap().name, "gpt2");
        assert_eq!(Gpt2Checkpoint::checkpoint_named("gpt2-medium").unwrap().weights.name, "openai-community/gpt2-medium/model.safetensors");
    }

    #[test]
    fn hf_config_json_sizes_are_read_and_unsupported_settings_named() {
        let dir = std::env::temp_dir().join(format!("llm-fs-hfcfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        let base = serde_json::json!({"model_type": "gpt2", "vocab_size": 300, "n_ctx": 48, "n_embd": 64,
            "n_head": 4, "n_layer": 2, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "n_inner": null});
        std::fs::write(&path, base.to_string()).unwrap();
        let cfg = GptConfig::from_hf_config_json(&path).unwrap();
        let want = GptConfig { vocab_size: 300, context_length: 48, emb_dim: 64, n_heads: 4, n_layers: 2, drop_rate: 0.1, qkv_bias: true };
        assert_eq!(cfg, want, "n_ctx is the context length when n_positions is absent");
        for (key, value, needle) in [
            ("n_embd", serde_json::Value::Null, "key 'n_embd': missing"),
            ("n_head", serde_json::json!(5), "not divisible"),
            ("layer_norm_epsilon", serde_json::json!(1e-6), "key 'layer_norm_epsilon'"),
            ("activation_function", serde_json::json!("relu"), "key 'activation_function'"),
            ("n_inner", serde_json::json!(100), "key 'n_inner'"),
            ("vocab_size", serde_json::json!("many"), "key 'vocab_size': expected an integer"),
        ] {
            let mut json = base.clone();
            json[key] = value;
            std::fs::write(&path, json.to_string()).unwrap();
            let err = GptConfig::from_hf_config_json(&path).unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains("config.json"), "{key}: {err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
