//! Chapter 6.7, "Fine-tuning the model on supervised data": the book's training loop
//! `train_classifier_simple`, its settings, history and plots.

use std::time::Instant;

use tch::Device;

use crate::nn::model::GptModel;
use crate::tasks::classify::loss::{calc_accuracy_loader, calc_loss_batch, evaluate_model};
use crate::text::dataloader::{DataLoader, Dataset};
use crate::training::optim::AdamW;
use crate::util::device::set_seed;
use crate::viz::figures::LossPlot;

/// The settings of the fine-tuning loop: the book's `num_epochs=5, eval_freq=50, eval_iter=5`
/// ([`ClassifierSettings::book`]), and the seed of the per-step dropout randomness.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassifierSettings {
    pub num_epochs: usize,
    pub eval_freq: i64,
    pub eval_iter: usize,
    /// Before step `k`, the global generator is seeded with `seed + k` (dropout), as in
    /// [`crate::training::train::train_steps`].
    pub seed: u64,
}

impl ClassifierSettings {
    /// The book's settings: 5 epochs, evaluation every 50 steps on 5 batches, seed 123.
    pub fn book() -> Self {
        ClassifierSettings { num_epochs: 5, eval_freq: 50, eval_iter: 5, seed: 123 }
    }
}

/// What a fine-tuning run recorded: the book's `train_losses, val_losses, train_accs, val_accs,
/// examples_seen`, with the step, epoch and examples seen of each loss evaluation.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassifierHistory {
    pub train_losses: Vec<f64>,
    pub val_losses: Vec<f64>,
    /// Training accuracy after each epoch (over `eval_iter` batches).
    pub train_accs: Vec<f64>,
    /// Validation accuracy after each epoch (over `eval_iter` batches).
    pub val_accs: Vec<f64>,
    /// The 0-based global step of each loss evaluation.
    pub steps: Vec<i64>,
    /// The epoch of each loss evaluation as a fraction (1.5 = half-way through the second).
    pub epochs: Vec<f64>,
    /// Examples seen at each loss evaluation.
    pub eval_examples_seen: Vec<i64>,
    /// Examples trained on in all (the book's `examples_seen`).
    pub examples_seen: i64,
    /// Steps taken.
    pub steps_done: i64,
    /// Wall-clock seconds of each finished epoch (training and its evaluations).
    pub epoch_seconds: Vec<f64>,
}

impl ClassifierHistory {
    /// Figure 6.16: training and validation loss against epochs.
    pub fn loss_plot(&self) -> LossPlot {
        LossPlot {
            title: "Training and validation loss".into(),
            y_label: "Loss".into(),
            epochs: self.epochs.clone(),
            tokens_seen: Vec::new(),
            series: vec![("Training loss".into(), self.train_losses.clone()), ("Validation loss".into(), self.val_losses.clone())],
        }
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

/// Something that happened during fine-tuning, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassifierEvent {
    /// One optimisation step: its 0-based global step, loss, and examples per second so far.
    Step { epoch: usize, global_step: i64, loss: f64, examples_per_s: f64 },
    /// A loss evaluation, with the book's line `Ep 1 (Step 000000): Train loss 2.153, Val loss 2.392`.
    Eval { epoch: usize, global_step: i64, train_loss: f64, val_loss: f64, line: String },
    /// The accuracies after an epoch, with the book's line
    /// `Training accuracy: 70.00% | Validation accuracy: 72.50%`.
    Accuracy { epoch: usize, train_accuracy: f64, val_accuracy: f64, line: String },
}

/// Listing 6.10's loop: for each epoch and batch, zero the gradients, compute the loss on the
/// last token, back-propagate, step the optimizer, count the examples; every `eval_freq` steps
/// evaluate the losses on `eval_iter` batches; after each epoch, the accuracies on `eval_iter`
/// batches. Stops early after `max_steps` steps when given (a quick run). `on_event` sees
/// every step, evaluation and accuracy.
#[allow(clippy::too_many_arguments)]
pub fn train_classifier<D: Dataset, V: Dataset>(
    model: &GptModel,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    device: Device,
    settings: &ClassifierSettings,
    max_steps: Option<usize>,
    on_event: &mut dyn FnMut(&ClassifierEvent),
) -> ClassifierHistory {
    let mut h = ClassifierHistory::default();
    let started = Instant::now();
    let batches_per_epoch = train_loader.len().max(1);
    let max_steps = max_steps.map_or(i64::MAX, |n| n as i64);
    for epoch in 0..settings.num_epochs {
        let epoch_started = Instant::now();
        for (batch_in_epoch, (input_batch, target_batch)) in train_loader.iter_epoch(epoch as u64).enumerate() {
            if h.steps_done >= max_steps {
                break;
            }
            let global_step = h.steps_done;
            set_seed(settings.seed.wrapping_add(global_step as u64));
            let loss = calc_loss_batch(&input_batch, &target_batch, model, device, true);
            // zero_grad(); loss.backward(); step() (see `AdamW::backward`).
            optimizer.backward_step(&loss);
            h.examples_seen += input_batch.size()[0];
            h.steps_done += 1;
            let examples_per_s = h.examples_seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
            on_event(&ClassifierEvent::Step { epoch, global_step, loss: loss.double_value(&[]), examples_per_s });
            if global_step % settings.eval_freq.max(1) == 0 {
                let (train_loss, val_loss) = evaluate_model(model, train_loader, val_loader, device, settings.eval_iter);
                h.train_losses.push(train_loss);
                h.val_losses.push(val_loss);
                h.steps.push(global_step);
                h.epochs.push(epoch as f64 + (batch_in_epoch + 1) as f64 / batches_per_epoch as f64);
                h.eval_examples_seen.push(h.examples_seen);
                let line = crate::training::train::eval_log_line(epoch, global_step, train_loss, val_loss);
                on_event(&ClassifierEvent::Eval { epoch, global_step, train_loss, val_loss, line });
            }
        }
        let train_accuracy = calc_accuracy_loader(train_loader, model, device, Some(settings.eval_iter));
        let val_accuracy = calc_accuracy_loader(val_loader, model, device, Some(settings.eval_iter));
        h.train_accs.push(train_accuracy);
        h.val_accs.push(val_accuracy);
        h.epoch_seconds.push(epoch_started.elapsed().as_secs_f64());
        let line = format!("Training accuracy: {:.2}% | Validation accuracy: {:.2}%", train_accuracy * 100.0, val_accuracy * 100.0);
        on_event(&ClassifierEvent::Accuracy { epoch, train_accuracy, val_accuracy, line });
        if h.steps_done >= max_steps {
            break;
        }
    }
    h
}

/// Listing 6.10, `train_classifier_simple`: [`train_classifier`] with the book's printed lines
/// (`Ep 1 (Step 000050): Train loss 0.617, Val loss 0.637`, then the accuracies per epoch).
#[allow(clippy::too_many_arguments)]
pub fn train_classifier_simple<D: Dataset, V: Dataset>(
    model: &GptModel,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    device: Device,
    num_epochs: usize,
    eval_freq: i64,
    eval_iter: usize,
) -> ClassifierHistory {
    let settings = ClassifierSettings { num_epochs, eval_freq, eval_iter, ..ClassifierSettings::book() };
    train_classifier(model, train_loader, val_loader, optimizer, device, &settings, None, &mut |event| match event {
        ClassifierEvent::Eval { line, .. } | ClassifierEvent::Accuracy { line, .. } => println!("{line}"),
        ClassifierEvent::Step { .. } => {}
    })
}
