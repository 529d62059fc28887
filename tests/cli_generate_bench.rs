//! The `llm generate`, `llm bench forward` and `llm bench generate` commands, run as a learner would.

mod common;

use common::{llm, llm_ok};

#[test]
fn generate_prints_the_books_ids_as_one_json_array() {
    let stdout = llm_ok(&["generate", "--config", "gpt2-small", "--seed", "123", "--prompt-ids", "15496,11,314,716", "--max-new-tokens", "10", "--ids"]);
    let ids: Vec<i64> = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON array ({e}): {stdout}"));
    assert_eq!(ids, [15496, 11, 314, 716, 27018, 24086, 47843, 30961, 42348, 7267, 49706, 43231, 47062, 34657]);
}

#[test]
fn generate_rejects_unknown_presets_and_ids_outside_the_vocabulary() {
    for (args, needle) in [
        (vec!["generate", "--config", "gpt5", "--prompt-ids", "1", "--ids"], "unknown model preset 'gpt5'"),
        (vec!["generate", "--config", "tiny", "--prompt-ids", "50257", "--ids"], "outside the vocabulary"),
    ] {
        let out = llm(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn bench_forward_prints_one_json_line_with_both_paths() {
    let stdout = llm_ok(&["bench", "forward", "--config", "tiny", "--context-length", "16", "--batch-size", "2", "--runs", "1", "--warmup", "0"]);
    assert_eq!(stdout.trim().lines().count(), 1, "one line: {stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["bench"], "forward");
    assert_eq!(v["config"], "tiny");
    assert_eq!((v["context_length"].as_i64(), v["batch_size"].as_i64()), (Some(16), Some(2)));
    assert!(v["threads"].as_i64().unwrap() >= 1, "{v}");
    for key in ["explicit_tokens_per_s", "sdpa_tokens_per_s"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key} in {v}");
    }
}

#[test]
fn generate_prints_the_books_text_for_a_text_prompt() {
    // Book 4.7: the untrained seed-123 model continues "Hello, I am" with 10 random-looking tokens.
    let stdout = llm_ok(&["generate", "--config", "gpt2-small", "--seed", "123", "--prompt", "Hello, I am", "--max-new-tokens", "10"]);
    assert_eq!(stdout.trim_end(), "Hello, I am Featureiman Byeswickattribute argue logger Normandy Compton analogous");
}

#[test]
fn generate_rejects_bad_sampling_options() {
    for (args, needle) in [
        (vec!["generate", "--config", "tiny", "--prompt-ids", "1", "--ids", "--temperature=-1"], "--temperature"),
        (vec!["generate", "--config", "tiny", "--prompt-ids", "1", "--ids", "--top-k", "0"], "--top-k"),
        (vec!["generate", "--checkpoint", "/nonexistent/run", "--prompt-ids", "1", "--ids"], "/nonexistent/run"),
    ] {
        let out = llm(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn generate_gives_the_same_ids_with_and_without_the_kv_cache() {
    // The default (KV cache) printed the book's ids above; --no-kv-cache recomputes every position.
    let stdout = llm_ok(&["generate", "--config", "gpt2-small", "--seed", "123", "--prompt-ids", "15496,11,314,716", "--max-new-tokens", "10", "--ids", "--no-kv-cache"]);
    let ids: Vec<i64> = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON array ({e}): {stdout}"));
    assert_eq!(ids, [15496, 11, 314, 716, 27018, 24086, 47843, 30961, 42348, 7267, 49706, 43231, 47062, 34657]);
    // Sampled past the tiny preset's context of 128 tokens: the same draws either way.
    let sampled = |cache: bool| {
        let mut args = vec!["generate", "--config", "tiny", "--seed", "9", "--prompt-ids", "1,2,3", "--max-new-tokens", "140", "--temperature", "1.2", "--top-k", "40", "--ids"];
        if !cache {
            args.push("--no-kv-cache");
        }
        llm_ok(&args)
    };
    let (cached, uncached) = (sampled(true), sampled(false));
    assert_eq!(cached, uncached, "sampled ids with and without the cache");
    assert_eq!(serde_json::from_str::<Vec<i64>>(cached.trim()).unwrap().len(), 143, "3 + 140 ids");
}

#[test]
fn bench_generate_prints_one_json_line_with_the_weight_limit() {
    for extra in [vec![], vec!["--no-kv-cache", "--dtype", "bf16"]] {
        let mut args = vec!["bench", "generate", "--config", "tiny", "--prompt-tokens", "3", "--max-new-tokens", "6", "--limit-passes", "2"];
        args.extend(&extra);
        let stdout = llm_ok(&args);
        assert_eq!(stdout.trim().lines().count(), 1, "one line: {stdout}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!((v["bench"].as_str(), v["config"].as_str()), (Some("generate"), Some("tiny")), "{v}");
        let cached = extra.is_empty();
        assert_eq!(v["kv_cache"].as_bool(), Some(cached), "{v}");
        assert_eq!(v["dtype"].as_str(), Some(if cached { "f32" } else { "bf16" }), "{v}");
        // With the cache: the prompt once, then one position per token but the last (3 + 6 - 1);
        // without: 3 + 4 + ... + 8.
        assert_eq!(v["positions_computed"].as_i64(), Some(if cached { 8 } else { 33 }), "{v}");
        // tiny: 2 blocks of 4 x 128^2 + 2 x 128 x 512 weights, and the 50257 x 128 output head.
        let weights = 2 * (4 * 128 * 128 + 2 * 128 * 512) + 50257 * 128;
        let bytes = if cached { 4 } else { 2 };
        assert!((v["weight_matrices_mb"].as_f64().unwrap() - (weights * bytes) as f64 / 1e6).abs() < 1e-6, "{v}");
        for key in ["tokens_per_s", "limit_tokens_per_s", "fraction_of_limit"] {
            assert!(v[key].as_f64().unwrap() > 0.0, "{key} in {v}");
        }
    }
}
