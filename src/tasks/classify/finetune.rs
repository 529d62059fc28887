//! Chapter 6.7, "Fine-tuning the model on supervised data": the book's `train_classifier_simple`
//! (listing 6.10), as the one training loop of every chapter
//! ([`crate::training::trainer::train_steps`]) with this chapter's task, [`ClassifierTask`]: the
//! last token's cross-entropy, examples counted, the accuracies after each epoch.
//!
//! Through that loop chapter 6 gains what the book adds in appendix D (warmup, cosine decay,
//! gradient clipping: the settings' `extras`) and what chapter 5 adds for long runs (exact
//! resume): [`ClassifierRun`] is a fine-tuning run that saves itself as a checkpoint folder and
//! continues from it, bit for bit.

use std::path::Path;

use tch::nn;
use tch::{Device, Tensor};

use crate::error::{Error, Result};
use crate::nn::model::GptModel;
use crate::tasks::classify::loss::{calc_accuracy_loader_at, calc_loss_batch_at, TokenPosition};
use crate::tasks::classify::usage::{classifier_from_checkpoint, classifier_meta, ClassifierInfo};
use crate::text::dataloader::{DataLoader, Dataset};
use crate::training::checkpoint::{read_checkpoint, save_checkpoint};
use crate::training::optim::AdamW;
use crate::training::trainer::{print_book_lines, train_steps, TrainEvent, TrainHistory, TrainSettings, TrainState, TrainTask, Unit};

/// The settings of the fine-tuning loop: chapter 5's, which [`TrainSettings::classifier`]
/// fills with the book's `num_epochs=5, eval_freq=50, eval_iter=5` and seed 123.
pub type ClassifierSettings = TrainSettings;
/// What a fine-tuning run recorded: the book's `train_losses, val_losses, train_accs, val_accs`
/// (and the examples seen at each evaluation); the run's total `examples_seen` is its
/// [`TrainState::tokens_seen`].
pub type ClassifierHistory = TrainHistory;
/// What happens during fine-tuning: a step, an evaluation, the accuracies after an epoch.
pub type ClassifierEvent = TrainEvent;

/// Chapter 6's task for the training loop: the cross-entropy of the last token's logits
/// ([`calc_loss_batch`]), examples counted, and after each epoch the accuracies on `eval_iter`
/// batches of each loader, kept in the history's `train_accs` and `val_accs`.
#[derive(Debug)]
pub struct ClassifierTask<'a> {
    pub model: &'a GptModel,
    pub device: Device,
    /// Which token's logits the loss and the accuracies read (the book's last).
    pub position: TokenPosition,
}

impl<'a> ClassifierTask<'a> {
    /// The task of fine-tuning `model` on `device` on the last token's logits.
    pub fn new(model: &'a GptModel, device: Device) -> Self {
        ClassifierTask { model, device, position: TokenPosition::Last }
    }
}

impl TrainTask for ClassifierTask<'_> {
    fn batch_loss(&self, input_batch: &Tensor, target_batch: &Tensor, train: bool) -> Tensor {
        calc_loss_batch_at(input_batch, target_batch, self.model, self.device, train, self.position)
    }

    fn unit(&self) -> Unit {
        Unit::Examples
    }

    fn after_epoch<D: Dataset, V: Dataset>(
        &self,
        epoch: usize,
        train_loader: &DataLoader<D>,
        val_loader: &DataLoader<V>,
        settings: &TrainSettings,
        history: &mut TrainHistory,
    ) -> Result<Option<TrainEvent>> {
        let train_accuracy = calc_accuracy_loader_at(train_loader, self.model, self.device, Some(settings.eval_iter), self.position);
        let val_accuracy = calc_accuracy_loader_at(val_loader, self.model, self.device, Some(settings.eval_iter), self.position);
        history.train_accs.push(train_accuracy);
        history.val_accs.push(val_accuracy);
        let line = format!("Training accuracy: {:.2}% | Validation accuracy: {:.2}%", train_accuracy * 100.0, val_accuracy * 100.0);
        Ok(Some(TrainEvent::Accuracy { epoch, train_accuracy, val_accuracy, line }))
    }
}

/// Listing 6.10's loop from the start: for each epoch and batch, zero the gradients, compute the
/// loss on the last token, back-propagate, step the optimizer, count the examples; every
/// `eval_freq` steps evaluate the losses on `eval_iter` batches; after each epoch, the
/// accuracies on `eval_iter` batches. A quick run stops after `settings.max_steps`. `on_event`
/// sees every step, evaluation and accuracy. Returns the run's state: its history, steps and
/// examples seen (`tokens_seen`); a diverging loss is [`crate::error::Error::NonFiniteLoss`].
pub fn train_classifier<D: Dataset, V: Dataset>(
    model: &GptModel,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    device: Device,
    settings: &ClassifierSettings,
    on_event: &mut dyn FnMut(&ClassifierEvent),
) -> Result<TrainState> {
    let mut state = TrainState::default();
    train_steps(&ClassifierTask::new(model, device), train_loader, val_loader, optimizer, settings, &mut state, None, on_event)?;
    Ok(state)
}

