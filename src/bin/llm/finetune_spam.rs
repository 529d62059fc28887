//! `llm finetune-spam`: chapter 6's run from the command line. It prepares the balanced SMS
//! spam splits (CSV files in the output folder), turns a GPT model into a 2-class classifier
//! (new head; only the last block, the final norm and the head train), fine-tunes it with a
//! progress bar, and writes the classifier (a checkpoint `llm classify` loads), its history
//! and its loss and accuracy plots.
//!
//! ```text
//! llm finetune-spam --weights gpt2 --out runs/spam          # the book's run (GPT-2 124M weights)
//! llm finetune-spam --config tiny --epochs 1 --out runs/spam-tiny
//! llm classify --model runs/spam --text "You are a winner ..."
//! llm finetune-spam --weights gpt2 --trainable all --out runs/spam-all   # exercise 6.2: the whole model
//! llm finetune-spam --weights gpt2 --token first --out runs/spam-first   # exercise 6.3: the first token
//! llm finetune-spam --weights gpt2 --lora-rank 16 --lora-alpha 16 --out runs/spam-lora   # appendix E
//! llm finetune-spam --weights gpt2 --warmup-steps 130 --clip 1.0 --save-every 100 --out runs/spam-d  # appendix D
//! llm finetune-spam --resume runs/spam-d                     # continue it after an interruption
//! ```
//!
//! The book's settings are the defaults: the last block, final norm and head train, the head
//! reads the last token, batch 8, AdamW lr 5e-5 and weight decay 0.1, 5 epochs,
//! evaluation every 50 steps on 5 batches, dropout 0, seed 123. The output folder's checkpoint is
//! both the classifier (`llm classify` reads it, with the token position it was trained on) and
//! the run (`--resume` continues it exactly, with its trainable parameters and token position).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use llm_from_scratch::appendix_e::prepare_lora_classifier;
use llm_from_scratch::ch04::{num_parameters, num_trainable_parameters};
use llm_from_scratch::ch06::{
    calc_accuracy_loader_at, prepare_classifier_with, prepare_spam_splits, read_csv, set_drop_rate, AdamW, BpeTokenizer,
    ClassifierHistory, ClassifierInfo, ClassifierRun, DataLoader, SpamDataset, SpamSplits, TokenPosition, TrainSettings, Trainable,
    PAD_TOKEN_ID,
};
use llm_from_scratch::ch05::stop_requested;
use llm_from_scratch::data::DataStore;
use serde::{Deserialize, Serialize};

use crate::interrupt::{stop_on_signals, Interrupted};
use crate::model_source::ModelArgs;
use crate::pretrain::ScheduleArgs;
use crate::progress::{save_figure, save_json, steps_to_next_save, training_failed, Progress};

/// Arguments of `llm finetune-spam`.
#[derive(Args, Debug)]
pub struct FinetuneSpamArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Learning rate (default: the book's 5e-5, or appendix E's 8e-4 with --lora-rank).
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = 0.1)]
    pub weight_decay: f64,
    /// Evaluate the losses every this many steps.
    #[arg(long, default_value_t = 50)]
    pub eval_freq: i64,
    /// Batches per evaluation (losses, and the accuracies after each epoch).
    #[arg(long, default_value_t = 5)]
    pub eval_iter: usize,
    /// Truncate the texts to this many tokens (default: the longest training text, 120).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Dropout rate during fine-tuning (the book's chapter 6 uses 0).
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// What trains besides the new head: the book's last block and final norm (`last-block`), or
    /// every parameter (`all`, exercise 6.2).
    #[arg(long, value_enum, default_value_t = TrainableArg::LastBlock, conflicts_with = "lora_rank")]
    pub trainable: TrainableArg,
    /// Which token's output feeds the head: the book's `last`, or the `first` (exercise 6.3).
    #[arg(long, value_enum, default_value_t = TokenArg::Last)]
    pub token: TokenArg,
    /// Appendix E: train LoRA updates of this rank on every linear layer (the head too) instead
    /// of the last block, final norm and head.
    #[arg(long)]
    pub lora_rank: Option<i64>,
    /// LoRA's alpha (the update is scaled by alpha / rank); the book uses alpha = rank = 16.
    #[arg(long, requires = "lora_rank")]
    pub lora_alpha: Option<f64>,
    /// End the run after this many steps (a quick run: its last epoch ends there).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Appendix D: --warmup-steps, --initial-lr, --min-lr, --clip, as for `llm pretrain` (the
    /// peak learning rate is --lr).
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// Also save the run every this many steps (it is always saved at the end of every epoch, and
    /// at the end).
    #[arg(long)]
    pub save_every: Option<usize>,
    /// Stop after this many steps of this invocation and save the run, to be continued with
    /// --resume (unlike --max-steps, which ends the run).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Continue the run saved in this folder by an earlier `llm finetune-spam` (its model, data
    /// split and settings are reused: leave out the model and training flags).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Output folder: the classifier's checkpoint, train/validation/test.csv, history.json,
    /// results.json, loss.svg/png, accuracy.svg/png.
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
}

