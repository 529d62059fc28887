//! Chapter 5.4, "Loading and saving model weights in PyTorch": checkpoints that hold the model,
//! the AdamW state and where the run stands, so that training resumes exactly.
//!
//! A checkpoint is a folder with one file that matters, `checkpoint.safetensors`:
//! - the model's parameters under the book's state-dict keys (`tok_emb.weight`, ...), so the
//!   file loads in PyTorch with `model.load_state_dict(load_file(path), strict=False)`;
//! - AdamW's state under `optimizer.exp_avg.<name>`, `optimizer.exp_avg_sq.<name>`,
//!   `optimizer.step.<name>` (the book's `optimizer.state_dict()`);
//! - in the safetensors header's metadata, under `llm_from_scratch`, JSON with the model
//!   config, AdamW's hyper-parameters, the training settings and the [`TrainState`] (step,
//!   epoch, tokens seen, history).
//!
//! The same JSON is written beside it as `checkpoint.json`, and that file is the one
//! [`read_checkpoint`] reads: edit it (another `start_context`, more `num_epochs`) and the edit
//! counts. A config that disagrees with the tensors (another `emb_dim`) is an error naming the
//! tensor and both shapes. Both files carry the same `save_id`; a `checkpoint.json` with another
//! one (a save interrupted between the two files, or a JSON copied from another checkpoint) is
//! ignored in favour of the header's copy, which is always written with the tensors. A lone
//! `.safetensors` file is read with its header's metadata.
//!
//! Both files are written to a temporary file in the same folder, flushed, then renamed over the
//! old one, so a save that is interrupted leaves the previous checkpoint whole.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::Tensor;

use crate::nn::config::GptConfig;
use crate::error::{Error, Result};
use crate::nn::model::copy_named_into;
use crate::training::optim::{AdamW, AdamWHyper};
use crate::nn::tensor_file::{write_safetensors, SafetensorsFile};
use crate::util::files::write_atomic;
use crate::training::trainer::{TrainSettings, TrainState};

/// The checkpoint file inside a checkpoint folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
/// The readable copy of the metadata.
pub const METADATA_FILE: &str = "checkpoint.json";
const METADATA_KEY: &str = "llm_from_scratch";
/// The key of the JSON (in both copies) that ties `checkpoint.json` to the tensors of its save.
const SAVE_ID_KEY: &str = "save_id";
const OPTIMIZER_PREFIX: &str = "optimizer.";
/// Version of the metadata layout, checked on load.
pub const FORMAT_VERSION: u32 = 1;

/// What a checkpoint says about itself (the JSON in the file's header).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointMeta {
    pub format_version: u32,
    pub config: GptConfig,
    pub optimizer: Option<AdamWHyper>,
    pub settings: Option<TrainSettings>,
    pub state: TrainState,
    /// Anything else the writer wants to remember (the CLI stores its data and loader settings).
    #[serde(default)]
    pub extra: serde_json::Value,
}

impl CheckpointMeta {
    /// Metadata for a model alone (no training run).
    pub fn model_only(config: &GptConfig) -> Self {
        CheckpointMeta {
            format_version: FORMAT_VERSION,
            config: config.clone(),
            optimizer: None,
            settings: None,
            state: TrainState::default(),
            extra: serde_json::Value::Null,
        }
    }

    /// Metadata for a training run of a model: its settings and where it stands, so that
    /// [`crate::training::trainer::train_steps`] continues it from the checkpoint.
    pub fn run(config: &GptConfig, settings: &TrainSettings, state: &TrainState) -> Self {
        CheckpointMeta { settings: Some(settings.clone()), state: state.clone(), ..CheckpointMeta::model_only(config) }
    }
}

/// A checkpoint read from disk: its metadata and its tensors (on the CPU).
#[derive(Debug)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub meta: CheckpointMeta,
    /// The model's parameters, by the book's names.
    pub model: HashMap<String, Tensor>,
    /// AdamW's state tensors, by the names [`AdamW::state_tensors`] gives them.
    pub optimizer: Vec<(String, Tensor)>,
}

impl Checkpoint {
    /// Copy the model's parameters into `vs` (strict: errors name the tensor and both shapes).
    pub fn load_model(&self, vs: &VarStore) -> Result<()> {
        copy_named_into(vs, &self.model, &self.path)
    }

