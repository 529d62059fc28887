//! `llm pretrain`: chapter 5's training run from the command line, with a progress bar,
//! checkpoints that resume, the history as JSON and the loss plot as SVG and PNG.
//!
//! ```text
//! llm pretrain --data the-verdict.txt --out runs/verdict            # the book's run (5.2)
//! llm pretrain --resume runs/verdict --epochs 12                    # continue it, 2 more epochs
//! llm pretrain --data the-verdict --out runs/d --epochs 15 --lr 1e-3 --warmup-steps 27 --clip 1.0  # appendix D
//! llm pretrain --weights gpt2 --data my-text.txt --lr 5e-5 --out runs/more   # continue OpenAI's GPT-2 on a text
//! llm pretrain --nproc 2 --data the-verdict --batch-size 1 --out runs/ddp    # data parallel: 2 processes, global batch 2
//! ```
//!
//! Data-parallel training (appendix A.9.3, [`crate::launch`]): `--nproc N` starts N workers
//! (or the program joins a group from torchrun's `RANK`/`WORLD_SIZE`/`MASTER_*`). Each worker
//! trains a copy of the model on its shard of every epoch (`DistributedSampler`), with
//! `--batch-size` examples per step, and the gradients are averaged (`training::ddp`): a step
//! takes a global batch of `world size x batch size` windows, the batch one process would take
//! with that `--batch-size`. Rank 0 alone prints and writes the run folder. The checkpoint counts
//! global batches, so `--resume` continues with any number of processes that divides the global
//! batch.
//!
//! The book's setup is the default: gpt2-small at context 256, batch 2, AdamW lr 4e-4 and weight
//! decay 0.1, 10 epochs, evaluation every 5 steps on 5 batches, seed 123; the text is split
//! 90/10 by characters into training and validation data.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use llm_from_scratch::ch02::{create_dataloader_v1, BpeTokenizer, DataStore, THE_VERDICT};
use llm_from_scratch::text::sampler::DistributedSampler;
use llm_from_scratch::training::ddp::{DataParallelTask, DistributedDataParallel, DEFAULT_BUCKET_CAP_MB};
use llm_from_scratch::util::dist::{has_nccl, Backend, ProcessGroup};
use llm_from_scratch::appendix_d::{LrSchedule, TrainExtras};
use llm_from_scratch::ch05::{
    read_checkpoint, save_checkpoint, stop_requested, train_steps, AdamW, CheckpointMeta, LossPlot, NextTokenTask, TrainEvent, TrainSettings, TrainState,
};
use serde::{Deserialize, Serialize};

use crate::interrupt::{stop_on_signals, Interrupted};
use crate::launch::{launch, DistEnv, Launch, LAUNCHED};
use crate::model_source::{LoadedModel, ModelArgs};
use crate::progress::{save_figure, save_json, steps_to_next_save, training_failed, Progress};

/// Arguments of `llm pretrain`.
#[derive(Args, Debug)]
pub struct PretrainArgs {
    /// The training text: a UTF-8 file, or `the-verdict` (the book's short story, from the data folder).
    #[arg(long, required_unless_present = "resume")]
    pub data: Option<String>,
    /// The model to train: a new one from --config (GPT-2 small by default), OpenAI's GPT-2
    /// (`--weights gpt2`: continue pretraining it), or the model of a run folder (`--model DIR`,
    /// with a fresh optimizer; --resume continues a run exactly instead).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Tokens per training window, and the context length of a new model (overrides the
    /// config's; the book trains at 256). Pretrained models keep theirs; the windows are cut to it.
    #[arg(long, default_value_t = 256)]
    pub context_length: i64,
    #[arg(long, default_value_t = 2)]
    pub batch_size: usize,
    /// Total epochs (with --resume: train until this many epochs are done).
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 4e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.1)]
    pub weight_decay: f64,
    /// Evaluate every this many steps.
    #[arg(long, default_value_t = 5)]
    pub eval_freq: i64,
    /// Batches per evaluation.
    #[arg(long, default_value_t = 5)]
    pub eval_iter: usize,
    /// Fraction of the text (by characters) used for training; the rest validates.
    #[arg(long, default_value_t = 0.9)]
    pub train_ratio: f64,
    /// Prompt of the greedy sample printed after each epoch.
    #[arg(long, default_value = "Every effort moves you")]
    pub start_context: String,
    /// Also save a checkpoint every this many steps (always after each epoch and at the end).
    #[arg(long)]
    pub save_every: Option<i64>,
    /// Stop after this many steps (the checkpoint can be resumed).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Output folder: checkpoint, history.json, loss.svg, loss.png.
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run saved in this folder (its data, model and settings are reused).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub dist: DistArgs,
}

