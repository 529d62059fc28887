//! The training loop of chapter 5.2 (listing 5.3), written once for every chapter: chapter 5's
//! pretraining and chapter 7's instruction fine-tuning ([`crate::training::train::NextTokenTask`]),
//! chapter 6's classifier (`tasks::classify::ClassifierTask`), appendix D's warmup, cosine decay
//! and clipping (the settings' [`TrainExtras`]), appendix E's LoRA classifier, and chapter 7's
//! DPO bonus (`tasks::dpo::DpoTask`).
//!
//! What differs between the chapters is a [`TrainTask`]: the loss of a batch, what the loop
//! counts (tokens or examples), what an evaluation measures besides the two losses (DPO's
//! rewards, kept as named series in [`TrainHistory::metrics`]), and what happens after each
//! epoch (chapter 5 prints a greedy sample, chapter 6 the accuracies). Everything else is
//! [`train_steps`], the book's loop step for step: for each batch, zero the gradients, compute
//! the loss, back-propagate, (appendix D: set the step's learning rate, clip the gradients,)
//! step AdamW, count what the batch held; every `eval_freq` steps evaluate on the first
//! `eval_iter` batches of both loaders and log `Ep 1 (Step 000000): Train loss 9.817, Val loss
//! 9.924`; after each epoch, the task's report.
//!
//! A run is its [`TrainSettings`] and its [`TrainState`] (epoch, batch, steps, what was seen, the
//! [`TrainHistory`]); [`crate::training::checkpoint`] saves both with the model and AdamW, and
//! `train_steps` continues from a state exactly. Two differences from the book make that possible:
//! - The loader's order for epoch `e` is `train_loader.order(e)` (a seeded shuffle), and
//!   evaluation always reads the loaders' epoch-0 order, so evaluating never changes which
//!   batches training sees (the book's evaluation draws a fresh shuffle of the training set).
//! - Before each step the global random generator is seeded with `seed + step`, so dropout at
//!   step `k` is the same whether or not the run was interrupted before it. PyTorch's single
//!   seeded stream cannot be reproduced by tch anyway (different shuffle code).

use std::time::Instant;

use tch::Tensor;

use crate::error::{Error, Result};
use crate::training::interrupt::stop_requested;
use crate::text::dataloader::{DataLoader, Dataset};
use crate::training::optim::AdamW;
use crate::training::schedule::TrainExtras;
use crate::util::device::set_seed;
use crate::viz::figures::LossPlot;

/// What a training loop counts in [`TrainState::tokens_seen`]: the book's `tokens_seen`
/// (chapter 5) or `examples_seen` (chapter 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Unit {
    /// Every input token of a batch (`input_batch.numel()`).
    Tokens,
    /// Every example (row) of a batch (`input_batch.shape[0]`).
    Examples,
}

impl Unit {
    /// How many units `input_batch` holds.
    ///
    /// # Shapes
    /// `input_batch: [batch, num_tokens]`
    pub fn count(self, input_batch: &Tensor) -> i64 {
        match self {
            Unit::Tokens => input_batch.numel() as i64,
            Unit::Examples => input_batch.size().first().copied().unwrap_or(0),
        }
    }

    /// The unit's name, plural: `tokens`, `examples`.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Tokens => "tokens",
            Unit::Examples => "examples",
        }
    }
}

/// What a chapter trains, for [`train_steps`]: the loss of one batch, what to count, and what
/// to record after each epoch. Chapters 5 and 7 use `NextTokenTask`, chapter 6 and appendix E
/// `ClassifierTask`; a task of your own needs [`TrainTask::batch_loss`] only.
pub trait TrainTask {
    /// The mean loss of one batch, a scalar: with dropout when `train` (a training step), without
    /// (an evaluation, which runs under `no_grad`).
    fn batch_loss(&self, input_batch: &Tensor, target_batch: &Tensor, train: bool) -> Tensor;

    /// What [`TrainState::tokens_seen`] counts; tokens unless the task says otherwise.
    fn unit(&self) -> Unit {
        Unit::Tokens
    }

