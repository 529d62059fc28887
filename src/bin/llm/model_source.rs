//! Where a command's model comes from: a preset with seeded random weights, OpenAI's GPT-2
//! weights (Hugging Face format), a safetensors file of weights under the book's names, or a
//! checkpoint folder written by `llm pretrain`.
//! Shared by `llm generate` and the finetuning commands.

use std::path::PathBuf;

use anyhow::{Context, Result};
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
    /// Load pretrained weights: `gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl` (OpenAI's, from
    /// Hugging Face through the data cache or LLM_DATA_DIR), a Hugging Face folder
    /// (`config.json` + `model.safetensors`), or a `.safetensors` file with the book's parameter
    /// names (loaded into --config's model).
    #[arg(long, conflicts_with = "checkpoint")]
    pub weights: Option<String>,
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
        if let Some(name) = self.weights.as_deref().filter(|w| !w.ends_with(".safetensors")) {
            // A Hugging Face GPT-2: its config.json gives the sizes.
            let (vs, model, cfg) = GptModel::from_pretrained_gpt2(name, device)?;
            return Ok(LoadedModel { vs, model, cfg });
        }
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
            load_safetensors(&vs, path).with_context(|| format!("loading weights from {path}"))?;
        }
        vs.set_device(device);
        Ok(LoadedModel { vs, model, cfg })
    }
}
