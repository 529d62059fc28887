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
//! A readable copy of that JSON is written beside it as `checkpoint.json`. Both are written to a
//! temporary file in the same folder, flushed, then renamed over the old one, so a save that is
//! interrupted leaves the previous checkpoint whole.

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
    let json = serde_json::to_string_pretty(&meta).expect("checkpoint metadata serialises");
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
    let json = st
        .metadata
        .get(METADATA_KEY)
        .ok_or_else(|| bad(format!("no '{METADATA_KEY}' metadata: not a checkpoint written by llm-from-scratch")))?;
    let meta: CheckpointMeta = serde_json::from_str(json).map_err(|e| bad(format!("checkpoint metadata: {e}")))?;
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
    Ok(Checkpoint { path: file, meta, model, optimizer })
}