    /// Restore AdamW's state and hyper-parameters into `optimizer` (built over the same model).
    pub fn load_optimizer(&self, optimizer: &mut AdamW) -> Result<()> {
        let hyper = self.meta.optimizer.as_ref().ok_or_else(|| Error::Format {
            path: self.path.clone(),
            reason: "the checkpoint holds no optimizer state (it was saved without one)".into(),
        })?;
        optimizer.load_state(&self.optimizer, hyper, &self.path.display().to_string())
    }
}

/// Save the model's variables (and AdamW's state, if given) with `meta` into the folder `dir`,
/// creating it if needed. Writes to temporary files and renames them, so an interrupted save
/// never leaves a broken checkpoint in place of the previous one. With an optimizer, the saved
/// metadata records its hyper-parameters (whatever `meta.optimizer` says), so that
/// [`Checkpoint::load_optimizer`] can restore it.
pub fn save_checkpoint(dir: impl AsRef<Path>, vs: &VarStore, optimizer: Option<&AdamW>, meta: &CheckpointMeta) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    if let Some(opt) = optimizer {
        named.extend(opt.state_tensors().into_iter().map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)));
    }
    let mut meta = meta.clone();
    meta.optimizer = optimizer.map(AdamW::hyper_parameters);
    let mut value = serde_json::to_value(&meta).expect("checkpoint metadata serialises");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    value[SAVE_ID_KEY] = format!("{}-{}-{}", now.as_secs(), now.subsec_nanos(), std::process::id()).into();
    let json = serde_json::to_string_pretty(&value).expect("checkpoint metadata serialises");
    write_safetensors(&dir.join(CHECKPOINT_FILE), &named, &BTreeMap::from([(METADATA_KEY.to_string(), json.clone())]))?;
    write_atomic(&dir.join(METADATA_FILE), json.as_bytes())
}

