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
//! | [`data`] | the book's data files: URLs, sha256 checksums, download cache, `LLM_DATA_DIR` |
//! | [`tokenizer`] | chapter 2.2-2.5: regex tokenizers, GPT-2's byte-level BPE, BPE training |
//! | [`dataloader`] | chapter 2.6: sliding-window data set and the batch loader of chapters 2 and 5-7 |
//! | [`embedding`] | chapter 2.7-2.8: token and positional embeddings |
//!
//! The chapter module [`ch02`] re-exports what chapter 2 introduces, as the book's
//! `llms_from_scratch.ch02` does: `use llm_from_scratch::ch02::create_dataloader_v1;`.
//! | [`attention`] | chapter 3: attention without weights, self-attention, causal and multi-head attention |
//! | [`config`] | chapter 4.1: `GptConfig` and its presets (124M ... 1558M, tiny) |
//! | [`layers`], [`init`] | `nn.Linear`, `nn.Embedding`, `nn.Dropout` with PyTorch's initialisation and order |
//! | [`model`] | chapter 4: `LayerNorm`, `Gelu`, `FeedForward`, `TransformerBlock`, `GptModel`, greedy generation, safetensors |
//! | [`figures`] | more figures: the attention heat map, loss curves |
//! | [`train`] | chapter 5.1-5.2: losses, perplexity, evaluation, `train_model_simple` and its history |
//! | [`generate`] | chapter 5.3: temperature, top-k, `generate` |
//! | [`checkpoint`] | chapter 5.4: checkpoints of model + AdamW + run state that resume exactly |
//! | [`optim`] | chapter 5.2: AdamW with savable state (resumable runs), gradient clipping (appendix D) |
//! | [`gpt2`] | chapter 5.5: OpenAI's GPT-2 weights from Hugging Face (`model.safetensors` + `config.json`) |
//! | [`lora`] | appendix E: `LoRALayer`, `LinearWithLoRA`, LoRA on every linear layer of a GPT (facade [`appendix_e`]) |
//! | [`classify`] | chapter 6: the SMS spam data, `SpamDataset`, the classification head, accuracy, `train_classifier_simple`, `classify_review` (facade [`ch06`]) |
//! | [`tensor_file`] | the safetensors reader and atomic writer behind every weight file |
//! | [`basics`] | appendix A: tensors and `ndarray`, autograd, the `NeuralNetwork` MLP, the toy data set, training loop, decision boundary (facade [`appendix_a`]) |
//! | [`schedule`] | appendix D: linear warmup, cosine decay, gradient clipping, `train_model` (facade [`appendix_d`]) |
//! | [`instruct`], [`judge`] | chapter 7: instruction data, collate, finetuning, responses, offline scores; the judge model (facade [`ch07`]) |
//!
//! The chapter modules [`ch03`] and [`ch04`] re-export what each chapter introduces, as the
//! book's `llms_from_scratch.ch04` does.
//!
//! Every public item uses the book's names in Rust case (`GptModel`, `create_dataloader_v1`).

pub mod attention;
pub mod basics;
pub mod checkpoint;
pub mod classify;
pub mod ch01;
pub mod config;
pub mod data;
pub mod dataloader;
pub mod device;
pub mod embedding;
pub mod error;
pub mod figures;
pub mod generate;
pub mod gpt2;
pub mod init;
pub mod instruct;
pub mod judge;
pub mod layers;
pub mod lora;
pub mod model;
pub mod optim;
pub mod plot;
pub mod schedule;
pub mod tokenizer;
pub mod tensor_file;
pub mod train;

/// Chapter 2, "Working with text data": everything the chapter introduces, under the book's names.
pub mod ch02 {
    pub use crate::data::{the_verdict, DataFile, DataStore, INSTRUCTION_DATA, SMS_SPAM_COLLECTION, THE_VERDICT};
    pub use crate::dataloader::{create_dataloader_v1, Batches, DataLoader, Dataset, GptDatasetV1};
    pub use crate::embedding::{positional_embedding, token_embedding, InputEmbedding};
    pub use crate::tokenizer::{
        bytes_to_unicode, pre_tokenize, split_words, train_bpe, BpeTokenizer, Gpt2Tokenizer, SimpleTokenizerV1,
        SimpleTokenizerV2, Tokenizer, Vocab, ENDOFTEXT, ENDOFTEXT_ID, UNK,
    };
}

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

