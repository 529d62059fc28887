//! Solutions to the exercises of chapter 4 (see `chapters/ch04/README.md`).

use llm_from_scratch::ch04::*;
use llm_from_scratch::{rng_lock, set_seed};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).unwrap()
}

/// Exercise 4.1: the parameters of one feed-forward module and one attention module of
/// GPT-124M, counted on a real transformer block.
#[test]
fn exercise_4_1_feed_forward_and_attention_parameters() {
    let _rng = rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let _block = TransformerBlock::new(&vs.root(), &GptConfig::gpt2_124m());
    assert_eq!(num_parameters_under(&vs, "ff"), 4_722_432, "feed-forward");
    assert_eq!(num_parameters_under(&vs, "att"), 2_360_064, "attention");
}

/// Exercise 4.2: GPT-2 medium, large and XL. Building the whole XL model takes 6.5 GB, so we
/// build one real transformer block of each size and add the embeddings, final norm and output
/// head from their shapes.
#[test]
fn exercise_4_2_larger_models() {
    let _rng = rng_lock();
    for (cfg, total, mb) in [
        (GptConfig::gpt2_medium(), 406_212_608, "1549.58"),
        (GptConfig::gpt2_large(), 838_220_800, "3197.56"),
        (GptConfig::gpt2_xl(), 1_637_792_000, "6247.68"),
    ] {
        let vs = nn::VarStore::new(Device::Cpu);
        let _block = TransformerBlock::new(&vs.root(), &cfg);
        let block = num_parameters(&vs);
        assert_eq!(block, cfg.block_parameters(), "one block of emb_dim {}", cfg.emb_dim);
        let (v, c, d) = (cfg.vocab_size, cfg.context_length, cfg.emb_dim);
        let counted = v * d + c * d + cfg.n_layers * block + 2 * d + d * v;
        assert_eq!(counted, total, "emb_dim {d}");
        assert_eq!(cfg.num_parameters(), total);
        assert_eq!(format!("{:.2}", size_mb(total, 4)), mb, "size of emb_dim {d} in MB");
    }
}

/// Exercise 4.3 solution: separate dropout rates for the embeddings, the attention weights and
/// the shortcut connections. The modules' `Dropout` fields are public, so no new config is
/// needed.
fn set_dropout_rates(model: &mut GptModel, drop_rate_emb: f64, drop_rate_attn: f64, drop_rate_shortcut: f64) {
    model.drop_emb.p = drop_rate_emb;
    for block in &mut model.trf_blocks {
        block.att.dropout.p = drop_rate_attn;
        block.drop_shortcut.p = drop_rate_shortcut;
    }
}

#[test]
fn exercise_4_3_separate_dropout_rates() {
    let cfg = GptConfig { vocab_size: 101, context_length: 16, emb_dim: 32, n_heads: 4, n_layers: 2, drop_rate: 0.1, qkv_bias: false };
    let _rng = rng_lock();
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    let ids = Tensor::from_slice2(&[[3i64, 14, 15, 92, 65, 35]]);
    let eval = model.forward_t(&ids, false);

    set_dropout_rates(&mut model, 0.1, 0.5, 0.0);
    assert_eq!((model.drop_emb.p, model.trf_blocks[1].att.dropout.p, model.trf_blocks[1].drop_shortcut.p), (0.1, 0.5, 0.0));
    // Each rate acts on its own: with only one of them non-zero, training mode differs from
    // eval mode; with all three zero, it does not.
    set_dropout_rates(&mut model, 0.0, 0.0, 0.0);
    assert!(max_diff(&model.forward_t(&ids, true), &eval) < 1e-5, "all rates 0: train = eval");
    for rates in [(0.5, 0.0, 0.0), (0.0, 0.5, 0.0), (0.0, 0.0, 0.5)] {
        set_dropout_rates(&mut model, rates.0, rates.1, rates.2);
        assert!(max_diff(&model.forward_t(&ids, true), &eval) > 1e-3, "rates {rates:?}: dropout must act");
        assert!(model.forward_t(&ids, false).equal(&eval), "rates {rates:?}: eval mode ignores dropout");
    }
}
