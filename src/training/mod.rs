//! Chapter 5 and appendix D: losses, the training loop every chapter uses, sampling, AdamW,
//! learning-rate schedules and checkpoints. Imports `nn`, `text`, `viz` and utilities.
//!
//! | module | book |
//! |---|---|
//! | [`trainer`] | 5.2's training loop, once for every chapter: a task (batch loss, unit, end-of-epoch report), its settings (appendix D's extras included), state and history, events; loss over a loader |
//! | [`train`] | 5.1-5.2: losses, perplexity, evaluation, chapter 5's task, `train_model_simple`; appendix D's `train_model` |
//! | [`generate`] | 5.3: temperature, top-k, `generate` |
//! | [`optim`] | 5.2: AdamW with savable state (resumable runs), gradient clipping (appendix D) |
//! | [`schedule`] | appendix D: linear warmup, cosine decay, gradient clipping |
//! | `ddp` | appendix A.9.3: data-parallel training (`DistributedDataParallel`): broadcast weights, bucketed gradient averaging (feature `dist`) |
//! | [`checkpoint`] | 5.4: checkpoints of model + AdamW + run state that resume exactly |
//! | [`interrupt`] | (not in the book) a request to stop the training loop before its next step: Ctrl-C in `llm` |

pub mod checkpoint;
#[cfg(feature = "dist")]
pub mod ddp;
pub mod generate;
pub mod interrupt;
pub mod optim;
pub mod schedule;
pub mod train;
pub mod trainer;
