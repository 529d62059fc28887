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

/// Which token's output feeds the classification head: the book's last token (section 6.6), or
/// the first (exercise 6.3). Saved with a classifier ([`crate::tasks::classify::ClassifierInfo`]),
/// so that training, evaluation and [`crate::tasks::classify::classify_review_at`] read the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenPosition {
    /// The last token, which under causal attention has seen the whole text (the book's choice).
    #[default]
    Last,
    /// The first token, which has seen only itself: every text that starts with the same token
    /// gets the same logits (exercise 6.3 shows why the book reads the last one).
    First,
}

impl TokenPosition {
    /// The token ids whose last position is this position: all of `in_idx` for
    /// [`TokenPosition::Last`], its first column for [`TokenPosition::First`]. Under causal
    /// attention the first position's output depends on the first token only, so the first
    /// token's logits are the last logits of the one-token prefix.
    ///
    /// # Shapes
    /// `in_idx: [batch, num_tokens]` → `[batch, num_tokens]` (`Last`) or `[batch, 1]` (`First`)
    pub fn tokens_read(self, in_idx: &Tensor) -> Tensor {
        match self {
            TokenPosition::Last => in_idx.shallow_clone(),
            TokenPosition::First => in_idx.narrow(1, 0, 1), // [batch, 1]
        }
    }
}

/// The logits of the token at `position` ([`classifier_logits`] of [`TokenPosition::tokens_read`]).
///
/// # Shapes
/// `in_idx: [batch, num_tokens]` (int64) → `[batch, num_classes]`
pub fn classifier_logits_at(model: &GptModel, in_idx: &Tensor, train: bool, position: TokenPosition) -> Tensor {
    classifier_logits(model, &position.tokens_read(in_idx), train)
}

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
    calc_loss_batch_at(input_batch, target_batch, model, device, train, TokenPosition::Last)
}

/// [`calc_loss_batch`] on the logits of the token at `position` (exercise 6.3: the first).
///
/// # Shapes
/// `input_batch: [batch, num_tokens]`, `target_batch: [batch]` (int64) → a scalar.
pub fn calc_loss_batch_at(
    input_batch: &Tensor,
    target_batch: &Tensor,
    model: &GptModel,
    device: Device,
    train: bool,
    position: TokenPosition,
) -> Tensor {
    let logits = classifier_logits_at(model, &input_batch.to_device(device), train, position); // [batch, num_classes]
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
    calc_accuracy_loader_at(loader, model, device, num_batches, TokenPosition::Last)
}

/// [`calc_accuracy_loader`] with the argmax of the token at `position` (exercise 6.3: the first).
pub fn calc_accuracy_loader_at<D: Dataset>(
    loader: &DataLoader<D>,
    model: &GptModel,
    device: Device,
    num_batches: Option<usize>,
    position: TokenPosition,
) -> f64 {
    let n = num_batches.map_or(loader.len(), |n| n.min(loader.len()));
    let _no_grad = tch::no_grad_guard();
    let (mut correct, mut examples) = (0i64, 0i64);
    for (input, target) in loader.iter_epoch(0).take(n) {
        let predicted = classifier_logits_at(model, &input.to_device(device), false, position).argmax(-1, false); // [batch]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::config::GptConfig;
    use crate::tasks::classify::head::{prepare_classifier_with, Trainable};
    use crate::util::device::{rng_lock, set_seed};
    use tch::nn;

    /// A small classifier (2 blocks, 32 dimensions, 97 tokens) with seeded weights.
    fn classifier(trainable: Trainable) -> (nn::VarStore, GptModel, i64) {
        let cfg = GptConfig { vocab_size: 97, context_length: 16, emb_dim: 32, n_heads: 4, n_layers: 2, drop_rate: 0.0, qkv_bias: true };
        set_seed(123);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut model = GptModel::new(&vs.root(), &cfg);
        let n = prepare_classifier_with(&mut model, &vs, 2, trainable);
        (vs, model, n)
    }

    #[test]
    fn the_first_token_position_reads_only_the_first_token() {
        let _rng = rng_lock();
        let (_vs, model, _) = classifier(Trainable::LastBlock);
        let a = Tensor::from_slice2(&[[5i64, 17, 42, 8, 3], [9, 9, 9, 9, 9]]);
        let b = Tensor::from_slice2(&[[5i64, 60, 1, 77, 30], [9, 1, 2, 3, 4]]); // the same first tokens
        let logits = |x: &Tensor, p| tch::no_grad(|| classifier_logits_at(&model, x, false, p));
        let first_diff = f64::try_from((logits(&a, TokenPosition::First) - logits(&b, TokenPosition::First)).abs().max()).unwrap();
        assert_eq!(first_diff, 0.0, "with First, the tokens after the first change nothing");
        let last_diff = f64::try_from((logits(&a, TokenPosition::Last) - logits(&b, TokenPosition::Last)).abs().max()).unwrap();
        assert!(last_diff > 1e-4, "with Last, they change the logits (by {last_diff})");
        // First is the full model's output at position 0, Last the book's classifier_logits.
        let full = tch::no_grad(|| model.forward_t(&a, false)); // [2, 5, 2]
        let at0 = f64::try_from((full.select(1, 0) - logits(&a, TokenPosition::First)).abs().max()).unwrap();
        assert!(at0 < 1e-6, "First equals model(x)[:, 0, :] (off by {at0})");
        assert!(logits(&a, TokenPosition::Last).equal(&tch::no_grad(|| classifier_logits(&model, &a, false))));
    }

    #[test]
    fn trainable_all_unfreezes_every_parameter() {
        let _rng = rng_lock();
        let (vs, _, last_block) = classifier(Trainable::LastBlock);
        // One block of 32 dimensions: 4 * (32 * 32) + 32 attention (out_proj bias) + 3 * 32 (qkv biases),
        // 2 * 32 * 128 + 128 + 32 feed-forward, 2 * 2 * 32 norms; final_norm 2 * 32; head 32 * 2 + 2.
        let block = 4 * 32 * 32 + 32 + 3 * 32 + 2 * 32 * 128 + 128 + 32 + 4 * 32;
        assert_eq!(last_block, block + 2 * 32 + 32 * 2 + 2, "the last block, the final norm and the head");
        let (_, _, all) = classifier(Trainable::All);
        let total = crate::nn::model::num_parameters(&vs);
        assert_eq!(all, total, "every parameter trains");
        assert_eq!(total, 97 * 32 + 16 * 32 + 2 * block + 2 * 32 + 32 * 2 + 2, "embeddings, 2 blocks, final norm, head");
    }
}
