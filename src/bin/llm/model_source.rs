//! Where a command's model comes from: a preset with seeded random weights, a safetensors file
//! of weights under the book's names, or a checkpoint folder written by `llm pretrain`.
//! Shared by `llm generate` and the finetuning commands.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use llm_from_scratch::ch04::{load_safetensors, GptConfig, GptModel};
use llm_from_scratch::ch05::read_checkpoint;
use tch::{nn, Device};

/// The options that choose a model.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model preset (gpt2-small/124M, gpt2-medium/355M, gpt2-large/774M, gpt2-xl/1558M, tiny) or a
    /// JSON config file with the book's keys. Ignored with --checkpoint (its config is used).
    #[arg(long, default_value = "gpt2-small")]
    pub config: String,
    /// Seed for random initial weights (`torch.manual_seed`), when no weights are loaded.
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
    /// Load these weights: a safetensors file with the book's parameter names.
    #[arg(long, conflicts_with = "checkpoint")]
    pub weights: Option<PathBuf>,
    /// Load the model of a checkpoint folder written by `llm pretrain`.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
}

/// Resolve `--config`: a preset name, or a path to a `.json` file.
pub fn load_config(config: &str) -> Result<GptConfig> {
    if config.ends_with(".json") {
        Ok(GptConfig::from_json_file(config)?)
    } else {
        Ok(GptConfig::from_preset_name(config)?)
    }
}

/// A model with its variables and config.
#[allow(dead_code)] // `vs` is what finetuning commands train and save
pub struct LoadedModel {
    pub vs: nn::VarStore,
    pub model: GptModel,
    pub cfg: GptConfig,
}

impl ModelArgs {
    /// Build the model on the CPU (after seeding, so a seed gives the book's weights bit for bit
    /// whatever the device), load the chosen weights, then move it to `device`.
    pub fn load(&self, device: Device) -> Result<LoadedModel> {
        let _rng = llm_from_scratch::rng_lock();
        llm_from_scratch::set_seed(self.seed);
        let (cfg, checkpoint) = match &self.checkpoint {
            Some(dir) => {
                let ckpt = read_checkpoint(dir)?;
                (ckpt.meta.config.clone(), Some(ckpt))
            }
            None => (load_config(&self.config)?, None),
        };
        let mut vs = nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &cfg);
        if let Some(ckpt) = &checkpoint {
            ckpt.load_model(&vs)?;
        }
        if let Some(path) = &self.weights {
            if path.is_dir() {
                bail!("{}: a folder; --weights takes a .safetensors file with the book's parameter names", path.display());
            }
            load_safetensors(&vs, path).with_context(|| format!("loading weights from {}", path.display()))?;
        }
        vs.set_device(device);
        Ok(LoadedModel { vs, model, cfg })
    }
}
