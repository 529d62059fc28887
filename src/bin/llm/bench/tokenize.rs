//! `llm bench tokenize --file PATH` times GPT-2 encoding (single thread) of this crate's
//! byte-level BPE and of `tiktoken-rs` (`r50k_base`) on the same text in the same run, checks
//! that both give the same ids, and prints MB/s for both and their ratio (ours / tiktoken-rs).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct TokenizeBenchArgs {
    /// The text to encode (UTF-8), e.g. the book's data files concatenated.
    #[arg(long)]
    pub file: PathBuf,
    /// Seconds to spend timing each tokenizer (at least 3 rounds each).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
}

/// Median seconds of one call of `f`, over rounds alternating with nothing else, until
/// `budget` has passed (at least 3 rounds, after one warm-up call).
fn time_median(budget: std::time::Duration, mut f: impl FnMut()) -> (f64, usize) {
    use std::time::Instant;
    f(); // warm-up: page in the vocabulary, fill the CPU caches
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < 3 || start.elapsed() < budget {
        let t0 = Instant::now();
        f();
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times.len())
}

pub fn tokenize(args: TokenizeBenchArgs) -> Result<()> {
    use anyhow::Context;
    use llm_from_scratch::tokenizer::BpeTokenizer;
    use std::time::Duration;

    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let ours = BpeTokenizer::gpt2()?;
    let reference = tiktoken_rs::r50k_base().map_err(|e| anyhow::anyhow!("tiktoken-rs r50k_base: {e}"))?;

    let our_ids = ours.encode_ordinary(&text);
    let reference_ids = reference.encode_ordinary(&text);
    let same_ids = our_ids == reference_ids;

    let budget = Duration::from_secs_f64(args.seconds.max(0.0));
    // Each timed call starts with an empty piece cache, as on a text never seen before.
    let (ours_s, ours_rounds) = time_median(budget, || {
        ours.clear_cache();
        std::hint::black_box(ours.encode_ordinary(std::hint::black_box(&text)));
    });
    let (ref_s, ref_rounds) = time_median(budget, || {
        std::hint::black_box(reference.encode_ordinary(std::hint::black_box(&text)));
    });
    let mb = text.len() as f64 / 1e6;
    let (ours_mbps, ref_mbps) = (mb / ours_s, mb / ref_s);
    let line = serde_json::json!({
        "bench": "tokenize",
        "file": args.file.display().to_string(),
        "bytes": text.len(),
        "tokens": our_ids.len(),
        "same_ids": same_ids,
        "threads": 1,
        "llm_from_scratch_mb_per_s": round3(ours_mbps),
        "tiktoken_rs_mb_per_s": round3(ref_mbps),
        "ratio": round3(ours_mbps / ref_mbps),
        "rounds": { "llm_from_scratch": ours_rounds, "tiktoken_rs": ref_rounds },
    });
    println!("{line}");
    anyhow::ensure!(same_ids, "the two tokenizers gave different ids on {}", args.file.display());
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
