//! Chapter 2.6-2.8 against the book: the sliding-window loader over the-verdict and the
//! embedding shapes.

mod common;

use llm_from_scratch::ch02::{create_dataloader_v1, GptDatasetV1, InputEmbedding};
use llm_from_scratch::data;
use llm_from_scratch::Error;
use tch::nn::{self, Module};
use tch::{Device, Tensor};

fn rows(t: &Tensor) -> Vec<Vec<i64>> {
    Vec::<Vec<i64>>::try_from(t).unwrap()
}

#[test]
fn first_batches_stride_1() {
    // Section 2.6: batch_size=1, max_length=4, stride=1, shuffle=False.
    let raw_text = common::text(&data::THE_VERDICT);
    let loader = create_dataloader_v1(&raw_text, common::gpt2(), 1, 4, 1, false, true, 123).unwrap();
    let mut batches = loader.iter();
    let (x, y) = batches.next().unwrap();
    assert_eq!(rows(&x), [[40, 367, 2885, 1464]]);
    assert_eq!(rows(&y), [[367, 2885, 1464, 1807]]);
    let (x, _) = batches.next().unwrap();
    assert_eq!(rows(&x), [[367, 2885, 1464, 1807]]);
    assert_eq!(loader.len(), 5145 - 4, "range(0, 5145 - 4, 1)");
}

#[test]
fn book_first_batch_of_8() {
    // Section 2.6: batch_size=8, max_length=4, stride=4, shuffle=False.
    let raw_text = common::text(&data::THE_VERDICT);
    let loader = create_dataloader_v1(&raw_text, common::gpt2(), 8, 4, 4, false, true, 123).unwrap();
    let (inputs, targets) = loader.iter().next().unwrap();
    assert_eq!(inputs.size(), [8, 4]);
    assert_eq!(inputs.kind(), tch::Kind::Int64);
    assert_eq!(
        rows(&inputs),
        [
            [40, 367, 2885, 1464],
            [1807, 3619, 402, 271],
            [10899, 2138, 257, 7026],
            [15632, 438, 2016, 257],
            [922, 5891, 1576, 438],
            [568, 340, 373, 645],
            [1049, 5975, 284, 502],
            [284, 3285, 326, 11],
        ]
    );
    assert_eq!(
        rows(&targets),
        [
            [367, 2885, 1464, 1807],
            [3619, 402, 271, 10899],
            [2138, 257, 7026, 15632],
            [438, 2016, 257, 922],
            [5891, 1576, 438, 568],
            [340, 373, 645, 1049],
            [5975, 284, 502, 284],
            [3285, 326, 11, 287],
        ]
    );
    // 1286 windows (range(0, 5141, 4)) in 160 full batches of 8.
    assert_eq!(loader.dataset.len(), 1286);
    assert_eq!(loader.len(), 160);
    assert_eq!(loader.iter().count(), 160);
}

#[test]
fn shuffled_loader_is_deterministic_per_seed() {
    let raw_text = common::text(&data::THE_VERDICT);
    let a = create_dataloader_v1(&raw_text, common::gpt2(), 4, 256, 128, true, true, 123).unwrap();
    let b = create_dataloader_v1(&raw_text, common::gpt2(), 4, 256, 128, true, true, 123).unwrap();
    let (xa, ya) = a.iter().next().unwrap();
    let (xb, yb) = b.iter().next().unwrap();
    assert_eq!(xa.size(), [4, 256]);
    assert!(xa.equal(&xb) && ya.equal(&yb), "same seed, same first batch");
    // Targets are the inputs shifted by one, shuffled or not.
    assert!(xa.narrow(1, 1, 255).equal(&ya.narrow(1, 0, 255)));
}

#[test]
fn text_too_short_is_an_error() {
    let err = create_dataloader_v1("Every effort moves you", common::gpt2(), 1, 4, 1, false, true, 0).unwrap_err();
    assert!(matches!(err, Error::TextTooShort { tokens: 4, max_length: 4 }), "{err}");
    assert!(err.to_string().contains("at least 5"), "{err}");
    let dataset = GptDatasetV1::new("Every effort moves you.", common::gpt2(), 4, 1).unwrap();
    assert_eq!(dataset.len(), 1, "five tokens make one window of four");
}

#[test]
fn embeddings_have_the_book_shapes() {
    // Section 2.8: vocab 50257, output_dim 256, batch 8 x max_length 4.
    let raw_text = common::text(&data::THE_VERDICT);
    let loader = create_dataloader_v1(&raw_text, common::gpt2(), 8, 4, 4, false, true, 123).unwrap();
    let (inputs, _) = loader.iter().next().unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let emb = InputEmbedding::new(&vs.root(), 50257, 4, 256);
    let token_embeddings = emb.tok_emb.forward(&inputs);
    assert_eq!(token_embeddings.size(), [8, 4, 256]);
    let pos_embeddings = emb.pos_emb.forward(&Tensor::arange(4, (tch::Kind::Int64, Device::Cpu)));
    assert_eq!(pos_embeddings.size(), [4, 256]);
    let input_embeddings = emb.forward(&inputs);
    assert_eq!(input_embeddings.size(), [8, 4, 256]);
    assert!(input_embeddings.allclose(&(token_embeddings + pos_embeddings), 1e-6, 1e-6, false));
}
