//! Chapter 7's DPO bonus end to end: the preference data's numbers, the loss functions against
//! PyTorch (`tests/fixtures/dpo_loss.py`, run with `python` when its outputs are missing), the
//! masks of a real batch, ln 2 when the policy is its reference, and a tiny model whose
//! validation reward margin rises under DPO.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llm_from_scratch::bonus_dpo::*;
use llm_from_scratch::plot::Figure;
use llm_from_scratch::{rng_lock, set_seed};
use tch::{nn, Device, Kind, Tensor};

fn reference_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::fixture("dpo_loss.py", &[], "dpo_loss", "reference.json"))
}

fn reference() -> serde_json::Value {
    let path = reference_dir().join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn inputs() -> HashMap<String, Tensor> {
    let path = reference_dir().join("inputs.safetensors");
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("a JSON array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn data() -> &'static Vec<PreferenceEntry> {
    static DATA: OnceLock<Vec<PreferenceEntry>> = OnceLock::new();
    DATA.get_or_init(|| read_preference_data(&common::store()).unwrap_or_else(|e| panic!("{e}")))
}

/// A GPT small enough for CPU tests, with GPT-2's vocabulary (the batches hold real token ids)
/// and 80 positions (short pairs only: the output layer over 50,257 tokens is most of the cost).
fn tiny_config() -> GptConfig {
    GptConfig { context_length: 80, emb_dim: 32, n_heads: 2, n_layers: 1, drop_rate: 0.0, ..GptConfig::tiny() }
}

#[test]
fn the_preference_data_and_its_split() {
    let data = data();
    assert_eq!(data.len(), 1100, "entries in instruction-data-with-preference.json");
    let (train, val, test) = split_preference_data(data);
    assert_eq!((train.len(), val.len(), test.len()), (935, 55, 110), "the book's int(0.85 n), rest, int(0.1 n)");
    assert_eq!((&train[0], &test[0], &val[0]), (&data[0], &data[935], &data[1045]), "no shuffling; test before validation");
    assert_eq!(data[0].instruction, "Evaluate the following phrase by transforming it into the spelling given.");
    assert_eq!(
        format_input(&data[0]),
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n\
         ### Instruction:\nEvaluate the following phrase by transforming it into the spelling given.\n\n### Input:\nfreind --> friend",
        "chapter 7's prompt"
    );
}

#[test]
fn a_malformed_file_names_the_file_entry_and_field() {
    let dir = std::env::temp_dir().join(format!("llm-dpo-malformed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("prefs.json");
    let good = r#"{"instruction": "a", "input": "", "output": "b", "chosen": "c", "rejected": "d"}"#;
    std::fs::write(&path, format!(r#"[{good}, {good}, {{"instruction": "a", "input": "", "output": "b", "rejected": "d"}}]"#)).unwrap();
    let err = load_preference_file(&path).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).ok();
    assert!(err.contains("prefs.json"), "names the file: {err}");
    assert!(err.contains("data[2]") && err.contains("missing field 'chosen'"), "names the entry and field: {err}");
    let missing = load_preference_file(Path::new("/nonexistent/prefs.json")).unwrap_err().to_string();
    assert!(missing.contains("/nonexistent/prefs.json"), "{missing}");
}

#[test]
fn dpo_loss_equals_pytorchs() {
    let (want, x) = (reference(), inputs());
    for beta in [0.1, 0.5] {
        let (loss, chosen, rejected) = compute_dpo_loss(&x["model_chosen"], &x["model_rejected"], &x["ref_chosen"], &x["ref_rejected"], beta);
        let got = [loss.double_value(&[]), chosen.double_value(&[]), rejected.double_value(&[])];
        let want = floats(&want[format!("dpo_beta_{beta}")]);
        for (name, (g, w)) in ["loss", "chosen reward", "rejected reward"].iter().zip(got.iter().zip(&want)) {
            assert!((g - w).abs() < 1e-6, "beta {beta}, {name}: {g} vs PyTorch's {w}");
        }
    }
}

#[test]
fn logprobs_equal_pytorchs() {
    let (want, x) = (reference(), inputs());
    for (mask, key) in [(Some(&x["mask"]), "logprobs_masked"), (None, "logprobs_unmasked")] {
        let got = Vec::<f64>::try_from(compute_logprobs(&x["logits"], &x["labels"], mask).to_kind(Kind::Double)).unwrap();
        let want = floats(&want[key]);
        assert_eq!(got.len(), 3);
        for (row, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-6, "{key}, row {row}: {g} vs PyTorch's {w}");
        }
    }
}

#[test]
fn a_real_batch_selects_the_response_and_same_weights_give_ln2() {
    let tokenizer = common::gpt2();
    let (train, val, _) = split_preference_data(data());
    let dataset = PreferenceDataset::new(&val[..4], tokenizer, PAD_TOKEN_ID, Some(1024), true).unwrap();
    let batch = dataset.collate(&[0, 1, 2, 3], Device::Cpu);
    let longest = dataset.encoded_texts.iter().map(|e| e.chosen.len().max(e.rejected.len())).max().unwrap();
    assert_eq!(batch.chosen.size(), [4, longest as i64 + 1], "padded to the longest + 1");
    for (i, example) in dataset.encoded_texts.iter().enumerate() {
        // The mask starts 2 tokens after the prompt (GPT-2 encodes the "\n\n" before "###" as two
        // "\n" tokens: the book's +2) and ends with the sequence: the selected tokens are the
        // response header and the chosen response.
        let mask = Vec::<bool>::try_from(batch.chosen_mask.get(i as i64)).unwrap();
        let selected = batch.chosen.get(i as i64).masked_select(&batch.chosen_mask.get(i as i64));
        assert_eq!(mask.iter().position(|m| *m), Some(example.prompt.len() + 2), "example {i}");
        assert_eq!(decode_tokens_from_batch(&selected, tokenizer).unwrap(), format!("### Response:\n{}", val[i].chosen), "example {i}");
        assert_eq!(mask.iter().filter(|m| **m).count(), example.chosen.len() - example.prompt.len() - 2, "no padding selected");
    }

    let _rng = rng_lock();
    set_seed(123);
    let cfg = tiny_config();
    let vs = nn::VarStore::new(Device::Cpu);
    let policy = GptModel::new(&vs.root(), &cfg);
    let (_reference_vs, reference) = reference_model(&vs, &cfg).unwrap();
    let dataset = PreferenceDataset::new(&train[..8], tokenizer, PAD_TOKEN_ID, Some(cfg.context_length as usize), true).unwrap();
    let loader = DataLoader::new(dataset, 4, false, false, 0).unwrap();
    let (loss, chosen, rejected) = compute_dpo_loss_batch(&loader.dataset.collate(&[0, 1, 2, 3], Device::Cpu), &policy, &reference, 0.1);
    assert!((loss.double_value(&[]) - std::f64::consts::LN_2).abs() < 1e-6, "loss {loss} != ln 2");
    assert_eq!((chosen.double_value(&[]), rejected.double_value(&[])), (0.0, 0.0), "the same weights give the same log-probs");
    let losses = compute_dpo_loss_loader(&loader, &policy, &reference, 0.1, None);
    assert!((losses.loss - std::f64::consts::LN_2).abs() < 1e-6, "0.6931472: {losses:?}");
    assert_eq!(losses.reward_margin(), 0.0);
    let empty = DataLoader::new(loader.dataset.clone(), 100, false, true, 0).unwrap();
    assert!(compute_dpo_loss_loader(&empty, &policy, &reference, 0.1, None).loss.is_nan(), "an empty loader gives NaN");
}

/// DPO's gradient raises the policy's log-probability of each chosen response relative to its
/// rejected one (weighted by how wrongly the policy still orders them): the reward margin on
/// the training batches grows by construction. On held-out pairs it grows because the
/// preference data's chosen and rejected responses differ systematically (the rejected ones in
/// wording the chosen ones avoid), which even a tiny model picks up within a few steps at a high
/// learning rate. At step 0 (policy = reference, one step taken) the margin is near 0.
#[test]
fn dpo_raises_the_validation_reward_margin() {
    let tokenizer = common::gpt2();
    let (train, val, _) = split_preference_data(data());
    let cfg = tiny_config();
    // Pairs short enough for the model's 80 positions, so no response is cut away.
    let fits = |e: &&PreferenceEntry| {
        let x = PreferenceExample::encode(e, tokenizer).unwrap();
        x.chosen.len().max(x.rejected.len()) < cfg.context_length as usize
    };
    let train: Vec<PreferenceEntry> = train.iter().filter(fits).take(48).cloned().collect();
    let val: Vec<PreferenceEntry> = val.iter().filter(fits).take(8).cloned().collect();
    let (train_loader, val_loader, _) =
        create_preference_loaders(&train, &val, &val[..1], tokenizer, 4, Some(cfg.context_length as usize), true, 123).unwrap();

    let _rng = rng_lock();
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let policy = GptModel::new(&vs.root(), &cfg);
    let (_reference_vs, reference) = reference_model(&vs, &cfg).unwrap();
    let mut optimizer = AdamW::new(&vs, 5e-3, 0.01);
    let history =
        train_model_dpo_simple(&policy, &reference, &train_loader, &val_loader, &mut optimizer, 1, 0.1, 3, 2, &format_input(&val[0]), tokenizer)
            .unwrap();

    assert_eq!(history.steps, [0, 3, 6, 9], "12 batches, evaluated every 3 steps");
    assert_eq!(history.val_chosen_rewards.len(), 4, "the rewards of every evaluation come through the loop");
    let first_batch = train_loader.iter_epoch(0).next().unwrap().0;
    assert_eq!(history.tokens_seen[0], first_batch.numel() as i64 / 2, "tokens seen count the chosen half, as the book");
    assert_eq!(history.samples.len(), 1, "a sample after the epoch");
    let margins = history.val_reward_margins();
    println!("validation reward margins: {margins:?}; losses {:?}", history.val_losses);
    // Seen here: [0.008, 0.011, 0.018, 0.040] (the training margins: 0.08 to 0.52).
    assert!(margins[0].abs() < 0.02, "one step from the reference the margin is near 0: {margins:?}");
    assert!(margins.windows(2).all(|w| w[1] > w[0]), "the validation reward margin rises at every evaluation: {margins:?}");
    assert!(margins[3] > 3.0 * margins[0].max(0.005), "and by several times its first value: {margins:?}");
    assert!(history.val_losses[3] < history.val_losses[0], "and the validation loss falls: {:?}", history.val_losses);
    let svg = history.reward_margin_plot().to_svg().unwrap();
    assert!(svg.as_str().contains("Validation reward margins"), "the plot names its curves");
    history.loss_plot().to_svg().unwrap();
}

#[test]
fn the_log_line_is_the_books() {
    let _rng = rng_lock();
    set_seed(1);
    let cfg = GptConfig { vocab_size: 16, context_length: 8, emb_dim: 8, n_heads: 2, n_layers: 1, drop_rate: 0.0, qkv_bias: false };
    let vs = nn::VarStore::new(Device::Cpu);
    let model = GptModel::new(&vs.root(), &cfg);
    let task = DpoTask::new(&model, &model, 0.1);
    let evaluation = Evaluation {
        train_loss: 0.6941,
        val_loss: 0.6938,
        metrics: vec![
            (TRAIN_CHOSEN_REWARDS.into(), 0.02),
            (TRAIN_REJECTED_REWARDS.into(), 0.01),
            (VAL_CHOSEN_REWARDS.into(), 0.005),
            (VAL_REJECTED_REWARDS.into(), 0.002),
        ],
    };
    assert_eq!(
        task.eval_log_line(0, 0, &evaluation),
        "Ep 1 (Step 000000): Train loss 0.694, Val loss 0.694, Train reward margins 0.010, Val reward margins 0.003"
    );
}
