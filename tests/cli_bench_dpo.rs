//! `llm bench dpo-step`: one JSON line with the time per DPO training step; `--write-batch`
//! writes the batch that `benches/dpo_pytorch.py` reads, and `--batch` reads it back.

mod common;

use common::llm;

#[test]
fn bench_dpo_step_writes_a_batch_then_times_it() {
    let file = std::env::temp_dir().join(format!("llm-fs-dpo-batch-{}.safetensors", std::process::id()));
    let f = file.to_str().unwrap();
    let out = llm(&["bench", "dpo-step", "--config", "tiny", "--batch-size", "2", "--write-batch", f]);
    assert!(out.status.success() && file.is_file(), "{}", String::from_utf8_lossy(&out.stderr));

    let args = ["bench", "dpo-step", "--config", "tiny", "--batch", f, "--steps", "2", "--warmup", "1", "--threads", "1"];
    let out = llm(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "llm {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim().lines().count(), 1, "one line: {stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert_eq!((v["bench"].as_str(), v["impl"].as_str(), v["config"].as_str()), (Some("dpo-step"), Some("llm-from-scratch"), Some("tiny")));
    assert_eq!((v["batch_size"].as_i64(), v["steps"].as_i64(), v["threads"].as_i64()), (Some(2), Some(2), Some(1)), "{v}");
    let tokens = v["num_tokens"].as_i64().unwrap();
    assert!((10..=128).contains(&tokens), "a real batch, cut at tiny's context of 128: {v}");
    for key in ["step_s_median", "step_s_best", "cpu_s_median", "peak_rss_mb"] {
        let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x} in {v}");
    }
    let losses: Vec<f64> = serde_json::from_value(v["losses"].clone()).unwrap();
    assert_eq!(losses.len(), 3, "warm-up + 2 steps: {v}");
    assert!((losses[0] - std::f64::consts::LN_2).abs() < 1e-6, "policy = reference at the first step: {losses:?}");
    std::fs::remove_file(&file).unwrap();
}
