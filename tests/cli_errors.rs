//! Issue 13: every documented bad input gives one clear line, `error: <message>`, naming the file,
//! key, flag or value (then `  caused by:` lines), and never a backtrace, even with
//! `RUST_BACKTRACE=1` (set here on purpose: developers and this project's machines set it).

mod common;

use std::process::Command;

/// Run `llm args` with RUST_BACKTRACE=1; returns its exit code and stderr.
fn llm_with_backtraces(args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm"));
    cmd.args(args).env("RUST_BACKTRACE", "1").env("OMP_NUM_THREADS", "1");
    if let Some(dir) = common::store().local_dir {
        cmd.env("LLM_DATA_DIR", dir);
    }
    let out = cmd.output().expect("run llm");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_inputs_give_one_clear_line_and_no_backtrace() {
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-errors-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("corrupt")).unwrap();
    std::fs::write(dir.join("corrupt/checkpoint.safetensors"), [0xa7u8; 64].repeat(30)).unwrap(); // garbage bytes
    std::fs::write(dir.join("bad.json"), r#"{"vocab_size": 50257, "emb_dim": }"#).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (missing, out, corrupt, bad_json, no_run) = (p("missing.txt"), p("out"), p("corrupt"), p("bad.json"), p("no-run"));
    // (arguments, exit code, what the first error line must say)
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (vec!["pretrain", "--data", &missing, "--config", "tiny", "--out", &out], 1, format!("error: reading the training text {missing}")),
        (vec!["pretrain", "--data", "the-verdict", "--lr", "abc", "--out", &out], 2, "error: invalid value 'abc' for '--lr <LR>'".into()),
        (vec!["finetune-instruct", "--config", "tiny", "--judge-api", "nope", "--out", &out], 2, "error: invalid value 'nope' for '--judge-api".into()),
        (vec!["pretrain", "--data", "the-verdict", "--config", "huge", "--out", &out], 1, "error: unknown model preset 'huge' (known: gpt2-small".into()),
        (vec!["generate", "--model", &no_run, "--prompt", "Hi"], 1, format!("error: loading the model of {no_run}")),
        (vec!["generate", "--model", &corrupt, "--prompt", "Hi"], 1, format!("error: loading the model of {corrupt}")),
        (vec!["classify", "--model", &corrupt, "--text", "Hi"], 1, format!("error: loading the classifier in {corrupt}")),
        (vec!["pretrain", "--resume", &no_run], 1, format!("error: --resume {no_run}: reading the run's checkpoint")),
        (vec!["pretrain", "--data", "the-verdict", "--config", &bad_json, "--out", &out], 1, format!("error: config {bad_json}: expected value at line 1 column 34")),
    ];
    for (args, code, first) in &cases {
        let (status, stderr) = llm_with_backtraces(args);
        assert_eq!(status, Some(*code), "llm {args:?}:\n{stderr}");
        let first_error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line for {args:?}:\n{stderr}"));
        assert!(first_error.starts_with(first.as_str()), "llm {args:?}: the first line should say {first:?}:\n{stderr}");
        for line in stderr.lines() {
            assert!(!line.to_lowercase().contains("backtrace") && !line.starts_with("   0: "), "llm {args:?} printed a backtrace:\n{stderr}");
        }
    }
    // The causes follow, one per line: the OS's reason, the corrupt file's.
    let (_, stderr) = llm_with_backtraces(&cases[0].0);
    assert!(stderr.contains("\n  caused by: No such file or directory"), "{stderr}");
    let (_, stderr) = llm_with_backtraces(&cases[5].0);
    assert!(stderr.contains(&format!("\n  caused by: {corrupt}/checkpoint.safetensors: truncated or not a safetensors file")), "{stderr}");

    // checkpoint.json is the config read: one edited to disagree with the weights is an error
    // naming the tensor and both shapes.
    let text = dir.join("text.txt");
    std::fs::write(&text, &common::text(&llm_from_scratch::data::THE_VERDICT)[..3000]).unwrap();
    let run = p("run");
    common::llm_succeeds(&["pretrain", "--data", text.to_str().unwrap(), "--config", "tiny", "--context-length", "16", "--batch-size", "8", "--max-steps", "1", "--out", &run]);
    let json_file = dir.join("run/checkpoint.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    json["config"]["emb_dim"] = 64.into();
    std::fs::write(&json_file, json.to_string()).unwrap();
    let (status, stderr) = llm_with_backtraces(&["generate", "--model", &run, "--prompt", "Hi"]);
    assert_eq!(status, Some(1), "{stderr}");
    let want = format!(
        "error: loading the model of {run}\n  caused by: config {run}/checkpoint.json: the config gives tensor 'tok_emb.weight' shape [50257, 64], the file has [50257, 128] in {run}/checkpoint.safetensors"
    );
    assert!(stderr.contains(&want), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
