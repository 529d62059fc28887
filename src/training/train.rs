//! Chapter 5.1-5.2, "Evaluating generative text models" and "Training an LLM": the losses, the
//! evaluation, and the training loop `train_model_simple`, with its history and loss curves.
//!
//! The loop is the book's, step for step: for each batch, zero the gradients, compute the loss,
//! back-propagate, step AdamW, count the tokens seen; every `eval_freq` steps evaluate on the
//! first `eval_iter` batches of both loaders and log
//! `Ep 1 (Step 000000): Train loss 9.817, Val loss 9.924`; after each epoch print a 50-token
//! greedy sample of `start_context`.
//!
//! Two differences, both for runs that can stop and resume exactly ([`crate::training::checkpoint`]):
//! - The loader's order for epoch `e` is `train_loader.order(e)` (a seeded shuffle), and
//!   evaluation always reads the loaders' epoch-0 order, so evaluating never changes which
//!   batches training sees (the book's evaluation draws a fresh shuffle of the training set).
//! - Before each step the global random generator is seeded with `seed + step`, so dropout at
//!   step `k` is the same whether or not the run was interrupted before it. PyTorch's single
//!   seeded stream cannot be reproduced by tch anyway (different shuffle code).

use std::time::Instant;

use tch::nn::ModuleT;
use tch::{Device, Tensor};

use crate::text::dataloader::{DataLoader, Dataset};
use crate::util::device::set_seed;
use crate::error::Result;
use crate::nn::model::generate_text_simple;
use crate::training::optim::AdamW;
use crate::text::tokenizer::Tokenizer;

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
    if loader.is_empty() {
        return f64::NAN;
    }
    let n = num_batches.map_or(loader.len(), |n| n.min(loader.len()));
    let _no_grad = tch::no_grad_guard();
    let total: f64 = loader
        .iter_epoch(0)
        .take(n)
        .map(|(input, target)| calc_loss_batch(&input, &target, model, device, false).double_value(&[]))
        .sum();
    total / n as f64
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

/// What a training run recorded: one entry per evaluation, in the book's three lists plus the
/// step and the (fractional) epoch of each, and the samples printed after each epoch.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainHistory {
    pub train_losses: Vec<f64>,
    pub val_losses: Vec<f64>,
    /// Tokens seen by the model when each evaluation ran (`track_tokens_seen`).
    pub tokens_seen: Vec<i64>,
    /// The global step of each evaluation (0-based, as in the log line).
    pub steps: Vec<i64>,
    /// The epoch of each evaluation as a fraction (1.5 = half-way through the second epoch),
    /// the x axis of the book's loss plot.
    pub epochs: Vec<f64>,
    /// The greedy sample printed after each epoch.
    pub samples: Vec<String>,
}

// Defined here rather than in `viz`, so that plotting code never imports training.
impl crate::viz::figures::LossPlot {
    /// The book's loss plot of a training history (chapter 5: `plot_losses`).
    pub fn from_history(history: &TrainHistory) -> Self {
        crate::viz::figures::LossPlot {
            title: "Training and validation loss".into(),
            y_label: "Loss".into(),
            epochs: history.epochs.clone(),
            tokens_seen: history.tokens_seen.clone(),
            series: vec![
                ("Training loss".into(), history.train_losses.clone()),
                ("Validation loss".into(), history.val_losses.clone()),
            ],
        }
    }
}

/// The position of a training run, saved in checkpoints so that a run resumes where it stopped.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// The epoch being trained (0-based).
    pub epoch: usize,
    /// Batches of that epoch already trained on.
    pub batch_in_epoch: usize,
    /// Steps taken so far (the book's `global_step + 1`).
    pub steps_done: i64,
    pub tokens_seen: i64,
    pub history: TrainHistory,
}

impl TrainState {
    /// Whether the run has trained all `num_epochs` epochs.
    pub fn finished(&self, num_epochs: usize) -> bool {
        self.epoch >= num_epochs
    }
}

/// The settings of `train_model_simple`, plus the seed that makes dropout reproducible.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainSettings {
    pub num_epochs: usize,
    pub eval_freq: i64,
    pub eval_iter: usize,
    pub start_context: String,
    /// Tokens of the greedy sample printed after each epoch (the book's 50).
    pub sample_tokens: i64,
    /// Seed of the per-step dropout randomness (see the module docs).
    pub seed: u64,
}

impl TrainSettings {
    /// The book's settings: `num_epochs`, `eval_freq`, `eval_iter`, `start_context`, a
    /// 50-token sample, seed 123.
    pub fn book(num_epochs: usize, eval_freq: i64, eval_iter: usize, start_context: &str) -> Self {
        TrainSettings { num_epochs, eval_freq, eval_iter, start_context: start_context.into(), sample_tokens: 50, seed: 123 }
    }
}

/// Something that happened during training, for a progress display. The loop itself prints
/// nothing; [`train_model_simple`] prints the book's lines.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// One optimisation step: its 0-based global step, its loss, and tokens per second so far.
    Step { epoch: usize, global_step: i64, loss: f64, tokens_per_s: f64 },
    /// An evaluation, with the book's log line.
    Eval { epoch: usize, global_step: i64, train_loss: f64, val_loss: f64, line: String },
    /// The greedy sample after an epoch.
    Sample { epoch: usize, text: String },
}

