//! Solutions to the exercises of chapter 6 (see `chapters/ch06/README.md`), on a tiny GPT.

mod common;

use llm_from_scratch::ch04::{num_parameters, num_trainable_parameters, GptConfig, GptModel};
use llm_from_scratch::ch06::*;
use llm_from_scratch::data::DataStore;
use llm_from_scratch::{rng_lock, set_seed};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

fn tiny_classifier() -> (nn::VarStore, GptModel) {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &GptConfig { drop_rate: 0.0, ..GptConfig::tiny() });
    prepare_classifier(&mut model, &vs, 2);
    (vs, model)
}

fn store() -> DataStore {
    common::store()
}

/// Exercise 6.1: pad every text to the model's whole context (1024 for GPT-2; 128 for the tiny
/// model) instead of the longest training text (120).
#[test]
fn exercise_6_1_pad_to_the_context_length() {
    let data = read_sms_spam(&store()).unwrap();
    let (train, _, _) = random_split(&create_balanced_dataset(&data, 123), 0.7, 0.1, 123);
    let context_length = GptConfig::tiny().context_length as usize;
    let tokenizer = common::gpt2();
    let padded = SpamDataset::new(&train, tokenizer, Some(context_length), PAD_TOKEN_ID).unwrap();
    let longest = SpamDataset::new(&train, tokenizer, None, PAD_TOKEN_ID).unwrap();
    assert_eq!((padded.max_length, longest.max_length), (128, 120));
    for (a, b) in padded.encoded_texts.iter().zip(&longest.encoded_texts) {
        assert_eq!(&a[..120], &b[..], "the same ids, then more padding");
        assert!(a[120..].iter().all(|&id| id == 50256));
    }
    // The classifier reads the whole context: its batches are [8, 128].
    let _rng = rng_lock();
    set_seed(123);
    let (_vs, model) = tiny_classifier();
    let loader = DataLoader::new(padded, 8, false, false, 0).unwrap();
    let (x, y) = loader.iter().next().unwrap();
    assert_eq!(x.size(), [8, 128]);
    let loss = tch::no_grad(|| calc_loss_batch(&x, &y, &model, Device::Cpu, false)).double_value(&[]);
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
}

/// Exercise 6.2: fine-tune the whole model: unfreeze every parameter after adding the head.
#[test]
fn exercise_6_2_fine_tune_the_whole_model() {
    let _rng = rng_lock();
    set_seed(123);
    let (vs, model) = tiny_classifier();
    assert!(num_trainable_parameters(&vs) < num_parameters(&vs));
    set_requires_grad_under(&vs, "", true);
    assert_eq!(num_trainable_parameters(&vs), num_parameters(&vs), "everything trains");
    let before: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
    let mut optimizer = AdamW::new(&vs, 5e-5, 0.1);
    let input = Tensor::randint(50257, [4, 16], (Kind::Int64, Device::Cpu));
    let loss = calc_loss_batch(&input, &Tensor::from_slice(&[0i64, 1, 0, 1]), &model, Device::Cpu, true);
    optimizer.backward_step(&loss);
    let after = vs.variables();
    for (name, old) in &before {
        assert!(!after[name].equal(old), "{name} must change when the whole model trains");
    }
    assert!(optimizer.grad("tok_emb.weight").is_some(), "the gradient reaches the token embeddings");
}

/// Exercise 6.3: classify with the first token instead of the last. Under causal attention the
/// first position sees only the first token, so every text that starts with the same token gets
/// the same logits: the model cannot read the message.
#[test]
fn exercise_6_3_the_first_token_sees_only_itself() {
    let _rng = rng_lock();
    set_seed(123);
    let (_vs, model) = tiny_classifier();
    let a = Tensor::from_slice2(&[[40i64, 1101, 257, 8464, 13, 50256]]);
    let b = Tensor::from_slice2(&[[40i64, 588, 5215, 1165, 50256, 50256]]);
    let (la, lb) = tch::no_grad(|| (model.forward_t(&a, false), model.forward_t(&b, false))); // [1, 6, 2]
    let first = |l: &Tensor| l.select(1, 0);
    assert!(first(&la).equal(&first(&lb)), "the first token's logits depend on the first token only");
    let diff = f64::try_from((la.select(1, -1) - lb.select(1, -1)).abs().max()).unwrap();
    assert!(diff > 1e-4, "the last token's logits read the whole text (differ by {diff})");
}
