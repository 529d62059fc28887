//! `llm finetune-dpo`: chapter 7's bonus from the command line. Align an instruction-finetuned
//! model with preferences by Direct Preference Optimization (DPO), then answer the test
//! instructions with the reference (the model before DPO) and the policy (after).
//!
//! ```text
//! llm finetune-dpo --model runs/instruct --out runs/dpo           # the book's run
//! llm finetune-dpo --model runs/instruct --max-steps 20 --test-limit 3 --out runs/quick
//! llm finetune-dpo --resume runs/dpo                              # continue a run stopped by Ctrl-C
//! ```
//!
//! The book's setup is the default: the policy starts as the model of an `llm finetune-instruct`
//! run (`--model DIR`), the reference is a frozen copy of it, the 1100 entries of
//! instruction-data-with-preference.json split 935 / 55 / 110 (train / validation / test),
//! batches of 8 cut at 1024 tokens (at most the model's context) with the prompt tokens masked,
//! β = 0.1, AdamW lr 5e-6 and weight decay 0.01, 1 epoch, evaluation every 5 steps on 5 batches,
//! seed 123, responses of up to 256 tokens.
//!
//! Ctrl-C (or SIGTERM) finishes the training step, saves the run with AdamW's state and prints the
//! command that resumes it (exit status 130); `--save-every N` also saves every N steps, and
//! `--max-steps N` stops after N steps with a run that `--resume` continues. Checkpoints are
//! written atomically (a temporary file, then a rename). The reference is rebuilt on `--resume`
//! from the model it was copied from (recorded in the checkpoint).
//!
//! `--out` receives the policy (`checkpoint.safetensors`, loadable by `llm respond` and `llm chat`),
//! `history.json` (the book's `tracking`: losses, chosen and rejected rewards, with the
//! evaluation before training as `initial`), `loss.svg`/`loss.png` and
//! `reward-margins.svg`/`reward-margins.png` (the book's two plots), the test set with both
//! models' responses (`instruction-data-with-dpo-responses.json`: `reference_response` before
//! DPO, `policy_response` after), and `scores.json` (the mean ROUGE-L of each model's responses
//! against the chosen and against the rejected responses).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use llm_from_scratch::bonus_dpo::{
    create_preference_loaders, evaluate_dpo_loss_loader, load_preference_file, read_preference_data, reference_model,
    split_preference_data, DpoEval, DpoHistory, DpoTask, PreferenceEntry, BOOK_ALLOWED_MAX_LENGTH, BOOK_BATCH_SIZE, BOOK_BETA,
    BOOK_EVAL_FREQ, BOOK_EVAL_ITER, BOOK_LEARNING_RATE, BOOK_WEIGHT_DECAY,
};
use llm_from_scratch::ch02::{BpeTokenizer, DataStore};
use llm_from_scratch::ch04::GptModel;
use llm_from_scratch::ch05::{save_checkpoint, stop_requested, AdamW, CheckpointMeta, TrainSettings, TrainState};
use llm_from_scratch::ch07::{format_input, generate_response, rouge_l};
use serde::{Deserialize, Serialize};

use crate::interrupt::{stop_on_signals, Interrupted};
use crate::model_source::{ModelArgs, ResumedRun};
use crate::progress::{save_figure, save_json, train_in_chunks, Progress};

/// The file of the test set with both models' responses.
pub const DPO_RESPONSES_FILE: &str = "instruction-data-with-dpo-responses.json";

