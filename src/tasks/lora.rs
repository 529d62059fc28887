//! Appendix E, "Parameter-efficient fine-tuning with LoRA": low-rank adaptation of every linear
//! layer of a GPT model, applied to chapter 6's spam classifier.
//!
//! | book section | here |
//! |---|---|
//! | E.1 introduction to LoRA | [`LoRALayer`]: `(alpha / rank) * x @ A @ B`, A `[in, rank]` (kaiming-uniform), B `[rank, out]` (zeros) |
//! | E.3 `LinearWithLoRA`, `replace_linear_with_lora` | [`LinearWithLoRA`] (a `Linear` and its update, on its own), [`replace_linear_with_lora`] (every `Linear` of a [`GptModel`], the classification head too) |
//! | E.4 fine-tuning with LoRA | [`prepare_lora_classifier`], then chapter 6's [`crate::tasks::classify::train_classifier_simple`] |
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

/// The trainable parameters LoRA of rank `rank` adds to a layer `in_dim -> out_dim`:
/// `rank * (in_dim + out_dim)`, against `in_dim * out_dim` for the layer itself.
pub fn lora_parameters(in_dim: i64, out_dim: i64, rank: i64) -> i64 {
    rank * (in_dim + out_dim)
}
