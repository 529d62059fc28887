//! Chapter 5.1-5.2, "Evaluating generative text models" and "Training an LLM": the losses, the
//! evaluation, the greedy sample, and the book's training functions `train_model_simple`
//! (listing 5.3) and appendix D's `train_model`.
//!
//! Both are thin wrappers of the one training loop ([`crate::training::trainer::train_steps`])
//! with [`NextTokenTask`], chapter 5's task: the mean cross-entropy of every next-token
//! prediction, tokens counted, a 50-token greedy sample of `start_context` after each epoch.
//! Chapter 7 fine-tunes on instructions with the same task. The loop's names (settings, state,
//! history, events) are re-exported here, where chapter 5 introduces them.

use tch::nn::ModuleT;
use tch::{Device, Tensor};

use crate::error::Result;
use crate::nn::model::generate_text_simple;
use crate::text::dataloader::{DataLoader, Dataset};
use crate::text::tokenizer::Tokenizer;
use crate::training::optim::AdamW;
use crate::training::schedule::{LrSchedule, TrainExtras};
use crate::training::trainer::TrainTask;
pub use crate::training::trainer::{
    eval_log_line, loss_over_loader, print_book_lines, train_steps, TrainEvent, TrainHistory, TrainSettings, TrainState, Unit,
};

/// Listing 5.1 (`calc_loss_batch`): the mean cross-entropy of the model's next-token logits
/// against the targets, over every position of every sequence.
///
/// # Shapes
/// `input_batch, target_batch: [batch, num_tokens]` (int64) → a scalar.
pub fn calc_loss_batch<M: ModuleT + ?Sized>(
    input_batch: &Tensor,
    target_batch: &Tensor,
    model: &M,
    device: Device,
    train: bool,
) -> Tensor {
    let input_batch = input_batch.to_device(device);
    let target_batch = target_batch.to_device(device);
    let logits = model.forward_t(&input_batch, train); // [batch, num_tokens, vocab]
    cross_entropy(&logits, &target_batch)
}

/// Mean cross-entropy of `logits: [batch, num_tokens, vocab]` against `targets: [batch,
/// num_tokens]`, ignoring targets equal to -100 (PyTorch's `ignore_index`, used by chapter 7).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Tensor {
    let vocab = *logits.size().last().expect("logits have a vocabulary axis");
    let logits_flat = logits.reshape([-1, vocab]); // [batch * num_tokens, vocab]
    let targets_flat = targets.reshape([-1]); // [batch * num_tokens]
    // torch.nn.functional.cross_entropy(logits_flat, targets_flat), ignore_index=-100
    logits_flat.cross_entropy_loss::<Tensor>(&targets_flat, None, tch::Reduction::Mean, -100, 0.0)
}

/// Listing 5.2 (`calc_loss_loader`): the average batch loss over the first `num_batches`
/// batches of `loader` (all when `None`, at most its length), in the order of the loader's
/// epoch 0. An empty loader gives NaN, as in the book.
pub fn calc_loss_loader<D: Dataset, M: ModuleT + ?Sized>(
    loader: &DataLoader<D>,
    model: &M,
    device: Device,
    num_batches: Option<usize>,
) -> f64 {
    loss_over_loader(loader, num_batches, |input, target| calc_loss_batch(input, target, model, device, false))
}

/// Perplexity of a mean cross-entropy loss, `exp(loss)` (section 5.1.2): roughly the number of
/// tokens the model hesitates between. An untrained GPT-2 model scores about the vocabulary size.
pub fn perplexity(loss: f64) -> f64 {
    loss.exp()
}

/// Listing 5.3 (`evaluate_model`): train and validation loss over the first `eval_iter` batches
/// of each loader, with the model in evaluation mode (no dropout) and no gradients.
pub fn evaluate_model<D: Dataset, V: Dataset, M: ModuleT + ?Sized>(
    model: &M,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    device: Device,
    eval_iter: usize,
) -> (f64, f64) {
    let train_loss = calc_loss_loader(train_loader, model, device, Some(eval_iter));
    let val_loss = calc_loss_loader(val_loader, model, device, Some(eval_iter));
    (train_loss, val_loss)
}

/// Listing 5.1, `text_to_token_ids`: a text's token ids as a batch of one.
///
/// # Shapes
/// → `[1, num_tokens]` (int64, on the CPU)
pub fn text_to_token_ids(text: &str, tokenizer: &dyn Tokenizer) -> Result<Tensor> {
    let ids: Vec<i64> = tokenizer.encode_text(text)?.into_iter().map(i64::from).collect();
    Ok(Tensor::from_slice(&ids).unsqueeze(0)) // [1, num_tokens]
}

/// Listing 5.1, `token_ids_to_text`: decode a batch of one (`[1, n]`) or a plain `[n]` of ids.
pub fn token_ids_to_text(token_ids: &Tensor, tokenizer: &dyn Tokenizer) -> Result<String> {
    let flat = token_ids.flatten(0, -1).to_device(Device::Cpu).to_kind(tch::Kind::Int64); // [n]
    let ids: Vec<u32> = Vec::<i64>::try_from(&flat).expect("int64 ids").into_iter().map(|i| i as u32).collect();
    tokenizer.decode_ids(&ids)
}

/// Listing 5.3 (`generate_and_print_sample`): a greedy continuation of `start_context` of
/// `max_new_tokens` tokens, decoded, with newlines shown as spaces (the book prints it on one line).
pub fn generate_sample<M: ModuleT + ?Sized>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    device: Device,
    context_size: i64,
    start_context: &str,
    max_new_tokens: i64,
) -> Result<String> {
    let idx = text_to_token_ids(start_context, tokenizer)?.to_device(device); // [1, num_tokens]
    let out = generate_text_simple(model, &idx, max_new_tokens, context_size);
    Ok(token_ids_to_text(&out, tokenizer)?.replace('\n', " "))
}

