//! Chapter 6 on the real SMS Spam Collection: the book's counts and split sizes, the padded
//! length, the frozen model's parameters, and a tiny classifier that learns.

mod common;

use llm_from_scratch::ch04::{num_parameters, num_trainable_parameters, AttentionImpl, GptConfig, GptModel};
use llm_from_scratch::ch06::*;
use llm_from_scratch::{rng_lock, set_seed};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

fn splits(seed: u64) -> (Vec<LabeledText>, Vec<LabeledText>, Vec<LabeledText>) {
    let data = read_sms_spam(&common::store()).unwrap_or_else(|e| panic!("{e}"));
    random_split(&create_balanced_dataset(&data, seed), 0.7, 0.1, seed)
}

#[test]
fn sms_spam_collection_parses_as_the_book_reads_it() {
    let data = read_sms_spam(&common::store()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(data.len(), 5572, "5574 lines, two merged into others by an unbalanced quote");
    assert_eq!(label_counts(&data), (4825, 747), "(ham, spam)");
    assert_eq!(data[0].label, HAM);
    assert!(data[0].text.starts_with("Go until jurong point"), "{}", data[0].text);
    // The record that swallows the following lines holds their tabs and newlines.
    assert_eq!(data.iter().filter(|r| r.text.contains('\n')).count(), 1, "one merged record");
}

#[test]
fn balanced_split_sizes_and_determinism() {
    let (train, val, test) = splits(123);
    assert_eq!((train.len(), val.len(), test.len()), (1045, 149, 300), "70/10/20 of 747 + 747");
    let (ham, spam) = (label_counts(&train), label_counts(&val));
    let total = label_counts(&test);
    assert_eq!(ham.0 + spam.0 + total.0, 747, "every kept ham message once");
    assert_eq!(ham.1 + spam.1 + total.1, 747, "every spam message once");
    let (train2, val2, _) = splits(123);
    assert_eq!((&train, &val), (&train2, &val2), "same seed, same split");
    let (train3, _, _) = splits(7);
    assert_ne!(train, train3, "another seed, another split");

    // The CSV files read back to the same rows.
    let dir = std::env::temp_dir().join(format!("llm-fs-ch06-csv-{}", std::process::id()));
    let files = prepare_spam_splits(&common::store(), &dir, 123).unwrap();
    assert_eq!(read_csv(&files.train).unwrap(), train);
    assert_eq!(read_csv(&files.validation).unwrap(), val);
    assert_eq!(read_csv(&files.test).unwrap(), test);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn spam_dataset_pads_to_the_longest_training_text() {
    let (train, val, _) = splits(123);
    let tokenizer = common::gpt2();
    let train_dataset = SpamDataset::new(&train, tokenizer, None, PAD_TOKEN_ID).unwrap();
    assert_eq!(train_dataset.max_length, 120, "the longest balanced message has 120 GPT-2 tokens");
    let val_dataset = SpamDataset::new(&val, tokenizer, Some(train_dataset.max_length), PAD_TOKEN_ID).unwrap();
    assert!(val_dataset.encoded_texts.iter().all(|ids| ids.len() == 120));
    // The first text: its ids, then padding.
    let ids = tokenizer.encode_text(&train[0].text).unwrap();
    let row = &train_dataset.encoded_texts[0];
    assert_eq!(row[..ids.len()].iter().map(|&i| i as u32).collect::<Vec<_>>(), ids);
    assert!(row[ids.len()..].iter().all(|&i| i == 50256), "padded with <|endoftext|>");
    // Truncation.
    let short = SpamDataset::new(&train, tokenizer, Some(5), PAD_TOKEN_ID).unwrap();
    assert!(short.encoded_texts.iter().all(|ids| ids.len() == 5));
    // Batches: [8, 120] inputs and [8] labels; 130 full training batches.
    let loader = DataLoader::new(train_dataset, 8, true, true, 123).unwrap();
    assert_eq!(loader.len(), 130, "1045 / 8, the last partial batch dropped");
    let (x, y) = loader.iter().next().unwrap();
    assert_eq!((x.size(), y.size()), (vec![8, 120], vec![8]));
    assert_eq!(x.kind(), Kind::Int64);
}

fn tiny() -> GptConfig {
    GptConfig { drop_rate: 0.0, ..GptConfig::tiny() }
}

#[test]
fn the_classifier_trains_the_last_block_final_norm_and_head_only() {
    let _rng = rng_lock();
    set_seed(123);
    let cfg = GptConfig { qkv_bias: true, ..tiny() };
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    let trainable = prepare_classifier(&mut model, &vs, 2);
    let d = cfg.emb_dim;
    // One block by hand: 3 (d x d + d) for W_query/W_key/W_value with qkv_bias, d x d + d for
    // out_proj, (d x 4d + 4d) + (4d x d + d) for the feed-forward, 2 x 2d for the two norms.
    let block = 3 * (d * d + d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d) + 4 * d;
    assert_eq!(trainable, block + 2 * d + (d * 2 + 2), "last block + final_norm + Linear(emb_dim, 2)");
    assert_eq!(num_trainable_parameters(&vs), trainable);
    let head: Vec<String> = vs.variables().into_keys().filter(|k| k.starts_with("out_head")).collect();
    assert_eq!(head.len(), 2, "the new head's weight and bias replace the old weight: {head:?}");
    assert_eq!(vs.variables()["out_head.weight"].size(), [2, d]);
    let total = num_parameters(&vs);
    assert_eq!(total, cfg.num_parameters() - cfg.vocab_size * d + 2 * d + 2, "the vocabulary head is gone");

    // One AdamW step: frozen parameters keep their bits, trainable ones move.
    let before: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
    let mut optimizer = AdamW::new(&vs, 5e-5, 0.1);
    let input = Tensor::randint(cfg.vocab_size, [4, 12], (Kind::Int64, Device::Cpu));
    let labels = Tensor::from_slice(&[0i64, 1, 1, 0]);
    let loss = calc_loss_batch(&input, &labels, &model, Device::Cpu, true);
    optimizer.backward_step(&loss);
    let vars = vs.variables();
    let last = format!("trf_blocks.{}.", cfg.n_layers - 1);
    let (mut frozen, mut moved) = (0, 0);
    for (name, old) in &before {
        let trainable = name.starts_with(&last) || name.starts_with("final_norm.") || name.starts_with("out_head.");
        let same = vars[name].equal(old);
        if trainable {
            assert!(!same, "{name} is trainable and must change");
            moved += 1;
        } else {
            assert!(same, "{name} is frozen and must keep its bits");
            frozen += 1;
        }
    }
    assert_eq!((moved, frozen), (16 + 2 + 2, before.len() - 20), "20 trainable tensors: 16 in the block (qkv_bias), 2 + 2");
}

#[test]
fn last_token_logits_equal_the_full_forward_pass() {
    let _rng = rng_lock();
    for attn_impl in [AttentionImpl::Explicit, AttentionImpl::Sdpa] {
        set_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut model = GptModel::new(&vs.root(), &tiny());
        model.set_attention_impl(attn_impl);
        prepare_classifier(&mut model, &vs, 2);
        let input = Tensor::randint(50257, [3, 20], (Kind::Int64, Device::Cpu));
        let full = model.forward_t(&input, false).select(1, -1); // [3, 2]
        let ours = classifier_logits(&model, &input, false);
        let diff = f64::try_from((&full - &ours).abs().max()).unwrap();
        assert!(diff < 1e-5, "{attn_impl:?}: classifier_logits differs from model(x)[:, -1, :] by {diff}");
        // The same with every parameter frozen (a loaded classifier) and with every one trainable.
        for (requires_grad, what) in [(false, "all frozen"), (true, "all trainable")] {
            set_requires_grad_under(&vs, "", requires_grad);
            let diff = f64::try_from((&full - classifier_logits(&model, &input, false)).abs().max()).unwrap();
            assert!(diff < 1e-5, "{attn_impl:?}, {what}: classifier_logits differs from model(x)[:, -1, :] by {diff}");
        }
        prepare_classifier(&mut model, &vs, 2);
        // The gradients equal those of the book's full pass, and the frozen block gets none.
        let labels = Tensor::from_slice(&[1i64, 0, 1]);
        let full_loss = model.forward_t(&input, true).select(1, -1).cross_entropy_for_logits(&labels);
        let params = [&model.trf_blocks[1].att.w_key.weight, &model.trf_blocks[1].ff.fc1.weight, &model.out_head.weight];
        let want = Tensor::run_backward(&[full_loss], &params, false, false);
        let loss = calc_loss_batch(&input, &labels, &model, Device::Cpu, true);
        let got = Tensor::run_backward(&[&loss], &params, true, false);
        for (g, w) in got.iter().zip(&want) {
            let diff = f64::try_from((g - w).abs().max()).unwrap();
            assert!(diff < 1e-5, "{attn_impl:?}: gradient differs from the full pass's by {diff}");
        }
        loss.backward();
        assert!(model.trf_blocks[1].ff.fc1.weight.grad().defined(), "the last block gets a gradient");
        assert!(!model.trf_blocks[0].ff.fc1.weight.grad().defined(), "the frozen block gets none");
    }
}

/// A tiny GPT (2 blocks of 128, random weights, only the last block, final norm and head
/// trained) trained for 60 steps of 8 texts on the real training split beats always answering
/// the validation split's majority class (it reaches about 85%; the majority is about 50%).
#[test]
fn a_tiny_classifier_beats_the_majority_class_on_real_data() {
    // One thread: on a shared 2-core machine libtorch's spinning worker threads make these
    // small matrix products ten times slower.
    tch::set_num_threads(1);
    let (train, val, _) = splits(123);
    let tokenizer = common::gpt2();
    let train_dataset = SpamDataset::new(&train, tokenizer, None, PAD_TOKEN_ID).unwrap();
    let val_dataset = SpamDataset::new(&val, tokenizer, Some(train_dataset.max_length), PAD_TOKEN_ID).unwrap();
    let (val_ham, val_spam) = label_counts(&val);
    let majority = val_ham.max(val_spam) as f64 / val.len() as f64;
    let train_loader = DataLoader::new(train_dataset, 8, true, true, 123).unwrap();
    let val_loader = DataLoader::new(val_dataset, 8, false, false, 123).unwrap();

    let _rng = rng_lock();
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &tiny());
    prepare_classifier(&mut model, &vs, 2);
    let mut optimizer = AdamW::new(&vs, 1e-3, 0.1);
    let settings = ClassifierSettings { max_steps: Some(60), ..ClassifierSettings::classifier(1, 25, 2) };
    let state = train_classifier(&model, &train_loader, &val_loader, &mut optimizer, Device::Cpu, &settings, &mut |_| {}).unwrap();
    assert_eq!((state.steps_done, state.tokens_seen), (60, 480), "(steps, examples seen)");
    let history = state.history;
    assert_eq!(history.steps, [0, 25, 50], "evaluations at the book's global steps");
    assert_eq!(history.train_accs.len(), 1, "one accuracy per (partial) epoch");
    let val_accuracy = calc_accuracy_loader(&val_loader, &model, Device::Cpu, None);
    assert!(
        val_accuracy > majority,
        "validation accuracy {val_accuracy:.3} must beat the majority class's {majority:.3} (losses {:?})",
        history.train_losses
    );
}

/// GPT-2 small's classifier (qkv_bias as OpenAI's weights have it): 124,441,346 parameters,
/// of which one block (7,087,872), final_norm (1,536) and the head (1,538) train.
#[test]
fn gpt2_small_classifier_parameter_counts() {
    let _rng = rng_lock();
    let cfg = GptConfig { qkv_bias: true, drop_rate: 0.0, ..GptConfig::gpt2_124m() };
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    let trainable = prepare_classifier(&mut model, &vs, 2);
    assert_eq!(num_parameters(&vs), 124_441_346, "the book's count before freezing");
    assert_eq!(cfg.block_parameters(), 7_087_872);
    assert_eq!(trainable, 7_087_872 + 2 * 768 + (768 * 2 + 2));
}
