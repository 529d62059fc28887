//! `llm bench generate --config gpt2-small --prompt-tokens 4 --max-new-tokens 200` times greedy
//! generation of one sequence with the KV cache (chapter 4's bonus; `--no-kv-cache`: recomputing
//! every position, as chapters 4 and 5 do) and prints one JSON line.
//!
//! Decoding one sequence reads every weight matrix once per token, so the line also gives that
//! limit on this machine, measured in the same process: the time of one pass of
//! matrix-vector products (`F.linear` of one row) over every weight matrix of the model (the
//! attention projections, the feed-forward layers and the output head; the embedding tables
//! are only looked up), in the model's dtype, as tokens/s. The PyTorch side is
//! `benches/generate_pytorch.py`; `scripts/bench_generate.sh` runs both.

use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use llm_from_scratch::bonus_kv_cache::{generate, generate_cached, AttentionImpl, CachedLm, GptModel};
use serde::Serialize;
use tch::nn;
use tch::{Device, Kind, Tensor};

use super::{load_config, median};

/// The dtype the weights are kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    /// float32, as the book's GPT code.
    F32,
    /// bfloat16, as the book's Llama 3.2 and Qwen3 code keeps its weights.
    Bf16,
}

impl Dtype {
    fn kind(self) -> Kind {
        match self {
            Dtype::F32 => Kind::Float,
            Dtype::Bf16 => Kind::BFloat16,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
        }
    }
}

/// Arguments of `llm bench generate`.
#[derive(Args, Debug)]
pub struct GenerateBenchArgs {
    /// Model preset or JSON config file (see `llm generate --help`); random weights.
    #[arg(long, default_value = "gpt2-small")]
    pub config: String,
    /// Prompt length in tokens (random ids; 4 is the book's "Hello, I am").
    #[arg(long, default_value_t = 4)]
    pub prompt_tokens: i64,
    /// Tokens generated per run (greedy, always this many).
    #[arg(long, default_value_t = 200)]
    pub max_new_tokens: i64,
    /// Recompute every position for every token instead of using the KV cache.
    #[arg(long)]
    pub no_kv_cache: bool,
    /// The weights' dtype.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Use libtorch's fused scaled_dot_product_attention instead of the explicit steps.
    #[arg(long)]
    pub sdpa: bool,
    /// Timed generations; the median is reported (one untimed generation of 5 tokens warms up).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Passes over the weights to time, half before and half after the generations.
    #[arg(long, default_value_t = 10)]
    pub limit_passes: usize,
    /// CPU threads for libtorch (default: libtorch's own choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Seed for the weights and the prompt ids.
    #[arg(long, default_value_t = 123)]
    pub seed: u64,
}

/// The JSON line `llm bench generate` prints.
#[derive(Serialize, Debug)]
struct GenerateReport {
    bench: &'static str,
    implementation: String,
    config: String,
    prompt_tokens: i64,
    new_tokens: i64,
    dtype: &'static str,
    kv_cache: bool,
    attention: &'static str,
    threads: i32,
    device: String,
    runs: usize,
    /// Median seconds per generation (prompt included).
    seconds: f64,
    /// New tokens per second from the median and from the fastest generation.
    tokens_per_s: f64,
    best_tokens_per_s: f64,
    /// Positions the model computed in one generation (with the cache: prompt + new - 1).
    positions_computed: i64,
    /// Megabytes of weight matrices read per token and the milliseconds of one pass over them
    /// (median and fastest of `limit_passes`).
    weight_matrices_mb: f64,
    weight_pass_ms: f64,
    weight_pass_best_ms: f64,
    /// The weight-streaming limit, tokens/s: 1000 / weight_pass_ms.
    limit_tokens_per_s: f64,
    /// tokens_per_s / limit_tokens_per_s.
    fraction_of_limit: f64,
}

