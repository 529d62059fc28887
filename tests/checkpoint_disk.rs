//! Issue 13: saving a checkpoint into a full or read-only folder is an error naming the file in
//! that folder, and the previous checkpoint stays loadable. Needs `mount` (root, or a container
//! allowed to mount a tmpfs): where it cannot mount, the test says so and passes without checking.

use std::path::Path;
use std::process::Command;

use llm_from_scratch::ch04::{GptConfig, GptModel};
use llm_from_scratch::ch05::{read_checkpoint, save_checkpoint, CheckpointMeta};
use tch::{nn, Device};

fn mount(args: &[&str]) -> Result<(), String> {
    let out = Command::new("mount").args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// A model of `vocab_size` x 16 embeddings and its variables.
fn model(vocab_size: i64) -> (nn::VarStore, GptConfig) {
    let cfg = GptConfig { vocab_size, context_length: 8, emb_dim: 16, n_heads: 2, n_layers: 1, ..GptConfig::tiny() };
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = GptModel::new(&vs.root(), &cfg);
    (vs, cfg)
}

fn assert_previous_loads(dir: &Path, cfg: &GptConfig, what: &str) {
    let ckpt = read_checkpoint(dir).unwrap_or_else(|e| panic!("{what}: the previous checkpoint no longer loads: {e}"));
    assert_eq!(&ckpt.meta.config, cfg, "{what}: the previous checkpoint");
    let leftovers: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".part")).collect();
    assert!(leftovers.is_empty(), "{what}: temporary files left behind: {leftovers:?}");
}

#[test]
fn saving_into_a_full_or_read_only_folder_fails_and_keeps_the_previous_checkpoint() {
    let dir = std::env::temp_dir().join(format!("llm-fs-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    if let Err(e) = mount(&["-t", "tmpfs", "-o", "size=256k", "tmpfs", d]) {
        eprintln!("skipped: cannot mount a small tmpfs on {d} ({e}); run as root to check full and read-only folders");
        std::fs::remove_dir_all(&dir).unwrap();
        return;
    }
    let result = std::panic::catch_unwind(|| {
        let (small, small_cfg) = model(50); // about 40 kB of weights
        save_checkpoint(&dir, &small, None, &CheckpointMeta::model_only(&small_cfg)).expect("a small checkpoint fits");

        // Full: a model of about 330 kB does not fit in 256 kB.
        let (big, big_cfg) = model(5000);
        let err = save_checkpoint(&dir, &big, None, &CheckpointMeta::model_only(&big_cfg)).expect_err("the folder is full").to_string();
        assert!(err.starts_with(&format!("{d}/checkpoint.safetensors: No space left on device")), "{err}");
        assert_previous_loads(&dir, &small_cfg, "full");

        // Read-only.
        mount(&["-o", "remount,ro", d]).expect("remount read-only");
        let err = save_checkpoint(&dir, &small, None, &CheckpointMeta::model_only(&small_cfg)).expect_err("read-only").to_string();
        assert!(err.starts_with(&format!("{d}/checkpoint.safetensors: Read-only file system")), "{err}");
        assert_previous_loads(&dir, &small_cfg, "read-only");
    });
    let _ = Command::new("umount").arg(&dir).status();
    std::fs::remove_dir_all(&dir).unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