/// Arguments of `llm finetune-dpo`.
#[derive(Args, Debug, Clone)]
pub struct FinetuneDpoArgs {
    /// The model to align: `--model DIR`, the run folder of `llm finetune-instruct` (the book's
    /// start); --weights or --config also work (--config alone: random weights, a smoke run).
    /// It is the policy's start and the frozen reference.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The preference data (a JSON array of {instruction, input, output, chosen, rejected});
    /// default: the book's instruction-data-with-preference.json from the data folder
    /// (LLM_DATA_DIR), the cache, or a download.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// DPO's β: how strongly the loss holds the policy to the reference's log-ratios.
    #[arg(long, default_value_t = BOOK_BETA)]
    pub beta: f64,
    /// Passes over the training pairs.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Preference pairs per batch (each pair is a chosen and a rejected sequence).
    #[arg(long, default_value_t = BOOK_BATCH_SIZE)]
    pub batch_size: usize,
    /// AdamW's learning rate (the book's 5e-6).
    #[arg(long, default_value_t = BOOK_LEARNING_RATE)]
    pub lr: f64,
    /// AdamW's weight decay.
    #[arg(long, default_value_t = BOOK_WEIGHT_DECAY)]
    pub weight_decay: f64,
    /// Cut every batch to this many tokens (at most the model's context length).
    #[arg(long, default_value_t = BOOK_ALLOWED_MAX_LENGTH)]
    pub allowed_max_length: usize,
    /// Let the loss read the prompt tokens too (the book masks them: only the response counts).
    #[arg(long)]
    pub no_mask_prompt: bool,
    /// Evaluate every this many steps.
    #[arg(long, default_value_t = BOOK_EVAL_FREQ)]
    pub eval_freq: i64,
    /// Batches per evaluation.
    #[arg(long, default_value_t = BOOK_EVAL_ITER)]
    pub eval_iter: usize,
    /// Tokens of the greedy sample printed after each epoch (the book's 50).
    #[arg(long, default_value_t = 50)]
    pub sample_tokens: i64,
    /// Also save the run every this many steps (always after each epoch and at the end).
    #[arg(long)]
    pub save_every: Option<usize>,
    /// Stop training after this many steps (the run can be resumed).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Longest response generated for a test instruction, in tokens.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: i64,
    /// Answer only the first this many test instructions (all 110 by default), with each model.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Output folder.
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run that Ctrl-C or --max-steps stopped in this folder (its data, models and
    /// training settings are reused: leave out the model and training flags), then answer.
    #[arg(long)]
    pub resume: Option<PathBuf>,
}

/// What the checkpoint of a run remembers to rebuild it on --resume (its `extra` metadata).
#[derive(Debug, Serialize, Deserialize)]
struct RunData {
    finetuned: String,
    /// Where the reference (and the policy's start) came from: the --model, --weights, --config
    /// and --seed of the first command.
    reference_run: Option<PathBuf>,
    reference_weights: Option<String>,
    reference_config: Option<String>,
    reference_seed: u64,
    base: String,
    /// The --data file, if one was given (else the book's file from the data folder).
    data_file: Option<PathBuf>,
    batch_size: usize,
    allowed_max_length: usize,
    mask_prompt_tokens: bool,
    beta: f64,
    lr: f64,
    weight_decay: f64,
    /// The evaluation before the first step (policy = reference: a loss of ln 2).
    initial: Option<DpoEval>,
}

/// `history.json`: the evaluation before training, then the book's `tracking`.
#[derive(Debug, Serialize)]
struct HistoryFile<'a> {
    initial: Option<&'a DpoEval>,
    beta: f64,
    #[serde(flatten)]
    history: DpoHistory,
    train_reward_margins: Vec<f64>,
    val_reward_margins: Vec<f64>,
}

/// A test entry with the responses of the reference (before DPO) and of the policy (after).
#[derive(Debug, Serialize)]
struct AnsweredEntry<'a> {
    #[serde(flatten)]
    entry: &'a PreferenceEntry,
    reference_response: String,
    policy_response: String,
}

/// `scores.json`: mean ROUGE-L F1 of each model's responses.
#[derive(Debug, Serialize)]
struct Scores {
    test_entries: usize,
    reference_rouge_l_chosen: f64,
    reference_rouge_l_rejected: f64,
    policy_rouge_l_chosen: f64,
    policy_rouge_l_rejected: f64,
}

