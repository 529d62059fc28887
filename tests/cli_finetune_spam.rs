//! `llm finetune-spam` end to end on a tiny model, then `llm classify` on what it wrote; a run
//! stopped and resumed equals the run straight through; and `llm bench finetune-spam`'s JSON line.

mod common;

use common::{llm, llm_succeeds};
use llm_from_scratch::ch06::{classify_review, load_classifier, read_csv};

#[test]
fn finetune_spam_writes_a_classifier_that_llm_classify_loads() {
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-spam-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let out = llm_succeeds(&[
        "finetune-spam", "--config", "tiny", "--epochs", "1", "--max-steps", "30", "--lr", "1e-3", "--eval-freq", "10",
        "--eval-iter", "1", "--out", d,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in ["Ep 1 (Step 000000): Train loss ", "Ep 1 (Step 000020)", "Training accuracy: ", "| Validation accuracy: ", "Test accuracy: "] {
        assert!(stdout.contains(line), "stdout lacks {line:?}:\n{stdout}");
    }
    for file in ["checkpoint.safetensors", "history.json", "results.json", "loss.svg", "loss.png", "accuracy.svg", "accuracy.png", "train.csv", "validation.csv", "test.csv"] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    assert_eq!(read_csv(dir.join("train.csv")).unwrap().len(), 1045, "the book's training split");
    let history: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("history.json")).unwrap()).unwrap();
    assert_eq!(history["steps"], serde_json::json!([0, 10, 20]), "{history}");
    let ckpt: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("checkpoint.json")).unwrap()).unwrap();
    // The run's examples seen (its state's `tokens_seen`, which counts examples for a classifier).
    assert_eq!((ckpt["state"]["tokens_seen"].as_i64(), history["train_accs"].as_array().map(Vec::len)), (Some(240), Some(1)));
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let d_emb = 128;
    let block = llm_from_scratch::ch04::GptConfig::tiny().block_parameters();
    assert_eq!(results["trainable_parameters"].as_i64(), Some(block + 2 * d_emb + 2 * d_emb + 2), "{results}");

    // llm classify answers as the library does with the saved classifier.
    let texts = [
        "You are a winner you have been specially selected to receive $1000 cash or a $2000 award.",
        "Hey, just wanted to check if we're still on for dinner tonight? Let me know!",
    ];
    let out = llm_succeeds(&["classify", "--model", d, "--text", texts[0], "--text", texts[1]]);
    let answers: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    let (_vs, model, info) = {
        let _rng = llm_from_scratch::rng_lock();
        load_classifier(&dir, tch::Device::Cpu).unwrap()
    };
    assert_eq!(info.max_length, 120);
    let want: Vec<String> = texts
        .iter()
        .map(|t| classify_review(t, &model, common::gpt2(), tch::Device::Cpu, Some(info.max_length), info.pad_token_id).unwrap().to_string())
        .collect();
    assert_eq!(answers, want);
    assert!(answers.iter().all(|a| a == "spam" || a == "not spam"), "{answers:?}");

    // A checkpoint that is not a classifier is refused with a message naming it.
    let out = llm(&["classify", "--model", "/nonexistent-llm-fs", "--text", "hi"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("/nonexistent-llm-fs"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_finetune_spam_prints_one_json_line() {
    let out = llm_succeeds(&["bench", "finetune-spam", "--config", "tiny", "--batch-size", "2", "--max-length", "16", "--steps", "2", "--threads", "1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not one JSON line ({e}): {stdout}"));
    assert_eq!((v["bench"].as_str(), v["forward"].as_str()), (Some("finetune-spam"), Some("last-token")));
    let block = llm_from_scratch::ch04::GptConfig::tiny().block_parameters();
    assert_eq!(v["trainable_params"].as_i64(), Some(block + 2 * 128 + 2 * 128 + 2), "{v}");
    for key in ["step_s_median", "examples_per_s", "examples_per_s_best", "cpu_s_median", "peak_rss_mb"] {
        let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {v}"));
        assert!(x > 0.0 && x.is_finite(), "{key} = {x} in {v}");
    }
    assert!((v["examples_per_s"].as_f64().unwrap() * v["step_s_median"].as_f64().unwrap() - 2.0).abs() < 1e-9, "{v}");
    let losses: Vec<f64> = serde_json::from_value(v["losses"].clone()).unwrap();
    // Two classes, random labels: the first loss is about ln 2.
    assert!(losses.len() == 3 && (losses[0] - 2f64.ln()).abs() < 0.7, "{losses:?}");
}

#[test]
fn finetune_spam_with_lora_trains_only_the_low_rank_updates() {
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-spam-lora-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let out = llm_succeeds(&["finetune-spam", "--config", "tiny", "--epochs", "1", "--max-steps", "3", "--eval-iter", "1", "--lora-rank", "2", "--lora-alpha", "4", "--out", d]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("LoRA rank 2 alpha 4"), "{}", String::from_utf8_lossy(&out.stderr));
    let results: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    // Per block: 4 x 2 (128 + 128) for the attention's projections, 2 (128 + 512) twice for the
    // feed-forward layers; the head: 2 (128 + 2).
    let want = 2 * (4 * 2 * 256 + 2 * 2 * 640) + 2 * 130;
    assert_eq!(results["trainable_parameters"].as_i64(), Some(want), "{results}");
    let out = llm_succeeds(&["classify", "--model", d, "--text", "Free entry in 2 a wkly comp to win FA Cup final tkts"]);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(answer == "spam" || answer == "not spam", "{answer}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn finetune_spam_stopped_and_resumed_equals_the_straight_run() {
    use llm_from_scratch::ch05::read_checkpoint;
    let root = std::env::temp_dir().join(format!("llm-fs-cli-spam-resume-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (straight, stopped) = (root.join("straight"), root.join("stopped"));
    // 8 steps of the tiny model with dropout, warmup, cosine decay and clipping, evaluated every 2.
    let run = |out: &std::path::Path, more: &[&str]| {
        let args = [
            "finetune-spam", "--config", "tiny", "--epochs", "1", "--max-steps", "8", "--lr", "1e-3", "--eval-freq", "2",
            "--eval-iter", "1", "--drop-rate", "0.1", "--warmup-steps", "3", "--initial-lr", "1e-4", "--min-lr", "1e-5",
            "--clip", "0.5", "--out", out.to_str().unwrap(),
        ];
        llm_succeeds(&[&args[..], more].concat())
    };
    run(&straight, &[]);
    let out = run(&stopped, &["--stop-after", "5", "--save-every", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stopped at step 5") && stderr.contains("--resume"), "{stderr}");
    let json = |dir: &std::path::Path, file: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap()
    };
    assert_eq!(json(&stopped, "checkpoint.json")["state"]["steps_done"], 5, "stopped after 5 of the 8 steps");
    assert_eq!(json(&stopped, "history.json")["train_accs"], serde_json::json!([]), "its epoch has not ended");
    let out = llm_succeeds(&["finetune-spam", "--resume", stopped.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("resuming"), "{}", String::from_utf8_lossy(&out.stderr));

    let (a, b) = (json(&straight, "checkpoint.json"), json(&stopped, "checkpoint.json"));
    assert_eq!(a["state"]["steps_done"], 8);
    assert_eq!(a["state"]["history"]["steps"], serde_json::json!([0, 2, 4, 6]));
    assert_eq!(a["state"]["history"]["train_accs"].as_array().map(Vec::len), Some(1), "the run's last epoch ended at step 8");
    assert_eq!((&a["state"], &a["settings"], &a["optimizer"]), (&b["state"], &b["settings"], &b["optimizer"]), "same run, same position");
    assert_eq!(json(&straight, "history.json"), json(&stopped, "history.json"));
    let (a, b) = (read_checkpoint(&straight).unwrap(), read_checkpoint(&stopped).unwrap());
    assert_eq!(a.model.len(), b.model.len());
    for (name, t) in &a.model {
        assert!(t.equal(&b.model[name]), "{name} differs between the straight and the resumed run");
    }
    assert_eq!(a.optimizer.len(), b.optimizer.len());
    for ((name, t), (other, u)) in a.optimizer.iter().zip(&b.optimizer) {
        assert!(name == other && t.equal(u), "optimizer state {name} differs");
    }
    std::fs::remove_dir_all(&root).unwrap();
}