/// `--trainable`: which parameters fine-tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainableArg {
    /// The last transformer block, the final norm and the head (section 6.5).
    LastBlock,
    /// The whole model (exercise 6.2).
    All,
}

/// `--token`: which token's output the head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenArg {
    /// The last token, which has seen the whole text (section 6.6).
    Last,
    /// The first token, which has seen only itself (exercise 6.3).
    First,
}

impl From<TrainableArg> for Trainable {
    fn from(arg: TrainableArg) -> Self {
        match arg {
            TrainableArg::LastBlock => Trainable::LastBlock,
            TrainableArg::All => Trainable::All,
        }
    }
}

impl From<TokenArg> for TokenPosition {
    fn from(arg: TokenArg) -> Self {
        match arg {
            TokenArg::Last => TokenPosition::Last,
            TokenArg::First => TokenPosition::First,
        }
    }
}

/// What the CLI remembers in the run's checkpoint to rebuild the same loaders on --resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunData {
    batch_size: usize,
    /// What the model was built from (`--weights`, `--model` or `--config`).
    base: String,
}

/// The final figures, written to `results.json`.
#[derive(Debug, Serialize)]
struct Results {
    train_accuracy: f64,
    validation_accuracy: f64,
    test_accuracy: f64,
    trainable_parameters: i64,
    parameters: i64,
    training_seconds: f64,
    examples_per_s: f64,
}