/// Chapter 5's (and chapter 7's) task for the training loop: predict every next token
/// ([`calc_loss_batch`]), count tokens, and after each epoch generate the book's greedy sample
/// of `settings.start_context` (`settings.sample_tokens` tokens, cropped to `context_size`),
/// kept in the history's `samples`.
pub struct NextTokenTask<'a, M: ModuleT + ?Sized> {
    pub model: &'a M,
    pub tokenizer: &'a dyn Tokenizer,
    pub device: Device,
    /// The model's context length: the sample's input is cut to its last `context_size` tokens.
    pub context_size: i64,
}

impl<'a, M: ModuleT + ?Sized> NextTokenTask<'a, M> {
    /// The task of training `model` on `device`, sampling with `tokenizer`.
    pub fn new(model: &'a M, tokenizer: &'a dyn Tokenizer, device: Device, context_size: i64) -> Self {
        NextTokenTask { model, tokenizer, device, context_size }
    }
}

impl<M: ModuleT + ?Sized> TrainTask for NextTokenTask<'_, M> {
    fn batch_loss(&self, input_batch: &Tensor, target_batch: &Tensor, train: bool) -> Tensor {
        calc_loss_batch(input_batch, target_batch, self.model, self.device, train)
    }

    fn after_epoch<D: Dataset, V: Dataset>(
        &self,
        epoch: usize,
        _train_loader: &DataLoader<D>,
        _val_loader: &DataLoader<V>,
        settings: &TrainSettings,
        history: &mut TrainHistory,
    ) -> Result<Option<TrainEvent>> {
        let text =
            generate_sample(self.model, self.tokenizer, self.device, self.context_size, &settings.start_context, settings.sample_tokens)?;
        history.samples.push(text.clone());
        Ok(Some(TrainEvent::Sample { epoch, text }))
    }
}

/// Listing 5.3, `train_model_simple`: train for `num_epochs`, evaluating every `eval_freq`
/// steps on `eval_iter` batches, printing the book's log lines and a sample after each epoch.
/// Returns the history (the book's `train_losses, val_losses, track_tokens_seen` and more).
#[allow(clippy::too_many_arguments)]
pub fn train_model_simple<D: Dataset, V: Dataset, M: ModuleT + ?Sized>(
    model: &M,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    device: Device,
    num_epochs: usize,
    eval_freq: i64,
    eval_iter: usize,
    start_context: &str,
    tokenizer: &dyn Tokenizer,
    context_size: i64,
) -> Result<TrainHistory> {
    let task = NextTokenTask::new(model, tokenizer, device, context_size);
    let settings = TrainSettings::book(num_epochs, eval_freq, eval_iter, start_context);
    let mut state = TrainState::default();
    train_steps(&task, train_loader, val_loader, optimizer, &settings, &mut state, None, &mut print_book_lines)?;
    Ok(state.history)
}

/// What the book's `train_model` returns: the losses (in a [`TrainHistory`]), `track_lrs`, and
/// the gradient norm before clipping at each clipped step (`(global_step, norm)`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduledHistory {
    pub history: TrainHistory,
    pub track_lrs: Vec<f64>,
    pub grad_norms: Vec<(i64, f64)>,
}

/// Appendix D.4, the book's `train_model`: `train_model_simple` with linear warmup from
/// `initial_lr` over `warmup_steps`, cosine decay to `min_lr`, and the gradients clipped to norm
/// 1.0 after warmup. The peak learning rate is the optimizer's (`optimizer.lr` when called),
/// the total number of steps `len(train_loader) * n_epochs`. Prints the book's log lines and a
/// sample after each epoch (the log says `Step` where the book's appendix says `Iter`).
///
/// The same run, resumable, is [`train_steps`] with `settings.extras =
/// Some(TrainExtras::book(schedule))`.
#[allow(clippy::too_many_arguments)]
pub fn train_model<D: Dataset, V: Dataset, M: ModuleT + ?Sized>(
    model: &M,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    device: Device,
    n_epochs: usize,
    eval_freq: i64,
    eval_iter: usize,
    start_context: &str,
    tokenizer: &dyn Tokenizer,
    context_size: i64,
    warmup_steps: i64,
    initial_lr: f64,
    min_lr: f64,
) -> Result<ScheduledHistory> {
    let total_steps = (train_loader.len() * n_epochs) as i64;
    let schedule = LrSchedule::new(initial_lr, optimizer.lr, min_lr, warmup_steps, total_steps)?;
    let settings =
        TrainSettings { extras: Some(TrainExtras::book(schedule)), ..TrainSettings::book(n_epochs, eval_freq, eval_iter, start_context) };
    let task = NextTokenTask::new(model, tokenizer, device, context_size);
    let mut state = TrainState::default();
    let (mut track_lrs, mut grad_norms) = (Vec::new(), Vec::new());
    train_steps(&task, train_loader, val_loader, optimizer, &settings, &mut state, None, &mut |event| {
        if let TrainEvent::Step { global_step, lr, grad_norm, .. } = event {
            track_lrs.push(*lr);
            if let Some(norm) = grad_norm {
                grad_norms.push((*global_step, *norm));
            }
        }
        print_book_lines(event);
    })?;
    Ok(ScheduledHistory { history: state.history, track_lrs, grad_norms })
}