/// Chapter 5, "Pretraining on unlabeled data".
pub mod ch05 {
    pub use crate::checkpoint::{read_checkpoint, save_checkpoint, Checkpoint, CheckpointMeta};
    pub use crate::figures::LossPlot;
    pub use crate::generate::{
        generate, sample_counts, softmax_with_temperature, top_k_logits, toy_next_token_logits, TOY_NEXT_TOKEN_LOGITS,
        TOY_VOCAB,
    };
    pub use crate::gpt2::{hf_gpt2_key_map, load_hf_gpt2, Gpt2Checkpoint, HfKeyMapping, HfLayout, SafetensorsFile};
    pub use crate::optim::AdamW;
    pub use crate::train::{
        calc_loss_batch, calc_loss_loader, cross_entropy, eval_log_line, evaluate_model, generate_sample, perplexity,
        print_book_lines, text_to_token_ids, token_ids_to_text, train_model_simple, train_steps, TrainEvent, TrainHistory, TrainSettings, TrainState,
    };
}

/// Appendix A, "Introduction to PyTorch" (here: tch): everything the appendix introduces.
pub mod appendix_a {
    pub use crate::basics::{
        compute_accuracy, ndarray_to_tensor, tensor_to_ndarray, toy_loss_plot, torch_randperm, torch_shuffle_order,
        train_neural_network, DecisionBoundary, EpochOrder, LogisticRegressionExample, NeuralNetwork, ToyDataset,
        ToyTrainStep, TOY_X_TEST, TOY_X_TRAIN, TOY_Y_TEST, TOY_Y_TRAIN,
    };
    pub use crate::dataloader::{DataLoader, Dataset};
    pub use crate::device::{device, set_seed};
    pub use crate::figures::LossPlot;
    pub use crate::model::{load_safetensors, num_parameters, num_trainable_parameters, save_safetensors};
}

/// Appendix D, "Adding bells and whistles to the training loop".
pub mod appendix_d {
    pub use crate::optim::AdamW;
    pub use crate::schedule::{
        train_model, warmup_steps_for, LrSchedule, LrSchedulePlot, ScheduledHistory, StepExtras,
        TrainExtras,
    };
    pub use crate::train::{calc_loss_batch, evaluate_model, train_steps_with, TrainHistory};
}

/// Chapter 7, "Fine-tuning to follow instructions".
pub mod ch07 {
    pub use crate::instruct::{
        create_instruction_loaders, custom_collate_fn, extract_response, format_example, format_input, format_response,
        generate_response, generate_responses, instruction_data, load_instruction_data, mean_rouge_l,
        parse_instruction_data, response_loss, rouge_l, save_responses, set_drop_rate, train_test_val_split, CollateSettings,
        InstructionDataset, InstructionEntry, IGNORE_INDEX, PAD_TOKEN_ID, PROMPT_PREAMBLE, RESPONSES_FILE,
    };
    pub use crate::judge::{
        average_score, judge_prompt, parse_chat_reply, parse_score, ChatApi, Judge, DEFAULT_JUDGE_MODEL, OLLAMA_CHAT_URL,
    };
}

/// Chapter 6, "Fine-tuning for classification": the book's `llms_from_scratch.ch06`.
pub mod ch06 {
    pub use crate::classify::{
        block_requires_grad, calc_accuracy_loader, last_position_output, calc_loss_batch, calc_loss_loader, classifier_logits, classify_review,
        create_balanced_dataset, evaluate_model, label_counts, load_classifier, parse_sms_spam, prepare_classifier,
        prepare_spam_splits, random_split, read_csv, read_delimited, read_sms_spam, replace_out_head, save_classifier,
        set_drop_rate, set_requires_grad_under, train_classifier, train_classifier_simple, write_csv, ClassifierEvent, ClassifierHistory,
        ClassifierInfo, ClassifierSettings, LabeledText, RandomState, SpamDataset, SpamSplits, HAM, PAD_TOKEN_ID, SPAM,
    };
    pub use crate::dataloader::DataLoader;
    pub use crate::gpt2::Gpt2Checkpoint;
    pub use crate::optim::AdamW;
    pub use crate::tokenizer::{BpeTokenizer, Gpt2Tokenizer, Tokenizer};
}

/// Appendix E, "Parameter-efficient fine-tuning with LoRA".
pub mod appendix_e {
    pub use crate::lora::{
        lora_parameters, prepare_lora_classifier, replace_linear_with_lora, LinearWithLoRA, LoRALayer,
    };
}

pub use device::{device, device_report, load_libtorch_cuda, rng_lock, set_seed, DeviceReport};
pub use error::{Error, Result};
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
