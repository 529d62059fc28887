//! Chapter 6.4-6.5, "Initializing a model with pretrained weights" and "Adding a classification
//! head": freeze the model, replace `out_head` with a 2-class head, unfreeze the last block and
//! `final_norm` ([`Trainable::LastBlock`]; exercise 6.2 trains everything, [`Trainable::All`]).
//! The freezing and head-replacing helpers live with the model
//! ([`crate::nn::model`]) because appendix E uses them too.

use tch::nn;

use crate::nn::model::GptModel;
pub use crate::nn::model::{block_requires_grad, replace_out_head, set_drop_rate, set_requires_grad_under};

/// Sections 6.5's three steps in the book's order: freeze every parameter, replace `out_head`
/// with a trainable `num_classes` head ([`replace_out_head`]), and unfreeze the last
/// transformer block and `final_norm`. Returns the number of trainable parameters: one block,
/// `2 emb_dim` for the norm and `(emb_dim + 1) num_classes` for the head.
pub fn prepare_classifier(model: &mut GptModel, vs: &nn::VarStore, num_classes: i64) -> i64 {
    prepare_classifier_with(model, vs, num_classes, Trainable::LastBlock)
}

/// Which parameters train when a GPT model becomes a classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trainable {
    /// Section 6.5: the last transformer block, `final_norm` and the new head.
    #[default]
    LastBlock,
    /// Exercise 6.2: every parameter (the embeddings and every block too).
    All,
}

/// [`prepare_classifier`] with the choice of what trains: the book's last block, final norm and
/// head ([`Trainable::LastBlock`]), or the whole model ([`Trainable::All`], exercise 6.2).
/// Returns the number of trainable parameters.
pub fn prepare_classifier_with(model: &mut GptModel, vs: &nn::VarStore, num_classes: i64, trainable: Trainable) -> i64 {
    set_requires_grad_under(vs, "", false);
    replace_out_head(model, vs, num_classes);
    match trainable {
        Trainable::LastBlock => {
            let last = model.trf_blocks.len().checked_sub(1).expect("a GPT model with at least one block");
            set_requires_grad_under(vs, &format!("trf_blocks.{last}"), true);
            set_requires_grad_under(vs, "final_norm", true);
        }
        Trainable::All => {
            set_requires_grad_under(vs, "", true);
        }
    }
    crate::nn::model::num_trainable_parameters(vs)
}
