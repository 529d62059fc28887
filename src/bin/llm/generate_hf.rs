//! `llm generate --weights DIR_OR_REPO` for Llama 3.2 and Qwen3 (chapter 5's bonus): a Hugging
//! Face folder (`config.json`, `model.safetensors` or a sharded index, `tokenizer.json`) whose
//! `model_type` is `llama` or `qwen3`. GPT-2 folders (`gpt2`) keep `llm generate`'s own path.
//!
//! ```text
//! llm generate --weights DIR --prompt "Every effort moves you" --max-new-tokens 20
//! llm generate --weights meta-llama/Llama-3.2-1B --prompt-ids 128000,15724 --ids --no-kv-cache
//! ```
//!
//! A repository name is looked up as a folder under `LLM_DATA_DIR`, then under the data cache
//! (`~/.cache/llm-from-scratch/data`): the weights are not downloaded (Meta's are gated).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use llm_from_scratch::bonus_llama_qwen::{detect_family, CachedLm, DecoderModel, HfDecoder, HfFamily, Tokenizer};
use llm_from_scratch::ch05::{softmax_with_temperature, top_k_logits};
use llm_from_scratch::data::DataStore;
use llm_from_scratch::gpt2::Gpt2Checkpoint;
use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use crate::generate::GenerateArgs;

/// The folder of a Llama or Qwen3 model that `--weights` names, or `None` when it names
/// something `llm generate`'s GPT-2 path loads (a GPT-2 folder or name, a `.safetensors` file).
/// A folder whose `config.json` has another `model_type` is an error naming the file and key.
pub fn decoder_folder(weights: &str) -> Result<Option<PathBuf>> {
    if weights.ends_with(".safetensors") {
        return Ok(None);
    }
    let store = DataStore::from_env();
    let candidates = [Some(PathBuf::from(weights)), store.local_dir.map(|d| d.join(weights)), Some(store.cache_dir.join(weights))];
    let Some(dir) = candidates.into_iter().flatten().find(|d| d.join("config.json").is_file()) else {
        if Gpt2Checkpoint::checkpoint_named(weights).is_ok() {
            return Ok(None);
        }
        bail!(
            "--weights {weights}: no folder with config.json there, under LLM_DATA_DIR or in the data cache \
             (Llama and Qwen3 weights are not downloaded: put config.json, model.safetensors and tokenizer.json in a folder)"
        );
    };
    let config = dir.join("config.json");
    let text = std::fs::read_to_string(&config).with_context(|| format!("reading {}", config.display()))?;
    if !text.contains("\"model_type\"") {
        return Ok(None); // an older GPT-2 config.json without model_type: the GPT-2 path reads it
    }
    match detect_family(&config)? {
        HfFamily::Gpt2 => Ok(None),
        HfFamily::Decoder(_) => Ok(Some(dir)),
    }
}

/// Run `llm generate` with the Llama or Qwen3 model in `dir`.
pub fn run(args: &GenerateArgs, dir: PathBuf) -> Result<()> {
    let report = llm_from_scratch::device_report();
    eprintln!("{report}");
    let loaded = {
        let _rng = llm_from_scratch::rng_lock();
        llm_from_scratch::set_seed(args.model.seed);
        HfDecoder::load_dir(&dir, report.device, Kind::Float).with_context(|| format!("loading {}", dir.display()))?
    };
    let needs_tokenizer = args.prompt.is_some() || !args.ids;
    let tokenizer = match (&loaded.tokenizer, needs_tokenizer) {
        (None, true) => bail!("{}: no tokenizer.json (give --prompt-ids and --ids to work without one)", dir.display()),
        (tok, _) => tok.as_ref(),
    };
    let prompt_ids: Vec<i64> = match (&args.prompt, &args.prompt_ids, tokenizer) {
        (Some(text), _, Some(tok)) => tok.encode_with_special_tokens(text)?.into_iter().map(i64::from).collect(),
        (None, Some(ids), _) => ids.clone(),
        _ => bail!("give --prompt or --prompt-ids"),
    };
    if prompt_ids.is_empty() {
        bail!("the prompt is empty");
    }
    let vocab = loaded.cfg.vocab_size;
    if let Some(bad) = prompt_ids.iter().find(|&&id| id < 0 || id >= vocab) {
        bail!("prompt id {bad} is outside the vocabulary (0..{vocab})");
    }
    let prompt = Tensor::from_slice(&prompt_ids).unsqueeze(0).to_device(report.device); // [1, num_tokens]
    let _rng = llm_from_scratch::rng_lock();
    llm_from_scratch::set_seed(args.model.seed);
    let out = sample(&loaded.model, &prompt, args, !args.no_kv_cache);
    let ids = Vec::<i64>::try_from(out.squeeze_dim(0).to_device(Device::Cpu))?;
    match (tokenizer, args.ids) {
        (Some(tok), false) => println!("{}", tok.decode_ids(&ids.iter().map(|&i| i as u32).collect::<Vec<_>>())?),
        _ => println!("{}", serde_json::to_string(&ids)?),
    }
    Ok(())
}

/// Listing 5.4's `generate` (temperature, top-k, end-of-sequence id) over the KV cache, or
/// over the whole sequence at each step when `use_cache` is false.
// TODO(merge): the shared cached generation of `training::generate` replaces this loop.
fn sample(model: &DecoderModel, prompt: &Tensor, args: &GenerateArgs, use_cache: bool) -> Tensor {
    let _no_grad = tch::no_grad_guard();
    let mut cache = model.new_cache();
    let mut ids = prompt.shallow_clone();
    let mut next_input = prompt.shallow_clone();
    for _ in 0..args.max_new_tokens {
        if ids.size()[1] >= model.context_length() {
            break;
        }
        let logits = if use_cache { model.forward_cached(&next_input, &mut cache) } else { model.forward_t(&ids, false) };
        let logits = logits.select(1, -1); // [1, vocab]
        let logits = match args.top_k {
            Some(k) => top_k_logits(&logits, k),
            None => logits,
        };
        let next = if args.temperature > 0.0 {
            softmax_with_temperature(&logits, args.temperature).multinomial(1, false) // [1, 1]
        } else {
            logits.argmax(-1, true) // [1, 1]
        };
        if args.eos_id.is_some_and(|eos| next.int64_value(&[0, 0]) == eos) {
            break;
        }
        ids = Tensor::cat(&[&ids, &next], 1); // [1, num_tokens + 1]
        next_input = next;
    }
    ids
}
