//! `llm classify --model DIR --text "..."`: chapter 6.8, a fine-tuned classifier (written by
//! `llm finetune-spam`) labels texts: one line, `spam` or `not spam`, per `--text`, reading the
//! token the classifier was trained on (the last, or the first after `--token first`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use llm_from_scratch::ch06::{classify_review_at, load_classifier, BpeTokenizer};

/// Arguments of `llm classify`.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// The classifier: the run folder written by `llm finetune-spam` (its --out).
    #[arg(long, visible_alias = "checkpoint", value_name = "DIR")]
    pub model: PathBuf,
    /// A text to classify (repeat for several; one answer per line, in order).
    #[arg(long, required = true)]
    pub text: Vec<String>,
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let device = llm_from_scratch::device_report().device;
    let (_vs, model, info) = {
        let _rng = llm_from_scratch::rng_lock();
        load_classifier(&args.model, device).with_context(|| format!("loading the classifier in {}", args.model.display()))?
    };
    let tokenizer = BpeTokenizer::gpt2()?;
    for text in &args.text {
        println!("{}", classify_review_at(text, &model, &tokenizer, device, Some(info.max_length), info.pad_token_id, info.position)?);
    }
    Ok(())
}
