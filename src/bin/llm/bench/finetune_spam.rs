//! `llm bench finetune-spam --config gpt2-small --batch-size 8 --max-length 120 --steps 5` times
//! chapter 6's fine-tuning step (GPT-2 small's shape with random weights, a new 2-class head,
//! only the last block, `final_norm` and the head trainable; zero the gradients, forward in
//! training mode, cross-entropy of the last token's logits, backward, AdamW step; fp32, dropout
//! 0 as in the book) on random token batches, and prints one JSON line: examples/s of the
//! median step and the peak resident memory. The PyTorch side is
//! `benches/finetune_spam_pytorch.py`; `scripts/bench_finetune_spam.sh` runs both.

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use llm_from_scratch::ch04::{num_parameters, num_trainable_parameters, GptModel};
use llm_from_scratch::ch06::{calc_loss_batch, prepare_classifier, AdamW};
use serde::Serialize;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use super::{bench_config, cpu_seconds, median, peak_rss_mb};

/// Arguments of `llm bench finetune-spam`.
#[derive(Args, Debug)]
pub struct FinetuneSpamBenchArgs {
    /// Model preset or JSON config file.
    #[arg(long, default_value = "gpt2-small")]
    pub config: String,
    /// Texts per step (the book's 8).
    #[arg(long, default_value_t = 8)]
    pub batch_size: i64,
    /// Tokens per text (the book's padded length, 120).
    #[arg(long, default_value_t = 120)]
    pub max_length: i64,
    /// Timed steps; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed steps before measuring (the first allocates the optimizer state).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// CPU threads for libtorch (default: libtorch's own choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Compute the logits as the book does, `model(x)[:, -1, :]` (every block with gradients
    /// recorded, the head on every position), instead of `classifier_logits`.
    #[arg(long)]
    pub full_forward: bool,
    /// Seed for the weights and the random batches.
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
}

/// The JSON line `llm bench finetune-spam` prints.
#[derive(Serialize, Debug)]
struct FinetuneSpamReport {
    bench: &'static str,
    #[serde(rename = "impl")]
    implementation: &'static str,
    config: String,
    batch_size: i64,
    max_length: i64,
    threads: i32,
    device: String,
    /// "last-token" (`classifier_logits`) or "full" (the book's `model(x)[:, -1, :]`).
    forward: &'static str,
    warmup: usize,
    steps: usize,
    step_s_median: f64,
    examples_per_s: f64,
    step_s_best: f64,
    examples_per_s_best: f64,
    cpu_s_median: f64,
    peak_rss_mb: f64,
    params: i64,
    trainable_params: i64,
    losses: Vec<f64>,
}

pub fn finetune_spam(args: FinetuneSpamBenchArgs) -> Result<()> {
    let mut cfg = bench_config(&args.config, args.max_length, args.threads)?;
    if args.steps == 0 || args.batch_size < 1 {
        bail!("--steps and --batch-size must be at least 1");
    }
    cfg.drop_rate = 0.0;
    let device = llm_from_scratch::device_report().device;
    llm_from_scratch::set_seed(args.seed);
    let vs = nn::VarStore::new(device);
    let mut model = GptModel::new(&vs.root(), &cfg);
    let trainable_params = prepare_classifier(&mut model, &vs, 2);
    assert_eq!(trainable_params, num_trainable_parameters(&vs));
    let mut optimizer = AdamW::new(&vs, 5e-5, 0.1);
    let input_batch = Tensor::randint(cfg.vocab_size, [args.batch_size, args.max_length], (Kind::Int64, device));
    let target_batch = Tensor::randint(2, [args.batch_size], (Kind::Int64, device));

    let mut losses = Vec::new();
    let (mut times, mut cpu_s) = (Vec::new(), Vec::new());
    for step in 0..args.warmup + args.steps {
        let cpu_start = cpu_seconds();
        let start = Instant::now();
        optimizer.zero_grad();
        let loss = if args.full_forward {
            let logits = model.forward_t(&input_batch, true).select(1, -1); // [batch, 2]
            logits.cross_entropy_for_logits(&target_batch)
        } else {
            calc_loss_batch(&input_batch, &target_batch, &model, device, true)
        };
        optimizer.backward(&loss);
        optimizer.step();
        let loss = loss.double_value(&[]); // waits for the device
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        losses.push(loss);
        if step >= args.warmup {
            times.push(secs);
            cpu_s.push(cpu);
        }
    }
    let step_s_best = times.iter().copied().fold(f64::INFINITY, f64::min);
    let step_s = median(times);
    let report = FinetuneSpamReport {
        bench: "finetune-spam",
        implementation: "llm-from-scratch",
        config: args.config,
        batch_size: args.batch_size,
        max_length: args.max_length,
        threads: tch::get_num_threads(),
        device: format!("{device:?}").to_lowercase(),
        forward: if args.full_forward { "full" } else { "last-token" },
        warmup: args.warmup,
        steps: args.steps,
        step_s_median: step_s,
        examples_per_s: args.batch_size as f64 / step_s,
        step_s_best,
        examples_per_s_best: args.batch_size as f64 / step_s_best,
        cpu_s_median: median(cpu_s),
        peak_rss_mb: peak_rss_mb()?,
        params: num_parameters(&vs),
        trainable_params,
        losses,
    };
    if let Device::Cuda(d) = device {
        tch::Cuda::synchronize(d as i64);
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
