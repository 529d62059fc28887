//! `llm chat`: talk to an instruction-finetuned model (chapter 7) in a loop. Each line you type
//! is an instruction, sent in the prompt style the model was finetuned with (Alpaca, or
//! Phi-3 after `--prompt-style phi3`); the response is printed below it.
//!
//! ```text
//! $ llm chat --model runs/instruct
//! > /input The car is very fast.
//! > Rewrite the sentence using a simile.
//! The car is as fast as lightning.
//! ```
//!
//! `/input TEXT` sets the input of the next instruction (the `### Input:` section), `/quit` or
//! the end of input (Ctrl-D, or the end of a piped file) ends the session. Each instruction is
//! answered on its own: the model saw one instruction per example in training, not dialogues.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use llm_from_scratch::ch02::BpeTokenizer;
use llm_from_scratch::ch07::InstructionEntry;

use crate::respond::load_finetuned;

/// Arguments of `llm chat`.
#[derive(Args, Debug)]
pub struct ChatArgs {
    /// The finetuned model: a run folder written by `llm finetune-instruct`.
    #[arg(long, visible_alias = "checkpoint", value_name = "DIR")]
    pub model: PathBuf,
    /// Longest response, in tokens (generation stops earlier at <|endoftext|>).
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: i64,
}

/// Run `llm chat` until `/quit` or the end of standard input.
pub fn run(args: ChatArgs) -> Result<()> {
    let device = llm_from_scratch::device_report().device;
    let loaded = load_finetuned(&args.model, device)?;
    let style = loaded.prompt_style()?;
    let tokenizer = BpeTokenizer::gpt2()?;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!("Type an instruction and press Enter. `/input TEXT` sets the next instruction's input; /quit or Ctrl-D ends.");
    }
    let mut input = String::new();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!("> ");
            std::io::stderr().flush()?;
        }
        let Some(line) = lines.next() else { break }; // end of input
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "/quit" || line == "/exit" {
            break;
        }
        if let Some(text) = line.strip_prefix("/input") {
            input = text.trim().to_string();
            continue;
        }
        let entry = InstructionEntry::new(line, &input, "");
        let response = style.generate_response(&loaded.model, &tokenizer, &entry, args.max_new_tokens, loaded.cfg.context_length, device)?;
        println!("{response}");
        std::io::stdout().flush()?;
        input.clear();
    }
    if interactive {
        eprintln!();
    }
    Ok(())
}
