//! `llm pretrain` with appendix D's extras (--warmup-steps, --initial-lr, --min-lr, --clip) on a
//! tiny model: the optimizer's learning rate in the checkpoint follows the schedule, and a
//! resumed run keeps it.

mod common;

use common::llm_succeeds;
use llm_from_scratch::appendix_d::LrSchedule;

#[test]
fn pretrain_follows_the_schedule_and_resumes_it() {
    let dir = std::env::temp_dir().join(format!("llm-fs-cli-schedule-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The first 3000 characters of the-verdict: 5 batches of 8 x 16 tokens per epoch, 10 steps.
    let text_file = dir.join("text.txt");
    std::fs::write(&text_file, &common::text(&llm_from_scratch::data::THE_VERDICT)[..3000]).unwrap();
    let d = dir.to_str().unwrap();
    let out = llm_succeeds(&[
        "pretrain", "--data", text_file.to_str().unwrap(), "--config", "tiny", "--context-length", "16", "--batch-size", "8",
        "--eval-freq", "4", "--eval-iter", "1", "--epochs", "2", "--max-steps", "3", "--out", d, "--lr", "1e-3",
        "--warmup-steps", "2", "--initial-lr", "1e-4", "--min-lr", "1e-5", "--clip", "1.0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 warmup steps from 1e-4 to 1e-3, cosine decay to 1e-5 over 10 steps; gradient clipping: max norm 1"), "{stderr}");
    let schedule = LrSchedule::new(1e-4, 1e-3, 1e-5, 2, 10).unwrap();
    let lr_in_checkpoint = || {
        let ckpt: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("checkpoint.json")).unwrap()).unwrap();
        ckpt["optimizer"]["lr"].as_f64().expect("optimizer.lr in checkpoint.json")
    };
    assert_eq!(lr_in_checkpoint(), schedule.lr_at(2), "after steps 0-2, the rate of step 2 (the peak)");
    assert_eq!(schedule.lr_at(2), 1e-3);

    // Resume without the flags: the checkpoint remembers them.
    llm_succeeds(&["pretrain", "--resume", d]);
    let last = schedule.lr_at(9);
    assert_eq!(lr_in_checkpoint(), last, "the last step's rate");
    assert!((last - (1e-5 + (1e-3 - 1e-5) * 0.5 * (1.0 + (std::f64::consts::PI * 7.0 / 8.0).cos()))).abs() < 1e-15);
    std::fs::remove_dir_all(&dir).unwrap();
}
