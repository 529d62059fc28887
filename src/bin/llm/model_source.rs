//! Where a command's model comes from: a preset with seeded random weights, OpenAI's GPT-2
//! weights (Hugging Face format), a safetensors file of weights under the book's names, or the
//! model of a run folder written by `llm pretrain`, `finetune-spam` or `finetune-instruct`.
//! Flattened into every command that builds a model (`generate`, `pretrain`, the fine-tuning
//! commands), so the same flags mean the same thing everywhere.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use llm_from_scratch::appendix_e::replace_linear_with_lora;
use llm_from_scratch::ch04::{load_safetensors, GptConfig, GptModel};
use llm_from_scratch::ch07::PromptStyle;
use llm_from_scratch::ch05::{read_checkpoint, Checkpoint, TrainSettings};
use tch::{nn, Device};

/// The options that choose a model.
#[derive(Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// Model preset (gpt2-small/124M, gpt2-medium/355M, gpt2-large/774M, gpt2-xl/1558M, tiny) or a
    /// JSON config file with the book's keys [default: gpt2-small]. Ignored with --model (the
    /// run's config is used) and with Hugging Face --weights (theirs is).
    #[arg(long)]
    pub config: Option<String>,
    /// Seed of the random initial weights (`torch.manual_seed`), and of the run's shuffling and
    /// dropout in the training commands.
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
    /// Load pretrained weights: `gpt2`, `gpt2-medium`, `gpt2-large`, `gpt2-xl` (OpenAI's, from
    /// Hugging Face through the data cache or LLM_DATA_DIR), a Hugging Face folder
    /// (`config.json` + `model.safetensors`), or a `.safetensors` file with the book's parameter
    /// names (loaded into --config's model).
    #[arg(long, conflicts_with = "run")]
    pub weights: Option<String>,
    /// The model of a run folder written by `llm pretrain`, `finetune-spam` or
    /// `finetune-instruct` (its checkpoint).
    #[arg(id = "run", long = "model", visible_alias = "checkpoint", value_name = "DIR")]
    pub run: Option<PathBuf>,
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
pub struct LoadedModel {
    pub vs: nn::VarStore,
    pub model: GptModel,
    pub cfg: GptConfig,
    /// What the run that saved the model recorded with it (its command's run data; JSON null for
    /// a model that no run saved): the LoRA updates and the prompt style of an instruction model.
    pub run_data: serde_json::Value,
}

/// The key of a run's data under which `llm finetune-instruct` records `(rank, alpha)` of the
/// model's LoRA updates (exercise 7.4).
pub const LORA_KEY: &str = "lora";
/// The key of a run's data under which `llm finetune-instruct` records its prompt style.
pub const PROMPT_STYLE_KEY: &str = "prompt_style";

impl LoadedModel {
    /// The model of a checkpoint (a run folder's), built on the CPU and moved to `device`; a
    /// model finetuned with LoRA gets its LoRA layers (rank and alpha from the run's data) before
    /// the weights load.
    pub fn from_checkpoint(ckpt: &Checkpoint, device: Device) -> Result<Self> {
        let _rng = llm_from_scratch::rng_lock(); // building the model draws from the generator
        let cfg = ckpt.meta.config.clone();
        let mut vs = nn::VarStore::new(Device::Cpu);
        let mut model = GptModel::new(&vs.root(), &cfg);
        let run_data = ckpt.meta.extra.clone();
        let lora: Option<(i64, f64)> = match run_data.get(LORA_KEY) {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(serde_json::from_value(v.clone()).with_context(|| format!("{}: '{LORA_KEY}' is not [rank, alpha]", ckpt.path.display()))?),
        };
        if let Some((rank, alpha)) = lora {
            replace_linear_with_lora(&mut model, &vs, rank, alpha);
        }
        ckpt.load_model(&vs)?;
        vs.set_device(device);
        Ok(LoadedModel { vs, model, cfg, run_data })
    }

    /// `(rank, alpha)` of the model's LoRA updates, when it was finetuned with `--lora-rank`.
    pub fn lora(&self) -> Option<(i64, f64)> {
        self.run_data.get(LORA_KEY).and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// The prompt style the model was finetuned with (Alpaca unless its run recorded another).
    pub fn prompt_style(&self) -> Result<PromptStyle> {
        match self.run_data.get(PROMPT_STYLE_KEY) {
            None | Some(serde_json::Value::Null) => Ok(PromptStyle::Alpaca),
            Some(v) => serde_json::from_value(v.clone()).with_context(|| format!("the run's '{PROMPT_STYLE_KEY}' {v} is not a prompt style")),
        }
    }
}

impl ModelArgs {
    /// The model of the run folder `dir`.
    pub fn of_run(dir: &Path) -> Self {
        ModelArgs { seed: 123, run: Some(dir.to_path_buf()), ..Default::default() }
    }

