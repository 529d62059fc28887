//! The book's GPT-124M (chapter 4.6–4.7): parameter counts and, with `torch.manual_seed(123)`,
//! the logits it prints in training mode, and the exact greedy continuation of "Hello, I am" that the book prints.

use llm_from_scratch::ch04::{generate_text_simple, num_parameters, num_parameters_under, size_mb, GptConfig, GptModel};
use llm_from_scratch::{rng_lock, set_seed};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

#[test]
fn seed_123_model_has_the_books_counts_and_generates_the_books_ids() {
    let cfg = GptConfig::gpt2_124m();
    let _rng = rng_lock();
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = GptModel::new(&vs.root(), &cfg);

    let total = num_parameters(&vs);
    assert_eq!(total, 163_009_536, "total parameters");
    let out_head = num_parameters_under(&vs, "out_head");
    assert_eq!(total - out_head, 124_412_160, "parameters with weight tying");
    assert_eq!(format!("{:.2}", size_mb(total, 4)), "621.83", "size in MB (fp32)");
    assert_eq!(num_parameters_under(&vs, "trf_blocks.0.ff"), 4_722_432, "one feed-forward");
    assert_eq!(num_parameters_under(&vs, "trf_blocks.0.att"), 2_360_064, "one attention module");
    assert_eq!(vs.variables()["tok_emb.weight"].size(), [50257, 768]);
    assert_eq!(vs.variables()["out_head.weight"].size(), [50257, 768]);

    // Book 4.6: right after creating the model (still in training mode, so dropout draws from
    // the same generator state as in PyTorch), the logits of "Every effort moves you" /
    // "Every day holds a".
    let batch = Tensor::from_slice2(&[[6109i64, 3626, 6100, 345], [6109, 1110, 6622, 257]]);
    let logits = tch::no_grad(|| model.forward_t(&batch, true));
    assert_eq!(logits.size(), [2, 4, 50257]);
    for ((b, t, from), want) in [
        ((0, 0, 0), [0.3613f32, 0.4222, -0.0711]),
        ((0, 0, 50254), [0.3483, 0.4661, -0.2838]),
        ((1, 3, 50254), [1.2630, -0.1858, 0.0388]),
    ] {
        let got = Vec::<f32>::try_from(logits.get(b).get(t).narrow(0, from, 3)).unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-3, "logits[{b}, {t}, {from}..]: got {got:?}, want {want:?}");
        }
    }

    // "Hello, I am" in GPT-2 BPE ids; the book's model.eval() output, 10 new tokens:
    // "Hello, I am Featureiman Byeswickattribute argue logger Normandy Compton analogous".
    let encoded = Tensor::from_slice(&[15496i64, 11, 314, 716]).unsqueeze(0); // [1, 4]
    let out = generate_text_simple(&model, &encoded, 10, cfg.context_length);
    let ids = Vec::<i64>::try_from(out.squeeze_dim(0)).unwrap();
    let want = [15496, 11, 314, 716, 27018, 24086, 47843, 30961, 42348, 7267, 49706, 43231, 47062, 34657];
    assert_eq!(ids, want, "greedy ids from the seed-123 GPT-124M");
}