/// Read the checkpoint in folder `dir` (or the `checkpoint.safetensors` file itself). A missing,
/// truncated or corrupted file is an error naming it; nothing panics.
pub fn read_checkpoint(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let file = if path.is_dir() { path.join(CHECKPOINT_FILE) } else { path.to_path_buf() };
    let st = SafetensorsFile::open(&file)?;
    let bad = |reason: String| Error::Format { path: file.clone(), reason };
    let header = st
        .metadata
        .get(METADATA_KEY)
        .ok_or_else(|| bad(format!("no '{METADATA_KEY}' metadata: not a checkpoint written by llm-from-scratch")))?;
    let header: serde_json::Value = serde_json::from_str(header).map_err(|e| bad(format!("checkpoint metadata: {e}")))?;
    // checkpoint.json beside the file, when it belongs to the same save: the one source of truth.
    let json_file = file.with_file_name(METADATA_FILE);
    let (json, meta_path) = match std::fs::read(&json_file) {
        Ok(bytes) => {
            let json: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Format { path: json_file.clone(), reason: format!("not JSON: {e}") })?;
            match header.get(SAVE_ID_KEY) {
                Some(id) if json.get(SAVE_ID_KEY) == Some(id) => (json, json_file),
                _ => (header, file.clone()), // another save's JSON, or a checkpoint from before save ids
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (header, file.clone()),
        Err(e) => return Err(Error::io(json_file, e)),
    };
    let meta: CheckpointMeta = serde_json::from_value(json)
        .map_err(|e| Error::Format { path: meta_path.clone(), reason: format!("checkpoint metadata: {e}") })?;
    if meta.format_version != FORMAT_VERSION {
        return Err(bad(format!("checkpoint format {} (this version reads {FORMAT_VERSION})", meta.format_version)));
    }
    let mut model = HashMap::new();
    let mut optimizer = Vec::new();
    for (name, t) in st.read_all()? {
        match name.strip_prefix(OPTIMIZER_PREFIX) {
            Some(rest) => optimizer.push((rest.to_string(), t)),
            None => {
                model.insert(name, t);
            }
        }
    }
    optimizer.sort_by(|a, b| a.0.cmp(&b.0));
    check_config_against_tensors(&meta.config, &model, &meta_path, &file)?;
    Ok(Checkpoint { path: file, meta, model, optimizer })
}

/// The shapes that `config` gives the tensors which every GPT model has (embeddings, the first
/// and last blocks' query weights and feed-forward, the final norm) must be the file's, and the
/// file must hold `n_layers` blocks: an error names the tensor, both shapes and both files.
fn check_config_against_tensors(cfg: &GptConfig, tensors: &HashMap<String, Tensor>, meta_path: &Path, file: &Path) -> Result<()> {
    let e = cfg.emb_dim;
    let last = cfg.n_layers - 1;
    let expected: Vec<(String, Vec<i64>)> = vec![
        ("tok_emb.weight".into(), vec![cfg.vocab_size, e]),
        ("pos_emb.weight".into(), vec![cfg.context_length, e]),
        ("trf_blocks.0.att.W_query.weight".into(), vec![e, e]),
        ("trf_blocks.0.ff.layers.0.weight".into(), vec![4 * e, e]),
        (format!("trf_blocks.{last}.att.W_query.weight"), vec![e, e]),
        ("final_norm.scale".into(), vec![e]),
    ];
    let disagree = |reason: String| Error::Config {
        what: meta_path.display().to_string(),
        reason: format!("{reason} in {} (the config disagrees with the weights)", file.display()),
    };
    for (name, shape) in expected {
        match tensors.get(&name) {
            Some(t) if t.size() != shape => {
                return Err(disagree(format!("the config gives tensor '{name}' shape {shape:?}, the file has {:?}", t.size())));
            }
            None if name.ends_with(".W_query.weight") && tensors.contains_key("trf_blocks.0.att.W_query.weight") => {
                return Err(disagree(format!("n_layers {} needs tensor '{name}', missing", cfg.n_layers)));
            }
            _ => {}
        }
    }
    let next_block = format!("trf_blocks.{}.", cfg.n_layers);
    if let Some(name) = tensors.keys().filter(|k| k.starts_with(&next_block)).min() {
        return Err(disagree(format!("n_layers {} has no block {}, but the file holds tensor '{name}'", cfg.n_layers, cfg.n_layers)));
    }
    Ok(())
}



#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::model::GptModel;
    use crate::training::trainer::TrainSettings;
    use tch::Device;

    fn edit_json(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join(METADATA_FILE);
        let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }

    #[test]
    fn checkpoint_json_is_read_and_checked_against_the_tensors() {
        let _rng = crate::util::device::rng_lock(); // building the model draws from the generator
        let dir = std::env::temp_dir().join(format!("llm-fs-ckpt-json-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = GptConfig { vocab_size: 50, context_length: 8, emb_dim: 16, n_heads: 2, n_layers: 2, ..GptConfig::tiny() };
        let vs = VarStore::new(Device::Cpu);
        let _model = GptModel::new(&vs.root(), &cfg);
        let meta = CheckpointMeta::run(&cfg, &TrainSettings::book(2, 5, 1, "Hi"), &TrainState::default());
        save_checkpoint(&dir, &vs, None, &meta).unwrap();
        assert_eq!(read_checkpoint(&dir).unwrap().meta, meta, "read back as saved");

        // An edit of checkpoint.json counts: it is the file read.
        edit_json(&dir, |j| j["settings"]["num_epochs"] = 7.into());
        assert_eq!(read_checkpoint(&dir).unwrap().meta.settings.unwrap().num_epochs, 7);

        // A config that disagrees with the tensors is an error naming the tensor and both shapes.
        edit_json(&dir, |j| j["config"]["emb_dim"] = 32.into());
        let err = read_checkpoint(&dir).unwrap_err().to_string();
        let json_path = dir.join(METADATA_FILE);
        assert!(err.starts_with(&format!("config {}: the config gives tensor 'tok_emb.weight' shape [50, 32], the file has [50, 16] in ", json_path.display())), "{err}");
        edit_json(&dir, |j| {
            j["config"]["emb_dim"] = 16.into();
            j["config"]["n_layers"] = 1.into();
        });
        let err = read_checkpoint(&dir).unwrap_err().to_string();
        assert!(err.contains("n_layers 1 has no block 1, but the file holds tensor 'trf_blocks.1."), "{err}");
        edit_json(&dir, |j| j["config"]["n_layers"] = 3.into());
        let err = read_checkpoint(&dir).unwrap_err().to_string();
        assert!(err.contains("n_layers 3 needs tensor 'trf_blocks.2.att.W_query.weight', missing"), "{err}");

        // A checkpoint.json of another save (one interrupted between the two files) is ignored:
        // the header's copy, written with the tensors, is read.
        edit_json(&dir, |j| {
            j["config"]["n_layers"] = 3.into();
            j[SAVE_ID_KEY] = "another save".into();
        });
        assert_eq!(read_checkpoint(&dir).unwrap().meta, meta, "the header's metadata");
        std::fs::remove_file(dir.join(METADATA_FILE)).unwrap();
        assert_eq!(read_checkpoint(&dir).unwrap().meta, meta, "no checkpoint.json: the header's metadata");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
