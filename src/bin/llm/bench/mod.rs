//! `llm bench ...`: measurements for the README's performance table, one JSON line each.
//! Each compares this crate with a reference measured in the same run on the same machine
//! (`serve` measures the server alone).

mod dpo_step;
mod finetune_spam;
mod forward;
mod generate;
mod serve;
mod tokenize;
mod train;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use llm_from_scratch::ch04::GptConfig;

use crate::model_source::load_config;

/// What `llm bench` measures.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// GPT-2 tokenizer throughput: this crate vs tiktoken-rs, single thread (chapter 2).
    Tokenize(tokenize::TokenizeBenchArgs),
    /// Forward-pass tokens/s of a GPT model: explicit attention vs fused SDPA (chapter 4).
    Forward(forward::ForwardArgs),
    /// Greedy generation of one sequence, tokens/s, with the KV cache or without (chapter 4's
    /// bonus), beside the weight-streaming limit measured in the same process.
    Generate(generate::GenerateBenchArgs),
    /// Training-step tokens/s, peak memory and model-FLOPs utilisation of GPT training with
    /// AdamW (chapter 5).
    Train(train::TrainArgs),
    /// Chapter 6 fine-tuning step: examples/s and peak memory with only the last block,
    /// final norm and 2-class head trainable.
    FinetuneSpam(finetune_spam::FinetuneSpamBenchArgs),
    /// Chapter 7's bonus: time per DPO training step (policy against a frozen reference, AdamW)
    /// on a batch of the preference data.
    DpoStep(dpo_step::DpoStepArgs),
    /// Chapter 7's server under load: concurrent streaming clients against `llm serve` on a
    /// tiny model; requests completed and failed, tokens/s, time to first token.
    Serve(serve::ServeBenchArgs),
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Tokenize(args) => tokenize::tokenize(args),
        BenchCommand::Forward(args) => forward::forward(args),
        BenchCommand::Generate(args) => generate::generate_bench(args),
        BenchCommand::Train(args) => train::train(args),
        BenchCommand::FinetuneSpam(args) => finetune_spam::finetune_spam(args),
        BenchCommand::DpoStep(args) => dpo_step::dpo_step(args),
        BenchCommand::Serve(args) => serve::serve_bench(args),
    }
}

/// The setup shared by the model benchmarks: the config of `--config`, checked against a run of
/// `context_length` tokens, with libtorch's CPU threads set to `threads` when given.
pub fn bench_config(config: &str, context_length: i64, threads: Option<i32>) -> Result<GptConfig> {
    let cfg = load_config(config)?;
    if context_length < 1 || context_length > cfg.context_length {
        bail!("--context-length {context_length} must be in 1..={} for {config}", cfg.context_length);
    }
    if let Some(t) = threads {
        tch::set_num_threads(t);
    }
    Ok(cfg)
}

/// The median of `v` (the mean of the two middle values for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// CPU seconds (user + system, all threads) this process has used so far.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we own; RUSAGE_SELF is always valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The process's peak resident set size in MiB (`VmHWM` in `/proc/self/status`; Linux only).
pub fn peak_rss_mb() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("no VmHWM in /proc/self/status")?;
    let kb: f64 = line.split_whitespace().nth(1).context("VmHWM without a value")?.parse()?;
    Ok(kb / 1024.0)
}
