//! # llm-from-scratch
//!
//! The book "Build a Large Language Model (From Scratch)" (S. Raschka, Manning 2024), chapter by
//! chapter, in Rust on libtorch (through [`tch`]). The notebooks in `notebooks/` explain each
//! chapter and call this library; `chapters/README.md` maps each chapter to its modules.
//!
//! ## Chapters
//!
//! Each chapter module re-exports what its chapter introduces, under the book's names, as the
//! book's `llms_from_scratch.ch04` does: `use llm_from_scratch::ch04::GptModel;`.
//!
//! | module | book |
//! |---|---|
//! | [`ch01`] | chapter 1: the GPT generations and their sizes |
//! | [`ch02`] | chapter 2: tokenizers, the sliding-window data set and loader, embeddings |
//! | [`ch03`] | chapter 3: attention, from the simplified version to multi-head attention |
//! | [`ch04`] | chapter 4: the GPT model and greedy generation |
//! | [`ch05`] | chapter 5: losses, the training loop, sampling, checkpoints, GPT-2's weights |
//! | [`ch06`] | chapter 6: fine-tuning GPT-2 to classify spam |
//! | [`ch07`] | chapter 7: instruction fine-tuning and scoring the responses |
//! | [`bonus_dpo`] | chapter 7's bonus: preference tuning with DPO |
//! | [`bonus_kv_cache`] | chapter 4's bonus: the KV cache for generation |
//! | [`bonus_llama_qwen`] | chapter 5's bonus: from GPT-2 to Llama 3.2 and Qwen3 |
//! | [`appendix_a`] | appendix A: tensors, autograd, a small network and its training loop |
//! | [`appendix_d`] | appendix D: warmup, cosine decay, gradient clipping |
//! | [`appendix_e`] | appendix E: LoRA |
//!
//! ## Layers
//!
//! The code lives in folders that follow the book's arc. Imports point one way, from the top of
//! this table to the bottom, never back (`tests/architecture.rs` checks it):
//!
//! | folder | what | may import |
//! |---|---|---|
//! | [`tasks`], [`basics`] | chapter 6's classifier, chapter 7's instructions and judge, appendix E's LoRA; appendix A | everything below |
//! | [`training`] | losses and the training loop, generation, AdamW, schedules, checkpoints | `nn`, `text`, `viz`, utilities |
//! | [`nn`] | layers and their initialisation, embeddings, attention, the config, the GPT model, weight files, GPT-2 loading | `text`, `viz`, utilities |
//! | [`text`] | the book's data files, tokenizers, the data set and loader | utilities |
//! | [`viz`] | charts drawn inline in notebooks and saved by the CLI | utilities |
//! | [`util`], [`error`] | device and seeding, random generators of NumPy and PyTorch, files written atomically, delimited text, the error type | nothing |
//!
//! The modules' earlier paths (`llm_from_scratch::model`, `::data`, `::classify`, ...) are kept as
//! re-exports, so code written against them still compiles.
//!
//! Every public item uses the book's names in Rust case (`GptModel`, `create_dataloader_v1`).

pub mod basics;
pub mod ch01;
pub mod error;
pub mod exercises;
pub mod nn;
pub mod tasks;
pub mod text;
pub mod training;
pub mod util;
pub mod viz;

// The modules' paths before they moved into folders, kept for notebooks and code that use them.
#[doc(no_inline)]
pub use nn::{attention, config, embedding, gpt2, init, layers, model, tensor_file};
#[doc(no_inline)]
pub use tasks::{classify, dpo, instruct, judge, lora};
#[doc(no_inline)]
pub use text::{data, dataloader, tokenizer};
#[doc(no_inline)]
pub use training::{checkpoint, generate, optim, schedule, train};
#[doc(no_inline)]
pub use util::device;
#[doc(no_inline)]
pub use viz::{figures, plot};

