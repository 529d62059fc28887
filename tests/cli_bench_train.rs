//! `llm bench train`: one JSON line with the training step's throughput, memory and MFU.

mod common;

use common::llm;

#[test]
fn bench_train_prints_one_json_line_with_positive_measurements() {
    let args = [
        "bench", "train", "--config", "tiny", "--batch-size", "2", "--context-length", "16", "--steps", "2", "--warmup", "1",
        "--threads", "1", "--matmul-size", "256",
    ];
    let out = llm(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "llm {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim().lines().count(), 1, "one line: {stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert_eq!((v["bench"].as_str(), v["impl"].as_str(), v["config"].as_str()), (Some("train"), Some("llm-from-scratch"), Some("tiny")));
    assert_eq!((v["batch_size"].as_i64(), v["context_length"].as_i64(), v["steps"].as_i64()), (Some(2), Some(16), Some(2)));
    assert_eq!(v["threads"].as_i64(), Some(1), "{v}");
    assert_eq!(v["params"].as_i64(), Some(llm_from_scratch::ch04::GptConfig::tiny().num_parameters()), "{v}");
    for key in ["step_s_median", "step_s_best", "tokens_per_s_best", "forward_s", "backward_s", "optimizer_s", "tokens_per_s", "cpu_s_median", "peak_rss_mb", "matmul_gflops", "mfu"] {
        let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x} in {v}");
    }
    let tokens_per_s = v["tokens_per_s"].as_f64().unwrap();
    assert!((tokens_per_s * v["step_s_median"].as_f64().unwrap() - 32.0).abs() < 1e-6, "tokens/s = 2 x 16 / median step: {v}");
    let losses: Vec<f64> = v["losses"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(losses.len(), 3, "warm-up + 2 steps: {v}");
    // Random targets over 50257 tokens: the first loss is about ln(50257) = 10.8, and AdamW
    // memorises the single batch step by step.
    assert!((losses[0] - 10.8).abs() < 1.0 && losses[2] < losses[0], "losses {losses:?}");
}

#[test]
fn bench_train_rejects_a_context_longer_than_the_models() {
    let out = llm(&["bench", "train", "--config", "tiny", "--context-length", "129", "--steps", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--context-length 129 must be in 1..=128"), "{stderr}");
}