    /// How many units of [`TrainTask::unit`] a training batch adds to
    /// [`TrainState::tokens_seen`]: `self.unit().count(input_batch)` unless the task packs its
    /// batches otherwise (DPO's `[chosen; rejected]` batches count the chosen half, as the book).
    fn count(&self, input_batch: &Tensor) -> i64 {
        self.unit().count(input_batch)
    }

    /// One evaluation of the loop (every `eval_freq` steps): the training and validation losses
    /// over the first `eval_iter` batches of each loader ([`evaluate_task`]), and the named
    /// metrics the task also tracks at each evaluation (DPO's rewards), none by default. The
    /// loop keeps each metric as a series in [`TrainHistory::metrics`].
    fn evaluate<D: Dataset, V: Dataset>(&self, train_loader: &DataLoader<D>, val_loader: &DataLoader<V>, eval_iter: usize) -> Evaluation
    where
        Self: Sized,
    {
        let (train_loss, val_loss) = evaluate_task(self, train_loader, val_loader, eval_iter);
        Evaluation { train_loss, val_loss, metrics: Vec::new() }
    }

    /// Between a training step's backward pass and its optimizer step (before appendix D's
    /// clipping): what happens to the gradients. Nothing by default; data-parallel training
    /// (`training::ddp::DataParallelTask`) averages them over the processes, as DDP does.
    fn after_backward(&self, _optimizer: &mut AdamW) -> Result<()> {
        Ok(())
    }

    /// An evaluation as the loop records it: the task's [`TrainTask::evaluate`] as it is by
    /// default; data-parallel training averages it over the processes (each evaluated its shard).
    fn reduce_evaluation(&self, evaluation: Evaluation) -> Result<Evaluation> {
        Ok(evaluation)
    }

    /// The log line of an evaluation: the book's [`eval_log_line`] unless the task says more
    /// (DPO adds the reward margins).
    fn eval_log_line(&self, epoch: usize, global_step: i64, evaluation: &Evaluation) -> String {
        eval_log_line(epoch, global_step, evaluation.train_loss, evaluation.val_loss)
    }

    /// After each epoch (all its batches trained, or the run's `max_steps` reached in it): record
    /// what the task tracks per epoch in `history` and return the event that reports it (chapter
    /// 5's sample, chapter 6's accuracies). Nothing by default.
    fn after_epoch<D: Dataset, V: Dataset>(
        &self,
        _epoch: usize,
        _train_loader: &DataLoader<D>,
        _val_loader: &DataLoader<V>,
        _settings: &TrainSettings,
        _history: &mut TrainHistory,
    ) -> Result<Option<TrainEvent>> {
        Ok(None)
    }
}

/// What one evaluation of [`train_steps`] measured ([`TrainTask::evaluate`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    pub train_loss: f64,
    pub val_loss: f64,
    /// Further named values (DPO: `train_chosen_rewards`, ...), kept by the loop in
    /// [`TrainHistory::metrics`] under their names.
    pub metrics: Vec<(String, f64)>,
}

/// The settings of a training run: the book's `num_epochs`, `eval_freq`, `eval_iter` and
/// `start_context`, the seed that makes dropout reproducible, and appendix D's extras. Saved in
/// checkpoints, so a resumed run keeps them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainSettings {
    pub num_epochs: usize,
    pub eval_freq: i64,
    pub eval_iter: usize,
    /// Chapters 5 and 7: the prompt of the greedy sample after each epoch (unused by chapter 6).
    pub start_context: String,
    /// Tokens of that sample (the book's 50).
    pub sample_tokens: i64,
    /// Seed of the per-step dropout randomness (see the module docs).
    pub seed: u64,
    /// Appendix D: the learning rate of every step (warmup, cosine decay) and gradient clipping.
    /// `None`: the optimizer's constant rate and no clipping, as in chapters 5-7.
    #[serde(default)]
    pub extras: Option<TrainExtras>,
    /// A run shorter than its epochs (a quick run): it ends after this many steps in all, and
    /// the epoch it ends in counts as its last (its accuracies or sample are taken there).
    #[serde(default)]
    pub max_steps: Option<i64>,
}

