//! Appendix E, "Parameter-efficient fine-tuning with LoRA": low-rank adaptation of every linear
//! layer of a GPT model, applied to chapter 6's spam classifier.
//!
//! | book section | here |
//! |---|---|
//! | E.1 introduction to LoRA | [`LoRALayer`]: `(alpha / rank) * x @ A @ B`, A `[in, rank]` (kaiming-uniform), B `[rank, out]` (zeros) |
//! | E.3 `LinearWithLoRA`, `replace_linear_with_lora` | [`LinearWithLoRA`] (a `Linear` and its update, on its own), [`replace_linear_with_lora`] (every `Linear` of a [`GptModel`], the classification head too) |
//! | E.4 fine-tuning with LoRA | [`prepare_lora_classifier`], then chapter 6's [`crate::tasks::classify::train_classifier_simple`] |
//! | exercise 7.4, instruction finetuning with LoRA | [`prepare_lora_model`] (and [`train_only_lora`] for a model loaded with its LoRA updates) |
//!
//! Inside a [`GptModel`] each [`Linear`] carries its LoRA update in its `lora` field, so the
//! model keeps its types; its variables move to the book's state-dict keys:
//! `trf_blocks.0.att.W_query.weight` becomes `trf_blocks.0.att.W_query.linear.weight` next to
//! `trf_blocks.0.att.W_query.lora.A` and `.lora.B`, as the book's
//! `LinearWithLoRA(linear)` module names them.
//!
//! Because `B` starts at zero, a model with fresh LoRA layers computes exactly what it computed
//! before; only `A` and `B` train (2,666,528 parameters at rank 16 for GPT-2 small's classifier,
//! against 124,441,346 in all).

use tch::nn;

pub use crate::nn::layers::{LinearWithLoRA, LoRALayer};
use crate::nn::layers::Linear;
use crate::nn::model::{num_trainable_parameters, replace_out_head, set_requires_grad_under, GptModel};

/// Every `Linear` of `model`, in the order of the book's `named_modules`: per block `W_query`,
/// `W_key`, `W_value`, `out_proj`, `ff.layers.0`, `ff.layers.2`, then `out_head`.
fn linears_mut(model: &mut GptModel) -> Vec<&mut Linear> {
    let mut out = Vec::new();
    for block in &mut model.trf_blocks {
        let att = &mut block.att;
        out.extend([&mut att.w_query, &mut att.w_key, &mut att.w_value, &mut att.out_proj]);
        out.extend([&mut block.ff.fc1, &mut block.ff.fc2]);
    }
    out.push(&mut model.out_head);
    out
}

/// The book's `replace_linear_with_lora(model, rank, alpha)`: give every `Linear` of `model`
/// (the attention projections, the feed-forward layers and `out_head`) a LoRA update, and move
/// its weight and bias to `<path>.linear.weight` / `.bias` in `vs` next to the new
/// `<path>.lora.A` / `.B`. Returns the number of layers adapted. The new `A` and `B` are
/// trainable; the rest keeps its `requires_grad` (freeze the model first, as the book does).
/// `model` must have been built under `vs.root()`; build the optimizer afterwards.
///
/// Panics if a layer has a LoRA update already or its weight is not a variable of `vs`.
pub fn replace_linear_with_lora(model: &mut GptModel, vs: &nn::VarStore, rank: i64, alpha: f64) -> usize {
    let linears = linears_mut(model);
    let n = linears.len();
    for linear in linears {
        assert!(linear.lora.is_none(), "replace_linear_with_lora: a layer has a LoRA update already");
        let prefix = {
            let mut vars = vs.variables_.lock().expect("the var store's lock");
            let ptr = linear.weight.data_ptr();
            let name = vars
                .named_variables
                .iter()
                .find(|(_, t)| t.data_ptr() == ptr)
                .map(|(name, _)| name.clone())
                .expect("a Linear whose weight is a variable of the var store");
            let prefix = name.strip_suffix(".weight").expect("a Linear's weight is named <path>.weight").to_string();
            for part in ["weight", "bias"] {
                if let Some(t) = vars.named_variables.remove(&format!("{prefix}.{part}")) {
                    vars.named_variables.insert(format!("{prefix}.linear.{part}"), t);
                }
            }
            prefix
        };
        let path = prefix.split('.').fold(vs.root(), |p, part| p / part) / "lora";
        linear.lora = Some(LoRALayer::new(&path, linear.in_features(), linear.out_features(), rank, alpha));
    }
    n
}

