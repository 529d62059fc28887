//! The `llm generate` and `llm bench forward` commands, run as a learner would.

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
