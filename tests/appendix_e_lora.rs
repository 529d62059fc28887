//! Appendix E: LoRA on every linear layer of a GPT model and of chapter 6's spam classifier.

mod common;

use llm_from_scratch::appendix_e::*;
use llm_from_scratch::ch04::{num_parameters, num_trainable_parameters, GptConfig, GptModel, Linear};
use llm_from_scratch::ch06::{calc_loss_batch, classifier_logits, load_classifier, save_classifier, AdamW, ClassifierInfo};
use llm_from_scratch::{rng_lock, set_seed};
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

fn tiny() -> GptConfig {
    GptConfig { drop_rate: 0.0, qkv_bias: true, ..GptConfig::tiny() }
}

#[test]
fn lora_layer_starts_at_zero_and_scales_by_alpha_over_rank() {
    let _rng = rng_lock();
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let linear = Linear::new(&(vs.root() / "layer"), 10, 4, true);
    let layer = LinearWithLoRA::new(&(vs.root() / "layer" / "lora"), linear, 2, 4.0);
    assert_eq!((layer.lora.a.size(), layer.lora.b.size()), (vec![10, 2], vec![2, 4]));
    // kaiming_uniform_(A, a=sqrt(5)) on a [10, 2] tensor: U(-1/sqrt(2), 1/sqrt(2)) (fan-in 2).
    let a_max = f64::try_from(layer.lora.a.abs().max()).unwrap();
    assert!(a_max <= 1.0 / 2f64.sqrt() && a_max > 0.3, "|A| max {a_max}");
    let x = Tensor::randn([3, 10], (Kind::Float, Device::Cpu));
    assert!(layer.forward(&x).equal(&layer.linear.forward(&x)), "B = 0: the linear layer's output");
    tch::no_grad(|| {
        let _ = layer.lora.b.shallow_clone().fill_(0.5);
    });
    let want = layer.linear.forward(&x) + x.matmul(&layer.lora.a).matmul(&layer.lora.b) * 2.0; // alpha / rank = 2
    let diff = f64::try_from((layer.forward(&x) - want).abs().max()).unwrap();
    assert!(diff < 1e-5, "(alpha / rank) x A B: off by {diff}");
    assert_eq!(layer.lora.num_parameters(), lora_parameters(10, 4, 2));
}

#[test]
fn a_fresh_lora_model_computes_what_the_base_model_did() {
    let _rng = rng_lock();
    set_seed(123);
    let cfg = tiny();
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    let input = Tensor::randint(cfg.vocab_size, [2, 9], (Kind::Int64, Device::Cpu));
    let base = model.forward_t(&input, false);
    let adapted = replace_linear_with_lora(&mut model, &vs, 4, 8.0);
    assert_eq!(adapted as i64, 6 * cfg.n_layers + 1, "six per block and out_head");
    assert!(model.forward_t(&input, false).equal(&base), "B = 0: the same logits, bit for bit");
    let names: Vec<String> = vs.variables().into_keys().collect();
    for key in ["trf_blocks.0.att.W_query.linear.weight", "trf_blocks.0.att.W_query.linear.bias", "trf_blocks.0.att.W_query.lora.A", "trf_blocks.1.ff.layers.2.lora.B", "out_head.linear.weight", "out_head.lora.A"] {
        assert!(names.iter().any(|n| n == key), "no {key} among {names:?}");
    }
    assert!(!names.iter().any(|n| n == "trf_blocks.0.att.W_query.weight"), "the weight moved under .linear");
}

#[test]
fn only_lora_parameters_change_in_a_step_and_the_classifier_reloads() {
    let _rng = rng_lock();
    set_seed(123);
    let cfg = tiny();
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    let trainable = prepare_lora_classifier(&mut model, &vs, 2, 4, 8.0);
    let d = cfg.emb_dim;
    let per_block = 4 * lora_parameters(d, d, 4) + lora_parameters(d, 4 * d, 4) + lora_parameters(4 * d, d, 4);
    assert_eq!(trainable, cfg.n_layers * per_block + lora_parameters(d, 2, 4), "A and B of every Linear, the head's too");
    assert_eq!(num_trainable_parameters(&vs), trainable);

    let before: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
    let mut optimizer = AdamW::new(&vs, 8e-4, 0.1);
    let input = Tensor::randint(cfg.vocab_size, [4, 12], (Kind::Int64, Device::Cpu));
    for _ in 0..2 {
        // Two steps: A's gradient is B-weighted and B starts at 0, so A moves from the second.
        let loss = calc_loss_batch(&input, &Tensor::from_slice(&[0i64, 1, 1, 0]), &model, Device::Cpu, true);
        optimizer.backward_step(&loss);
    }
    let after = vs.variables();
    for (name, old) in &before {
        let is_lora = name.contains(".lora.");
        assert_eq!(!after[name].equal(old), is_lora, "{name}: only LoRA's A and B may change");
    }

    // Saved and loaded, the LoRA classifier gives the same logits.
    let dir = std::env::temp_dir().join(format!("llm-fs-lora-{}", std::process::id()));
    let info = ClassifierInfo { num_classes: 2, max_length: 12, pad_token_id: 50256, lora: Some((4, 8.0)), position: Default::default() };
    save_classifier(&dir, &vs, &cfg, &info).unwrap();
    let (_vs2, model2, info2) = load_classifier(&dir, Device::Cpu).unwrap();
    assert_eq!(info2, info);
    let (a, b) = tch::no_grad(|| (classifier_logits(&model, &input, false), classifier_logits(&model2, &input, false)));
    let saved = vs.variables();
    for (name, t) in _vs2.variables() {
        assert!(t.equal(&saved[&name]), "{name} reloaded with other values");
    }
    let diff = f64::try_from((&a - &b).abs().max()).unwrap();
    assert!(a.equal(&b), "the reloaded LoRA classifier computes the same logits (off by {diff}: {a} {b})");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The book's count: rank 16 on GPT-2 small's spam classifier trains 2,666,528 parameters.
#[test]
fn rank_16_on_the_124m_classifier_trains_2_666_528_parameters() {
    let _rng = rng_lock();
    let cfg = GptConfig { qkv_bias: true, drop_rate: 0.0, ..GptConfig::gpt2_124m() };
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    llm_from_scratch::ch06::replace_out_head(&mut model, &vs, 2);
    assert_eq!(num_parameters(&vs), 124_441_346, "before freezing");
    let trainable = prepare_lora_classifier(&mut model, &vs, 2, 16, 16.0);
    assert_eq!(trainable, 2_666_528);
    assert_eq!(num_parameters(&vs), 124_441_346 + 2_666_528);
}
