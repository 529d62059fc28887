//! `llm finetune-instruct` then `llm finetune-dpo` end to end on a tiny model: the DPO run's
//! outputs, its first evaluation (policy = reference: a loss of ln 2), and `--resume` continuing
//! a run stopped by `--max-steps` to the same end as an uninterrupted run.

mod common;

use std::path::Path;

use common::{llm, llm_ok};
use llm_from_scratch::bonus_dpo::INSTRUCTION_DATA_WITH_PREFERENCE;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("not a list of numbers ({e}): {v}"))
}

#[test]
fn finetune_dpo_after_finetune_instruct_writes_its_outputs_and_resumes() {
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-dpo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The first 20 entries of the book's preference data: 17 training (4 batches of 4), 1
    // validation, 2 test. Their instruction, input and output also serve finetune-instruct.
    let all = json(&common::path(&INSTRUCTION_DATA_WITH_PREFERENCE));
    let entries = &all.as_array().unwrap()[..20];
    let data = dir.join("preferences.json");
    std::fs::write(&data, serde_json::to_string(entries).unwrap()).unwrap();
    // GPT-2's vocabulary at width 32 (3.2M parameters), so a step takes a fraction of a second.
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"vocab_size": 50257, "context_length": 96, "emb_dim": 32, "n_heads": 2, "n_layers": 2, "drop_rate": 0.0, "qkv_bias": false}"#).unwrap();
    let (d, c) = (data.to_str().unwrap(), config.to_str().unwrap());
    let instruct = dir.join("instruct");
    let i = instruct.to_str().unwrap();
    llm_ok(&["finetune-instruct", "--config", c, "--data", d, "--epochs", "1", "--batch-size", "4", "--lr", "1e-3", "--eval-freq", "2", "--eval-iter", "1", "--sample-tokens", "2", "--max-new-tokens", "4", "--test-limit", "1", "--out", i]);

    // DPO for 3 of the 2 epochs' 8 steps (a learning rate that moves a tiny model in a few steps).
    let dpo_flags = ["--model", i, "--data", d, "--batch-size", "4", "--epochs", "2", "--lr", "1e-3", "--eval-freq", "1", "--eval-iter", "1", "--sample-tokens", "2", "--max-new-tokens", "4", "--test-limit", "2"];
    let run = dir.join("dpo");
    let r = run.to_str().unwrap();
    let out = llm(&[&["finetune-dpo"][..], &dpo_flags, &["--max-steps", "3", "--out", r]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "llm finetune-dpo failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("20 entries: 17 training, 1 validation, 2 test"), "{stderr}");
    assert!(stdout.contains("Training loss: 0.693\nValidation loss: 0.693\n"), "the book's evaluation before training:\n{stdout}");
    assert!(stdout.contains("Ep 1 (Step 000000): Train loss 0.6") && stdout.contains(", Train reward margins "), "the book's log line:\n{stdout}");
    assert!(stdout.contains("Reference model response:\n>> ") && stdout.contains("Policy model response:\n>> "), "{stdout}");
    for file in [
        "checkpoint.safetensors", "checkpoint.json", "history.json", "loss.svg", "loss.png", "reward-margins.svg", "reward-margins.png",
        "instruction-data-with-dpo-responses.json", "scores.json",
    ] {
        assert!(run.join(file).is_file(), "{file} written");
    }
    let h = json(&run.join("history.json"));
    // Before any update the policy is the reference: every log-ratio difference is 0, the loss
    // -log σ(0) = ln 2 and the rewards 0.
    for split in ["train", "val"] {
        let initial = &h["initial"][split];
        assert!((initial["loss"].as_f64().unwrap() - std::f64::consts::LN_2).abs() < 1e-6, "initial {split} loss is ln 2: {h}");
        assert_eq!((initial["chosen_reward"].as_f64(), initial["rejected_reward"].as_f64()), (Some(0.0), Some(0.0)), "{h}");
    }
    assert_eq!(h["steps"], serde_json::json!([0, 1, 2]), "one evaluation per step");
    for key in ["train_losses", "val_losses", "train_chosen_rewards", "train_rejected_rewards", "val_chosen_rewards", "val_rejected_rewards", "train_reward_margins", "val_reward_margins"] {
        assert_eq!(floats(&h[key]).len(), 3, "{key}: {h}");
    }
    let first = floats(&h["train_losses"])[0];
    assert!((first - std::f64::consts::LN_2).abs() < 0.01, "the first logged loss (after one step) is still near ln 2: {first}");
    let ckpt = json(&run.join("checkpoint.json"));
    assert_eq!(ckpt["state"]["steps_done"], 3, "stopped after 3 steps");
    let answered = json(&run.join("instruction-data-with-dpo-responses.json"));
    assert_eq!(answered.as_array().unwrap().len(), 2, "--test-limit 2");
    assert!(answered[0]["reference_response"].is_string() && answered[0]["policy_response"].is_string() && answered[0]["chosen"].is_string(), "{answered}");
    assert!(json(&run.join("scores.json"))["policy_rouge_l_chosen"].is_number());

    // A resumed run keeps its own model: model flags are refused.
    let refused = llm(&["finetune-dpo", "--resume", r, "--model", i]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("--resume continues a run with its own model"));

    // --resume continues to the end of the 2 epochs, evaluations on schedule.
    llm_ok(&["finetune-dpo", "--resume", r]);
    let resumed = json(&run.join("history.json"));
    assert_eq!(resumed["steps"], serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7]), "continued after step 2");
    assert_eq!(resumed["initial"], h["initial"], "the evaluation before training is kept");
    assert_eq!(json(&run.join("checkpoint.json"))["state"]["epoch"], 2, "both epochs trained");
    let margins = floats(&resumed["train_reward_margins"]);
    let losses = floats(&resumed["train_losses"]);
    assert!(margins[7] > 0.0 && losses[7] < std::f64::consts::LN_2, "DPO prefers the chosen responses: margins {margins:?}, losses {losses:?}");

    // The same run without a stop ends where the resumed one ends (same reference, same batches).
    let full = dir.join("dpo-full");
    llm_ok(&[&["finetune-dpo"][..], &dpo_flags, &["--out", full.to_str().unwrap()]].concat());
    let uninterrupted = json(&full.join("history.json"));
    for key in ["train_losses", "val_losses", "train_reward_margins"] {
        let (a, b) = (floats(&resumed[key]), floats(&uninterrupted[key]));
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5), "{key}: resumed {a:?}, uninterrupted {b:?}");
    }

    // The aligned model loads in `llm respond` (exit 0).
    llm_ok(&["respond", "--model", r, "--instruction", "Name a primary color.", "--max-new-tokens", "3"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn finetune_dpo_asks_for_a_model() {
    let out = llm(&["finetune-dpo", "--out", "/tmp/unused-llm-fs-dpo"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("which model to align? --model DIR"), "{stderr}");
}
