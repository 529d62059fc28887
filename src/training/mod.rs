//! Chapter 5 and appendix D: losses, the training loop every chapter uses, sampling, AdamW,
//! learning-rate schedules and checkpoints. Imports `nn`, `text`, `viz` and utilities.
//!
//! | module | book |
//! |---|---|
//! | [`train`] | 5.1-5.2: losses, perplexity, evaluation, the training loop, `train_model_simple` and its history |
//! | [`generate`] | 5.3: temperature, top-k, `generate` |
//! | [`optim`] | 5.2: AdamW with savable state (resumable runs), gradient clipping (appendix D) |
//! | [`schedule`] | appendix D: linear warmup, cosine decay, gradient clipping, `train_model` |
//! | [`checkpoint`] | 5.4: checkpoints of model + AdamW + run state that resume exactly |

pub mod checkpoint;
pub mod generate;
pub mod optim;
pub mod schedule;
pub mod train;
