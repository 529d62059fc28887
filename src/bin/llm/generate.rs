//! `llm generate`: text generation with a GPT model: greedy as in section 4.7, or sampled with
//! temperature and top-k as in section 5.3 (listing 5.4's `generate`).
//!
//! ```text
//! llm generate --config gpt2-small --seed 123 --prompt "Hello, I am" --max-new-tokens 10
//! llm generate --config gpt2-small --seed 123 --prompt-ids 15496,11,314,716 --ids
//! llm generate --model runs/verdict --prompt "Every effort moves you" --temperature 1.4 --top-k 25
//! llm generate --weights DIR --prompt "Every effort moves you"   # Llama 3.2 / Qwen3 (generate_hf.rs)
//! ```
//!
//! The model is built on the CPU after seeding, so the seed gives the book's weights bit for
//! bit whatever the device, then moved to the device in use. `--seed` also seeds the sampling.
//! Generation keeps the keys and values of earlier positions in a KV cache (chapter 4's bonus);
//! `--no-kv-cache` recomputes them for every token, with the same output.

use anyhow::{bail, Result};
use clap::Args;
use llm_from_scratch::ch02::{BpeTokenizer, Tokenizer};
use llm_from_scratch::ch04::AttentionImpl;
use llm_from_scratch::bonus_kv_cache::{generate, generate_cached, CachedLm};
use tch::{Device, Tensor};

use crate::model_source::ModelArgs;

/// Arguments of `llm generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt text (encoded with the GPT-2 tokenizer; `<|endoftext|>` is allowed).
    #[arg(long, conflicts_with = "prompt_ids", required_unless_present = "prompt_ids")]
    pub prompt: Option<String>,
    /// The prompt as comma-separated token ids, e.g. `15496,11,314,716` ("Hello, I am").
    #[arg(long, value_delimiter = ',')]
    pub prompt_ids: Option<Vec<i64>>,
    /// Number of tokens to append.
    #[arg(long, default_value_t = 10)]
    pub max_new_tokens: i64,
    /// Sampling temperature: 0 is greedy (argmax); above 0, sample from softmax(logits / T).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Keep only the k most likely tokens before sampling.
    #[arg(long)]
    pub top_k: Option<i64>,
    /// Stop when this token id is generated (e.g. 50256, `<|endoftext|>`).
    #[arg(long)]
    pub eos_id: Option<i64>,
    /// Print the whole id sequence (prompt and new tokens) as one JSON array instead of text.
    #[arg(long)]
    pub ids: bool,
    /// Use libtorch's fused scaled_dot_product_attention instead of the explicit steps.
    #[arg(long)]
    pub sdpa: bool,
    /// Recompute every position for every new token, as chapters 4 and 5 do, instead of keeping
    /// the keys and values of earlier positions in a KV cache (the same tokens, slower).
    #[arg(long)]
    pub no_kv_cache: bool,
}

/// Run `llm generate`.
pub fn run(args: GenerateArgs) -> Result<()> {
    if args.temperature < 0.0 || !args.temperature.is_finite() {
        bail!("--temperature must be 0 (greedy) or positive, not {}", args.temperature);
    }
    if let Some(k) = args.top_k.filter(|&k| k < 1) {
        bail!("--top-k must be at least 1, not {k}");
    }
    if let Some(dir) = args.model.weights.as_deref().map(crate::generate_hf::decoder_folder).transpose()?.flatten() {
        return crate::generate_hf::run(&args, dir); // Llama 3.2 or Qwen3 (chapter 5's bonus)
    }
    let needs_tokenizer = args.prompt.is_some() || !args.ids;
    let tokenizer = if needs_tokenizer { Some(BpeTokenizer::gpt2()?) } else { None };
    let prompt_ids: Vec<i64> = match (&args.prompt, &args.prompt_ids, &tokenizer) {
        (Some(text), _, Some(tok)) => tok.encode_text(text)?.into_iter().map(i64::from).collect(),
        (None, Some(ids), _) => ids.clone(),
        _ => bail!("give --prompt or --prompt-ids"),
    };
    if prompt_ids.is_empty() {
        bail!("the prompt is empty");
    }
    let report = llm_from_scratch::device_report();
    eprintln!("{report}");
    let mut loaded = args.model.load(report.device)?;
    let cfg = &loaded.cfg;
    if let Some(bad) = prompt_ids.iter().find(|&&id| id < 0 || id >= cfg.vocab_size) {
        bail!("prompt id {bad} is outside the vocabulary (0..{})", cfg.vocab_size);
    }
    if args.sdpa {
        loaded.model.set_attention_impl(AttentionImpl::Sdpa);
    }

    let encoded = Tensor::from_slice(&prompt_ids).unsqueeze(0).to_device(report.device); // [1, num_tokens]
    let _rng = llm_from_scratch::rng_lock();
    llm_from_scratch::set_seed(args.model.seed);
    let out = if args.no_kv_cache {
        generate(&loaded.model, &encoded, args.max_new_tokens, cfg.context_length, args.temperature, args.top_k, args.eos_id)
    } else {
        let mut cache = loaded.model.new_cache();
        generate_cached(&loaded.model, &mut cache, &encoded, args.max_new_tokens, args.temperature, args.top_k, args.eos_id)
    };
    let ids = Vec::<i64>::try_from(out.squeeze_dim(0).to_device(Device::Cpu))?;
    match (&tokenizer, args.ids) {
        (Some(tok), false) => {
            let ids: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
            println!("{}", tok.decode_ids(&ids)?);
        }
        _ => println!("{}", serde_json::to_string(&ids)?),
    }
    Ok(())
}