/// Listing 6.10, `train_classifier_simple`: [`train_classifier`] with the book's printed lines
/// (`Ep 1 (Step 000050): Train loss 0.617, Val loss 0.637`, then the accuracies per epoch).
/// Returns the history, with the seconds each epoch took.
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
) -> Result<ClassifierHistory> {
    let settings = TrainSettings::classifier(num_epochs, eval_freq, eval_iter);
    let mut epoch_seconds = Vec::new();
    let state = train_classifier(model, train_loader, val_loader, optimizer, device, &settings, &mut |event| {
        if let TrainEvent::EpochEnd { seconds, .. } = event {
            epoch_seconds.push(*seconds);
        }
        print_book_lines(event);
    })?;
    Ok(TrainHistory { epoch_seconds, ..state.history })
}

/// A fine-tuning run of a classifier that can stop, be saved and continue exactly: the model
/// and its variables, what it was trained for ([`ClassifierInfo`]), AdamW, the settings and where
/// the run stands. [`ClassifierRun::train`] trains it (through the one training loop, so the
/// settings' warmup, cosine decay and clipping apply); [`ClassifierRun::save`] writes a checkpoint
/// folder that [`crate::tasks::classify::load_classifier`] (and `llm classify`) read as a
/// classifier, and [`ClassifierRun::load`] continues it.
#[derive(Debug)]
pub struct ClassifierRun {
    pub vs: nn::VarStore,
    pub model: GptModel,
    pub info: ClassifierInfo,
    pub optimizer: AdamW,
    pub settings: TrainSettings,
    pub state: TrainState,
    /// Anything else the run should remember (the CLI keeps its batch size here); JSON null if
    /// nothing.
    pub extra: serde_json::Value,
}

/// The keys a run adds to a classifier checkpoint's `extra` metadata.
const TRAINABLE_KEY: &str = "trainable";
const RUN_KEY: &str = "run";

impl ClassifierRun {
    /// A run at its start. Build `optimizer` over `vs` after the head was replaced
    /// ([`crate::tasks::classify::prepare_classifier`]).
    pub fn new(vs: nn::VarStore, model: GptModel, info: ClassifierInfo, optimizer: AdamW, settings: TrainSettings) -> Self {
        ClassifierRun { vs, model, info, optimizer, settings, state: TrainState::default(), extra: serde_json::Value::Null }
    }

    /// Train until the run is over or `steps` more steps were taken: the training loop with a
    /// [`ClassifierTask`] on the device of the run's variables.
    pub fn train<D: Dataset, V: Dataset>(
        &mut self,
        train_loader: &DataLoader<D>,
        val_loader: &DataLoader<V>,
        steps: Option<usize>,
        on_event: &mut dyn FnMut(&TrainEvent),
    ) -> Result<()> {
        let task = ClassifierTask { position: self.info.position, ..ClassifierTask::new(&self.model, self.vs.device()) };
        train_steps(&task, train_loader, val_loader, &mut self.optimizer, &self.settings, &mut self.state, steps, on_event)
    }

