//! Chapter 5: losses, the training loop, and checkpoints that resume exactly.

mod common;

use llm_from_scratch::ch02::{create_dataloader_v1, DataLoader, GptDatasetV1, THE_VERDICT};
use llm_from_scratch::ch04::{GptConfig, GptModel};
use llm_from_scratch::ch05::*;
use llm_from_scratch::plot::Figure;
use llm_from_scratch::{rng_lock, set_seed, Error};
use tch::nn::{self, VarStore};
use tch::Device;

/// The book's loaders over the-verdict: 90/10 split by characters, stride = context.
fn verdict_loaders(context: usize, batch_size: usize) -> (DataLoader<GptDatasetV1>, DataLoader<GptDatasetV1>) {
    loaders_of(&common::text(&THE_VERDICT), context, batch_size)
}

/// The same loaders over the first 5000 characters only: a few batches per epoch, so that the
/// training tests run in seconds on a CPU.
fn short_loaders() -> (DataLoader<GptDatasetV1>, DataLoader<GptDatasetV1>) {
    loaders_of(&common::text(&THE_VERDICT)[..5000], 32, 4)
}

fn loaders_of(text: &str, context: usize, batch_size: usize) -> (DataLoader<GptDatasetV1>, DataLoader<GptDatasetV1>) {
    let split_idx = (0.9 * text.len() as f64) as usize;
    let (train_text, val_text) = text.split_at(split_idx);
    let tok = common::gpt2();
    let train = create_dataloader_v1(train_text, tok, batch_size, context, context, true, true, 123).unwrap();
    let val = create_dataloader_v1(val_text, tok, batch_size, context, context, false, false, 123).unwrap();
    (train, val)
}

fn tiny_cfg() -> GptConfig {
    GptConfig { vocab_size: 50257, context_length: 32, emb_dim: 32, n_heads: 2, n_layers: 2, drop_rate: 0.1, qkv_bias: false }
}

fn model(cfg: &GptConfig, seed: u64) -> (VarStore, GptModel) {
    set_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let model = GptModel::new(&vs.root(), cfg);
    (vs, model)
}

#[test]
fn untrained_gpt124m_loss_matches_the_book() {
    // Book 5.1.3: with torch.manual_seed(123) and the-verdict's loaders, the untrained model's
    // losses are 10.98758 (train) and 10.98111 (validation); uniform guessing gives ln(50257) = 10.825.
    let _rng = rng_lock();
    let (train, val) = verdict_loaders(256, 2);
    assert_eq!((train.len(), val.len()), (9, 1), "the book's 9 training and 1 validation batches");
    let (_vs, model) = model(&GptConfig { context_length: 256, ..GptConfig::gpt2_124m() }, 123);
    let train_loss = calc_loss_loader(&train, &model, Device::Cpu, None);
    let val_loss = calc_loss_loader(&val, &model, Device::Cpu, None);
    assert!((train_loss - 10.98758).abs() < 2e-3, "train loss {train_loss}");
    assert!((val_loss - 10.98111).abs() < 2e-3, "val loss {val_loss}");
    assert!((perplexity(val_loss) - val_loss.exp()).abs() < 1e-9);
}

#[test]
fn empty_loader_gives_nan_and_num_batches_is_capped() {
    let _rng = rng_lock();
    let (train, _) = short_loaders();
    let empty = DataLoader::new(train.dataset.clone(), 10_000, false, true, 0).unwrap();
    assert!(empty.is_empty());
    let (_vs, m) = model(&tiny_cfg(), 1);
    assert!(calc_loss_loader(&empty, &m, Device::Cpu, None).is_nan(), "book: an empty loader gives NaN");
    let all = calc_loss_loader(&train, &m, Device::Cpu, None);
    let capped = calc_loss_loader(&train, &m, Device::Cpu, Some(train.len() + 100));
    assert_eq!(all, capped, "num_batches larger than the loader uses the whole loader");
}

