//! `llm bench dpo-step --config gpt2-small --batch FILE --steps 3` times the DPO training step
//! of chapter 7's bonus (zero the gradients, the DPO loss of the policy against the frozen
//! reference, backward, AdamW step with lr 5e-6 and weight decay 0.01; fp32, dropout 0 as in the
//! book's config) on one batch of the preference data and prints one JSON line: the median and
//! fastest step, CPU seconds per step, the process's peak resident memory, and the losses and
//! reward margins of every step.
//!
//! The batch is the first training batch of the book's preference data (shuffled with seed 123,
//! cut at the model's context), collated by the library. `--write-batch FILE` writes it as
//! safetensors (`chosen`, `rejected`, `chosen_mask`, `rejected_mask`) and exits, so that the
//! PyTorch side (`benches/dpo_pytorch.py --batch FILE`) times the same tokens; `--batch FILE`
//! reads it back. `scripts/bench_dpo.sh` runs both.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use llm_from_scratch::bonus_dpo::{
    compute_dpo_loss_batch, create_preference_loaders, read_preference_data, reference_model, split_preference_data, PreferenceBatch,
    BOOK_BATCH_SIZE, BOOK_BETA, BOOK_LEARNING_RATE, BOOK_WEIGHT_DECAY,
};
use llm_from_scratch::ch02::{BpeTokenizer, DataStore};
use llm_from_scratch::ch04::{num_parameters, GptModel};
use llm_from_scratch::optim::AdamW;
use serde::Serialize;
use tch::{nn, Device, Kind, Tensor};

use super::{cpu_seconds, median, peak_rss_mb};
use crate::model_source::load_config;

/// Arguments of `llm bench dpo-step`.
#[derive(Args, Debug)]
pub struct DpoStepArgs {
    /// Model preset or JSON config file (see `llm generate --help`).
    #[arg(long, default_value = "gpt2-small")]
    pub config: String,
    /// The batch to time (written by --write-batch); default: the preference data's first
    /// training batch of --batch-size pairs.
    #[arg(long)]
    pub batch: Option<PathBuf>,
    /// Write the preference data's first training batch of --batch-size pairs to this file and exit.
    #[arg(long, conflicts_with = "batch")]
    pub write_batch: Option<PathBuf>,
    /// Preference pairs per batch when the batch comes from the data.
    #[arg(long, default_value_t = BOOK_BATCH_SIZE)]
    pub batch_size: usize,
    /// Timed steps; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// Untimed steps before measuring (the first step allocates AdamW's state).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// CPU threads for libtorch (default: libtorch's own choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// DPO's β.
    #[arg(long, default_value_t = BOOK_BETA)]
    pub beta: f64,
    /// Seed of the policy's random weights.
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
}

/// The JSON line `llm bench dpo-step` prints.
#[derive(Serialize, Debug)]
struct DpoStepReport {
    bench: &'static str,
    #[serde(rename = "impl")]
    implementation: &'static str,
    config: String,
    batch_size: i64,
    num_tokens: i64,
    threads: i32,
    device: String,
    beta: f64,
    warmup: usize,
    steps: usize,
    step_s_median: f64,
    /// The fastest step: less sensitive to other processes on a shared machine than the median.
    step_s_best: f64,
    /// Median CPU seconds (all threads, user + system) per step.
    cpu_s_median: f64,
    peak_rss_mb: f64,
    params: i64,
    losses: Vec<f64>,
    reward_margins: Vec<f64>,
}

/// The first training batch of the book's preference data: split, shuffled with `seed`, cut at
/// `context_length` tokens, prompts masked.
fn data_batch(batch_size: usize, context_length: usize, seed: u64) -> Result<PreferenceBatch> {
    let data = read_preference_data(&DataStore::from_env())?;
    let (train, val, test) = split_preference_data(&data);
    let tokenizer = BpeTokenizer::gpt2()?;
    let (train_loader, _, _) = create_preference_loaders(&train, &val, &test, &tokenizer, batch_size, Some(context_length), true, seed)?;
    let indices = train_loader.order(0);
    let indices = indices.get(..batch_size).context("fewer training entries than one batch")?;
    Ok(train_loader.dataset.collate(indices, Device::Cpu))
}

