//! Chapter 6.6, "Calculating the classification loss and accuracy": the logits of the last token,
//! their cross-entropy against the class labels, and the accuracy over a loader.
//!
//! [`classifier_logits`] runs the embeddings and the leading frozen transformer blocks without
//! recording gradients, and computes the last block, `final_norm` and `out_head` for the last
//! position only. The logits are the book's `model(input_batch)[:, -1, :]`, with less work: the
//! backward pass starts at the first trainable block, and most of the last block's work (its
//! query, attention row, output projection and feed-forward network) is done for one position
//! instead of all. Evaluation reads each loader in its epoch-0 order (as chapter 5's
//! [`crate::training::train`] does), so evaluating never changes which batches training sees.

use tch::nn::{Module, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::nn::model::{block_requires_grad, GptModel, TransformerBlock};
use crate::text::dataloader::{DataLoader, Dataset};
use crate::training::trainer::loss_over_loader;

/// The logits of the last token (section 6.6, the book's `model(input_batch)[:, -1, :]`).
///
/// The embeddings and the transformer blocks before the first one with a trainable parameter
/// run without recording gradients (under `no_grad`, where the layers also work in place); the
/// last block computes its last position only ([`TransformerBlock::forward_last`]), and `final_norm` and
/// `out_head` see that position only. Everything after the last block's keys and values works
/// per position, so the logits are those of the full forward pass's last row.
///
/// # Shapes
/// `in_idx: [batch, num_tokens]` (int64, `num_tokens <= context_length`) → `[batch, num_classes]`
pub fn classifier_logits(model: &GptModel, in_idx: &Tensor, train: bool) -> Tensor {
    let (_batch, num_tokens) = in_idx.size2().expect("classifier input must be [batch, num_tokens] token ids");
    assert!(
        num_tokens <= model.cfg.context_length,
        "classifier: {num_tokens} tokens exceed the context length {}",
        model.cfg.context_length
    );
    let embeddings_frozen = !model.tok_emb.weight.requires_grad() && !model.pos_emb.weight.requires_grad();
    let num_blocks = model.trf_blocks.len();
    // The blocks that run whole: all but the last, which computes its last position only.
    let whole = num_blocks.saturating_sub(1);
    // The leading frozen ones (none when the embeddings train).
    let frozen = if embeddings_frozen { model.trf_blocks.iter().position(block_requires_grad).unwrap_or(num_blocks) } else { 0 };
    let mut x = {
        let _no_grad = embeddings_frozen.then(tch::no_grad_guard);
        let mut x = model.embed(in_idx, train); // [batch, num_tokens, emb_dim]
        for block in &model.trf_blocks[..frozen.min(whole)] {
            x = block.forward_t(&x, train);
        }
        x
    };
    for block in &model.trf_blocks[frozen.min(whole)..whole] {
        x = block.forward_t(&x, train);
    }
    let last = match model.trf_blocks.last() {
        None => x.select(1, -1),
        Some(last_block) => {
            let _no_grad = (frozen == num_blocks).then(tch::no_grad_guard);
            last_block.forward_last(&x, train)
        }
    }; // [batch, emb_dim]
    model.out_head.forward(&model.final_norm.forward(&last)) // [batch, num_classes]
}

/// What `block.forward_t(x, train)` computes at the last position, computing only that: the
/// block's [`TransformerBlock::forward_last`] (kept under this name, which chapter 6 exports).
///
/// # Shapes
/// `x: [batch, num_tokens, emb_dim]` → `[batch, emb_dim]`
pub fn last_position_output(block: &TransformerBlock, x: &Tensor, train: bool) -> Tensor {
    block.forward_last(x, train)
}

/// Listing 6.8's `calc_loss_batch`: the cross-entropy of the last token's logits against the
/// class labels.
///
/// # Shapes
/// `input_batch: [batch, num_tokens]`, `target_batch: [batch]` (int64) → a scalar.
pub fn calc_loss_batch(input_batch: &Tensor, target_batch: &Tensor, model: &GptModel, device: Device, train: bool) -> Tensor {
    let logits = classifier_logits(model, &input_batch.to_device(device), train); // [batch, num_classes]
    logits.cross_entropy_for_logits(&target_batch.to_device(device))
}

/// Listing 6.8's `calc_loss_loader`: the mean batch loss over the first `num_batches` batches
/// (all when `None`) in the loader's epoch-0 order, in evaluation mode without gradients; NaN
/// for an empty loader (chapter 5's loop over a loader, [`loss_over_loader`], with this
/// chapter's batch loss).
pub fn calc_loss_loader<D: Dataset>(loader: &DataLoader<D>, model: &GptModel, device: Device, num_batches: Option<usize>) -> f64 {
    loss_over_loader(loader, num_batches, |input, target| calc_loss_batch(input, target, model, device, false))
}

/// Listing 6.7, `calc_accuracy_loader`: the fraction of examples whose last-token argmax is
/// their label, over the first `num_batches` batches (all when `None`) in the loader's epoch-0
/// order, in evaluation mode without gradients; NaN for an empty loader.
pub fn calc_accuracy_loader<D: Dataset>(loader: &DataLoader<D>, model: &GptModel, device: Device, num_batches: Option<usize>) -> f64 {
    let n = num_batches.map_or(loader.len(), |n| n.min(loader.len()));
    let _no_grad = tch::no_grad_guard();
    let (mut correct, mut examples) = (0i64, 0i64);
    for (input, target) in loader.iter_epoch(0).take(n) {
        let predicted = classifier_logits(model, &input.to_device(device), false).argmax(-1, false); // [batch]
        examples += predicted.size()[0];
        correct += predicted.eq_tensor(&target.to_device(device)).sum(Kind::Int64).int64_value(&[]);
    }
    if examples == 0 {
        f64::NAN
    } else {
        correct as f64 / examples as f64
    }
}

/// Listing 6.10's `evaluate_model`: `(train loss, validation loss)` over `eval_iter` batches each.
pub fn evaluate_model<D: Dataset, V: Dataset>(
    model: &GptModel,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    device: Device,
    eval_iter: usize,
) -> (f64, f64) {
    (calc_loss_loader(train_loader, model, device, Some(eval_iter)), calc_loss_loader(val_loader, model, device, Some(eval_iter)))
}