#[test]
fn cross_entropy_ignores_minus_100_targets() {
    // logits for 2 positions over 3 classes; the second target is ignored.
    let logits = tch::Tensor::from_slice(&[2.0f32, 0.0, 0.0, 0.0, 5.0, 0.0]).view([1, 2, 3]);
    let targets = tch::Tensor::from_slice(&[0i64, -100]).view([1, 2]);
    let loss = cross_entropy(&logits, &targets).double_value(&[]);
    let want = -(2f64.exp() / (2f64.exp() + 2.0)).ln();
    assert!((loss - want).abs() < 1e-6, "loss {loss}, by hand {want}");
}

#[test]
fn training_lowers_the_loss_and_logs_like_the_book() {
    let _rng = rng_lock();
    let (train, val) = short_loaders();
    let cfg = tiny_cfg();
    let (vs, m) = model(&cfg, 123);
    let mut opt = AdamW::new(&vs, 1e-2, 0.1);
    let settings = TrainSettings { sample_tokens: 5, ..TrainSettings::book(2, 3, 2, "Every effort moves you") };
    let mut state = TrainState::default();
    let mut lines = Vec::new();
    let task = NextTokenTask::new(&m, common::gpt2(), Device::Cpu, 32);
    train_steps(&task, &train, &val, &mut opt, &settings, &mut state, None, &mut |e| {
        if let TrainEvent::Eval { line, .. } = e {
            lines.push(line.clone())
        }
    })
    .unwrap();
    let h = &state.history;
    assert_eq!(state.steps_done as usize, 2 * train.len(), "two epochs of steps");
    assert_eq!(state.tokens_seen, state.steps_done * 4 * 32);
    assert_eq!(h.steps.first(), Some(&0), "the first evaluation is at step 0");
    assert!(h.steps.windows(2).all(|w| w[1] - w[0] == 3), "every eval_freq steps: {:?}", h.steps);
    assert!(lines[0].starts_with("Ep 1 (Step 000000): Train loss "), "{}", lines[0]);
    assert_eq!(h.samples.len(), 2, "one sample per epoch");
    assert!(h.samples[0].starts_with("Every effort moves you"));
    let (first, last) = (h.train_losses[0], *h.train_losses.last().unwrap());
    assert!(last < first - 1.0, "training loss fell by more than 1 nat: {first} -> {last}");
    // The loss plot draws the history.
    let svg = LossPlot::from_history(h).to_svg().unwrap();
    for label in ["Training loss", "Validation loss", "Epochs", "Tokens seen"] {
        assert!(svg.as_str().contains(label), "plot lacks {label}");
    }
    // The history is serde data.
    let back: TrainHistory = serde_json::from_str(&serde_json::to_string(h).unwrap()).unwrap();
    assert_eq!(&back, h);
}

