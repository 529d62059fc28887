//! `llm finetune-instruct`: chapter 7's run from the command line. Finetune a GPT model on the
//! instruction data, then answer the test instructions and score the answers.
//!
//! ```text
//! llm finetune-instruct --out runs/instruct                       # the book's run (GPT-2 medium)
//! llm finetune-instruct --weights gpt2 --epochs 1 --out runs/small
//! llm finetune-instruct --model runs/verdict --out runs/mine      # start from your own pretraining
//! llm finetune-instruct --config tiny --test-limit 5 --out runs/quick   # random weights: a CPU smoke run
//! llm finetune-instruct --resume runs/instruct                    # continue a run stopped by Ctrl-C
//! llm finetune-instruct --prompt-style phi3 --out runs/phi3        # exercise 7.1: the Phi-3 prompt style
//! llm finetune-instruct --mask-instructions --out runs/masked      # exercise 7.2: the loss on the responses only
//! llm finetune-instruct --lora-rank 16 --lora-alpha 16 --out runs/lora   # exercise 7.4: LoRA
//! ```
//!
//! Ctrl-C (or SIGTERM) finishes the training step, saves the run with AdamW's state and prints the
//! command that resumes it (exit status 130); a finished run's checkpoint is the model alone.
//!
//! The book's setup is the default: OpenAI's GPT-2 medium (355M), the 1100 entries split
//! 935 / 110 / 55, batches of 8 cut at 1024 tokens, AdamW lr 5e-5 and weight decay 0.1, 2 epochs,
//! evaluation every 5 steps on 5 batches, seed 123, responses of up to 256 tokens; the Alpaca
//! prompt style, every target but the padding's counted, every parameter trained. The run's
//! prompt style, masking and LoRA rank are saved with it: `--resume` continues with them, and
//! `llm respond` / `llm chat` load the LoRA layers and ask in the run's prompt style.
//!
//! `--out` receives the finetuned model (`checkpoint.safetensors`, loadable by `llm respond` and
//! `llm chat`), `history.json`, `loss.svg`/`loss.png`, the test set with a `model_response` field
//! (`instruction-data-with-response.json`), and `scores.json`: the offline scores (ROUGE-L of the
//! responses, loss and perplexity of the reference responses) and, with `--judge-model`, the
//! judge's average score.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use llm_from_scratch::ch02::{BpeTokenizer, DataStore};
use llm_from_scratch::ch05::{evaluate_model, save_checkpoint, stop_requested, AdamW, CheckpointMeta, LossPlot, NextTokenTask, TrainSettings, TrainState};
use llm_from_scratch::appendix_e::{replace_linear_with_lora, train_only_lora};
use llm_from_scratch::ch02::DataLoader;
use llm_from_scratch::ch04::{num_parameters, num_trainable_parameters};
use llm_from_scratch::ch07::{
    average_score, instruction_data, load_instruction_data, mean_rouge_l, save_responses, set_drop_rate, train_test_val_split,
    ChatApi, InstructionDataset, InstructionEntry, Judge, PromptStyle, DEFAULT_JUDGE_MODEL, OLLAMA_CHAT_URL, RESPONSES_FILE,
};
use serde::Serialize;

use crate::model_source::{ModelArgs, ResumedRun};
use crate::interrupt::{stop_on_signals, Interrupted};
use crate::progress::{save_figure, save_json, train_in_chunks, Progress};

