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
//! | [`attention`] | chapter 3: attention without weights, self-attention, causal and multi-head attention |
//! | [`config`] | chapter 4.1: `GptConfig` and its presets (124M ... 1558M, tiny) |
//! | [`layers`], [`init`] | `nn.Linear`, `nn.Embedding`, `nn.Dropout` with PyTorch's initialisation and order |
//! | [`model`] | chapter 4: `LayerNorm`, `Gelu`, `FeedForward`, `TransformerBlock`, `GptModel`, greedy generation, safetensors |
//! | [`figures`] | more figures: the attention heat map |
//!
//! The chapter modules [`ch03`] and [`ch04`] re-export what each chapter introduces, as the
//! book's `llms_from_scratch.ch04` does.
//!
//! Every public item uses the book's names in Rust case (`GptModel`, `create_dataloader_v1`).

pub mod attention;
pub mod ch01;
pub mod config;
pub mod device;
pub mod error;
pub mod figures;
pub mod init;
pub mod layers;
pub mod model;
pub mod plot;

/// Chapter 3, "Coding attention mechanisms": everything the chapter introduces.
pub mod ch03 {
    pub use crate::attention::{
        attention_scores_for_query, attention_scores_simple, attention_weights_simple, causal_mask,
        context_vectors_simple, softmax_naive, your_journey_inputs, AttentionImpl, CausalAttention,
        MultiHeadAttention, MultiHeadAttentionWrapper, SelfAttentionV1, SelfAttentionV2, YOUR_JOURNEY_WORDS,
    };
    pub use crate::figures::HeatMap;
    pub use crate::layers::{Dropout, Linear};
}

/// Chapter 4, "Implementing a GPT model from scratch to generate text".
pub mod ch04 {
    pub use crate::attention::{AttentionImpl, MultiHeadAttention};
    pub use crate::config::{size_mb, GptConfig};
    pub use crate::layers::{Dropout, Embedding, Linear};
    pub use crate::model::{
        generate_text_simple, load_safetensors, num_parameters, num_parameters_under, num_trainable_parameters,
        save_safetensors, ExampleDeepNeuralNetwork, FeedForward, Gelu, GptModel, LayerNorm, TransformerBlock,
    };
}

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
