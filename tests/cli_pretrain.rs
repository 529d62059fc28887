//! `llm pretrain` end to end on a tiny model: log lines, outputs, stop and resume, then
//! `llm generate --model` with sampling; continuing the pretraining of Hugging Face weights.

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
    let sample = |flag: &str, seed: &str| {
        let out = llm_ok(&["generate", flag, d, "--prompt", "Every effort moves you", "--max-new-tokens", "8", "--temperature", "1.5", "--top-k", "40", "--seed", seed, "--ids"]);
        serde_json::from_str::<Vec<i64>>(&out).unwrap()
    };
    std::fs::remove_file(&text_file).unwrap(); // not needed to generate
    // `--model DIR` names a run folder; `--checkpoint DIR` is its old name.
    let (a, b) = (sample("--model", "3"), sample("--checkpoint", "3"));
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

/// `llm pretrain --weights DIR` continues the pretraining of a Hugging Face GPT-2 (here the random
/// full-vocabulary GPT-2 of exercise 5.5's fixture): with a learning rate of 0 the first
/// evaluation is the loaded model's, and its validation loss is the one `transformers` computes.
#[test]
fn pretrain_continues_from_hugging_face_weights() {
    let fixture = common::hf_gpt2_verdict();
    let reference: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixture.join("losses.json")).unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-pretrain-hf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (weights, d) = (fixture.join("model"), dir.to_str().unwrap());
    let args = ["--data", "the-verdict", "--context-length", "256", "--batch-size", "2", "--lr", "0", "--weight-decay", "0"];
    let more = ["--epochs", "1", "--eval-freq", "100", "--eval-iter", "100", "--max-steps", "1", "--out", d];
    llm_ok(&[&["pretrain", "--weights", weights.to_str().unwrap()][..], &args, &more].concat());
    let h = history(&dir);
    let val_loss = h["val_losses"][0].as_f64().unwrap();
    let want = reference["val_loss"].as_f64().unwrap();
    assert!((val_loss - want).abs() < 1e-4, "validation loss of the loaded GPT-2: {val_loss}, transformers: {want}");
    let ckpt: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("checkpoint.json")).unwrap()).unwrap();
    let cfg = &ckpt["config"];
    assert_eq!((cfg["vocab_size"].as_i64(), cfg["context_length"].as_i64()), (Some(50257), Some(256)), "the pretrained model's config: {cfg}");

    // A resumed run keeps its own model: model flags are refused.
    let out = llm(&["pretrain", "--resume", d, "--weights", weights.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("--resume continues a run with its own model"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