/// Arguments of `llm finetune-instruct`.
#[derive(Args, Debug, Clone)]
pub struct FinetuneInstructArgs {
    /// The model to finetune: OpenAI's GPT-2 medium (the book's) unless --weights, --model or
    /// --config says otherwise (--config alone: random weights, for quick runs).
    #[command(flatten)]
    pub model: ModelArgs,
    /// The instruction data (a JSON array of {instruction, input, output}); default: the book's
    /// instruction-data.json from the data folder (LLM_DATA_DIR), the cache, or a download.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 5e-5)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.1)]
    pub weight_decay: f64,
    /// Cut every batch to this many tokens (at most the model's context length).
    #[arg(long, default_value_t = 1024)]
    pub allowed_max_length: usize,
    /// Dropout rate during finetuning (the book's chapter 7 config has 0.0).
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Evaluate every this many steps.
    #[arg(long, default_value_t = 5)]
    pub eval_freq: i64,
    /// Batches per evaluation.
    #[arg(long, default_value_t = 5)]
    pub eval_iter: usize,
    /// Tokens of the greedy sample printed after each epoch (the book's 50).
    #[arg(long, default_value_t = 50)]
    pub sample_tokens: i64,
    /// Stop training after this many steps.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Longest response generated for a test instruction, in tokens.
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: i64,
    /// Answer only the first this many test instructions (all 110 by default).
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Score the test responses with this judge model (e.g. `llama3`; see --judge-url).
    #[arg(long)]
    pub judge_model: Option<String>,
    /// The judge's chat endpoint: Ollama's /api/chat or an OpenAI-compatible /v1/chat/completions.
    #[arg(long, default_value = OLLAMA_CHAT_URL)]
    pub judge_url: String,
    /// The judge's API. An API key, if needed, is read from LLM_JUDGE_API_KEY.
    #[arg(long, value_enum, default_value_t = JudgeApi::Ollama)]
    pub judge_api: JudgeApi,
    /// The prompt style: the book's `alpaca`, or `phi3` (exercise 7.1). Saved with the model, so
    /// `llm respond` and `llm chat` ask it in the same style.
    #[arg(long, value_enum, default_value_t = PromptStyleArg::Alpaca)]
    pub prompt_style: PromptStyleArg,
    /// Exercise 7.2: ignore the targets of the instruction and input tokens (-100), so that the
    /// loss is the response's only.
    #[arg(long)]
    pub mask_instructions: bool,
    /// Exercise 7.4: freeze the model and train LoRA updates of this rank on every linear layer
    /// (appendix E) instead of every parameter.
    #[arg(long)]
    pub lora_rank: Option<i64>,
    /// LoRA's alpha (the update is scaled by alpha / rank); default: the rank.
    #[arg(long, requires = "lora_rank")]
    pub lora_alpha: Option<f64>,
    /// Output folder.
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run that Ctrl-C stopped in this folder (its data, model and training settings
    /// are reused: leave out the model and training flags), then answer and score as usual.
    #[arg(long)]
    pub resume: Option<PathBuf>,
}

/// What the checkpoint of a run remembers to rebuild it on --resume (its `extra` metadata).
#[derive(Debug, Serialize, serde::Deserialize)]
struct RunData {
    finetuned: String,
    base: String,
    data: String,
    /// The --data file, if one was given (else the book's file from the data folder).
    #[serde(default)]
    data_file: Option<PathBuf>,
    batch_size: usize,
    allowed_max_length: usize,
    lr: f64,
    weight_decay: f64,
    /// The prompt style (read back by `llm respond` and `llm chat`).
    #[serde(default)]
    prompt_style: PromptStyle,
    #[serde(default)]
    mask_instructions: bool,
    /// `(rank, alpha)` of the LoRA updates (the model loads with them: `LoadedModel::from_checkpoint`).
    #[serde(default)]
    lora: Option<(i64, f64)>,
}

/// `--prompt-style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PromptStyleArg {
    /// Listing 7.2's Alpaca prompt (`### Instruction:`, `### Input:`, `### Response:`).
    Alpaca,
    /// Exercise 7.1's Phi-3 prompt (`<|user|>`, `<|assistant|>:`).
    Phi3,
}

impl From<PromptStyleArg> for PromptStyle {
    fn from(arg: PromptStyleArg) -> Self {
        match arg {
            PromptStyleArg::Alpaca => PromptStyle::Alpaca,
            PromptStyleArg::Phi3 => PromptStyle::Phi3,
        }
    }
}

impl From<PromptStyle> for PromptStyleArg {
    fn from(style: PromptStyle) -> Self {
        match style {
            PromptStyle::Alpaca => PromptStyleArg::Alpaca,
            PromptStyle::Phi3 => PromptStyleArg::Phi3,
        }
    }
}

/// `--judge-api`: which chat API the judge's server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JudgeApi {
    /// Ollama's `/api/chat`.
    Ollama,
    /// OpenAI's `/v1/chat/completions` (also vLLM, llama.cpp, LM Studio).
    Openai,
}