/// Data-parallel training (appendix A.9.3), with torchrun's names.
#[derive(Args, Debug, Clone)]
pub struct DistArgs {
    /// Data-parallel training: start this many worker processes on this machine (torchrun's
    /// --nproc-per-node), each training on its shard with --batch-size examples per step.
    #[arg(long)]
    pub nproc: Option<usize>,
    /// With --nproc: the number of machines (each runs `llm pretrain --nproc N --node-rank k ...`).
    #[arg(long, default_value_t = 1)]
    pub nnodes: usize,
    /// With --nproc: this machine's index, 0..nnodes (0 hosts rank 0 and the rendezvous).
    #[arg(long, default_value_t = 0)]
    pub node_rank: usize,
    /// With --nproc: the address of rank 0's machine [default: MASTER_ADDR, else 127.0.0.1].
    #[arg(long)]
    pub master_addr: Option<String>,
    /// With --nproc: the rendezvous port on that machine [default: MASTER_PORT, else a free port
    /// on one machine, 29500 on several].
    #[arg(long)]
    pub master_port: Option<u16>,
    /// Seconds a worker waits for the others (rendezvous and each collective) before failing.
    #[arg(long, default_value_t = 1800)]
    pub dist_timeout: u64,
    /// Gradients averaged per all-reduce, in MiB (DDP's bucket_cap_mb).
    #[arg(long, default_value_t = DEFAULT_BUCKET_CAP_MB)]
    pub bucket_cap_mb: f64,
}

/// Appendix D's flags, shared by `llm pretrain` and `llm finetune-spam`.
#[derive(Args, Debug, Clone)]
pub struct ScheduleArgs {
    /// Appendix D: warm the learning rate up linearly from --initial-lr to --lr over this many
    /// steps, then decay it along a cosine to --min-lr (default: a constant --lr).
    #[arg(long)]
    pub warmup_steps: Option<i64>,
    /// Appendix D: the learning rate of the first warmup step.
    #[arg(long, default_value_t = 1e-5)]
    pub initial_lr: f64,
    /// Appendix D: the learning rate the cosine decay ends at.
    #[arg(long, default_value_t = 1e-5)]
    pub min_lr: f64,
    /// Appendix D: clip the global gradient norm to this from the end of warmup on (the book: 1.0).
    #[arg(long)]
    pub clip: Option<f64>,
}

impl ScheduleArgs {
    /// The extras these flags ask for around the peak learning rate `peak_lr`, if any.
    pub fn extras_args(&self, peak_lr: f64) -> Option<ExtrasArgs> {
        (self.warmup_steps.is_some() || self.clip.is_some()).then_some(ExtrasArgs {
            peak_lr,
            initial_lr: self.initial_lr,
            min_lr: self.min_lr,
            warmup_steps: self.warmup_steps,
            clip: self.clip,
        })
    }
}

/// Appendix D's extras of a run, remembered in the checkpoint so that --resume keeps them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtrasArgs {
    peak_lr: f64,
    initial_lr: f64,
    min_lr: f64,
    warmup_steps: Option<i64>,
    clip: Option<f64>,
}

impl ExtrasArgs {
    /// The schedule over `total_steps` (a constant --lr without --warmup-steps) and the clipping.
    pub fn extras(&self, total_steps: i64) -> Result<TrainExtras> {
        let schedule = match self.warmup_steps {
            Some(warmup) => LrSchedule::new(self.initial_lr, self.peak_lr, self.min_lr, warmup, total_steps)?,
            None => LrSchedule::new(self.peak_lr, self.peak_lr, self.peak_lr, 0, total_steps)?,
        };
        Ok(TrainExtras { schedule, clip_max_norm: self.clip })
    }
}

/// What the CLI remembers in the checkpoint to rebuild the same loaders on --resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunData {
    data: String,
    batch_size: usize,
    train_ratio: f64,
    #[serde(default)]
    extras: Option<ExtrasArgs>,
    /// Tokens per training window (runs saved before this field existed used the model's
    /// context length).
    #[serde(default)]
    window: Option<usize>,
    /// What the model was built from (`--weights`, `--model` or `--config`).
    #[serde(default)]
    base: Option<String>,
    /// Whether the epochs' orders come from `DistributedSampler` (runs since data-parallel
    /// training: `torch.randperm` seeded with seed + epoch, the global order for any number of
    /// processes); `batch_size` is then the global batch. Older runs: the loader's own shuffle.
    #[serde(default)]
    sampler: bool,
}

fn read_text(data: &str) -> Result<String> {
    if data == "the-verdict" {
        return Ok(DataStore::from_env().read_to_string(&THE_VERDICT)?);
    }
    std::fs::read_to_string(data).with_context(|| format!("reading the training text {data}"))
}