/// Appendix E's model: chapter 6's classifier with every parameter frozen (the new
/// `num_classes` head too) and a LoRA update of rank `rank` on every `Linear`, so that only the
/// `A` and `B` matrices train. Returns the number of trainable parameters (2,666,528 for GPT-2
/// small at rank 16).
pub fn prepare_lora_classifier(model: &mut GptModel, vs: &nn::VarStore, num_classes: i64, rank: i64, alpha: f64) -> i64 {
    replace_out_head(model, vs, num_classes);
    set_requires_grad_under(vs, "", false);
    replace_linear_with_lora(model, vs, rank, alpha);
    num_trainable_parameters(vs)
}

/// Exercise 7.4's model: `model` (an instruction model, its own `out_head` kept) with every
/// parameter frozen and a LoRA update of rank `rank` on every `Linear`, so that only the `A` and
/// `B` matrices train. Returns the number of trainable parameters. Seed first for the book's `A`.
pub fn prepare_lora_model(model: &mut GptModel, vs: &nn::VarStore, rank: i64, alpha: f64) -> i64 {
    set_requires_grad_under(vs, "", false);
    replace_linear_with_lora(model, vs, rank, alpha);
    num_trainable_parameters(vs)
}

/// Make exactly the LoRA matrices (the variables under a `lora` path: `<path>.lora.A`, `.B`)
/// trainable and freeze every other variable of `vs`: what [`prepare_lora_model`] leaves, for a
/// LoRA model loaded from a checkpoint (whose variables all train when built). Returns the number
/// of trainable parameters.
pub fn train_only_lora(vs: &nn::VarStore) -> i64 {
    for (name, var) in vs.variables() {
        let _ = var.set_requires_grad(name.split('.').any(|part| part == "lora"));
    }
    num_trainable_parameters(vs)
}

/// The trainable parameters LoRA of rank `rank` adds to a layer `in_dim -> out_dim`:
/// `rank * (in_dim + out_dim)`, against `in_dim * out_dim` for the layer itself.
pub fn lora_parameters(in_dim: i64, out_dim: i64, rank: i64) -> i64 {
    rank * (in_dim + out_dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::config::GptConfig;
    use crate::util::device::{rng_lock, set_seed};
    use tch::Device;

    #[test]
    fn only_the_lora_matrices_train() {
        let _rng = rng_lock();
        set_seed(123);
        let cfg = GptConfig { vocab_size: 97, context_length: 16, emb_dim: 32, n_heads: 4, n_layers: 2, drop_rate: 0.0, qkv_bias: true };
        let vs = nn::VarStore::new(Device::Cpu);
        let mut model = GptModel::new(&vs.root(), &cfg);
        let n = prepare_lora_model(&mut model, &vs, 4, 8.0);
        let per_block = 4 * lora_parameters(32, 32, 4) + lora_parameters(32, 128, 4) + lora_parameters(128, 32, 4);
        assert_eq!(n, 2 * per_block + lora_parameters(32, 97, 4), "the LoRA updates of 12 block layers and out_head");
        // A model built with every variable trainable: train_only_lora freezes all but A and B.
        for (_, var) in vs.variables() {
            let _ = var.set_requires_grad(true);
        }
        assert_eq!(train_only_lora(&vs), n);
        for (name, var) in vs.variables() {
            assert_eq!(var.requires_grad(), name.contains(".lora."), "{name}");
        }
    }
}