pub fn run(args: FinetuneSpamArgs) -> Result<()> {
    stop_on_signals();
    let report = llm_from_scratch::device_report();
    eprintln!("{report}");
    let device = report.device;
    if !(0.0..1.0).contains(&args.drop_rate) {
        bail!("--drop-rate must be in [0, 1), not {}", args.drop_rate);
    }

    // --resume: the run as it was saved, with its data split and loader settings.
    let resumed = match &args.resume {
        Some(dir) => {
            if !args.model.is_unset() {
                bail!("--resume continues a run with its own model: leave out --config, --weights and --model");
            }
            let run = {
                let _rng = llm_from_scratch::rng_lock(); // building the model draws random numbers
                ClassifierRun::load(dir, device)?
            };
            let run_data: RunData = serde_json::from_value(run.extra.clone())
                .with_context(|| format!("{}: no `llm finetune-spam` run data in this checkpoint", dir.display()))?;
            Some((run, run_data))
        }
        None => None,
    };
    let out: PathBuf = args.out.clone().or_else(|| args.resume.clone()).expect("clap requires --out or --resume");
    let seed = resumed.as_ref().map_or(args.model.seed, |(run, _)| run.settings.seed);
    let batch_size = resumed.as_ref().map_or(args.batch_size, |(_, data)| data.batch_size);

    // 6.2: the balanced splits, as CSV files in the output folder (a resumed run reads its own).
    let splits = match &resumed {
        Some(_) => SpamSplits::in_dir(&out),
        None => prepare_spam_splits(&DataStore::from_env(), &out, seed)?,
    };
    let tokenizer = BpeTokenizer::gpt2()?;
    let max_length = resumed.as_ref().map_or(args.max_length, |(run, _)| Some(run.info.max_length));
    let train_dataset = SpamDataset::new(&read_csv(&splits.train)?, &tokenizer, max_length, PAD_TOKEN_ID)?;
    let max_length = train_dataset.max_length;
    let val_dataset = SpamDataset::new(&read_csv(&splits.validation)?, &tokenizer, Some(max_length), PAD_TOKEN_ID)?;
    let test_dataset = SpamDataset::new(&read_csv(&splits.test)?, &tokenizer, Some(max_length), PAD_TOKEN_ID)?;
    let train_loader = DataLoader::new(train_dataset, batch_size, true, true, seed)?;
    let val_loader = DataLoader::new(val_dataset, batch_size, false, false, seed)?;
    let test_loader = DataLoader::new(test_dataset, batch_size, false, false, seed)?;
    if train_loader.is_empty() {
        bail!("no full training batch of {batch_size} texts");
    }

    let mut run = match resumed {
        Some((run, _)) => {
            eprintln!("resuming {} at step {} (epoch {})", out.display(), run.state.steps_done, run.state.epoch + 1);
            run
        }
        None => new_run(&args, device, max_length, train_loader.len())?,
    };
    let trainable = num_trainable_parameters(&run.vs);
    let parameters = num_parameters(&run.vs);
    let position = run.info.position;
    eprintln!(
        "fine-tuning {trainable} of {parameters} parameters, the head reading the {} token, on {} training / {} validation / {} test batches of {batch_size} x {max_length} tokens",
        if position == TokenPosition::First { "first" } else { "last" },
        train_loader.len(),
        val_loader.len(),
        test_loader.len(),
    );
    if run.state.steps_done == 0 {
        // The book's accuracies before fine-tuning, on 10 batches each.
        for (name, acc) in [
            ("Training", calc_accuracy_loader_at(&train_loader, &run.model, device, Some(10), position)),
            ("Validation", calc_accuracy_loader_at(&val_loader, &run.model, device, Some(10), position)),
            ("Test", calc_accuracy_loader_at(&test_loader, &run.model, device, Some(10), position)),
        ] {
            println!("{name} accuracy before fine-tuning: {:.2}%", acc * 100.0);
        }
    }

    // 6.7: fine-tuning, saved every --save-every steps, at the end of every epoch (a crash loses
    // at most an epoch) and at the end (or at --stop-after).
    eprintln!(
        "AdamW lr {}, weight decay {}{}",
        run.optimizer.lr,
        run.optimizer.weight_decay,
        run.info.lora.map_or(String::new(), |(r, a)| format!(", LoRA rank {r} alpha {a}"))
    );
    let full = run.settings.num_epochs * train_loader.len();
    let total_steps = run.settings.max_steps.map_or(full, |m| full.min(m.max(0) as usize));
    let progress = Progress::new(total_steps as u64, run.state.steps_done as u64, "steps");
    let (started, examples_at_start) = (Instant::now(), run.state.tokens_seen);
    let mut steps_left = args.stop_after.unwrap_or(usize::MAX);
    loop {
        let chunk = steps_to_next_save(train_loader.len(), run.state.batch_in_epoch, args.save_every, steps_left);
        if let Err(e) = run.train(&train_loader, &val_loader, Some(chunk), &mut |event| progress.train_event(event)) {
            return Err(training_failed(&progress, &out, e)); // the last checkpoint is not replaced by the diverged state
        }
        steps_left -= chunk;
        run.save(&out)?;
        if run.state.finished(&run.settings) || steps_left == 0 || stop_requested() {
            break;
        }
    }
    progress.finish();
    if stop_requested() && !run.state.finished(&run.settings) {
        // Ctrl-C: the run is saved; its history so far, and how to resume it.
        save_json(&out, "history.json", &run.state.history)?;
        return Err(Interrupted { resume: format!("llm finetune-spam --resume {}", out.display()) }.into());
    }
    let training_seconds = started.elapsed().as_secs_f64();
    println!("Training completed in {:.2} minutes.", training_seconds / 60.0);
    if !run.state.finished(&run.settings) {
        eprintln!("stopped at step {}: continue with `llm finetune-spam --resume {}`", run.state.steps_done, out.display());
    }

    // The book's final accuracies, on all batches.
    let results = Results {
        train_accuracy: calc_accuracy_loader_at(&train_loader, &run.model, device, None, position),
        validation_accuracy: calc_accuracy_loader_at(&val_loader, &run.model, device, None, position),
        test_accuracy: calc_accuracy_loader_at(&test_loader, &run.model, device, None, position),
        trainable_parameters: trainable,
        parameters,
        training_seconds,
        examples_per_s: (run.state.tokens_seen - examples_at_start) as f64 / training_seconds.max(1e-9),
    };
    println!("Training accuracy: {:.2}%", results.train_accuracy * 100.0);
    println!("Validation accuracy: {:.2}%", results.validation_accuracy * 100.0);
    println!("Test accuracy: {:.2}%", results.test_accuracy * 100.0);

    save_outputs(&out, &run.state.history, &results)?;
    eprintln!("classifier (a resumable run), history.json, results.json and the loss and accuracy plots in {}", out.display());
    Ok(())
}