impl TrainSettings {
    /// The book's settings of `train_model_simple` (chapter 5) and chapter 7: `num_epochs`,
    /// `eval_freq`, `eval_iter`, `start_context`, a 50-token sample, seed 123.
    pub fn book(num_epochs: usize, eval_freq: i64, eval_iter: usize, start_context: &str) -> Self {
        TrainSettings {
            num_epochs,
            eval_freq,
            eval_iter,
            start_context: start_context.into(),
            sample_tokens: 50,
            seed: 123,
            extras: None,
            max_steps: None,
        }
    }

    /// The book's settings of `train_classifier_simple` (chapter 6; the book runs 5 epochs,
    /// evaluating every 50 steps on 5 batches): no sample, seed 123.
    pub fn classifier(num_epochs: usize, eval_freq: i64, eval_iter: usize) -> Self {
        TrainSettings { sample_tokens: 0, ..TrainSettings::book(num_epochs, eval_freq, eval_iter, "") }
    }
}

/// What a training run recorded: one entry per evaluation, in the book's lists plus the step
/// and the (fractional) epoch of each; after each epoch chapter 5's sample or chapter 6's
/// accuracies.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainHistory {
    pub train_losses: Vec<f64>,
    pub val_losses: Vec<f64>,
    /// What the model had seen when each evaluation ran: tokens (chapter 5's
    /// `track_tokens_seen`), or examples for chapter 6's classifier ([`Unit`]).
    pub tokens_seen: Vec<i64>,
    /// The global step of each evaluation (0-based, as in the log line).
    pub steps: Vec<i64>,
    /// The epoch of each evaluation as a fraction (1.5 = half-way through the second epoch),
    /// the x axis of the book's loss plot.
    pub epochs: Vec<f64>,
    /// Chapters 5 and 7: the greedy sample printed after each epoch.
    #[serde(default)]
    pub samples: Vec<String>,
    /// Chapter 6: training accuracy after each epoch (over `eval_iter` batches).
    #[serde(default)]
    pub train_accs: Vec<f64>,
    /// Chapter 6: validation accuracy after each epoch (over `eval_iter` batches).
    #[serde(default)]
    pub val_accs: Vec<f64>,
    /// Wall-clock seconds of each epoch, when the caller records them (chapter 6's
    /// `train_classifier_simple` does, from [`TrainEvent::EpochEnd`]). The loop leaves them out
    /// of the history it keeps, which a resumed run reproduces exactly and timings cannot.
    #[serde(default)]
    pub epoch_seconds: Vec<f64>,
    /// The task's further values at each evaluation ([`Evaluation::metrics`]), one series per
    /// name, one value per evaluation (DPO's chosen and rejected rewards); empty for the other tasks.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metrics: std::collections::BTreeMap<String, Vec<f64>>,
}

