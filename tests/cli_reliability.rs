//! Issue 13, the reliability of long runs: a diverging loss stops `llm pretrain` and keeps the
//! last good checkpoint.

mod common;

use std::path::{Path, PathBuf};

use common::llm;
use llm_from_scratch::ch05::read_checkpoint;

/// A fresh temporary folder for one test, and the first 3000 characters of the-verdict in it
/// (5 batches of 8 x 16 tokens per epoch).
fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("llm-fs-rel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("text.txt");
    std::fs::write(&text, &common::text(&llm_from_scratch::data::THE_VERDICT)[..3000]).unwrap();
    (dir, text)
}

fn tiny_run(text: &Path) -> Vec<String> {
    ["--data", text.to_str().unwrap(), "--config", "tiny", "--context-length", "16", "--batch-size", "8", "--eval-iter", "1"]
        .map(String::from)
        .to_vec()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_diverging_pretrain_stops_and_keeps_the_last_good_checkpoint() {
    let (dir, text) = scratch("nan");
    let out_dir = dir.join("run");
    let o = out_dir.to_str().unwrap();
    // Warmup from 1e-4 to 1e12: step 0 trains (and is saved), step 1's update diverges.
    let more = ["--epochs", "2", "--eval-freq", "1", "--warmup-steps", "2", "--initial-lr", "1e-4", "--lr", "1e12", "--save-every", "1", "--out", o];
    let args: Vec<String> = ["pretrain".to_string()].into_iter().chain(tiny_run(&text)).chain(more.map(String::from)).collect();
    let out = llm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a diverged run fails:\n{err}");
    assert!(err.contains("training diverged at step 1: the training loss evaluated after it is NaN (last finite loss: "), "{err}");
    assert!(err.contains(&format!("the checkpoint in {o} (after step 1) is kept as it was")), "{err}");
    let ckpt = read_checkpoint(&out_dir).expect("the last good checkpoint loads");
    assert_eq!(ckpt.meta.state.steps_done, 1, "saved after step 0, not after the diverged step 1");
    assert!(ckpt.meta.state.history.train_losses.iter().all(|l| l.is_finite()), "{:?}", ckpt.meta.state.history);
    for (name, t) in &ckpt.model {
        assert!(bool::try_from(t.isfinite().all()).unwrap(), "{name} has non-finite weights");
    }

    // A constant 1e12 diverges at its first step: nothing is saved.
    let first = dir.join("first");
    let more = ["--epochs", "1", "--lr", "1e12", "--save-every", "1", "--out", first.to_str().unwrap()];
    let args: Vec<String> = ["pretrain".to_string()].into_iter().chain(tiny_run(&text)).chain(more.map(String::from)).collect();
    let out = llm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("training diverged at step 0: "), "{err}");
    assert!(!first.join("checkpoint.safetensors").exists(), "no diverged checkpoint written");
    std::fs::remove_dir_all(&dir).unwrap();
}
