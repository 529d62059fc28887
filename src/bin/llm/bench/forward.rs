//! `llm bench forward --config gpt2-small --context-length 256 --batch-size 2` times the model's
//! forward pass (eval mode, no gradients, fp32) with the explicit attention steps and with
//! libtorch's fused `scaled_dot_product_attention`, and prints one JSON line. The PyTorch side
//! is `benches/forward_pytorch.py`; `scripts/bench_forward.sh` runs both.

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use llm_from_scratch::ch04::{AttentionImpl, GptModel};
use serde::Serialize;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use super::{bench_config, median};

/// Arguments of `llm bench forward`.
#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// Model preset or JSON config file (see `llm generate --help`).
    #[arg(long, default_value = "gpt2-small")]
    pub config: String,
    /// Tokens per sequence (at most the config's context_length).
    #[arg(long, default_value_t = 256)]
    pub context_length: i64,
    /// Sequences per forward pass.
    #[arg(long, default_value_t = 2)]
    pub batch_size: i64,
    /// Untimed passes per attention path before measuring.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed passes per attention path; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// CPU threads for libtorch (default: libtorch's own choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Seed for the weights and the random input ids.
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
}

/// The JSON line `llm bench forward` prints.
#[derive(Serialize, Debug)]
struct ForwardReport {
    bench: &'static str,
    implementation: &'static str,
    config: String,
    context_length: i64,
    batch_size: i64,
    threads: i32,
    device: String,
    warmup: usize,
    runs: usize,
    /// Median milliseconds per forward pass.
    explicit_ms: f64,
    sdpa_ms: f64,
    /// Fastest pass (less sensitive to other processes on a shared machine).
    explicit_best_ms: f64,
    sdpa_best_ms: f64,
    explicit_tokens_per_s: f64,
    sdpa_tokens_per_s: f64,
}

pub fn forward(args: ForwardArgs) -> Result<()> {
    let cfg = bench_config(&args.config, args.context_length, args.threads)?;
    if args.runs == 0 || args.batch_size < 1 {
        bail!("--runs and --batch-size must be at least 1");
    }
    let device = llm_from_scratch::device_report().device;
    llm_from_scratch::set_seed(args.seed);
    let vs = nn::VarStore::new(device);
    let mut model = GptModel::new(&vs.root(), &cfg);
    let ids = Tensor::randint(cfg.vocab_size, [args.batch_size, args.context_length], (Kind::Int64, device));
    let _no_grad = tch::no_grad_guard();

    let mut pass = |attn_impl: AttentionImpl| -> f64 {
        model.set_attention_impl(attn_impl);
        let start = Instant::now();
        let logits = model.forward_t(&ids, false);
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
        let secs = start.elapsed().as_secs_f64();
        drop(logits);
        secs
    };
    for _ in 0..args.warmup {
        pass(AttentionImpl::Explicit);
        pass(AttentionImpl::Sdpa);
    }
    // Alternate the two paths so that slow drifts of the machine affect both alike.
    let (mut explicit, mut sdpa) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        explicit.push(pass(AttentionImpl::Explicit));
        sdpa.push(pass(AttentionImpl::Sdpa));
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (explicit_best, sdpa_best) = (best(&explicit), best(&sdpa));
    let (explicit, sdpa) = (median(explicit), median(sdpa));
    let tokens = (args.batch_size * args.context_length) as f64;
    let report = ForwardReport {
        bench: "forward",
        implementation: "rust-tch",
        config: args.config,
        context_length: args.context_length,
        batch_size: args.batch_size,
        threads: tch::get_num_threads(),
        device: format!("{device:?}").to_lowercase(),
        warmup: args.warmup,
        runs: args.runs,
        explicit_ms: explicit * 1e3,
        sdpa_ms: sdpa * 1e3,
        explicit_best_ms: explicit_best * 1e3,
        sdpa_best_ms: sdpa_best * 1e3,
        explicit_tokens_per_s: tokens / explicit,
        sdpa_tokens_per_s: tokens / sdpa,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