pub fn dpo_step(args: DpoStepArgs) -> Result<()> {
    let mut cfg = load_config(&args.config)?;
    cfg.drop_rate = 0.0; // the book's DPO config
    if let Some(t) = args.threads {
        tch::set_num_threads(t);
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if let Some(file) = &args.write_batch {
        let b = data_batch(args.batch_size, cfg.context_length as usize, args.seed)?;
        let named = [("chosen", &b.chosen), ("rejected", &b.rejected), ("chosen_mask", &b.chosen_mask), ("rejected_mask", &b.rejected_mask)];
        Tensor::write_safetensors(&named, file).with_context(|| format!("writing {}", file.display()))?;
        eprintln!("wrote a batch of {:?} tokens to {}", b.chosen.size(), file.display());
        return Ok(());
    }
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let device = llm_from_scratch::device_report().device;
    let batch = match &args.batch {
        Some(file) => {
            let tensors: std::collections::HashMap<String, Tensor> =
                Tensor::read_safetensors(file).with_context(|| format!("reading {}", file.display()))?.into_iter().collect();
            let get = |name: &str| tensors.get(name).map(Tensor::shallow_clone).with_context(|| format!("{}: no `{name}` tensor", file.display()));
            PreferenceBatch {
                prompt: Vec::new(),
                chosen: get("chosen")?.to_kind(Kind::Int64),
                rejected: get("rejected")?.to_kind(Kind::Int64),
                chosen_mask: get("chosen_mask")?.to_kind(Kind::Bool),
                rejected_mask: get("rejected_mask")?.to_kind(Kind::Bool),
            }
        }
        None => data_batch(args.batch_size, cfg.context_length as usize, args.seed)?,
    };
    let (batch_size, num_tokens) = batch.chosen.size2()?;
    if num_tokens > cfg.context_length {
        bail!("the batch's {num_tokens} tokens exceed the context of {} ({})", args.config, cfg.context_length);
    }
    let batch = PreferenceBatch {
        prompt: Vec::new(),
        chosen: batch.chosen.to_device(device),
        rejected: batch.rejected.to_device(device),
        chosen_mask: batch.chosen_mask.to_device(device),
        rejected_mask: batch.rejected_mask.to_device(device),
    };

    // The policy built on the CPU after seeding (the book's weights for a seed), then moved.
    let (vs, policy) = {
        let _rng = llm_from_scratch::rng_lock();
        llm_from_scratch::set_seed(args.seed);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &cfg);
        vs.set_device(device);
        (vs, model)
    };
    let (_reference_vs, reference) = reference_model(&vs, &cfg)?;
    let mut optimizer = AdamW::new(&vs, BOOK_LEARNING_RATE, BOOK_WEIGHT_DECAY);

    let sync = || {
        if let Device::Cuda(d) = device {
            tch::Cuda::synchronize(d as i64);
        }
    };
    let (mut losses, mut margins, mut times, mut cpu_s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for step in 0..args.warmup + args.steps {
        let cpu_start = cpu_seconds();
        let start = Instant::now();
        // The book's step; the library's compute_dpo_loss_batch evaluates without dropout, which
        // with drop_rate 0 is the training forward pass.
        optimizer.zero_grad();
        let (loss, chosen_rewards, rejected_rewards) = compute_dpo_loss_batch(&batch, &policy, &reference, args.beta);
        optimizer.backward(&loss);
        optimizer.step();
        let loss = loss.double_value(&[]); // waits for the device
        sync();
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        losses.push(loss);
        margins.push((chosen_rewards - rejected_rewards).double_value(&[]));
        if step >= args.warmup {
            times.push(secs);
            cpu_s.push(cpu);
        }
    }
    let report = DpoStepReport {
        bench: "dpo-step",
        implementation: "llm-from-scratch",
        config: args.config,
        batch_size,
        num_tokens,
        threads: tch::get_num_threads(),
        device: format!("{device:?}").to_lowercase(),
        beta: args.beta,
        warmup: args.warmup,
        steps: args.steps,
        step_s_best: times.iter().copied().fold(f64::INFINITY, f64::min),
        step_s_median: median(times),
        cpu_s_median: median(cpu_s),
        peak_rss_mb: peak_rss_mb()?,
        params: num_parameters(&vs),
        losses,
        reward_margins: margins,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