// Defined here rather than in `viz`, so that plotting code never imports training.
impl LossPlot {
    /// The book's loss plot of a training history (chapter 5: `plot_losses`), with the tokens
    /// seen on the top axis.
    pub fn from_history(history: &TrainHistory) -> Self {
        LossPlot {
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

impl TrainHistory {
    /// Figure 6.16: training and validation loss against epochs (without a top axis: a
    /// classifier counts examples, and the plot's top axis names tokens).
    pub fn loss_plot(&self) -> LossPlot {
        LossPlot { tokens_seen: Vec::new(), ..LossPlot::from_history(self) }
    }

    /// Figure 6.17: training and validation accuracy after each epoch.
    pub fn accuracy_plot(&self) -> LossPlot {
        LossPlot {
            title: "Training and validation accuracy".into(),
            y_label: "Accuracy".into(),
            epochs: (1..=self.train_accs.len()).map(|e| e as f64).collect(),
            tokens_seen: Vec::new(),
            series: vec![
                ("Training accuracy".into(), self.train_accs.clone()),
                ("Validation accuracy".into(), self.val_accs.clone()),
            ],
        }
    }
}

/// Where a training run stands, saved in checkpoints so that a run resumes where it stopped.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainState {
    /// The epoch being trained (0-based).
    pub epoch: usize,
    /// Batches of that epoch already trained on.
    pub batch_in_epoch: usize,
    /// Steps taken so far (the book's `global_step + 1`).
    pub steps_done: i64,
    /// Tokens trained on so far, or examples for a task that counts them ([`TrainTask::unit`]).
    pub tokens_seen: i64,
    pub history: TrainHistory,
    /// The loss of the last step taken (named by [`Error::NonFiniteLoss`] when a later step
    /// diverges); `None` before the first step.
    #[serde(default)]
    pub last_loss: Option<f64>,
}

impl TrainState {
    /// Whether the run is over: all `settings.num_epochs` epochs trained, or its `max_steps`.
    pub fn finished(&self, settings: &TrainSettings) -> bool {
        self.epoch >= settings.num_epochs || settings.max_steps.is_some_and(|max| self.steps_done >= max)
    }
}

/// Something that happened during training, for a progress display. The loop itself prints
/// nothing; [`print_book_lines`] prints the book's lines.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainEvent {
    /// One optimisation step: its 0-based global step, its loss, the learning rate of its
    /// update, the gradients' global norm before clipping when it clipped (appendix D), and
    /// units per second since this call started.
    Step { epoch: usize, global_step: i64, loss: f64, lr: f64, grad_norm: Option<f64>, units_per_s: f64, unit: Unit },
    /// An evaluation, with the book's log line (the task's: [`TrainTask::eval_log_line`]) and the
    /// task's further values ([`Evaluation::metrics`], empty for most tasks).
    Eval { epoch: usize, global_step: i64, train_loss: f64, val_loss: f64, metrics: Vec<(String, f64)>, line: String },
    /// Chapters 5 and 7: the greedy sample after an epoch.
    Sample { epoch: usize, text: String },
    /// Chapter 6: the accuracies after an epoch, with the book's line
    /// `Training accuracy: 70.00% | Validation accuracy: 72.50%`.
    Accuracy { epoch: usize, train_accuracy: f64, val_accuracy: f64, line: String },
    /// The end of an epoch, after the task's report, with the wall-clock seconds this call spent
    /// on it (those since resuming, for an epoch that was interrupted).
    EpochEnd { epoch: usize, seconds: f64 },
}

/// The book's log line: `Ep 1 (Step 000000): Train loss 9.817, Val loss 9.924`.
pub fn eval_log_line(epoch: usize, global_step: i64, train_loss: f64, val_loss: f64) -> String {
    format!("Ep {} (Step {global_step:06}): Train loss {train_loss:.3}, Val loss {val_loss:.3}", epoch + 1)
}

/// Print what the book's training loops print: the evaluation lines, and the sample (chapter
/// 5) or the accuracies (chapter 6) after each epoch.
pub fn print_book_lines(event: &TrainEvent) {
    match event {
        TrainEvent::Eval { line, .. } | TrainEvent::Accuracy { line, .. } => println!("{line}"),
        TrainEvent::Sample { text, .. } => println!("{text}"),
        TrainEvent::Step { .. } | TrainEvent::EpochEnd { .. } => {}
    }
}

/// The loop of listings 5.2 and 6.8 (`calc_loss_loader`), for any batch loss: the mean of
/// `batch_loss(input_batch, target_batch)` over the first `num_batches` batches of `loader`
/// (all when `None`, at most its length), in the loader's epoch-0 order, without gradients. An
/// empty loader gives NaN, as in the book.
pub fn loss_over_loader<D: Dataset>(
    loader: &DataLoader<D>,
    num_batches: Option<usize>,
    mut batch_loss: impl FnMut(&Tensor, &Tensor) -> Tensor,
) -> f64 {
    if loader.is_empty() {
        return f64::NAN;
    }
    let n = num_batches.map_or(loader.len(), |n| n.min(loader.len()));
    let _no_grad = tch::no_grad_guard();
    let total: f64 = loader.iter_epoch(0).take(n).map(|(input, target)| batch_loss(&input, &target).double_value(&[])).sum();
    total / n as f64
}

/// Listing 5.3's `evaluate_model` for any task: `(train loss, validation loss)` over the first
/// `eval_iter` batches of each loader, without dropout and without gradients.
pub fn evaluate_task<T: TrainTask, D: Dataset, V: Dataset>(
    task: &T,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    eval_iter: usize,
) -> (f64, f64) {
    let loss = |input: &Tensor, target: &Tensor| task.batch_loss(input, target, false);
    (loss_over_loader(train_loader, Some(eval_iter), loss), loss_over_loader(val_loader, Some(eval_iter), loss))
}

/// The training loop of every chapter: train `task` from `state` until the run is over
/// ([`TrainState::finished`]) or `steps` more steps were taken (whichever comes first),
/// updating `state` as it goes; `on_event` sees every step, evaluation and end of epoch.
///
/// A stop requested by [`crate::training::interrupt::request_stop`] (the `llm` program's Ctrl-C)
/// ends the call before the next step, like `steps`; the caller sees it with `stop_requested()`.
///
/// `state` can be saved after any call ([`crate::training::checkpoint`]) and passed back, with
/// the model and AdamW restored, to continue with the same batches, dropout, learning rates and
/// optimizer state: a run cut into pieces ends where the uninterrupted run ends, bit for bit.
///
/// # Errors
/// [`Error::NonFiniteLoss`] when a step's loss, or the gradient norm of a step that clips, is
/// NaN or infinite: the loop stops before `optimizer.step()`, so the weights, AdamW's state and
/// `state` are those after the last finite step. Also when an evaluation's training loss is
/// (the step before it made the model diverge; its update is applied, so do not save it). A
/// NaN validation loss alone does not stop (an empty validation loader gives NaN).
#[allow(clippy::too_many_arguments)]
pub fn train_steps<T: TrainTask, D: Dataset, V: Dataset>(
    task: &T,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    settings: &TrainSettings,
    state: &mut TrainState,
    steps: Option<usize>,
    on_event: &mut dyn FnMut(&TrainEvent),
) -> Result<()> {
    let mut steps_left = steps.unwrap_or(usize::MAX);
    let started = Instant::now();
    let seen_at_start = state.tokens_seen;
    let batches_per_epoch = train_loader.len().max(1);
    let unit = task.unit();
    while !state.finished(settings) && steps_left > 0 {
        let epoch = state.epoch;
        let epoch_started = Instant::now();
        for (input_batch, target_batch) in train_loader.iter_epoch(epoch as u64).skip(state.batch_in_epoch) {
            if settings.max_steps.is_some_and(|max| state.steps_done >= max) {
                break; // the run's last step is taken: its epoch ends here
            }
            if steps_left == 0 || stop_requested() {
                return Ok(()); // paused (or asked to stop: Ctrl-C in `llm`) between two steps
            }
            let global_step = state.steps_done; // the book's global_step after `+= 1`
            set_seed(settings.seed.wrapping_add(global_step as u64));
            let loss = task.batch_loss(&input_batch, &target_batch, true);
            let loss_value = loss.double_value(&[]);
            let last_finite = state.last_loss.map(|loss| (global_step - 1, loss));
            let diverged = |what, value| Error::NonFiniteLoss { step: global_step, what, value, last_finite };
            if !loss_value.is_finite() {
                return Err(diverged("its loss", loss_value)); // before anything touches the weights
            }
            // The book's `zero_grad(); loss.backward(); step()`, with gradients created by the
            // backward pass instead of accumulated into zero-filled `.grad` fields (same
            // values; faster and 0.5 GB less memory for GPT-2 small, see `AdamW::backward`).
            optimizer.zero_grad();
            optimizer.backward(&loss);
            task.after_backward(optimizer)?; // data parallel: the mean gradient of all processes
            // Appendix D: this step's learning rate, and clipping after warmup.
            let grad_norm = settings.extras.as_ref().and_then(|extras| extras.apply(global_step, optimizer).grad_norm);
            if let Some(norm) = grad_norm.filter(|norm| !norm.is_finite()) {
                return Err(diverged("its gradient norm", norm)); // clipping scaled the gradients only
            }
            optimizer.step();
            state.last_loss = Some(loss_value);
            state.tokens_seen += task.count(&input_batch);
            state.steps_done += 1;
            state.batch_in_epoch += 1;
            steps_left -= 1;
            let elapsed = started.elapsed().as_secs_f64().max(1e-9);
            on_event(&TrainEvent::Step {
                epoch,
                global_step,
                loss: loss_value,
                lr: optimizer.lr,
                grad_norm,
                units_per_s: (state.tokens_seen - seen_at_start) as f64 / elapsed,
                unit,
            });
            if global_step % settings.eval_freq.max(1) == 0 {
                let evaluation = task.reduce_evaluation(task.evaluate(train_loader, val_loader, settings.eval_iter))?;
                let (train_loss, val_loss) = (evaluation.train_loss, evaluation.val_loss);
                if !train_loss.is_finite() {
                    // The step's update made the model diverge: stop before a caller saves it.
                    return Err(Error::NonFiniteLoss {
                        step: global_step,
                        what: "the training loss evaluated after it",
                        value: train_loss,
                        last_finite: Some((global_step, loss_value)),
                    });
                }
                let h = &mut state.history;
                h.train_losses.push(train_loss);
                h.val_losses.push(val_loss);
                h.tokens_seen.push(state.tokens_seen);
                h.steps.push(global_step);
                h.epochs.push(epoch as f64 + state.batch_in_epoch as f64 / batches_per_epoch as f64);
                for (name, value) in &evaluation.metrics {
                    h.metrics.entry(name.clone()).or_default().push(*value);
                }
                let line = task.eval_log_line(epoch, global_step, &evaluation);
                let metrics = evaluation.metrics;
                on_event(&TrainEvent::Eval { epoch, global_step, train_loss, val_loss, metrics, line });
            }
        }
        if let Some(event) = task.after_epoch(epoch, train_loader, val_loader, settings, &mut state.history)? {
            on_event(&event);
        }
        on_event(&TrainEvent::EpochEnd { epoch, seconds: epoch_started.elapsed().as_secs_f64() });
        state.epoch += 1;
        state.batch_in_epoch = 0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::dataloader::GptDatasetV1;
    use tch::nn::{self, Module};
    use tch::{Device, Kind};

    /// A task of its own: a linear layer over the token ids of each window, regressed to its
    /// targets' mean. Small enough to run many steps in a unit test.
    struct Regression<'a> {
        layer: &'a crate::nn::layers::Linear,
    }

    impl TrainTask for Regression<'_> {
        fn batch_loss(&self, input_batch: &Tensor, target_batch: &Tensor, _train: bool) -> Tensor {
            let x = input_batch.to_kind(Kind::Float) / 100.0; // [batch, 4]
            let y = target_batch.to_kind(Kind::Float).mean_dim(1, true, None::<Kind>) / 100.0; // [batch, 1]
            self.layer.forward(&x).mse_loss(&y, tch::Reduction::Mean)
        }
    }

