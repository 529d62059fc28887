//! `llm bench ...`: measurements for the README's performance table, one JSON line each.
//! Each compares this crate with a reference measured in the same run on the same machine.

mod forward;
mod tokenize;
mod train;

use anyhow::Result;
use clap::Subcommand;

/// What `llm bench` measures.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// GPT-2 tokenizer throughput: this crate vs tiktoken-rs, single thread (chapter 2).
    Tokenize(tokenize::TokenizeBenchArgs),
    /// Forward-pass tokens/s of a GPT model: explicit attention vs fused SDPA (chapter 4).
    Forward(forward::ForwardArgs),
    /// Training-step tokens/s, peak memory and model-FLOPs utilisation of GPT training with
    /// AdamW (chapter 5).
    Train(train::TrainArgs),
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Tokenize(args) => tokenize::tokenize(args),
        BenchCommand::Forward(args) => forward::forward(args),
        BenchCommand::Train(args) => train::train(args),
    }
}