pub fn run(args: FinetuneDpoArgs) -> Result<()> {
    stop_on_signals();
    // --resume: the stopped run's checkpoint; its data and training flags replace the command line's.
    let (args, resumed) = match &args.resume {
        Some(dir) => {
            let ResumedRun { ckpt, run_data, settings, model } = ResumedRun::<RunData>::read(dir, &args.model, "finetune-dpo")?;
            let args = FinetuneDpoArgs {
                model,
                data: run_data.data_file.clone(),
                beta: run_data.beta,
                epochs: settings.num_epochs,
                batch_size: run_data.batch_size,
                lr: run_data.lr,
                weight_decay: run_data.weight_decay,
                allowed_max_length: run_data.allowed_max_length,
                no_mask_prompt: !run_data.mask_prompt_tokens,
                eval_freq: settings.eval_freq,
                eval_iter: settings.eval_iter,
                sample_tokens: settings.sample_tokens,
                out: Some(dir.clone()),
                ..args.clone()
            };
            (args, Some((ckpt, run_data, settings)))
        }
        None => {
            if args.model.is_unset() {
                bail!("which model to align? --model DIR (the run folder of `llm finetune-instruct`), --weights or --config");
            }
            (args, None)
        }
    };
    let report = llm_from_scratch::device_report();
    eprintln!("{report}");
    let device = report.device;
    crate::finetune_instruct::check_batch_args(args.batch_size, args.allowed_max_length)?;
    if !args.beta.is_finite() || args.beta <= 0.0 {
        bail!("--beta must be positive, not {}", args.beta);
    }

    // Data: the book's file through the data module, or the given one; split 85 / 5 / 10.
    let data = match &args.data {
        Some(path) => load_preference_file(path)?,
        None => read_preference_data(&DataStore::from_env())?,
    };
    let (train_data, val_data, test_data) = split_preference_data(&data);
    eprintln!("{} entries: {} training, {} validation, {} test", data.len(), train_data.len(), val_data.len(), test_data.len());
    crate::finetune_instruct::check_enough_entries(train_data.len(), val_data.len(), args.batch_size)?;

    // The policy: the given model (or the run's, on --resume); the reference: a frozen copy of
    // the model the run started from.
    let seed = args.model.seed;
    let policy = args.model.load(device).context("loading the model to align")?;
    // The bonus aligns a model finetuned as in chapter 7: Alpaca prompts, every weight its own.
    if policy.lora().is_some() || policy.prompt_style()? != llm_from_scratch::ch07::PromptStyle::Alpaca {
        bail!("{}: a model finetuned with --lora-rank or --prompt-style phi3; DPO here aligns a model finetuned in the book's way (Alpaca prompts, no LoRA)", args.model.describe());
    }
    let cfg = policy.cfg.clone();
    let (_reference_vs, reference) = match &resumed {
        None => reference_model(&policy.vs, &cfg)?,
        Some((_, run_data, _)) => {
            let source = ModelArgs {
                config: run_data.reference_config.clone(),
                seed: run_data.reference_seed,
                weights: run_data.reference_weights.clone(),
                run: run_data.reference_run.clone(),
            };
            let mut loaded = source.load(device).with_context(|| format!("rebuilding the reference model from {}", source.describe()))?;
            loaded.vs.freeze();
            (loaded.vs, loaded.model)
        }
    };
    let (vs, model) = (&policy.vs, &policy.model);
    let allowed_max_length = args.allowed_max_length.min(cfg.context_length as usize);
    let mask_prompt_tokens = !args.no_mask_prompt;

    let tokenizer = BpeTokenizer::gpt2()?;
    let (train_loader, val_loader, _test_loader) = create_preference_loaders(
        &train_data,
        &val_data,
        &test_data,
        &tokenizer,
        args.batch_size,
        Some(allowed_max_length),
        mask_prompt_tokens,
        seed,
    )?;

    // The book's evaluation before training: policy = reference, so a loss of ln 2 and margins 0.
    let initial = match &resumed {
        Some((_, run_data, _)) => run_data.initial,
        None => {
            let res = evaluate_dpo_loss_loader(model, &reference, &train_loader, &val_loader, args.beta, args.eval_iter);
            println!("Training loss: {:.3}", res.train.loss);
            println!("Validation loss: {:.3}", res.val.loss);
            println!("Train reward margin: {:.3}", res.train.reward_margin());
            println!("Val reward margin: {:.3}", res.val.reward_margin());
            Some(res)
        }
    };

    let start_context = format_input(&val_data[2.min(val_data.len() - 1)]);
    let mut settings = TrainSettings {
        seed,
        sample_tokens: args.sample_tokens,
        ..TrainSettings::book(args.epochs, args.eval_freq, args.eval_iter, &start_context)
    };
    let mut state = TrainState::default();
    let mut optimizer = AdamW::new(vs, args.lr, args.weight_decay);
    let run_data = match &resumed {
        Some((ckpt, run_data, run_settings)) => {
            ckpt.load_optimizer(&mut optimizer)?;
            (settings, state) = (run_settings.clone(), ckpt.meta.state.clone());
            eprintln!("resuming {} at step {} (epoch {})", ckpt.path.display(), state.steps_done, state.epoch + 1);
            serde_json::to_value(run_data)?
        }
        None => serde_json::to_value(RunData {
            finetuned: "dpo".into(),
            reference_run: args.model.run.clone(),
            reference_weights: args.model.weights.clone(),
            reference_config: args.model.config.clone(),
            reference_seed: args.model.seed,
            base: args.model.describe(),
            data_file: args.data.clone(),
            batch_size: args.batch_size,
            allowed_max_length,
            mask_prompt_tokens,
            beta: args.beta,
            lr: args.lr,
            weight_decay: args.weight_decay,
            initial,
        })?,
    };
    let total_steps = (args.epochs * train_loader.len()).min(args.max_steps.map_or(usize::MAX, |n| n + state.steps_done as usize));
    let progress = Progress::new(total_steps as u64, state.steps_done as u64, "steps");
    eprintln!(
        "DPO on {} parameters (β = {}): {} batches of {} preference pairs (up to {allowed_max_length} tokens) per epoch, {} epochs",
        llm_from_scratch::ch04::num_parameters(vs),
        args.beta,
        train_loader.len(),
        args.batch_size,
        args.epochs
    );
    let started = std::time::Instant::now();
    let out = args.out.as_ref().expect("clap requires --out or --resume");
    let meta_for = |state: &TrainState| CheckpointMeta {
        settings: Some(settings.clone()),
        state: state.clone(),
        extra: run_data.clone(),
        ..CheckpointMeta::model_only(&cfg)
    };
    let save_history = |state: &TrainState| -> Result<()> {
        let history = DpoHistory::from_history(&state.history);
        let file = HistoryFile {
            initial: initial.as_ref(),
            beta: args.beta,
            train_reward_margins: history.train_reward_margins(),
            val_reward_margins: history.val_reward_margins(),
            history,
        };
        save_json(out, "history.json", &file)
    };

    // Train to the end of each epoch (or every --save-every steps), then save the run with
    // AdamW's state (resumable); a Ctrl-C saves where it stopped.
    let task = DpoTask::new(model, &reference, args.beta).with_tokenizer(&tokenizer);
    train_in_chunks(&task, &train_loader, &val_loader, &mut optimizer, &settings, &mut state, args.save_every, args.max_steps, &progress, out, &mut |state, optimizer| {
        save_checkpoint(out, vs, Some(optimizer), &meta_for(state))?;
        save_history(state)
    })?;
    eprintln!("training took {:.2} minutes", started.elapsed().as_secs_f64() / 60.0);

    if stop_requested() && !state.finished(&settings) {
        // Ctrl-C: the run with AdamW's state, to be resumed; no answers yet.
        return Err(Interrupted { resume: format!("llm finetune-dpo --resume {}", out.display()) }.into());
    }
    // A finished run keeps the policy alone; one cut short by --max-steps keeps AdamW's state
    // too, so that --resume can continue it.
    save_checkpoint(out, vs, (!state.finished(&settings)).then_some(&optimizer), &meta_for(&state))?;
    save_history(&state)?;
    let history = DpoHistory::from_history(&state.history);
    if !history.epochs.is_empty() {
        save_figure(out, "loss", &history.loss_plot())?;
        save_figure(out, "reward-margins", &history.reward_margin_plot())?;
    }

    // The book's section 6: the test instructions answered by the reference and by the policy.
    let test_entries = &test_data[..args.test_limit.unwrap_or(test_data.len()).min(test_data.len())];
    let answering = Progress::new(2 * test_entries.len() as u64, 0, "responses");
    let respond = |m: &GptModel, entry: &PreferenceEntry| -> Result<String> {
        let response = generate_response(m, &tokenizer, entry, args.max_new_tokens, cfg.context_length, device)?;
        answering.inc();
        Ok(response)
    };
    let mut answered = Vec::with_capacity(test_entries.len());
    for entry in test_entries {
        let reference_response = respond(&reference, entry)?;
        let policy_response = respond(model, entry)?;
        answered.push(AnsweredEntry { entry, reference_response, policy_response });
    }
    answering.finish();
    for a in answered.iter().take(3) {
        println!(
            "{}\n\nCorrect response:\n>> {}\n\nReference model response:\n>> {}\n\nPolicy model response:\n>> {}\n\n-------------------------------------",
            format_input(a.entry),
            a.entry.output,
            a.reference_response,
            a.policy_response
        );
    }
    save_json(out, DPO_RESPONSES_FILE, &answered)?;
    let mean = |f: &dyn Fn(&AnsweredEntry) -> f64| if answered.is_empty() { f64::NAN } else { answered.iter().map(f).sum::<f64>() / answered.len() as f64 };
    let scores = Scores {
        test_entries: answered.len(),
        reference_rouge_l_chosen: mean(&|a| rouge_l(&a.reference_response, &a.entry.chosen)),
        reference_rouge_l_rejected: mean(&|a| rouge_l(&a.reference_response, &a.entry.rejected)),
        policy_rouge_l_chosen: mean(&|a| rouge_l(&a.policy_response, &a.entry.chosen)),
        policy_rouge_l_rejected: mean(&|a| rouge_l(&a.policy_response, &a.entry.rejected)),
    };
    println!(
        "ROUGE-L against the chosen / rejected responses ({} test entries): reference {:.3} / {:.3}, policy {:.3} / {:.3}",
        scores.test_entries, scores.reference_rouge_l_chosen, scores.reference_rouge_l_rejected, scores.policy_rouge_l_chosen, scores.policy_rouge_l_rejected
    );
    save_json(out, "scores.json", &scores)?;
    eprintln!("aligned model, history.json, loss and reward-margin plots, {DPO_RESPONSES_FILE} and scores.json in {}", out.display());
    Ok(())
}
