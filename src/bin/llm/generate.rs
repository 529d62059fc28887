//! `llm generate`: greedy text generation with a (random or loaded) GPT model, as in the book's
//! section 4.7 (`generate_text_simple`).
//!
//! ```text
//! llm generate --config gpt2-small --seed 123 --prompt "Hello, I am" --max-new-tokens 10
//! llm generate --config gpt2-small --seed 123 --prompt-ids 15496,11,314,716 --ids
//! ```
//!
//! The model is built on the CPU after seeding, so the seed gives the book's weights bit for
//! bit whatever the device, then moved to the device in use.

use anyhow::{bail, Context, Result};
use clap::Args;
use llm_from_scratch::ch04::{generate_text_simple, load_safetensors, AttentionImpl, GptConfig, GptModel};
use tch::{nn, Device, Tensor};

/// Arguments of `llm generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Model preset (gpt2-small/124M, gpt2-medium/355M, gpt2-large/774M, gpt2-xl/1558M, tiny) or a
    /// JSON config file with the book's keys.
    #[arg(long, default_value = "gpt2-small")]
    pub config: String,
    /// Seed for the random initial weights (`torch.manual_seed`).
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
    /// Load these weights (safetensors with the book's parameter names) instead of random ones.
    #[arg(long)]
    pub weights: Option<std::path::PathBuf>,
    /// The prompt text (encoded with the GPT-2 tokenizer).
    #[arg(long, conflicts_with = "prompt_ids", required_unless_present = "prompt_ids")]
    pub prompt: Option<String>,
    /// The prompt as comma-separated token ids, e.g. `15496,11,314,716` ("Hello, I am").
    #[arg(long, value_delimiter = ',')]
    pub prompt_ids: Option<Vec<i64>>,
    /// Number of tokens to append.
    #[arg(long, default_value_t = 10)]
    pub max_new_tokens: i64,
    /// Print the whole id sequence (prompt and new tokens) as one JSON array instead of text.
    #[arg(long)]
    pub ids: bool,
    /// Use libtorch's fused scaled_dot_product_attention instead of the explicit steps.
    #[arg(long)]
    pub sdpa: bool,
}

/// Resolve `--config`: a preset name, or a path to a `.json` file.
pub fn load_config(config: &str) -> Result<GptConfig> {
    if config.ends_with(".json") {
        Ok(GptConfig::from_json_file(config)?)
    } else {
        Ok(GptConfig::from_preset_name(config)?)
    }
}

/// Text to token ids with the GPT-2 tokenizer.
fn encode_prompt(text: &str) -> Result<Vec<i64>> {
    // TODO(ch02 merge): encode with the chapter 2 GPT-2 BPE tokenizer (allowing <|endoftext|>).
    bail!("the GPT-2 tokenizer is not in this build yet: pass --prompt-ids instead of --prompt {text:?}")
}

/// Token ids to text with the GPT-2 tokenizer.
fn decode_ids(ids: &[i64]) -> Result<String> {
    // TODO(ch02 merge): decode with the chapter 2 GPT-2 BPE tokenizer.
    bail!("the GPT-2 tokenizer is not in this build yet: pass --ids to print the {} ids", ids.len())
}

/// Run `llm generate`.
pub fn run(args: GenerateArgs) -> Result<()> {
    let cfg = load_config(&args.config)?;
    let prompt_ids = match (&args.prompt, &args.prompt_ids) {
        (Some(text), _) => encode_prompt(text)?,
        (None, Some(ids)) => ids.clone(),
        (None, None) => bail!("give --prompt or --prompt-ids"),
    };
    if prompt_ids.is_empty() {
        bail!("the prompt is empty");
    }
    if let Some(bad) = prompt_ids.iter().find(|&&id| id < 0 || id >= cfg.vocab_size) {
        bail!("prompt id {bad} is outside the vocabulary (0..{})", cfg.vocab_size);
    }

    let _rng = llm_from_scratch::rng_lock();
    llm_from_scratch::set_seed(args.seed);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    if let Some(path) = &args.weights {
        load_safetensors(&vs, path).with_context(|| format!("loading weights from {}", path.display()))?;
    }
    if args.sdpa {
        model.set_attention_impl(AttentionImpl::Sdpa);
    }
    let report = llm_from_scratch::device_report();
    eprintln!("{report}");
    vs.set_device(report.device);

    let encoded = Tensor::from_slice(&prompt_ids).unsqueeze(0).to_device(report.device); // [1, num_tokens]
    let out = generate_text_simple(&model, &encoded, args.max_new_tokens, cfg.context_length);
    let ids = Vec::<i64>::try_from(out.squeeze_dim(0).to_device(Device::Cpu))?;
    if args.ids {
        println!("{}", serde_json::to_string(&ids)?);
    } else {
        println!("{}", decode_ids(&ids)?);
    }
    Ok(())
}