#[test]
fn interrupted_and_resumed_run_equals_the_straight_run() {
    let _rng = rng_lock();
    let (train, val) = short_loaders();
    let cfg = tiny_cfg(); // dropout 0.1: the per-step seeding must make it repeatable
    let settings = TrainSettings { sample_tokens: 3, ..TrainSettings::book(2, 2, 1, "Every effort") };
    let total = train.len() + 3; // crosses an epoch boundary
    let mut quiet = |_: &TrainEvent| {};

    let (vs_a, m_a) = model(&cfg, 7);
    let mut opt_a = AdamW::new(&vs_a, 1e-3, 0.1);
    let mut straight = TrainState::default();
    train_steps(&NextTokenTask::new(&m_a, common::gpt2(), Device::Cpu, 32), &train, &val, &mut opt_a, &settings, &mut straight, Some(total), &mut quiet)
        .unwrap();

    let dir = std::env::temp_dir().join(format!("llm-fs-resume-{}", std::process::id()));
    let (vs_b, m_b) = model(&cfg, 7);
    let mut opt_b = AdamW::new(&vs_b, 1e-3, 0.1);
    let mut half = TrainState::default();
    train_steps(&NextTokenTask::new(&m_b, common::gpt2(), Device::Cpu, 32), &train, &val, &mut opt_b, &settings, &mut half, Some(total / 2), &mut quiet)
        .unwrap();
    let meta = CheckpointMeta {
        optimizer: Some(opt_b.hyper_parameters()),
        settings: Some(settings.clone()),
        state: half.clone(),
        ..CheckpointMeta::model_only(&cfg)
    };
    save_checkpoint(&dir, &vs_b, Some(&opt_b), &meta).unwrap();
    drop((vs_b, m_b, opt_b));

    // A new process would do this: fresh model and optimizer (other seed), then load.
    let (vs_c, m_c) = model(&cfg, 999);
    let ckpt = read_checkpoint(&dir).unwrap();
    assert_eq!(ckpt.meta, meta, "metadata round-trips");
    ckpt.load_model(&vs_c).unwrap();
    let mut opt_c = AdamW::new(&vs_c, 0.5, 0.0);
    ckpt.load_optimizer(&mut opt_c).unwrap();
    let mut resumed = ckpt.meta.state.clone();
    train_steps(&NextTokenTask::new(&m_c, common::gpt2(), Device::Cpu, 32), &train, &val, &mut opt_c, &settings, &mut resumed, Some(total - total / 2), &mut quiet)
        .unwrap();

    assert_eq!(resumed, straight, "the resumed run's history and position equal the straight run's");
    let (a, c) = (vs_a.variables(), vs_c.variables());
    for (name, t) in &a {
        assert!(t.equal(&c[name]), "{name} differs after resuming");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checkpoint_errors_name_the_problem() {
    let _rng = rng_lock();
    let dir = std::env::temp_dir().join(format!("llm-fs-ckpt-errors-{}", std::process::id()));
    let cfg = tiny_cfg();
    let (vs, _m) = model(&cfg, 1);
    save_checkpoint(&dir, &vs, None, &CheckpointMeta::model_only(&cfg)).unwrap();

    // Another config: the error names the tensor and both shapes.
    let other = GptConfig { emb_dim: 64, ..cfg.clone() };
    let (vs2, _m2) = model(&other, 1);
    let err = read_checkpoint(&dir).unwrap().load_model(&vs2).unwrap_err();
    match &err {
        Error::ShapeMismatch { name, expected, found } => {
            assert_eq!(expected[expected.len() - 1], 64, "{err}");
            assert_eq!(found[found.len() - 1], 32, "{err}");
            assert!(!name.is_empty());
        }
        other => panic!("expected a shape mismatch, got {other}"),
    }
    // No optimizer state saved: loading one is a clear error.
    let mut opt = AdamW::new(&vs, 1e-3, 0.1);
    let err = read_checkpoint(&dir).unwrap().load_optimizer(&mut opt).unwrap_err().to_string();
    assert!(err.contains("no optimizer state"), "{err}");

    // Truncated and corrupted files are errors naming the file, not panics.
    let file = dir.join("checkpoint.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    for (what, broken) in [("truncated", bytes[..bytes.len() / 2].to_vec()), ("garbage", vec![0xAB; 64]), ("empty", vec![])] {
        std::fs::write(&file, &broken).unwrap();
        let err = read_checkpoint(&dir).unwrap_err().to_string();
        assert!(err.contains("checkpoint.safetensors"), "{what}: {err}");
    }
    let err = read_checkpoint(dir.join("nope")).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");

    // Saving over a checkpoint leaves no temporary file behind.
    save_checkpoint(&dir, &vs, None, &CheckpointMeta::model_only(&cfg)).unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["checkpoint.json", "checkpoint.safetensors"], "only the two files, no temporary one");
    assert!(read_checkpoint(&dir).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
    let _ = nn::VarStore::new(Device::Cpu);
}

#[test]
fn text_to_token_ids_and_back() {
    // Book 5.1.1: "Every effort moves you" is [[6109, 3626, 6100, 345]], and decodes back.
    let ids = text_to_token_ids("Every effort moves you", common::gpt2()).unwrap();
    assert_eq!(ids.size(), [1, 4]);
    assert_eq!(Vec::<i64>::try_from(ids.flatten(0, -1)).unwrap(), [6109, 3626, 6100, 345]);
    assert_eq!(token_ids_to_text(&ids, common::gpt2()).unwrap(), "Every effort moves you");
}