    /// Whether no flag chose a model (the command's default model applies).
    pub fn is_unset(&self) -> bool {
        self.config.is_none() && self.weights.is_none() && self.run.is_none()
    }

    /// The config a fresh model is built with: --config, or gpt2-small.
    pub fn config(&self) -> Result<GptConfig> {
        load_config(self.config.as_deref().unwrap_or("gpt2-small"))
    }

    /// What the model was built from, in words (recorded with a fine-tuned model).
    pub fn describe(&self) -> String {
        match (&self.weights, &self.run) {
            (Some(w), _) => w.clone(),
            (None, Some(dir)) => dir.display().to_string(),
            (None, None) => self.config.clone().unwrap_or_else(|| "gpt2-small".into()),
        }
    }

    /// Build the model on the CPU (after seeding, so a seed gives the book's weights bit for bit
    /// whatever the device), load the chosen weights, then move it to `device`.
    pub fn load(&self, device: Device) -> Result<LoadedModel> {
        self.load_with_context(device, None)
    }

    /// [`ModelArgs::load`], with a model built from --config given `context_length` positions
    /// instead of the config's (chapter 5 trains GPT-2 small at 256). A run's model and OpenAI's
    /// weights keep their own.
    pub fn load_with_context(&self, device: Device, context_length: Option<i64>) -> Result<LoadedModel> {
        if let Some(name) = self.weights.as_deref().filter(|w| !w.ends_with(".safetensors")) {
            // A Hugging Face GPT-2: its config.json gives the sizes.
            let (vs, model, cfg) = GptModel::from_pretrained_gpt2(name, device)?;
            return Ok(LoadedModel { vs, model, cfg, run_data: serde_json::Value::Null });
        }
        if let Some(dir) = &self.run {
            let ckpt = read_checkpoint(dir).with_context(|| format!("loading the model of {}", dir.display()))?;
            return LoadedModel::from_checkpoint(&ckpt, device);
        }
        let _rng = llm_from_scratch::rng_lock();
        llm_from_scratch::set_seed(self.seed);
        let mut cfg = self.config()?;
        cfg.context_length = context_length.unwrap_or(cfg.context_length);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &cfg);
        if let Some(path) = &self.weights {
            load_safetensors(&vs, path).with_context(|| format!("loading weights from {path}"))?;
        }
        vs.set_device(device);
        Ok(LoadedModel { vs, model, cfg, run_data: serde_json::Value::Null })
    }
}

/// `--resume DIR` of a fine-tuning command: the stopped run's checkpoint, the run data its command
/// saved (`R`), its training settings, and the model flags that name the run (with its seed).
pub struct ResumedRun<R> {
    pub ckpt: Checkpoint,
    pub run_data: R,
    pub settings: TrainSettings,
    pub model: ModelArgs,
}

impl<R: serde::de::DeserializeOwned> ResumedRun<R> {
    /// Read the run in `dir`; `model` are the command line's model flags, which a resumed run
    /// refuses (it continues with its own model); `command` names the command in errors.
    pub fn read(dir: &Path, model: &ModelArgs, command: &str) -> Result<Self> {
        if !model.is_unset() {
            anyhow::bail!("--resume continues a run with its own model: leave out --config, --weights and --model");
        }
        let ckpt = read_checkpoint(dir).with_context(|| format!("--resume {}: reading the run's checkpoint", dir.display()))?;
        let run_data: R = serde_json::from_value(ckpt.meta.extra.clone())
            .with_context(|| format!("{}: no `llm {command}` run data in this checkpoint", ckpt.path.display()))?;
        let settings = match (&ckpt.meta.settings, &ckpt.meta.optimizer) {
            (Some(settings), Some(_)) => settings.clone(),
            _ => anyhow::bail!("{}: a finished run (saved without its optimizer): nothing to resume", ckpt.path.display()),
        };
        let model = ModelArgs { seed: settings.seed, ..ModelArgs::of_run(dir) };
        Ok(Self { ckpt, run_data, settings, model })
    }
}