/// Chapter 2, "Working with text data": everything the chapter introduces, under the book's names.
pub mod ch02 {
    pub use crate::text::data::{the_verdict, DataFile, DataStore, INSTRUCTION_DATA, SMS_SPAM_COLLECTION, THE_VERDICT};
    pub use crate::text::dataloader::{create_dataloader_v1, Batches, DataLoader, Dataset, GptDatasetV1};
    pub use crate::nn::embedding::{positional_embedding, token_embedding, InputEmbedding};
    pub use crate::text::tokenizer::{
        bytes_to_unicode, pre_tokenize, split_words, train_bpe, BpeTokenizer, Gpt2Tokenizer, SimpleTokenizerV1,
        SimpleTokenizerV2, Tokenizer, Vocab, ENDOFTEXT, ENDOFTEXT_ID, UNK,
    };
}

/// Chapter 3, "Coding attention mechanisms": everything the chapter introduces.
pub mod ch03 {
    pub use crate::nn::attention::{
        attention_scores_for_query, attention_scores_simple, attention_weights_simple, causal_mask,
        context_vectors_simple, softmax_naive, your_journey_inputs, AttentionImpl, CausalAttention,
        MultiHeadAttention, MultiHeadAttentionWrapper, SelfAttentionV1, SelfAttentionV2, YOUR_JOURNEY_WORDS,
    };
    pub use crate::viz::figures::HeatMap;
    pub use crate::nn::layers::{Dropout, Linear};
}

/// Chapter 4, "Implementing a GPT model from scratch to generate text".
pub mod ch04 {
    pub use crate::nn::attention::{AttentionImpl, MultiHeadAttention};
    pub use crate::nn::config::{size_mb, GptConfig};
    pub use crate::nn::layers::{Dropout, Embedding, Linear};
    pub use crate::nn::dummy::{DummyGptModel, DummyLayerNorm, DummyTransformerBlock};
    pub use crate::viz::lines::LinePlot;
    pub use crate::nn::model::{
        generate_text_simple, generate_text_simple_cached, load_safetensors, num_parameters, num_parameters_under, num_trainable_parameters,
        save_safetensors, ExampleDeepNeuralNetwork, FeedForward, Gelu, GptModel, LayerNorm, TransformerBlock,
    };
}

/// Chapter 5, "Pretraining on unlabeled data".
pub mod ch05 {
    pub use crate::training::checkpoint::{read_checkpoint, save_checkpoint, Checkpoint, CheckpointMeta};
    pub use crate::training::interrupt::{clear_stop, request_stop, stop_requested};
    pub use crate::viz::figures::LossPlot;
    pub use crate::training::generate::{
        generate, generate_cached, sample_counts, scan_stop_sequences, softmax_with_temperature, top_k_logits, top_p_logits,
        toy_next_token_logits, Sampling, StopScan, TOY_NEXT_TOKEN_LOGITS,
        TOY_VOCAB,
    };
    pub use crate::nn::gpt2::{hf_gpt2_key_map, load_hf_gpt2, Gpt2Checkpoint, HfKeyMapping, HfLayout, SafetensorsFile};
    pub use crate::training::optim::AdamW;
    pub use crate::training::train::{
        calc_loss_batch, calc_loss_loader, cross_entropy, evaluate_model, generate_sample, perplexity, text_to_token_ids,
        token_ids_to_text, train_model_simple, NextTokenTask,
    };
    pub use crate::training::trainer::{
        eval_log_line, evaluate_task, loss_over_loader, print_book_lines, train_steps, Evaluation, TrainEvent, TrainHistory,
        TrainSettings, TrainState, TrainTask, Unit,
    };
}

/// Appendix A, "Introduction to PyTorch" (here: tch): everything the appendix introduces.
pub mod appendix_a {
    pub use crate::basics::{
        compute_accuracy, ndarray_to_tensor, tensor_to_ndarray, toy_loss_plot, torch_randperm, torch_shuffle_order,
        train_neural_network, DecisionBoundary, EpochOrder, LogisticRegressionExample, NeuralNetwork, ToyDataset,
        ToyTrainStep, TOY_X_TEST, TOY_X_TRAIN, TOY_Y_TEST, TOY_Y_TRAIN,
    };
    pub use crate::text::dataloader::{DataLoader, Dataset};
    pub use crate::util::device::{device, set_seed};
    pub use crate::viz::figures::LossPlot;
    pub use crate::nn::model::{load_safetensors, num_parameters, num_trainable_parameters, save_safetensors};
}

