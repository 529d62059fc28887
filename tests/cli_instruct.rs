//! `llm finetune-instruct`, `llm respond` and `llm chat` end to end on a tiny model: the
//! finetuned model that `finetune-instruct` saves is the one `respond` and `chat` load.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{llm, llm_ok};

/// `llm chat` with `stdin` piped in; it must exit 0 at the end of input.
fn chat(model: &str, stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm"))
        .args(["chat", "--model", model, "--max-new-tokens", "12"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run llm chat");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "llm chat exits 0 at end of input:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn finetune_instruct_then_respond_and_chat_with_the_saved_model() {
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-instruct-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (data, config) = common::instruct_inputs(&dir);
    let out_dir = dir.join("run");
    let (d, c, o) = (data.to_str().unwrap(), config.to_str().unwrap(), out_dir.to_str().unwrap());

    let out = llm(&["finetune-instruct", "--config", c, "--data", d, "--epochs", "4", "--lr", "1e-2", "--eval-freq", "1", "--eval-iter", "1", "--sample-tokens", "2", "--max-new-tokens", "12", "--out", o]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "llm finetune-instruct failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Ep 1 (Step 000000): Train loss ") && stdout.contains("Model response:\n>> "), "the book's lines:\n{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("10 entries: 8 training, 1 test, 1 validation"), "{stderr}");
    for file in ["checkpoint.safetensors", "history.json", "loss.svg", "loss.png", "instruction-data-with-response.json", "scores.json"] {
        assert!(out_dir.join(file).is_file(), "{file} written");
    }
    let losses: Vec<f64> = serde_json::from_value(json(&out_dir.join("history.json"))["train_losses"].clone()).unwrap();
    assert_eq!(losses.len(), 4, "one evaluation per step");
    assert!(losses[3] < losses[0] - 1.0, "the loss falls: {losses:?}");
    let scores = json(&out_dir.join("scores.json"));
    assert!(scores["rouge_l"].as_f64().is_some() && scores["response_loss"].as_f64().unwrap().is_finite(), "{scores}");
    let answered = json(&out_dir.join("instruction-data-with-response.json"));
    assert_eq!(answered.as_array().unwrap().len(), 1, "the one test entry");
    assert_eq!(answered[0]["instruction"], "Translate to French.", "the test entry is data[8]");
    let response = answered[0]["model_response"].as_str().unwrap().to_string();

    // `respond` loads the saved model and answers the test instruction as finetune-instruct did.
    let said = llm_ok(&["respond", "--model", o, "--instruction", "Translate to French.", "--input", "Thank you", "--max-new-tokens", "12"]);
    assert_eq!(said, format!("{response}\n"), "same model, same greedy answer");

    // `chat`: the same answer for the same instruction and input, then the end of input.
    let said = chat(o, "/input Thank you\nTranslate to French.\n");
    assert_eq!(said, format!("{response}\n"));
    assert_eq!(chat(o, ""), "", "no input: nothing said, exit 0");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn finetune_instruct_names_the_bad_entry() {
    let file = std::env::temp_dir().join(format!("llm-fs-bad-instructions-{}.json", std::process::id()));
    std::fs::write(&file, r#"[{"instruction": "a", "input": "", "output": "b"}, {"instruction": "a", "output": "b"}]"#).unwrap();
    let out = llm(&["finetune-instruct", "--config", "tiny", "--data", file.to_str().unwrap(), "--out", "/tmp/unused-llm-fs-instruct"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("data[1]") && stderr.contains("missing field 'input'"), "{stderr}");
    std::fs::remove_file(&file).unwrap();
}