pub fn generate_bench(args: GenerateBenchArgs) -> Result<()> {
    let cfg = load_config(&args.config)?;
    if let Some(t) = args.threads {
        tch::set_num_threads(t);
    }
    if args.runs == 0 || args.limit_passes == 0 || args.prompt_tokens < 1 || args.max_new_tokens < 1 {
        bail!("--runs, --limit-passes, --prompt-tokens and --max-new-tokens must be at least 1");
    }
    if args.prompt_tokens > cfg.context_length {
        bail!("--prompt-tokens {} exceeds the context length {} of {}", args.prompt_tokens, cfg.context_length, args.config);
    }
    let device = llm_from_scratch::device_report().device;
    llm_from_scratch::set_seed(args.seed);
    let mut vs = nn::VarStore::new(device);
    let mut model = GptModel::new(&vs.root(), &cfg);
    vs.set_kind(args.dtype.kind());
    if args.sdpa {
        model.set_attention_impl(AttentionImpl::Sdpa);
    }
    let prompt = Tensor::randint(cfg.vocab_size, [1, args.prompt_tokens], (Kind::Int64, device));
    let weights = weight_matrices(&model);
    let weight_bytes: i64 = weights.iter().map(|w| w.numel() as i64 * w.kind().elt_size_in_bytes() as i64).sum();
    let _no_grad = tch::no_grad_guard();
    let sync = || {
        if let Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };

    let mut cache = model.new_cache();
    let mut run = |new_tokens: i64| -> (f64, i64) {
        let before = cache.positions_computed();
        let start = Instant::now();
        let out = if args.no_kv_cache {
            generate(&model, &prompt, new_tokens, cfg.context_length, 0.0, None, None)
        } else {
            generate_cached(&model, &mut cache, &prompt, new_tokens, 0.0, None, None)
        };
        sync();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(out.size()[1], args.prompt_tokens + new_tokens, "greedy generation without eos appends every token");
        let positions = if args.no_kv_cache {
            uncached_positions(args.prompt_tokens, new_tokens, cfg.context_length)
        } else {
            cache.positions_computed() - before
        };
        (secs, positions)
    };
    let weight_pass = || {
        let start = Instant::now();
        stream_weights(&weights);
        sync();
        start.elapsed().as_secs_f64()
    };

    run(5.min(args.max_new_tokens));
    weight_pass();
    let mut passes: Vec<f64> = (0..args.limit_passes.div_ceil(2)).map(|_| weight_pass()).collect();
    let (mut times, mut positions) = (Vec::new(), 0);
    for _ in 0..args.runs {
        let (secs, p) = run(args.max_new_tokens);
        times.push(secs);
        positions = p;
    }
    passes.extend((0..args.limit_passes / 2).map(|_| weight_pass()));

    let best_run = times.iter().copied().fold(f64::INFINITY, f64::min);
    let best_pass = passes.iter().copied().fold(f64::INFINITY, f64::min);
    let (secs, pass) = (median(times), median(passes));
    let tokens_per_s = args.max_new_tokens as f64 / secs;
    let limit_tokens_per_s = 1.0 / pass;
    let report = GenerateReport {
        bench: "generate",
        implementation: "rust-tch".into(),
        config: args.config,
        prompt_tokens: args.prompt_tokens,
        new_tokens: args.max_new_tokens,
        dtype: args.dtype.name(),
        kv_cache: !args.no_kv_cache,
        attention: if args.sdpa { "sdpa" } else { "explicit" },
        threads: tch::get_num_threads(),
        device: format!("{device:?}").to_lowercase(),
        runs: args.runs,
        seconds: secs,
        tokens_per_s,
        best_tokens_per_s: args.max_new_tokens as f64 / best_run,
        positions_computed: positions,
        weight_matrices_mb: weight_bytes as f64 / 1e6,
        weight_pass_ms: pass * 1e3,
        weight_pass_best_ms: best_pass * 1e3,
        limit_tokens_per_s,
        fraction_of_limit: tokens_per_s / limit_tokens_per_s,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Every weight matrix a token's forward pass multiplies by: per block `W_query`, `W_key`,
/// `W_value`, `out_proj`, `ff.layers.0`, `ff.layers.2`; then `out_head`.
fn weight_matrices(model: &GptModel) -> Vec<Tensor> {
    let mut weights = Vec::new();
    for block in &model.trf_blocks {
        let att = &block.att;
        for linear in [&att.w_query, &att.w_key, &att.w_value, &att.out_proj, &block.ff.fc1, &block.ff.fc2] {
            weights.push(linear.weight.shallow_clone());
        }
    }
    weights.push(model.out_head.weight.shallow_clone());
    weights
}

/// One matrix-vector product per weight matrix (`F.linear` of one row, as a decoding step
/// computes), inputs of the weights' dtype: the least a token's forward pass must read.
fn stream_weights(weights: &[Tensor]) {
    for w in weights {
        let (_out_features, in_features) = w.size2().expect("a weight matrix");
        let x = Tensor::ones([1, in_features], (w.kind(), w.device())); // [1, in_features]
        let _ = x.linear(w, None::<Tensor>); // [1, out_features]
    }
}

/// Positions the uncached loop computes: each step feeds the whole sequence so far, cropped to
/// the context.
fn uncached_positions(prompt_tokens: i64, new_tokens: i64, context_length: i64) -> i64 {
    (0..new_tokens).map(|i| (prompt_tokens + i).min(context_length)).sum()
}
