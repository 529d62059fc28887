//! # llm-from-scratch
//!
//! The book "Build a Large Language Model (From Scratch)" (S. Raschka, Manning 2024), chapter by
//! chapter, in Rust on libtorch (through [`tch`]). The notebooks in `notebooks/` explain each
//! chapter and call this library; `chapters/README.md` maps each chapter to its modules.
//!
//! | module | book |
//! |---|---|
//! | [`ch01`] | chapter 1: the GPT generations and their sizes |
//! | [`device`] | appendix A.9: choosing CUDA or the CPU; seeding (`torch.manual_seed`) |
//! | [`plot`] | the figures: charts drawn inline in notebooks and saved by the CLI |
//!
//! Every public item uses the book's names in Rust case (`GptModel`, `create_dataloader_v1`).

pub mod ch01;
pub mod device;
pub mod error;
pub mod plot;

pub use device::{device, device_report, load_libtorch_cuda, rng_lock, set_seed, DeviceReport};
pub use error::{Error, Result};
/// The `tch` crate this library is built on, re-exported so notebooks need only one `:dep`.
pub use tch;

/// Whether the notebooks and examples should run in quick mode: `LLM_QUICK=1` (set by the test
/// command and CI) shrinks models and data so every notebook runs in minutes on a CPU. The
/// learner's default (unset or `0`) is the book's full setup.
pub fn quick_mode() -> bool {
    std::env::var("LLM_QUICK").map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}
