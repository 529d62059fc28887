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
use llm_from_scratch::bonus_llama_qwen::{detect_family, CachedLm, HfDecoder, HfFamily, Tokenizer};
use llm_from_scratch::bonus_kv_cache::{generate, generate_cached};
use llm_from_scratch::data::DataStore;
use llm_from_scratch::gpt2::Gpt2Checkpoint;
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
    let model = &loaded.model;
    let out = if args.no_kv_cache {
        generate(model, &prompt, args.max_new_tokens, model.context_length(), args.temperature, args.top_k, args.eos_id)
    } else {
        generate_cached(model, &mut model.new_cache(), &prompt, args.max_new_tokens, args.temperature, args.top_k, args.eos_id)
    };
    let ids = Vec::<i64>::try_from(out.squeeze_dim(0).to_device(Device::Cpu))?;
    match (tokenizer, args.ids) {
        (Some(tok), false) => println!("{}", tok.decode_ids(&ids.iter().map(|&i| i as u32).collect::<Vec<_>>())?),
        _ => println!("{}", serde_json::to_string(&ids)?),
    }
    Ok(())
}
