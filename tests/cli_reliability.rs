//! Issue 13, the reliability of long runs: a diverging loss stops `llm pretrain` and keeps the
//! last good checkpoint; Ctrl-C (SIGINT) saves the run, which resumes to the uninterrupted
//! run's end exactly (`llm pretrain`, `llm finetune-instruct`); a second Ctrl-C exits at once;
//! `llm finetune-spam` saves after every epoch.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// Start `llm args` (as [`common::llm`] runs it), wait until its stdout prints a line containing
/// `wait_for`, send it SIGINT `signals` times (10 ms apart), and return its exit code, stdout
/// and stderr.
fn interrupt(args: &[String], wait_for: &str, signals: usize) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm"));
    cmd.args(args).env_remove("RUST_BACKTRACE").env("OMP_NUM_THREADS", "1").stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(dir) = common::store().local_dir {
        cmd.env("LLM_DATA_DIR", dir);
    }
    let mut child = cmd.spawn().expect("start llm");
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        stderr_pipe.read_to_string(&mut s).unwrap();
        s
    });
    let mut stdout = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if line.contains(wait_for) {
            break;
        }
    }
    assert!(stdout.contains(wait_for), "llm {args:?} ended before {wait_for:?}:\n{stdout}");
    for i in 0..signals {
        if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0, "send SIGINT");
    }
    for line in lines {
        stdout.push_str(&line.unwrap());
        stdout.push('\n');
    }
    let status = child.wait().unwrap();
    (status.code(), stdout, stderr.join().unwrap())
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn ctrl_c_saves_a_pretrain_run_that_resumes_to_the_uninterrupted_end() {
    let (dir, text) = scratch("sigint");
    let (stopped, straight) = (dir.join("stopped"), dir.join("straight"));
    // 6 epochs of 5 steps, evaluated every 2 steps.
    let run = |out: &Path| -> Vec<String> {
        [owned(&["pretrain"]), tiny_run(&text), owned(&["--epochs", "6", "--eval-freq", "2", "--out", out.to_str().unwrap()])].concat()
    };
    let (code, stdout, stderr) = interrupt(&run(&stopped), "(Step 000006)", 1);
    assert_eq!(code, Some(130), "stopped by Ctrl-C:\n{stdout}\n{stderr}");
    let resume = format!("llm pretrain --resume {}", stopped.display());
    assert!(stderr.contains(&format!("interrupted: the run is saved; continue it with `{resume}`")), "{stderr}");
    let saved = read_checkpoint(&stopped).expect("the interrupted run is saved");
    let at = saved.meta.state.steps_done;
    assert!((7..30).contains(&at), "stopped after the step it was in (step 6 or a little later), not at the end: {at}");

    // The printed command resumes it; the straight run ends in the same place, bit for bit.
    let resume_args: Vec<&str> = resume.split(' ').skip(1).collect();
    common::llm_succeeds(&resume_args);
    common::llm_succeeds(&run(&straight).iter().map(String::as_str).collect::<Vec<_>>());
    let (a, b) = (read_checkpoint(&stopped).unwrap(), read_checkpoint(&straight).unwrap());
    assert_eq!(a.meta.state, b.meta.state, "same steps, tokens and history (losses compared exactly)");
    assert_eq!(a.meta.state.steps_done, 30);
    assert_eq!(a.model.len(), b.model.len());
    for (name, t) in &a.model {
        assert!(t.equal(&b.model[name]), "parameter {name} differs from the uninterrupted run's");
    }
    for ((name, t), (_, u)) in a.optimizer.iter().zip(&b.optimizer) {
        assert!(t.equal(u), "AdamW's {name} differs from the uninterrupted run's");
    }
    let history = |d: &Path| std::fs::read_to_string(d.join("history.json")).unwrap();
    assert_eq!(history(&stopped), history(&straight), "history.json");

    // A second Ctrl-C exits at once: no resume command, the earlier checkpoint (if any) whole.
    let twice = dir.join("twice");
    let (code, _, stderr) = interrupt(&run(&twice), "(Step 000002)", 2);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(!stderr.contains("continue it with"), "exited without saving:\n{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn finetune_spam_saves_its_run_after_every_epoch() {
    let dir = std::env::temp_dir().join(format!("llm-fs-rel-epochs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llm"));
    cmd.args(["finetune-spam", "--config", "tiny", "--epochs", "3", "--eval-freq", "1000", "--eval-iter", "1", "--out", dir.to_str().unwrap()]);
    cmd.env_remove("RUST_BACKTRACE").env("OMP_NUM_THREADS", "1").stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(data) = common::store().local_dir {
        cmd.env("LLM_DATA_DIR", data);
    }
    let mut child = cmd.spawn().expect("start llm");
    // The first save (checkpoint.json is written last) comes at the end of the first epoch: a
    // crash then (SIGKILL: nothing runs after it) keeps that epoch.
    let started = std::time::Instant::now();
    while !dir.join("checkpoint.json").exists() {
        assert!(child.try_wait().unwrap().is_none(), "llm finetune-spam ended before its first save");
        assert!(started.elapsed().as_secs() < 300, "no checkpoint after 5 minutes");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let ckpt = read_checkpoint(&dir).expect("the first epoch's checkpoint loads");
    let state = &ckpt.meta.state;
    assert_eq!((state.epoch, state.batch_in_epoch, state.steps_done), (1, 0, 130), "saved at the end of epoch 1 (130 batches)");
    assert_eq!(state.history.train_accs.len(), 1, "with the first epoch's accuracies");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ctrl_c_saves_a_finetune_instruct_run_that_resumes_to_the_uninterrupted_end() {
    let dir = std::env::temp_dir().join(format!("llm-fs-rel-instruct-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // 40 entries: 34 training ones, 17 batches of 2 per epoch.
    let entries: Vec<serde_json::Value> = common::instruction_entries()[..40]
        .iter()
        .map(|(instruction, input, output)| serde_json::json!({"instruction": instruction, "input": input, "output": output}))
        .collect();
    let data = dir.join("data.json");
    std::fs::write(&data, serde_json::to_string(&entries).unwrap()).unwrap();
    let (stopped, straight) = (dir.join("stopped"), dir.join("straight"));
    let run = |out: &Path| -> Vec<String> {
        let d = data.to_str().unwrap();
        owned(&["finetune-instruct", "--config", "tiny", "--data", d, "--epochs", "2", "--batch-size", "2", "--allowed-max-length", "64", "--lr", "1e-3"])
            .into_iter()
            .chain(owned(&["--eval-freq", "5", "--eval-iter", "1", "--sample-tokens", "2", "--max-new-tokens", "3", "--test-limit", "1", "--out", out.to_str().unwrap()]))
            .collect()
    };
    let (code, stdout, stderr) = interrupt(&run(&stopped), "(Step 000005)", 1);
    assert_eq!(code, Some(130), "stopped by Ctrl-C:\n{stdout}\n{stderr}");
    let resume = format!("llm finetune-instruct --resume {}", stopped.display());
    assert!(stderr.contains(&format!("continue it with `{resume}`")), "{stderr}");
    let saved = read_checkpoint(&stopped).expect("the interrupted run is saved");
    assert!((6..34).contains(&saved.meta.state.steps_done), "{:?}", saved.meta.state);
    assert!(!saved.optimizer.is_empty(), "with AdamW's state");

    let resume_args: Vec<&str> = resume.split(' ').skip(1).chain(["--test-limit", "1", "--max-new-tokens", "3"]).collect();
    common::llm_succeeds(&resume_args);
    common::llm_succeeds(&run(&straight).iter().map(String::as_str).collect::<Vec<_>>());
    let (a, b) = (read_checkpoint(&stopped).unwrap(), read_checkpoint(&straight).unwrap());
    assert_eq!(a.meta.state, b.meta.state, "same steps, tokens and history");
    assert_eq!(a.meta.state.steps_done, 34);
    for (name, t) in &a.model {
        assert!(t.equal(&b.model[name]), "parameter {name} differs from the uninterrupted run's");
    }
    let file = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(file(&stopped, "instruction-data-with-response.json"), file(&straight, "instruction-data-with-response.json"));

    // A run cut short by --max-steps (in its second epoch, after the save at the end of the
    // first) keeps AdamW's state, and --resume continues it to the uninterrupted end.
    let short = dir.join("short");
    let args: Vec<String> = run(&short).into_iter().chain(owned(&["--max-steps", "20"])).collect();
    common::llm_succeeds(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let saved = read_checkpoint(&short).unwrap();
    assert_eq!((saved.meta.state.epoch, saved.meta.state.steps_done), (1, 20), "stopped in the second epoch");
    assert!(!saved.optimizer.is_empty(), "a run cut short keeps AdamW's state");
    common::llm_succeeds(&["finetune-instruct", "--resume", short.to_str().unwrap(), "--test-limit", "1", "--max-new-tokens", "3"]);
    let (c, b) = (read_checkpoint(&short).unwrap(), read_checkpoint(&straight).unwrap());
    assert_eq!(c.meta.state, b.meta.state, "resumed after --max-steps: same steps, tokens and history");
    for (name, t) in &c.model {
        assert!(t.equal(&b.model[name]), "parameter {name} differs from the uninterrupted run's");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