    fn loaders() -> (DataLoader<GptDatasetV1>, DataLoader<GptDatasetV1>) {
        let ids: Vec<u32> = (0..200).map(|i| (i * 7 % 97) as u32).collect();
        let train = GptDatasetV1::from_token_ids(&ids[..160], 4, 4).unwrap();
        let val = GptDatasetV1::from_token_ids(&ids[160..], 4, 4).unwrap();
        (DataLoader::new(train, 3, true, true, 5).unwrap(), DataLoader::new(val, 3, false, false, 5).unwrap())
    }

    #[test]
    fn max_steps_ends_the_run_and_its_epoch_pausing_does_not() {
        let _rng = crate::util::device::rng_lock();
        let (train, val) = loaders();
        assert_eq!(train.len(), 13, "39 windows in batches of 3");
        set_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = crate::nn::layers::Linear::new(&vs.root(), 4, 1, true);
        let task = Regression { layer: &layer };
        let mut optimizer = AdamW::new(&vs, 1e-2, 0.0);
        let settings = TrainSettings { max_steps: Some(20), ..TrainSettings::classifier(3, 4, 2) };
        let mut state = TrainState::default();
        let mut ends = Vec::new();
        let mut on_event = |e: &TrainEvent| {
            if let TrainEvent::EpochEnd { epoch, .. } = e {
                ends.push(*epoch)
            }
        };
        // Pausing inside the second epoch ends no epoch; the 20th step ends the run and epoch 2.
        train_steps(&task, &train, &val, &mut optimizer, &settings, &mut state, Some(15), &mut on_event).unwrap();
        assert_eq!((state.epoch, state.batch_in_epoch, state.steps_done, state.tokens_seen), (1, 2, 15, 15 * 3 * 4));
        train_steps(&task, &train, &val, &mut optimizer, &settings, &mut state, None, &mut on_event).unwrap();
        assert_eq!(ends, [0, 1], "epoch 1 ended after 13 steps, epoch 2 at the run's 20th step");
        assert_eq!((state.epoch, state.batch_in_epoch, state.steps_done), (2, 0, 20));
        assert!(state.finished(&settings), "the run is over before its third epoch");
        assert_eq!(state.history.steps, [0, 4, 8, 12, 16], "every eval_freq steps");
        assert_eq!(state.history.epochs[1], 5.0 / 13.0, "step 4 ends the fifth of 13 batches");
        let (first, last) = (state.history.train_losses[0], *state.history.train_losses.last().unwrap());
        assert!(last < first, "the regression learns: {first} -> {last}");
        train_steps(&task, &train, &val, &mut optimizer, &settings, &mut state, None, &mut |_| {}).unwrap();
        assert_eq!(state.steps_done, 20, "a finished run takes no more steps");
    }