/// The book's log line: `Ep 1 (Step 000000): Train loss 9.817, Val loss 9.924`.
pub fn eval_log_line(epoch: usize, global_step: i64, train_loss: f64, val_loss: f64) -> String {
    format!("Ep {} (Step {global_step:06}): Train loss {train_loss:.3}, Val loss {val_loss:.3}", epoch + 1)
}

/// Train from `state` until all epochs are done or `max_steps` more steps were taken (whichever
/// comes first), updating `state` as it goes; `on_event` sees every step, evaluation and sample.
///
/// This is the body of `train_model_simple`, cut so that a run can stop at any step, be saved,
/// and continue with the same batches, dropout and optimizer state.
#[allow(clippy::too_many_arguments)]
pub fn train_steps<D: Dataset, V: Dataset, M: ModuleT + ?Sized>(
    model: &M,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    device: Device,
    settings: &TrainSettings,
    tokenizer: &dyn Tokenizer,
    context_size: i64,
    state: &mut TrainState,
    max_steps: Option<usize>,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<()> {
    let mut no_change = |_: i64, _: &mut AdamW| {};
    train_steps_with(
        model,
        train_loader,
        val_loader,
        optimizer,
        device,
        settings,
        tokenizer,
        context_size,
        state,
        max_steps,
        on_event,
        &mut no_change,
    )
}

/// [`train_steps`], calling `before_update(global_step, optimizer)` after each backward pass
/// and before the update: appendix D sets the step's learning rate and clips the gradients
/// there ([`crate::training::schedule`]).
#[allow(clippy::too_many_arguments)]
pub fn train_steps_with<D: Dataset, V: Dataset, M: ModuleT + ?Sized>(
    model: &M,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    device: Device,
    settings: &TrainSettings,
    tokenizer: &dyn Tokenizer,
    context_size: i64,
    state: &mut TrainState,
    max_steps: Option<usize>,
    on_event: &mut dyn FnMut(&TrainEvent),
    before_update: &mut dyn FnMut(i64, &mut AdamW),
) -> Result<()> {
    let mut steps_left = max_steps.unwrap_or(usize::MAX);
    let started = Instant::now();
    let tokens_at_start = state.tokens_seen;
    let batches_per_epoch = train_loader.len().max(1);
    while !state.finished(settings.num_epochs) && steps_left > 0 {
        let epoch = state.epoch;
        for (input_batch, target_batch) in train_loader.iter_epoch(epoch as u64).skip(state.batch_in_epoch) {
            if steps_left == 0 {
                return Ok(());
            }
            let global_step = state.steps_done; // the book's global_step after `+= 1`
            set_seed(settings.seed.wrapping_add(global_step as u64));
            let loss = calc_loss_batch(&input_batch, &target_batch, model, device, true);
            // The book's `zero_grad(); loss.backward(); step()`, with gradients created by the
            // backward pass instead of accumulated into zero-filled `.grad` fields (same
            // values; faster and 0.5 GB less memory for GPT-2 small, see `AdamW::backward`).
            optimizer.zero_grad();
            optimizer.backward(&loss);
            before_update(global_step, optimizer);
            optimizer.step();
            state.tokens_seen += input_batch.numel() as i64;
            state.steps_done += 1;
            state.batch_in_epoch += 1;
            steps_left -= 1;
            let elapsed = started.elapsed().as_secs_f64().max(1e-9);
            on_event(&TrainEvent::Step {
                epoch,
                global_step,
                loss: loss.double_value(&[]),
                tokens_per_s: (state.tokens_seen - tokens_at_start) as f64 / elapsed,
            });
            if global_step % settings.eval_freq.max(1) == 0 {
                let (train_loss, val_loss) = evaluate_model(model, train_loader, val_loader, device, settings.eval_iter);
                let h = &mut state.history;
                h.train_losses.push(train_loss);
                h.val_losses.push(val_loss);
                h.tokens_seen.push(state.tokens_seen);
                h.steps.push(global_step);
                h.epochs.push(epoch as f64 + state.batch_in_epoch as f64 / batches_per_epoch as f64);
                let line = eval_log_line(epoch, global_step, train_loss, val_loss);
                on_event(&TrainEvent::Eval { epoch, global_step, train_loss, val_loss, line });
            }
        }
        let text = generate_sample(model, tokenizer, device, context_size, &settings.start_context, settings.sample_tokens)?;
        state.history.samples.push(text.clone());
        on_event(&TrainEvent::Sample { epoch, text });
        state.epoch += 1;
        state.batch_in_epoch = 0;
    }
    Ok(())
}

/// Print what the book's training loops print: the evaluation lines and the sample after each
/// epoch (the `on_event` of [`train_model_simple`] and appendix D's `train_model`).
pub fn print_book_lines(event: &TrainEvent) {
    match event {
        TrainEvent::Eval { line, .. } => println!("{line}"),
        TrainEvent::Sample { text, .. } => println!("{text}"),
        TrainEvent::Step { .. } => {}
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
    let settings = TrainSettings::book(num_epochs, eval_freq, eval_iter, start_context);
    let mut state = TrainState::default();
    train_steps(
        model,
        train_loader,
        val_loader,
        optimizer,
        device,
        &settings,
        tokenizer,
        context_size,
        &mut state,
        None,
        &mut print_book_lines,
    )?;
    Ok(state.history)
}