pub fn run(args: PretrainArgs) -> Result<()> {
    let d = &args.dist;
    if let (Some(nproc), None) = (d.nproc, std::env::var_os(LAUNCHED)) {
        return launch(&Launch::new(nproc, d.nnodes, d.node_rank, d.master_addr.clone(), d.master_port)?);
    }
    stop_on_signals();
    let dist = DistEnv::from_env()?;
    let (rank, world) = dist.map_or((0, 1), |e| (e.rank, e.world_size));
    let rank0 = rank == 0;
    let report = llm_from_scratch::device_report();
    if rank0 {
        eprintln!("{report}");
    }
    let mut device = report.device;
    // Join the group first: a missing rank fails here, after --dist-timeout.
    let group = match dist {
        None => None,
        Some(env) => {
            let backend = if device.is_cuda() && has_nccl() { Backend::Nccl } else { Backend::Gloo };
            if device.is_cuda() {
                device = if backend == Backend::Nccl { tch::Device::Cuda(env.local_rank) } else { tch::Device::Cpu };
            }
            let timeout = std::time::Duration::from_secs(args.dist.dist_timeout);
            let group = ProcessGroup::from_env(backend, timeout).with_context(|| format!("rank {rank} of {world}: joining the process group"))?;
            if rank0 {
                eprintln!("data parallel: {world} processes ({backend:?}), this one on {device:?}");
            }
            Some(group)
        }
    };

    // Model, optimizer, settings and position: fresh, or from the checkpoint.
    let resumed = args
        .resume
        .as_ref()
        .map(|dir| read_checkpoint(dir).with_context(|| format!("--resume {}: reading the run's checkpoint", dir.display())))
        .transpose()?;
    if resumed.is_some() && !args.model.is_unset() {
        bail!("--resume continues a run with its own model: leave out --config, --weights and --model");
    }
    let (vs, model, cfg, run_data, mut settings, mut state) = match &resumed {
        Some(ckpt) => {
            let run_data: RunData = serde_json::from_value(ckpt.meta.extra.clone())
                .with_context(|| format!("{}: no `llm pretrain` run data in this checkpoint", ckpt.path.display()))?;
            let settings = ckpt.meta.settings.clone().context("the checkpoint has no training settings")?;
            let loaded = LoadedModel::from_checkpoint(ckpt, device)?;
            (loaded.vs, loaded.model, loaded.cfg, run_data, settings, ckpt.meta.state.clone())
        }
        None => {
            let loaded = args.model.load_with_context(device, Some(args.context_length))?;
            let window = (args.context_length.max(1) as usize).min(loaded.cfg.context_length as usize);
            let run_data = RunData {
                data: args.data.clone().expect("clap requires --data"),
                batch_size: args.batch_size * world,
                train_ratio: args.train_ratio,
                extras: args.schedule.extras_args(args.lr),
                window: Some(window),
                base: Some(args.model.describe()),
                sampler: true,
            };
            let settings = TrainSettings {
                seed: args.model.seed,
                ..TrainSettings::book(args.epochs.unwrap_or(10), args.eval_freq, args.eval_iter, &args.start_context)
            };
            (loaded.vs, loaded.model, loaded.cfg, run_data, settings, TrainState::default())
        }
    };
    if let Some(epochs) = args.epochs {
        settings.num_epochs = epochs;
    }
    let out: PathBuf = args.out.clone().or_else(|| args.resume.clone()).expect("clap requires --out or --resume");
    if !(0.0..1.0).contains(&run_data.train_ratio) || run_data.train_ratio == 0.0 {
        bail!("--train-ratio must be between 0 and 1 (exclusive), not {}", run_data.train_ratio);
    }

    let text = read_text(&run_data.data)?;
    let split = text.char_indices().nth((run_data.train_ratio * text.chars().count() as f64) as usize).map_or(text.len(), |(i, _)| i);
    let (train_text, val_text) = text.split_at(split);
    let tokenizer = BpeTokenizer::gpt2()?;
    let context = run_data.window.unwrap_or(cfg.context_length as usize);
    // Each rank's batch: its share of the global batch (the same global batches for any world size).
    if !run_data.sampler && world > 1 {
        bail!("this run was started before data-parallel training: continue it in one process");
    }
    if run_data.batch_size % world != 0 {
        bail!("the global batch of {} windows does not split over {world} processes", run_data.batch_size);
    }
    let batch_size = run_data.batch_size / world;
    let mut train_loader = create_dataloader_v1(train_text, &tokenizer, batch_size, context, context, true, true, settings.seed)
        .context("the training part of the text")?;
    let mut val_loader = create_dataloader_v1(val_text, &tokenizer, batch_size, context, context, false, false, settings.seed)
        .context("the validation part of the text")?;
    if run_data.sampler {
        let n = train_loader.dataset.len();
        train_loader = train_loader.with_sampler(DistributedSampler::new(n, world, rank, true, settings.seed, true)?)?;
        let n = val_loader.dataset.len();
        val_loader = val_loader.with_sampler(DistributedSampler::new(n, world, rank, false, settings.seed, false)?)?;
    }
    if train_loader.is_empty() {
        bail!("the training text gives no full batch of {} x {context} tokens: use a longer text or smaller --batch-size/--context-length", run_data.batch_size);
    }
    // DDP: rank 0's weights on every rank, then gradients averaged bucket by bucket.
    let ddp = group.map(|g| DistributedDataParallel::new(g, &vs, args.dist.bucket_cap_mb)).transpose()?;

    let mut optimizer = AdamW::new(&vs, args.lr, args.weight_decay);
    if let Some(ckpt) = &resumed {
        ckpt.load_optimizer(&mut optimizer)?;
    }

    let total_steps = (settings.num_epochs * train_loader.len()) as u64;
    settings.extras = run_data.extras.as_ref().map(|e| e.extras(total_steps as i64)).transpose()?;
    if let Some(e) = settings.extras.as_ref().filter(|_| rank0) {
        let s = &e.schedule;
        eprintln!(
            "learning rate: {} warmup steps from {:e} to {:e}, cosine decay to {:e} over {} steps; gradient clipping: {}",
            s.warmup_steps,
            s.initial_lr,
            s.peak_lr,
            s.min_lr,
            s.total_steps,
            e.clip_max_norm.map_or("off".to_string(), |n| format!("max norm {n}"))
        );
    }
    let progress = if rank0 { Progress::new(total_steps, state.steps_done as u64, "steps") } else { Progress::quiet() };
    if rank0 {
        let per_rank = if world > 1 { format!(" ({world} processes x {batch_size})") } else { String::new() };
        eprintln!(
            "training {} parameters on {} training / {} validation batches of {}{per_rank} x {context} tokens, {} epochs",
            llm_from_scratch::ch04::num_parameters(&vs),
            train_loader.len(),
            val_loader.len(),
            run_data.batch_size,
            settings.num_epochs
        );
    }
    let meta_for = |state: &TrainState, optimizer: &AdamW| CheckpointMeta {
        optimizer: Some(optimizer.hyper_parameters()),
        settings: Some(settings.clone()),
        state: state.clone(),
        extra: serde_json::to_value(&run_data).expect("run data serialises"),
        ..CheckpointMeta::model_only(&cfg)
    };

    // Train in chunks between saves: up to --save-every steps, or to the end of the epoch.
    let task = NextTokenTask::new(&model, &tokenizer, device, cfg.context_length);
    let mut steps_left = args.max_steps.unwrap_or(usize::MAX);
    while !state.finished(&settings) && steps_left > 0 {
        let save_every = args.save_every.map(|n| n.max(1) as usize);
        let chunk = steps_to_next_save(train_loader.len(), state.batch_in_epoch, save_every, steps_left);
        let mut on_event = |event: &TrainEvent| progress.train_event(event);
        let trained = match &ddp {
            Some(ddp) => {
                let task = DataParallelTask { task: &task, ddp };
                train_steps(&task, &train_loader, &val_loader, &mut optimizer, &settings, &mut state, Some(chunk), &mut on_event)
            }
            None => train_steps(&task, &train_loader, &val_loader, &mut optimizer, &settings, &mut state, Some(chunk), &mut on_event),
        };
        if let Err(e) = trained {
            if !rank0 {
                return Err(e.into());
            }
            return Err(training_failed(&progress, &out, e)); // the last checkpoint is not replaced by the diverged state
        }
        steps_left -= chunk;
        if rank0 {
            save_checkpoint(&out, &vs, Some(&optimizer), &meta_for(&state, &optimizer))?;
        }
        if stop_requested() {
            break; // Ctrl-C: the run is saved; write its history, then say how to resume it
        }
    }
    progress.finish();
    if !rank0 {
        return Ok(()); // rank 0 writes the run's files
    }
    save_json(&out, "history.json", &state.history)?;
    if !state.history.epochs.is_empty() {
        save_figure(&out, "loss", &LossPlot::from_history(&state.history))?;
    }
    eprintln!(
        "{} steps, {} tokens seen; checkpoint, history.json, loss.svg and loss.png in {}",
        state.steps_done,
        state.tokens_seen,
        out.display()
    );
    if stop_requested() && !state.finished(&settings) {
        return Err(Interrupted { resume: format!("llm pretrain --resume {}", out.display()) }.into());
    }
    Ok(())
}