    #[test]
    fn a_diverging_loss_stops_before_the_weights_change() {
        let _rng = crate::util::device::rng_lock();
        let (train, val) = loaders();
        set_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = crate::nn::layers::Linear::new(&vs.root(), 4, 1, true);
        /// The regression, evaluated as 0: the step's own loss check is what stops it.
        struct TrainOnly<'a>(Regression<'a>);
        impl TrainTask for TrainOnly<'_> {
            fn batch_loss(&self, input_batch: &Tensor, target_batch: &Tensor, train: bool) -> Tensor {
                let loss = self.0.batch_loss(input_batch, target_batch, train);
                if train { loss } else { loss.zeros_like() }
            }
        }
        let task = TrainOnly(Regression { layer: &layer });
        let mut optimizer = AdamW::new(&vs, 1e20, 0.0); // an absurd learning rate: (1e20 x)^2 overflows f32
        let settings = TrainSettings::classifier(3, 100, 1);
        let mut state = TrainState::default();
        let mut after_step = Vec::new(); // the weight after each finite step, and its loss
        let err = train_steps(&task, &train, &val, &mut optimizer, &settings, &mut state, None, &mut |e| {
            if let TrainEvent::Step { loss, .. } = e {
                after_step.push((layer.weight.copy(), *loss));
            }
        })
        .expect_err("the loss overflows");
        let (last_weight, last_loss) = after_step.last().expect("the first steps are finite");
        let step = after_step.len() as i64;
        match &err {
            Error::NonFiniteLoss { step: s, what, value, last_finite } => {
                assert_eq!((*s, *what, *last_finite), (step, "its loss", Some((step - 1, *last_loss))), "{err}");
                assert!(!value.is_finite(), "{err}");
            }
            other => panic!("expected NonFiniteLoss, got {other}"),
        }
        let message = err.to_string();
        assert!(message.starts_with(&format!("training diverged at step {step}: its loss is ")), "{message}");
        assert!(message.contains(&format!("at step {}", step - 1)), "names the last finite step: {message}");
        assert!(layer.weight.equal(last_weight), "the weights are those after step {}", step - 1);
        assert!(bool::try_from(layer.weight.isfinite().all()).unwrap(), "finite weights kept");
        assert_eq!((state.steps_done, state.last_loss), (step, Some(*last_loss)), "the state stops at the last finite step");

        // Evaluated as it trains, the first step's evaluation already overflows: it stops there.
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = crate::nn::layers::Linear::new(&vs.root(), 4, 1, true);
        let mut optimizer = AdamW::new(&vs, 1e20, 0.0);
        let mut state = TrainState::default();
        let task = Regression { layer: &layer };
        let err = train_steps(&task, &train, &val, &mut optimizer, &settings, &mut state, None, &mut |_| {}).expect_err("diverges");
        assert!(
            matches!(err, Error::NonFiniteLoss { step: 0, what: "the training loss evaluated after it", last_finite: Some((0, _)), .. }),
            "{err}"
        );
    }

    #[test]
    fn a_non_finite_gradient_norm_stops_a_clipped_step() {
        /// A loss of 0 whose gradient is 0 * infinity: sqrt'(0) = infinity.
        struct SqrtOfZero<'a> {
            layer: &'a crate::nn::layers::Linear,
        }
        impl TrainTask for SqrtOfZero<'_> {
            fn batch_loss(&self, _input: &Tensor, _target: &Tensor, _train: bool) -> Tensor {
                (self.layer.weight.sum(Kind::Float) * 0.0).sqrt()
            }
        }
        let _rng = crate::util::device::rng_lock(); // the layer's init and the loop seed the generator
        let (train, val) = loaders();
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = crate::nn::layers::Linear::new(&vs.root(), 4, 1, true);
        let before = layer.weight.copy();
        let mut optimizer = AdamW::new(&vs, 1e-3, 0.0);
        let schedule = crate::training::schedule::LrSchedule::new(1e-3, 1e-3, 1e-3, 0, 10).unwrap();
        let settings = TrainSettings { extras: Some(TrainExtras::book(schedule)), ..TrainSettings::classifier(1, 100, 1) };
        let mut state = TrainState::default();
        let err = train_steps(&SqrtOfZero { layer: &layer }, &train, &val, &mut optimizer, &settings, &mut state, None, &mut |_| {})
            .expect_err("the gradient norm is NaN");
        assert!(matches!(err, Error::NonFiniteLoss { step: 0, what: "its gradient norm", last_finite: None, .. }), "{err}");
        assert!(err.to_string().contains("last finite loss: none"), "{err}");
        assert!(layer.weight.equal(&before) && state.steps_done == 0, "no step was taken");
    }

    #[test]
    fn units_count_tokens_or_examples() {
        let batch = Tensor::zeros([8, 120], (Kind::Int64, Device::Cpu));
        assert_eq!((Unit::Tokens.count(&batch), Unit::Examples.count(&batch)), (960, 8));
        assert_eq!((Unit::Tokens.name(), Unit::Examples.name()), ("tokens", "examples"));
    }

    #[test]
    fn loss_over_loader_averages_and_caps() {
        let (train, _) = loaders();
        let first_ids = |input: &Tensor, _: &Tensor| input.get(0).get(0).to_kind(Kind::Double);
        let order: Vec<f64> = train.iter_epoch(0).map(|(i, _)| i.int64_value(&[0, 0]) as f64).collect();
        let mean = |n: usize| order[..n].iter().sum::<f64>() / n as f64;
        assert_eq!(loss_over_loader(&train, Some(2), first_ids), mean(2));
        assert_eq!(loss_over_loader(&train, None, first_ids), mean(13));
        assert_eq!(loss_over_loader(&train, Some(100), first_ids), mean(13), "capped at the loader's length");
        let empty = DataLoader::new(train.dataset.clone(), 1000, false, true, 0).unwrap();
        assert!(loss_over_loader(&empty, None, first_ids).is_nan(), "an empty loader gives NaN");
    }

    #[test]
    fn old_settings_and_histories_still_load() {
        let settings: TrainSettings = serde_json::from_str(
            r#"{"num_epochs": 2, "eval_freq": 5, "eval_iter": 1, "start_context": "Hi", "sample_tokens": 50, "seed": 7}"#,
        )
        .unwrap();
        assert_eq!(settings, TrainSettings { seed: 7, ..TrainSettings::book(2, 5, 1, "Hi") });
        let history: TrainHistory = serde_json::from_str(
            r#"{"train_losses": [1.0], "val_losses": [2.0], "tokens_seen": [8], "steps": [0], "epochs": [0.5], "samples": ["x"]}"#,
        )
        .unwrap();
        assert_eq!((history.samples.len(), history.train_accs.len(), history.epoch_seconds.len()), (1, 0, 0));
        assert!(history.metrics.is_empty(), "no task metrics in a history written before them");
        assert!(!serde_json::to_string(&history).unwrap().contains("metrics"), "and none written when empty");
    }
}
