//! `llm`: the chapters' end-to-end runs from the command line.
//!
//! `llm info` prints the device and library versions; the chapters add `tokenize`, `generate`,
//! `pretrain`, `finetune-spam`, `finetune-instruct`, `finetune-dpo`, `classify` and `bench`.

mod bench;
mod classify;
mod finetune_spam;
mod chat;
mod finetune_dpo;
mod finetune_instruct;
mod generate;
mod generate_hf;
mod interrupt;
mod model_source;
mod pretrain;
mod progress;
mod respond;
mod tokenize;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "llm", version, about = "Build a Large Language Model (From Scratch), in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The language of the words on the figures the command writes (loss.svg, loss.png): en or
    /// zh. Without it: the LLM_LANG environment variable, else a file .llm-lang in the current
    /// folder, else en.
    #[arg(long, global = true, value_name = "en|zh")]
    lang: Option<llm_from_scratch::viz::Lang>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the device in use (CUDA or CPU), libtorch's CUDA support and the versions.
    Info,
    /// Chapter 2: encode text to token ids (a JSON array on one line), or decode ids to text.
    Tokenize(tokenize::TokenizeArgs),
    /// Generate text with a GPT model: greedy (chapter 4.7) or sampled with temperature and top-k (5.3);
    /// with --weights, also Llama 3.2 and Qwen3 from Hugging Face folders (chapter 5's bonus).
    Generate(generate::GenerateArgs),
    /// Chapter 5: pretrain a GPT model on a text, with checkpoints that resume.
    Pretrain(pretrain::PretrainArgs),
    /// Chapter 6: fine-tune a GPT model to classify SMS messages as spam or not spam.
    FinetuneSpam(finetune_spam::FinetuneSpamArgs),
    /// Chapter 6.8: classify texts with a classifier written by `llm finetune-spam`.
    Classify(classify::ClassifyArgs),
    /// Chapter 7: finetune a GPT model to follow instructions, answer the test set and score it.
    FinetuneInstruct(finetune_instruct::FinetuneInstructArgs),
    /// Chapter 7's bonus: align an instruction-finetuned model with preferences (DPO), then
    /// answer the test set with the model before and after.
    FinetuneDpo(finetune_dpo::FinetuneDpoArgs),
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

/// Run the command; an error is printed as `error: <message>` and one `  caused by: <cause>`
/// line per cause, without a backtrace even when `RUST_BACKTRACE` is set (it is for developers:
/// a panic still shows where it happened), and the program exits with status 1. Clap prints its
/// own usage errors (`error: invalid value 'abc' for '--lr <LR>'`) and exits with status 2.
fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(lang) = cli.lang {
        llm_from_scratch::viz::set_lang(lang);
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(interrupted) = error.downcast_ref::<interrupt::Interrupted>() {
                eprintln!("{interrupted}");
                return ExitCode::from(interrupt::EXIT_INTERRUPTED);
            }
            eprintln!("{}", error_report(&error));
            ExitCode::FAILURE
        }
    }
}

/// `error: <message>` and a `  caused by: <cause>` line for each cause that the line above does
/// not already say (the library's I/O errors print their source after the path).
fn error_report(error: &anyhow::Error) -> String {
    let mut report = format!("error: {error}");
    let mut previous = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !previous.contains(&cause) {
            report.push_str(&format!("\n  caused by: {cause}"));
        }
        previous = cause;
    }
    report
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Info => info(),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Pretrain(args) => pretrain::run(args),
        Command::FinetuneSpam(args) => finetune_spam::run(args),
        Command::Classify(args) => classify::run(args),
        Command::FinetuneInstruct(args) => finetune_instruct::run(args),
        Command::FinetuneDpo(args) => finetune_dpo::run(args),
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
