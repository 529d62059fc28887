//! `llm pretrain` end to end on a tiny model: log lines, outputs, stop and resume, then
//! `llm generate --checkpoint` with sampling.

mod common;

use std::path::Path;

use common::{llm, llm_ok};

fn history(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("history.json")).unwrap()).unwrap()
}

#[test]
fn pretrain_stops_resumes_and_feeds_generate() {
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-pretrain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The first 3000 characters of the-verdict: 5 batches of 8 x 16 tokens per epoch.
    let text_file = dir.join("text.txt");
    std::fs::write(&text_file, &common::text(&llm_from_scratch::data::THE_VERDICT)[..3000]).unwrap();
    let d = dir.to_str().unwrap();
    let common = ["--data", text_file.to_str().unwrap(), "--config", "tiny", "--context-length", "16", "--batch-size", "8", "--eval-freq", "4", "--eval-iter", "1"];

    // Stop after 5 of the 2 epochs' 10 steps.
    let stdout = llm_ok(&[&["pretrain"][..], &common, &["--epochs", "2", "--max-steps", "5", "--out", d]].concat());
    assert!(stdout.contains("Ep 1 (Step 000000): Train loss "), "the book's log line on stdout:\n{stdout}");
    for file in ["checkpoint.safetensors", "checkpoint.json", "history.json", "loss.svg", "loss.png"] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    assert_eq!(history(&dir)["steps"], serde_json::json!([0, 4]));

    // Resume to the end of the 2 epochs: evaluations continue at step 8, 12, ...
    llm_ok(&["pretrain", "--resume", d]);
    let h = history(&dir);
    let steps: Vec<i64> = serde_json::from_value(h["steps"].clone()).unwrap();
    assert_eq!(steps, vec![0, 4, 8], "evaluations continue on schedule after resuming");
    assert_eq!(h["samples"].as_array().unwrap().len(), 2, "one sample per epoch");
    let ckpt: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("checkpoint.json")).unwrap()).unwrap();
    assert_eq!(ckpt["state"]["epoch"], 2, "finished both epochs");

    // The trained model generates; sampling with a seed is reproducible.
    let sample = |seed: &str| {
        let out = llm_ok(&["generate", "--checkpoint", d, "--prompt", "Every effort moves you", "--max-new-tokens", "8", "--temperature", "1.5", "--top-k", "40", "--seed", seed, "--ids"]);
        serde_json::from_str::<Vec<i64>>(&out).unwrap()
    };
    std::fs::remove_file(&text_file).unwrap(); // not needed to generate
    let (a, b) = (sample("3"), sample("3"));
    assert_eq!(a.len(), 4 + 8, "prompt + 8 tokens");
    assert_eq!(a, b, "same seed, same sample");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pretrain_explains_a_text_too_short_for_one_batch() {
    let file = std::env::temp_dir().join(format!("llm-fs-short-{}.txt", std::process::id()));
    std::fs::write(&file, "Too short to train on.").unwrap();
    let out = llm(&["pretrain", "--data", file.to_str().unwrap(), "--config", "tiny", "--context-length", "16", "--out", "/tmp/unused-llm-fs"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("tokens"), "{stderr}");
    std::fs::remove_file(&file).unwrap();
}