    /// Save the run into the folder `dir` ([`crate::training::checkpoint`], written atomically):
    /// the classifier as [`crate::tasks::classify::save_classifier`] saves it, AdamW's state, the
    /// settings and state, which parameters train, and `extra`.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let mut trainable: Vec<String> =
            self.vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).map(|(name, _)| name).collect();
        trainable.sort();
        let mut meta = classifier_meta(&self.model.cfg, &self.info);
        meta.settings = Some(self.settings.clone());
        meta.state = self.state.clone();
        meta.extra[TRAINABLE_KEY] = serde_json::json!(trainable);
        meta.extra[RUN_KEY] = self.extra.clone();
        save_checkpoint(dir, &self.vs, Some(&self.optimizer), &meta)
    }

    /// Read a run saved by [`ClassifierRun::save`] onto `device`: the classifier with the
    /// parameters that trained unfrozen again, AdamW with its state, the settings and state.
    /// Errors name the file: not a classifier, or a classifier saved without its run.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<Self> {
        let ckpt = read_checkpoint(dir)?;
        let (vs, model, info) = classifier_from_checkpoint(&ckpt, device)?;
        let bad = |reason: String| Error::Format { path: ckpt.path.clone(), reason };
        let no_run = "a classifier saved without its fine-tuning run (save_classifier), which cannot resume";
        let settings = ckpt.meta.settings.clone().ok_or_else(|| bad(format!("no training settings: {no_run}")))?;
        let trainable: Vec<String> = match ckpt.meta.extra.get(TRAINABLE_KEY) {
            Some(names) => serde_json::from_value(names.clone()).map_err(|e| bad(format!("'{TRAINABLE_KEY}': {e}")))?,
            None => return Err(bad(format!("no list of trainable parameters: {no_run}"))),
        };
        let variables = vs.variables();
        for name in &trainable {
            let var = variables.get(name).ok_or_else(|| bad(format!("trainable parameter '{name}' is not in the model")))?;
            let _ = var.set_requires_grad(true);
        }
        let mut optimizer = AdamW::new(&vs, 0.0, 0.0); // the checkpoint's hyper-parameters replace these
        ckpt.load_optimizer(&mut optimizer)?;
        let extra = ckpt.meta.extra.get(RUN_KEY).cloned().unwrap_or(serde_json::Value::Null);
        Ok(ClassifierRun { vs, model, info, optimizer, settings, state: ckpt.meta.state.clone(), extra })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::config::GptConfig;
    use crate::tasks::classify::dataset::SpamDataset;
    use crate::tasks::classify::head::prepare_classifier;
    use crate::tasks::classify::usage::{load_classifier, save_classifier};
    use crate::training::schedule::{LrSchedule, TrainExtras};
    use crate::util::device::{rng_lock, set_seed};

    /// 24 texts of 12 random token ids with random labels: 6 shuffled batches of 4.
    fn loaders() -> (DataLoader<SpamDataset>, DataLoader<SpamDataset>) {
        let texts = |n: i64| {
            let ids = Tensor::randint(97, [n, 12], (tch::Kind::Int64, Device::Cpu));
            let labels = Tensor::randint(2, [n], (tch::Kind::Int64, Device::Cpu));
            SpamDataset {
                encoded_texts: Vec::<Vec<i64>>::try_from(&ids).unwrap(),
                labels: Vec::<i64>::try_from(&labels).unwrap(),
                max_length: 12,
                pad_token_id: 0,
            }
        };
        (DataLoader::new(texts(24), 4, true, true, 3).unwrap(), DataLoader::new(texts(8), 4, false, false, 3).unwrap())
    }

    /// A small classifier with dropout (so the per-step seeding matters), warmup, cosine decay
    /// and clipping, at its start; the same numbers for the same `seed`.
    fn new_run(seed: u64) -> ClassifierRun {
        let cfg = GptConfig { vocab_size: 97, context_length: 16, emb_dim: 32, n_heads: 4, n_layers: 2, drop_rate: 0.1, qkv_bias: false };
        set_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut model = GptModel::new(&vs.root(), &cfg);
        prepare_classifier(&mut model, &vs, 2);
        let optimizer = AdamW::new(&vs, 1e-3, 0.1);
        let schedule = LrSchedule::new(1e-4, 1e-3, 1e-5, 3, 12).unwrap();
        let settings = TrainSettings {
            extras: Some(TrainExtras { schedule, clip_max_norm: Some(0.5) }),
            ..TrainSettings::classifier(2, 3, 2)
        };
        let info = ClassifierInfo { num_classes: 2, max_length: 12, pad_token_id: 0, lora: None, position: Default::default() };
        ClassifierRun::new(vs, model, info, optimizer, settings)
    }

    #[test]
    fn a_saved_and_resumed_run_equals_the_straight_run() {
        let _rng = rng_lock();
        set_seed(1);
        let (train, val) = loaders();
        assert_eq!(train.len(), 6);
        let mut clipped = 0;
        let mut straight = new_run(7);
        straight
            .train(&train, &val, None, &mut |e| {
                if let TrainEvent::Step { grad_norm: Some(_), .. } = e {
                    clipped += 1
                }
            })
            .unwrap();
        assert_eq!((straight.state.steps_done, straight.state.tokens_seen, straight.state.epoch), (12, 48, 2));
        assert!(clipped > 0, "the test must clip some steps");
        assert_eq!(straight.state.history.train_accs.len(), 2, "accuracies after both epochs");

        let dir = std::env::temp_dir().join(format!("llm-fs-classifier-run-{}", std::process::id()));
        let mut first_half = new_run(7);
        first_half.train(&train, &val, Some(5), &mut |_| {}).unwrap();
        assert_eq!((first_half.state.epoch, first_half.state.batch_in_epoch), (0, 5), "stopped inside the first epoch");
        first_half.save(&dir).unwrap();
        drop(first_half);
        set_seed(99); // whatever the generator holds, the run continues the same
        let mut resumed = ClassifierRun::load(&dir, Device::Cpu).unwrap();
        assert_eq!(resumed.optimizer.lr, LrSchedule::new(1e-4, 1e-3, 1e-5, 3, 12).unwrap().lr_at(4), "the rate of the last step taken");
        resumed.train(&train, &val, None, &mut |_| {}).unwrap();

        assert_eq!(resumed.state, straight.state, "the resumed run's history and position equal the straight run's");
        assert_eq!(resumed.settings, straight.settings);
        let (a, b) = (straight.vs.variables(), resumed.vs.variables());
        assert_eq!(a.len(), b.len());
        for (name, t) in &a {
            assert!(t.equal(&b[name]), "{name} differs after resuming");
            assert_eq!(t.requires_grad(), b[name].requires_grad(), "{name}: trainable in one run only");
        }
        // The run's folder is a classifier for `load_classifier`; a classifier without its run
        // cannot resume.
        assert!(load_classifier(&dir, Device::Cpu).is_ok());
        save_classifier(&dir, &resumed.vs, &resumed.model.cfg, &resumed.info).unwrap();
        let err = ClassifierRun::load(&dir, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("checkpoint.safetensors") && err.contains("cannot resume"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
