//! `llm bench train --config gpt2-small --batch-size 2 --context-length 256 --steps 5` times
//! the chapter 5 training step (zero the gradients, forward in training mode, cross-entropy,
//! backward, AdamW step; fp32) on random token batches and prints one JSON line: the median
//! step's tokens/s, the process's peak resident memory, and the model-FLOPs utilisation against
//! a matmul measured in the same process. The PyTorch side is `benches/train_pytorch.py`;
//! `scripts/bench_train.sh` runs both.

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;
use llm_from_scratch::ch04::{num_parameters, AttentionImpl, GptModel};
use llm_from_scratch::optim::AdamW;
use serde::Serialize;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use super::{bench_config, cpu_seconds, median, peak_rss_mb};

/// Arguments of `llm bench train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model preset or JSON config file (see `llm generate --help`).
    #[arg(long, default_value = "gpt2-small")]
    pub config: String,
    /// Sequences per step.
    #[arg(long, default_value_t = 2)]
    pub batch_size: i64,
    /// Tokens per sequence (at most the config's context_length).
    #[arg(long, default_value_t = 256)]
    pub context_length: i64,
    /// Timed steps; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed steps before measuring (the first step allocates the optimizer state).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// CPU threads for libtorch (default: libtorch's own choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Use libtorch's fused scaled_dot_product_attention instead of the book's explicit steps.
    #[arg(long)]
    pub sdpa: bool,
    /// Back-propagate with the book's `loss.backward()`, which adds the gradients into the
    /// parameters' zero-filled `.grad` fields, instead of `optimizer.backward(&loss)`, which
    /// creates them (PyTorch's default `zero_grad(set_to_none=True)` behaviour).
    #[arg(long)]
    pub loss_backward: bool,
    /// Seed for the weights, the dropout masks and the random batches.
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
    /// Side of the square fp32 matmul timed for the model-FLOPs utilisation.
    #[arg(long, default_value_t = 2048)]
    pub matmul_size: i64,
}

/// The JSON line `llm bench train` prints.
#[derive(Serialize, Debug)]
struct TrainReport {
    bench: &'static str,
    #[serde(rename = "impl")]
    implementation: &'static str,
    config: String,
    batch_size: i64,
    context_length: i64,
    threads: i32,
    device: String,
    attention: &'static str,
    /// How the gradients were computed: "optimizer.backward" or "loss.backward".
    backward: &'static str,
    warmup: usize,
    steps: usize,
    step_s_median: f64,
    /// Medians of the step's parts: forward + loss, backward, optimizer (zero_grad + step).
    forward_s: f64,
    backward_s: f64,
    optimizer_s: f64,
    tokens_per_s: f64,
    /// The fastest step, and tokens/s at its pace: less sensitive to other processes on a
    /// shared machine than the median.
    step_s_best: f64,
    tokens_per_s_best: f64,
    /// Median CPU seconds (all threads, user + system) per step: less sensitive than the wall
    /// time to other processes sharing the cores.
    cpu_s_median: f64,
    peak_rss_mb: f64,
    params: i64,
    matmul_gflops: f64,
    mfu: f64,
    losses: Vec<f64>,
}

/// fp32 matmul throughput of this machine in GFLOP/s: the median of 5 products of two `n x n`
/// matrices (2 n^3 flops each) after one warm-up product.
pub fn matmul_gflops(device: Device, n: i64) -> f64 {
    let a = Tensor::randn([n, n], (Kind::Float, device));
    let b = Tensor::randn([n, n], (Kind::Float, device));
    let mut times = Vec::new();
    for i in 0..6 {
        let start = Instant::now();
        let c = a.matmul(&b);
        if let Device::Cuda(d) = device {
            tch::Cuda::synchronize(d as i64);
        }
        let secs = start.elapsed().as_secs_f64();
        drop(c);
        if i > 0 {
            times.push(secs);
        }
    }
    2.0 * (n as f64).powi(3) / median(times) / 1e9
}

pub fn train(args: TrainArgs) -> Result<()> {
    let cfg = bench_config(&args.config, args.context_length, args.threads)?;
    if args.steps == 0 || args.batch_size < 1 || args.matmul_size < 1 {
        bail!("--steps, --batch-size and --matmul-size must be at least 1");
    }
    let device = llm_from_scratch::device_report().device;
    let matmul_gflops = matmul_gflops(device, args.matmul_size);

    llm_from_scratch::set_seed(args.seed);
    let vs = nn::VarStore::new(device);
    let mut model = GptModel::new(&vs.root(), &cfg);
    if args.sdpa {
        model.set_attention_impl(AttentionImpl::Sdpa);
    }
    let mut optimizer = AdamW::new(&vs, 4e-4, 0.1);
    let shape = [args.batch_size, args.context_length];
    let input_batch = Tensor::randint(cfg.vocab_size, shape, (Kind::Int64, device));
    let target_batch = Tensor::randint(cfg.vocab_size, shape, (Kind::Int64, device));

    let sync = || {
        if let Device::Cuda(d) = device {
            tch::Cuda::synchronize(d as i64);
        }
    };
    let mut losses = Vec::new();
    // Seconds per timed step: whole step, forward + loss, backward, optimizer (zero_grad + step).
    let (mut times, mut forward_s, mut backward_s, mut optimizer_s) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cpu_s = Vec::new();
    for step in 0..args.warmup + args.steps {
        let cpu_start = cpu_seconds();
        let start = Instant::now();
        optimizer.zero_grad();
        sync();
        let t_zero = start.elapsed().as_secs_f64();
        let logits = model.forward_t(&input_batch, true); // [batch, context, vocab]
        let loss = logits.flatten(0, 1).cross_entropy_for_logits(&target_batch.flatten(0, 1));
        sync();
        let t_forward = start.elapsed().as_secs_f64();
        if args.loss_backward {
            loss.backward();
        } else {
            optimizer.backward(&loss);
        }
        sync();
        let t_backward = start.elapsed().as_secs_f64();
        optimizer.step();
        let loss = loss.double_value(&[]); // waits for the device
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        losses.push(loss);
        if step >= args.warmup {
            times.push(secs);
            cpu_s.push(cpu);
            forward_s.push(t_forward - t_zero);
            backward_s.push(t_backward - t_forward);
            optimizer_s.push(t_zero + secs - t_backward);
        }
    }
    let (forward_s, backward_s, optimizer_s) = (median(forward_s), median(backward_s), median(optimizer_s));
    let step_s_best = times.iter().copied().fold(f64::INFINITY, f64::min);
    let step_s = median(times);
    let tokens_per_s = (args.batch_size * args.context_length) as f64 / step_s;
    let params = num_parameters(&vs);
    let report = TrainReport {
        bench: "train",
        implementation: "llm-from-scratch",
        config: args.config,
        batch_size: args.batch_size,
        context_length: args.context_length,
        threads: tch::get_num_threads(),
        device: format!("{device:?}").to_lowercase(),
        attention: if args.sdpa { "sdpa" } else { "explicit" },
        backward: if args.loss_backward { "loss.backward" } else { "optimizer.backward" },
        warmup: args.warmup,
        steps: args.steps,
        step_s_median: step_s,
        forward_s,
        backward_s,
        optimizer_s,
        tokens_per_s,
        step_s_best,
        tokens_per_s_best: (args.batch_size * args.context_length) as f64 / step_s_best,
        cpu_s_median: median(cpu_s),
        peak_rss_mb: peak_rss_mb()?,
        params,
        matmul_gflops,
        mfu: 6.0 * params as f64 * tokens_per_s / (matmul_gflops * 1e9),
        losses,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
