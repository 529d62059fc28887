//! `llm respond`: one answer of an instruction-finetuned model (chapter 7.7), in the prompt
//! style it was finetuned with (the book's Alpaca, or Phi-3 after `--prompt-style phi3`).
//!
//! ```text
//! llm respond --model runs/instruct --instruction "Rewrite the sentence using a simile." --input "The car is very fast."
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use llm_from_scratch::ch02::BpeTokenizer;
use llm_from_scratch::ch07::InstructionEntry;

use crate::model_source::{LoadedModel, ModelArgs};

/// Arguments of `llm respond`.
#[derive(Args, Debug)]
pub struct RespondArgs {
    /// The finetuned model: a run folder written by `llm finetune-instruct` (or any run folder).
    #[arg(long, visible_alias = "checkpoint", value_name = "DIR")]
    pub model: PathBuf,
    /// What the model should do.
    #[arg(long)]
    pub instruction: String,
    /// The input the instruction refers to (none by default).
    #[arg(long, default_value = "")]
    pub input: String,
    /// Longest response, in tokens (generation stops earlier at <|endoftext|>).
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: i64,
}

/// Load the model of a checkpoint folder onto `device`.
pub fn load_finetuned(dir: &Path, device: tch::Device) -> Result<LoadedModel> {
    ModelArgs::of_run(dir)
        .load(device).with_context(|| format!("loading the finetuned model from {}", dir.display()))
}

/// Run `llm respond`.
pub fn run(args: RespondArgs) -> Result<()> {
    let device = llm_from_scratch::device_report().device;
    let loaded = load_finetuned(&args.model, device)?;
    let tokenizer = BpeTokenizer::gpt2()?;
    let entry = InstructionEntry::new(&args.instruction, &args.input, "");
    let response = loaded.prompt_style()?.generate_response(&loaded.model, &tokenizer, &entry, args.max_new_tokens, loaded.cfg.context_length, device)?;
    println!("{response}");
    Ok(())
}
