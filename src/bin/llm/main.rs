//! `llm`: the chapters' end-to-end runs from the command line.
//!
//! `llm info` prints the device and library versions; the chapters add `tokenize`, `generate`,
//! `pretrain`, `finetune-spam`, `finetune-instruct`, `classify` and `bench`.

mod bench;
mod classify;
mod finetune_spam;
mod chat;
mod finetune_instruct;
mod generate;
mod model_source;
mod pretrain;
mod progress;
mod respond;
mod tokenize;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "llm", version, about = "Build a Large Language Model (From Scratch), in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the device in use (CUDA or CPU), libtorch's CUDA support and the versions.
    Info,
    /// Chapter 2: encode text to token ids (a JSON array on one line), or decode ids to text.
    Tokenize(tokenize::TokenizeArgs),
    /// Generate text with a GPT model: greedy (chapter 4.7) or sampled with temperature and top-k (5.3).
    Generate(generate::GenerateArgs),
    /// Chapter 5: pretrain a GPT model on a text, with checkpoints that resume.
    Pretrain(pretrain::PretrainArgs),
    /// Chapter 6: fine-tune a GPT model to classify SMS messages as spam or not spam.
    FinetuneSpam(finetune_spam::FinetuneSpamArgs),
    /// Chapter 6.8: classify texts with a classifier written by `llm finetune-spam`.
    Classify(classify::ClassifyArgs),
    /// Chapter 7: finetune a GPT model to follow instructions, answer the test set and score it.
    FinetuneInstruct(finetune_instruct::FinetuneInstructArgs),
    /// Chapter 7: the response of an instruction-finetuned model to one instruction.
    Respond(respond::RespondArgs),
    /// Chapter 7: an interactive loop of instructions and responses (ends at /quit or end of input).
    Chat(chat::ChatArgs),
    /// Throughput measurements, one JSON line each.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info => info(),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Pretrain(args) => pretrain::run(args),
        Command::FinetuneSpam(args) => finetune_spam::run(args),
        Command::Classify(args) => classify::run(args),
        Command::FinetuneInstruct(args) => finetune_instruct::run(args),
        Command::Respond(args) => respond::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Bench { command } => bench::run(command),
    }
}

fn info() -> Result<()> {
    let report = llm_from_scratch::device_report();
    println!("{report}");
    println!("llm-from-scratch {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch cuda library loaded: {}", report.cuda_library);
    println!("cuda devices: {}", report.cuda_devices);
    println!("cudnn available: {}", tch::Cuda::cudnn_is_available());
    println!("cpu threads: {}", tch::get_num_threads());
    Ok(())
}
