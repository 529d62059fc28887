//! What the long-running commands share: a progress bar with the book's lines printed above it,
//! and the files a run leaves next to its checkpoint (JSON records and SVG/PNG plots).

use std::path::Path;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use llm_from_scratch::ch05::{read_checkpoint, stop_requested, train_steps, AdamW, TrainEvent, TrainSettings, TrainState, Unit};
use llm_from_scratch::dataloader::{DataLoader, Dataset};
use llm_from_scratch::ch05::TrainTask;
use llm_from_scratch::plot::Figure;
use serde::Serialize;

/// A progress bar counting `unit`s (steps, responses, scores) on stderr.
pub struct Progress {
    bar: ProgressBar,
    /// Prints nothing at all (the ranks other than 0 of a data-parallel run).
    quiet: bool,
}

impl Progress {
    /// A bar of `len` units, `done` of them already done (a resumed run).
    pub fn new(len: u64, done: u64, unit: &str) -> Self {
        let bar = ProgressBar::new(len).with_position(done);
        bar.set_style(
            ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} {unit} [{{elapsed_precise}}<{{eta_precise}}] {{msg}}"))
                .expect("a valid progress template"),
        );
        Progress { bar, quiet: false }
    }

    /// No bar and no lines: a data-parallel run's ranks other than 0.
    pub fn quiet() -> Self {
        Progress { bar: ProgressBar::hidden(), quiet: true }
    }

    /// Print a line above the bar, or plainly when the bar is hidden (stderr is not a terminal:
    /// indicatif then drops its own `println`).
    pub fn say(&self, line: &str) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// One more unit done, with `message` shown after the bar.
    pub fn step(&self, message: String) {
        self.bar.inc(1);
        self.bar.set_message(message);
    }

    /// One more unit done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    /// Show a training loop's event: a step moves the bar, evaluations, samples and accuracies
    /// are printed.
    pub fn train_event(&self, event: &TrainEvent) {
        match event {
            TrainEvent::Step { epoch, loss, units_per_s, unit: Unit::Tokens, .. } => {
                self.step(format!("ep {} loss {loss:.3} {units_per_s:.0} tok/s", epoch + 1))
            }
            TrainEvent::Step { epoch, loss, units_per_s, unit: Unit::Examples, .. } => {
                self.step(format!("ep {} loss {loss:.3} {units_per_s:.1} examples/s", epoch + 1))
            }
            TrainEvent::Eval { line, .. } | TrainEvent::Accuracy { line, .. } => self.say(line),
            TrainEvent::Sample { text, .. } => self.say(text),
            TrainEvent::EpochEnd { .. } => {}
        }
    }

    /// Remove the bar (the printed lines stay).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Write `value` as pretty-printed JSON to `out/name`, atomically.
pub fn save_json(out: &Path, name: &str, value: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string_pretty(value)?;
    llm_from_scratch::util::files::write_atomic(&out.join(name), json.as_bytes())?;
    Ok(())
}

/// Save `figure` as `out/name.svg` and `out/name.png`.
pub fn save_figure(out: &Path, name: &str, figure: &impl Figure) -> Result<()> {
    for ext in ["svg", "png"] {
        let file = out.join(format!("{name}.{ext}"));
        figure.save(&file).with_context(|| format!("saving {}", file.display()))?;
    }
    Ok(())
}

/// How many steps a training command trains before its next save: to the end of the epoch in
/// progress, or `save_every` steps when that comes sooner, and at most `steps_left`. Every
/// training command saves after each such chunk, so a crash loses at most an epoch.
pub fn steps_to_next_save(batches_per_epoch: usize, batch_in_epoch: usize, save_every: Option<usize>, steps_left: usize) -> usize {
    let to_epoch_end = batches_per_epoch.saturating_sub(batch_in_epoch).max(1);
    save_every.map_or(to_epoch_end, |n| n.max(1).min(to_epoch_end)).min(steps_left)
}

/// A training run that stopped on `error` (a diverging loss, say): remove the bar, say which
/// checkpoint in `out` is left untouched (or that none was saved), and hand the error back.
pub fn training_failed(progress: &Progress, out: &Path, error: llm_from_scratch::Error) -> anyhow::Error {
    progress.finish();
    match read_checkpoint(out) {
        Ok(ckpt) => eprintln!("the checkpoint in {} (after step {}) is kept as it was", out.display(), ckpt.meta.state.steps_done),
        Err(_) => eprintln!("no checkpoint was saved in {}", out.display()),
    }
    error.into()
}

/// The fine-tuning commands' training: train `task` in chunks ([`steps_to_next_save`]: to the end
/// of each epoch, or every `save_every` steps), at most `max_steps` steps in all, until the run is
/// finished or Ctrl-C asks to stop; after each chunk that leaves the run unfinished, `save` it
/// (with AdamW's state, resumable), so a crash loses at most a chunk. A diverging loss stops
/// before anything is saved ([`training_failed`]). The bar is finished when this returns.
#[allow(clippy::too_many_arguments)]
pub fn train_in_chunks<T: TrainTask, D: Dataset, V: Dataset>(
    task: &T,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    settings: &TrainSettings,
    state: &mut TrainState,
    save_every: Option<usize>,
    max_steps: Option<usize>,
    progress: &Progress,
    out: &Path,
    save: &mut dyn FnMut(&TrainState, &AdamW) -> Result<()>,
) -> Result<()> {
    let mut steps_left = max_steps.unwrap_or(usize::MAX);
    while !state.finished(settings) && steps_left > 0 && !stop_requested() {
        let chunk = steps_to_next_save(train_loader.len(), state.batch_in_epoch, save_every, steps_left);
        let before = state.steps_done;
        if let Err(e) = train_steps(task, train_loader, val_loader, optimizer, settings, state, Some(chunk), &mut |event| progress.train_event(event)) {
            return Err(training_failed(progress, out, e)); // the last checkpoint is not replaced by the diverged state
        }
        steps_left -= (state.steps_done - before) as usize;
        if !state.finished(settings) {
            save(state, optimizer)?;
        }
    }
    progress.finish();
    Ok(())
}