/// 6.4-6.5 for a new run: the model, its classification head and frozen layers, AdamW, and the
/// settings (appendix D's extras over the run's steps when asked for).
fn new_run(args: &FinetuneSpamArgs, device: tch::Device, max_length: usize, train_batches: usize) -> Result<ClassifierRun> {
    let seed = args.model.seed;
    let loaded = args.model.load(device)?;
    let (vs, mut model, cfg) = (loaded.vs, loaded.model, loaded.cfg);
    if max_length as i64 > cfg.context_length {
        bail!("the texts are {max_length} tokens long, more than the model's context length {}: pass --max-length", cfg.context_length);
    }
    set_drop_rate(&mut model, args.drop_rate); // and model.cfg.drop_rate, which the checkpoint saves
    let lora = args.lora_rank.map(|rank| (rank, args.lora_alpha.unwrap_or(rank as f64)));
    if lora.is_some_and(|(rank, _)| rank < 1) {
        bail!("--lora-rank must be at least 1");
    }
    let trainable = {
        let _rng = llm_from_scratch::rng_lock();
        llm_from_scratch::set_seed(seed); // the book's torch.manual_seed(123) before the new head
        match lora {
            Some((rank, alpha)) => prepare_lora_classifier(&mut model, &vs, 2, rank, alpha),
            None => prepare_classifier_with(&mut model, &vs, 2, args.trainable.into()),
        }
    };
    assert_eq!(trainable, num_trainable_parameters(&vs));
    let lr = args.lr.unwrap_or(if lora.is_some() { 8e-4 } else { 5e-5 });
    let optimizer = AdamW::new(&vs, lr, args.weight_decay);
    let max_steps = args.max_steps.map(|n| n as i64);
    let total_steps = max_steps.unwrap_or(i64::MAX).min((args.epochs * train_batches) as i64);
    let extras = args.schedule.extras_args(lr).map(|e| e.extras(total_steps)).transpose()?;
    let settings = TrainSettings { seed, max_steps, extras, ..TrainSettings::classifier(args.epochs, args.eval_freq, args.eval_iter) };
    let info = ClassifierInfo { num_classes: 2, max_length, pad_token_id: PAD_TOKEN_ID, lora, position: args.token.into() };
    let mut run = ClassifierRun::new(vs, model, info, optimizer, settings);
    run.extra = serde_json::to_value(RunData { batch_size: args.batch_size, base: args.model.describe() })?;
    Ok(run)
}

fn save_outputs(out: &Path, history: &ClassifierHistory, results: &Results) -> Result<()> {
    save_json(out, "history.json", history)?;
    save_json(out, "results.json", results)?;
    if !history.epochs.is_empty() {
        save_figure(out, "loss", &history.loss_plot())?;
    }
    if !history.train_accs.is_empty() {
        save_figure(out, "accuracy", &history.accuracy_plot())?;
    }
    Ok(())
}