/// Appendix D, "Adding bells and whistles to the training loop".
pub mod appendix_d {
    pub use crate::training::optim::AdamW;
    pub use crate::training::schedule::{warmup_steps_for, LrSchedule, LrSchedulePlot, StepExtras, TrainExtras};
    pub use crate::training::train::{calc_loss_batch, evaluate_model, train_model, ScheduledHistory};
    pub use crate::training::trainer::{train_steps, TrainHistory, TrainSettings, TrainState};
    /// The earlier name of the training loop with appendix D's per-step hook: the extras now
    /// come with the settings ([`TrainSettings::extras`]), so it is [`train_steps`].
    pub use crate::training::trainer::train_steps as train_steps_with;
}

/// Chapter 7, "Fine-tuning to follow instructions".
pub mod ch07 {
    pub use crate::tasks::instruct::{
        create_instruction_loaders, custom_collate_fn, extract_response, format_example, format_input, format_response,
        generate_response, generate_responses, instruction_data, load_instruction_data, mean_rouge_l,
        parse_instruction_data, parse_json_entries, response_loss, rouge_l, save_responses, set_drop_rate, train_test_val_split,
        CollateSettings, InstructionDataset, InstructionEntry, InstructionPrompt, JsonEntry, PromptStyle, IGNORE_INDEX, PAD_TOKEN_ID,
        PROMPT_PREAMBLE, RESPONSES_FILE,
    };
    pub use crate::tasks::judge::{
        average_score, judge_prompt, parse_chat_reply, parse_score, ChatApi, Judge, DEFAULT_JUDGE_MODEL, OLLAMA_CHAT_URL,
    };
}

/// Chapter 7's bonus, "Direct Preference Optimization (DPO) for LLM alignment"
/// (`ch07/04_preference-tuning-with-dpo`): everything the notebook introduces, and what it uses
/// from earlier chapters.
pub mod bonus_dpo {
    pub use crate::nn::config::GptConfig;
    pub use crate::nn::model::{set_drop_rate, GptModel};
    pub use crate::tasks::dpo::{
        compute_dpo_loss, compute_dpo_loss_batch, compute_dpo_loss_loader, compute_dpo_loss_packed, compute_logprobs,
        create_preference_loaders, custom_collate_fn_dpo, decode_tokens_from_batch, evaluate_dpo_loss_loader, BOOK_ALLOWED_MAX_LENGTH,
        BOOK_BATCH_SIZE, BOOK_BETA, BOOK_EVAL_FREQ, BOOK_EVAL_ITER, BOOK_LEARNING_RATE, BOOK_WEIGHT_DECAY, load_preference_file, parse_preference_data,
        read_preference_data, reference_model, split_preference_data, train_model_dpo_simple, DpoEval, DpoHistory, DpoLosses,
        DpoTask, PreferenceBatch, PreferenceDataset, PreferenceEntry, PreferenceExample, PAD_TOKEN_ID, TRAIN_CHOSEN_REWARDS,
        TRAIN_REJECTED_REWARDS, VAL_CHOSEN_REWARDS, VAL_REJECTED_REWARDS,
    };
    pub use crate::tasks::instruct::{extract_response, format_input, generate_response, InstructionPrompt};
    pub use crate::text::data::{DataStore, INSTRUCTION_DATA_WITH_PREFERENCE};
    pub use crate::text::dataloader::{DataLoader, Dataset};
    pub use crate::text::tokenizer::{BpeTokenizer, Gpt2Tokenizer, Tokenizer};
    pub use crate::training::checkpoint::{read_checkpoint, save_checkpoint};
    pub use crate::training::optim::AdamW;
    pub use crate::training::train::{generate_sample, text_to_token_ids, token_ids_to_text};
    pub use crate::training::trainer::{
        print_book_lines, train_steps, Evaluation, TrainEvent, TrainHistory, TrainSettings, TrainState, TrainTask,
    };
    pub use crate::viz::figures::LossPlot;
}