impl From<JudgeApi> for ChatApi {
    fn from(api: JudgeApi) -> Self {
        match api {
            JudgeApi::Ollama => ChatApi::Ollama,
            JudgeApi::Openai => ChatApi::OpenAi,
        }
    }
}

#[derive(Debug, Serialize)]
struct Scores {
    test_entries: usize,
    /// Mean ROUGE-L F1 of the responses against the reference outputs.
    rouge_l: Option<f64>,
    /// Mean cross-entropy of the reference responses given their prompts, and its exp.
    response_loss: f64,
    response_perplexity: f64,
    judge_model: Option<String>,
    judge_scores: Option<Vec<Option<u8>>>,
    judge_average: Option<f64>,
}

pub fn run(args: FinetuneInstructArgs) -> Result<()> {
    stop_on_signals();
    // --resume: the stopped run's checkpoint; its data and training flags replace the command line's.
    let (args, resumed) = match &args.resume {
        Some(dir) => {
            let ResumedRun { ckpt, run_data, settings, model } = ResumedRun::<RunData>::read(dir, &args.model, "finetune-instruct")?;
            let args = FinetuneInstructArgs {
                model,
                data: run_data.data_file.clone(),
                epochs: settings.num_epochs,
                batch_size: run_data.batch_size,
                lr: run_data.lr,
                weight_decay: run_data.weight_decay,
                allowed_max_length: run_data.allowed_max_length,
                drop_rate: ckpt.meta.config.drop_rate,
                eval_freq: settings.eval_freq,
                eval_iter: settings.eval_iter,
                sample_tokens: settings.sample_tokens,
                prompt_style: run_data.prompt_style.into(),
                mask_instructions: run_data.mask_instructions,
                lora_rank: run_data.lora.map(|(rank, _)| rank),
                lora_alpha: run_data.lora.map(|(_, alpha)| alpha),
                out: Some(dir.clone()),
                ..args.clone()
            };
            (args, Some((ckpt, run_data.base, settings)))
        }
        None => (args, None),
    };
    let report = llm_from_scratch::device_report();
    eprintln!("{report}");
    let device = report.device;
    check_batch_args(args.batch_size, args.allowed_max_length)?;

    // Data: the book's file through the data module, or the given one; split 85 / 10 / 5.
    let data = match &args.data {
        Some(path) => load_instruction_data(path)?,
        None => instruction_data(&DataStore::from_env())?,
    };
    let (train_data, test_data, val_data) = train_test_val_split(&data);
    eprintln!("{} entries: {} training, {} test, {} validation", data.len(), train_data.len(), test_data.len(), val_data.len());
    check_enough_entries(train_data.len(), val_data.len(), args.batch_size)?;

    // Model: GPT-2 medium by default.
    let mut source = args.model.clone();
    if source.is_unset() {
        source.weights = Some("gpt2-medium".to_string());
    }
    let seed = source.seed;
    let mut loaded = source.load(device).context("loading the model to finetune")?;
    if !(0.0..1.0).contains(&args.drop_rate) {
        bail!("--drop-rate must be in [0, 1), not {}", args.drop_rate);
    }
    loaded.cfg.drop_rate = args.drop_rate;
    set_drop_rate(&mut loaded.model, args.drop_rate);
    // Exercise 7.4: only LoRA updates train. A resumed run's model, or a --model finetuned with
    // LoRA, is loaded with its own LoRA layers, which go on training.
    let lora = match (args.lora_rank, loaded.lora()) {
        (Some(_), Some(_)) if resumed.is_none() => bail!("the model has LoRA updates already: finetune it without --lora-rank"),
        (Some(rank), None) => {
            if rank < 1 {
                bail!("--lora-rank must be at least 1");
            }
            let alpha = args.lora_alpha.unwrap_or(rank as f64);
            let _rng = llm_from_scratch::rng_lock();
            llm_from_scratch::set_seed(seed); // LoRA's A matrices are drawn at random
            replace_linear_with_lora(&mut loaded.model, &loaded.vs, rank, alpha);
            Some((rank, alpha))
        }
        (_, loaded_lora) => loaded_lora,
    };
    if lora.is_some() {
        train_only_lora(&loaded.vs);
    }
    let style = PromptStyle::from(args.prompt_style);
    let cfg = loaded.cfg.clone();
    let (vs, model) = (&loaded.vs, &loaded.model);
    let allowed_max_length = args.allowed_max_length.min(cfg.context_length as usize);

    let tokenizer = BpeTokenizer::gpt2()?;
    // Section 7.4's loaders, in the chosen prompt style, with the prompts' targets masked when asked (exercise 7.2).
    let dataset = |data: &[InstructionEntry]| -> Result<InstructionDataset> {
        Ok(InstructionDataset::with_style(data, &tokenizer, style)?
            .with_allowed_max_length(Some(allowed_max_length))
            .with_prompt_masking(args.mask_instructions))
    };
    let train_loader = DataLoader::new(dataset(&train_data)?, args.batch_size, true, true, seed)?;
    let val_loader = DataLoader::new(dataset(&val_data)?, args.batch_size, false, false, seed)?;
    let (train_loss, val_loss) = evaluate_model(model, &train_loader, &val_loader, device, args.eval_iter);
    println!("Training loss: {train_loss:.3}");
    println!("Validation loss: {val_loss:.3}");

    let mut settings = TrainSettings {
        seed,
        sample_tokens: args.sample_tokens,
        ..TrainSettings::book(args.epochs, args.eval_freq, args.eval_iter, &style.format_input(&val_data[0]))
    };
    let mut state = TrainState::default();
    let mut optimizer = AdamW::new(vs, args.lr, args.weight_decay);
    let mut base = source.describe();
    if let Some((ckpt, run_base, run_settings)) = &resumed {
        ckpt.load_optimizer(&mut optimizer)?;
        (settings, state, base) = (run_settings.clone(), ckpt.meta.state.clone(), run_base.clone());
        eprintln!("resuming {} at step {} (epoch {})", ckpt.path.display(), state.steps_done, state.epoch + 1);
    }
    let total_steps = (args.epochs * train_loader.len()).min(args.max_steps.map_or(usize::MAX, |n| n + state.steps_done as usize));
    let progress = Progress::new(total_steps as u64, state.steps_done as u64, "steps");
    eprintln!(
        "finetuning {} of {} parameters{} on {} batches of up to {} x {allowed_max_length} tokens per epoch, {} epochs, {:?} prompts{}",
        num_trainable_parameters(vs),
        num_parameters(vs),
        lora.map_or(String::new(), |(r, a)| format!(" (LoRA rank {r} alpha {a})")),
        train_loader.len(),
        args.batch_size,
        args.epochs,
        style,
        if args.mask_instructions { ", instruction and input targets masked" } else { "" },
    );
    let started = std::time::Instant::now();
    let out = args.out.as_ref().expect("clap requires --out or --resume");
    let run_data = serde_json::to_value(RunData {
        finetuned: "instruct".into(),
        base,
        data: args.data.as_ref().map_or("instruction-data.json".to_string(), |p| p.display().to_string()),
        data_file: args.data.clone(),
        batch_size: args.batch_size,
        allowed_max_length,
        lr: args.lr,
        weight_decay: args.weight_decay,
        prompt_style: style,
        mask_instructions: args.mask_instructions,
        lora,
    })?;
    let meta_for = |state: &TrainState| CheckpointMeta {
        settings: Some(settings.clone()),
        state: state.clone(),
        extra: run_data.clone(),
        ..CheckpointMeta::model_only(&cfg)
    };

    // Train to the end of each epoch, then save the run with AdamW's state (resumable), so a crash
    // loses at most an epoch; a Ctrl-C saves where it stopped.
    let task = NextTokenTask::new(model, &tokenizer, device, cfg.context_length);
    train_in_chunks(&task, &train_loader, &val_loader, &mut optimizer, &settings, &mut state, None, args.max_steps, &progress, out, &mut |state, optimizer| {
        save_checkpoint(out, vs, Some(optimizer), &meta_for(state))?;
        save_json(out, "history.json", &state.history)
    })?;
    eprintln!("training took {:.2} minutes", started.elapsed().as_secs_f64() / 60.0);

    let meta = meta_for(&state);
    if stop_requested() && !state.finished(&settings) {
        // Ctrl-C: the run with AdamW's state, to be resumed; no answers or scores yet.
        return Err(Interrupted { resume: format!("llm finetune-instruct --resume {}", out.display()) }.into());
    }
    // A finished run keeps the model alone; one cut short by --max-steps keeps AdamW's state too,
    // so that --resume can continue it.
    save_checkpoint(out, vs, (!state.finished(&settings)).then_some(&optimizer), &meta)?;
    save_json(out, "history.json", &state.history)?;
    if !state.history.epochs.is_empty() {
        save_figure(out, "loss", &LossPlot::from_history(&state.history))?;
    }

    // Section 7.7: answer the test instructions, save them with the responses.
    let test_entries = &test_data[..args.test_limit.unwrap_or(test_data.len()).min(test_data.len())];
    let answering = Progress::new(test_entries.len() as u64, 0, "responses");
    let answered = style.generate_responses(model, &tokenizer, test_entries, args.max_new_tokens, cfg.context_length, device, &mut |_| answering.inc())?;
    answering.finish();
    for entry in answered.iter().take(3) {
        println!("{}\n\nCorrect response:\n>> {}\n\nModel response:\n>> {}\n-------------------------------------", style.format_input(entry), entry.output, entry.model_response.as_deref().unwrap_or(""));
    }
    save_responses(out.join(RESPONSES_FILE), &answered)?;

    // Section 7.8: offline scores, and the judge's when asked for.
    let loss = style.response_loss(model, &tokenizer, &test_data, args.batch_size, Some(allowed_max_length), device)?;
    let (judge_scores, judge_average) = match &args.judge_model {
        Some(name) => {
            let mut judge = Judge::new(args.judge_api.into(), &args.judge_url, name);
            judge.api_key = std::env::var("LLM_JUDGE_API_KEY").ok().filter(|k| !k.is_empty());
            let scoring = Progress::new(answered.len() as u64, 0, "scores");
            let scores = judge.generate_model_scores(&answered, &mut |_, _| scoring.inc())?;
            scoring.finish();
            let average = average_score(&scores);
            println!("Number of scores: {} of {}", scores.iter().flatten().count(), scores.len());
            if let Some(avg) = average {
                println!("Average score: {avg:.2}");
            }
            (Some(scores), average)
        }
        None => {
            eprintln!("no --judge-model: skipping the judge (e.g. --judge-model {DEFAULT_JUDGE_MODEL} with Ollama running)");
            (None, None)
        }
    };
    let scores = Scores {
        test_entries: answered.len(),
        rouge_l: mean_rouge_l(&answered),
        response_loss: loss,
        response_perplexity: loss.exp(),
        judge_model: args.judge_model.clone(),
        judge_scores,
        judge_average,
    };
    if let Some(r) = scores.rouge_l {
        println!("ROUGE-L of the {} test responses: {r:.3}", answered.len());
    }
    println!("Loss on the reference test responses: {loss:.3} (perplexity {:.2})", loss.exp());
    save_json(out, "scores.json", &scores)?;
    eprintln!("finetuned model, history.json, loss plots, {RESPONSES_FILE} and scores.json in {}", out.display());
    Ok(())
}

/// The batch options of the commands that train on instruction data (finetune-instruct,
/// finetune-dpo): a batch of at least one entry, of at least an input token and its target.
pub fn check_batch_args(batch_size: usize, allowed_max_length: usize) -> Result<()> {
    if batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if allowed_max_length < 2 {
        bail!("--allowed-max-length must be at least 2 (an input token and its target), not {allowed_max_length}");
    }
    Ok(())
}

/// The split of such a command leaves a full training batch and a validation entry.
pub fn check_enough_entries(train: usize, val: usize, batch_size: usize) -> Result<()> {
    if train < batch_size || val == 0 {
        bail!("{train} training entries make no full batch of {batch_size} (or there is no validation entry): use more data or a smaller --batch-size");
    }
    Ok(())
}