/// Chapter 4's bonus, "KV cache" (`ch04/03_kv-cache`): generation that keeps the keys and values
/// of earlier positions instead of recomputing them.
pub mod bonus_kv_cache {
    pub use crate::nn::attention::{AttentionImpl, MultiHeadAttention};
    pub use crate::nn::config::GptConfig;
    pub use crate::nn::kv_cache::{next_token_logits, CachedLm, KvCache};
    pub use crate::nn::model::{generate_text_simple, generate_text_simple_cached, GptModel};
    pub use crate::training::generate::{generate, generate_cached, scan_stop_sequences, Sampling, StopScan};
    pub use crate::viz::lines::LinePlot;
    pub use crate::viz::plot::BarChart;
}

/// Chapter 5's bonus, "Converting GPT to Llama" and "Qwen3 from scratch"
/// (`ch05/07_gpt_to_llama`, `ch05/11_qwen3`): the modern decoder's parts, the two models, their
/// Hugging Face files and tokenizers.
pub mod bonus_llama_qwen {
    pub use crate::nn::decoder::{
        bytes_of, DecoderConfig, DecoderModel, Family, Llama32Model,
        ParamCounts, Qwen3Model, TransformerBlock, PRESETS,
    };
    pub use crate::nn::hf::{detect_family, hf_decoder_key_map, load_hf_decoder, HfDecoder, HfFamily, HfTensors};
    pub use crate::nn::kv_cache::{CachedLm, KvCache};
    pub use crate::nn::modern::{
        causal_attention, repeat_kv, GroupedQueryAttention, RmsNorm, Rope, RopeFreqConfig, SwiGluFeedForward,
    };
    pub use crate::nn::config::GptConfig;
    pub use crate::nn::model::{num_parameters, GptModel};
    pub use crate::text::tokenizer::{HfTokenizer, Tokenizer};
    pub use crate::training::generate::{generate, generate_cached};
}

/// Chapter 6, "Fine-tuning for classification": the book's `llms_from_scratch.ch06`.
pub mod ch06 {
    pub use crate::tasks::classify::{
        block_requires_grad, calc_accuracy_loader, calc_accuracy_loader_at, calc_loss_batch, calc_loss_batch_at, calc_loss_loader,
        classifier_logits, classifier_logits_at, classify_review, classify_review_at, create_balanced_dataset, evaluate_model,
        label_counts, last_position_output, load_classifier, parse_sms_spam, prepare_classifier, prepare_classifier_with,
        prepare_spam_splits, random_split, read_csv, read_delimited, read_sms_spam, replace_out_head,
        save_classifier, set_drop_rate, set_requires_grad_under, train_classifier, train_classifier_simple, write_csv,
        ClassifierEvent, ClassifierHistory, ClassifierInfo, ClassifierRun, ClassifierSettings, ClassifierTask, LabeledText,
        RandomState, SpamDataset, SpamSplits, TokenPosition, Trainable, HAM, PAD_TOKEN_ID, SPAM,
    };
    pub use crate::training::trainer::{train_steps, TrainSettings, TrainState};
    pub use crate::text::dataloader::DataLoader;
    pub use crate::nn::gpt2::Gpt2Checkpoint;
    pub use crate::training::optim::AdamW;
    pub use crate::text::tokenizer::{BpeTokenizer, Gpt2Tokenizer, Tokenizer};
}

/// Appendix E, "Parameter-efficient fine-tuning with LoRA".
pub mod appendix_e {
    pub use crate::tasks::lora::{
        lora_parameters, prepare_lora_classifier, prepare_lora_model, replace_linear_with_lora, train_only_lora, LinearWithLoRA, LoRALayer,
    };
}

pub use device::{device, device_report, load_libtorch_cuda, rng_lock, set_seed, DeviceReport};
pub use error::{Error, Result};
pub use util::show::{Show, Shown};
pub use viz::diagrams::diagram;
/// The `tch` crate this library is built on, re-exported so notebooks need only one `:dep`.
pub use tch;
/// The `ndarray` crate (the version `tch` converts to and from), re-exported for the notebooks.
pub use ndarray;

/// Whether the notebooks and examples should run in quick mode: `LLM_QUICK=1` (set by the test
/// command and CI) shrinks models and data so every notebook runs in minutes on a CPU. The
/// learner's default (unset or `0`) is the book's full setup.
pub fn quick_mode() -> bool {
    std::env::var("LLM_QUICK").map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}
