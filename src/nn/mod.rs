//! The neural-network parts of chapters 2.7-4: layers with PyTorch's initialisation, embeddings,
//! attention, the model's configuration, the GPT model, weight files and GPT-2's weights.
//! Imports only `text`, `viz` and utilities.
//!
//! | module | book |
//! |---|---|
//! | [`layers`], [`init`] | `nn.Linear` (with appendix E's LoRA update), `nn.Embedding`, `nn.Dropout`, PyTorch's initialisation and order |
//! | [`embedding`] | 2.7-2.8: token and positional embeddings |
//! | [`attention`] | chapter 3: attention without weights, self-attention, causal and multi-head attention |
//! | [`config`] | 4.1: `GptConfig` and its presets (124M ... 1558M, tiny) |
//! | [`dummy`] | 4.1: listing 4.1's placeholder model `DummyGptModel` (blocks and norm pass their input through) |
//! | [`model`] | chapter 4: `LayerNorm`, `Gelu`, `FeedForward`, `TransformerBlock`, `GptModel`, greedy generation; freezing and head replacement (6.5) |
//! | [`tensor_file`] | the safetensors reader and writer behind every weight file |
//! | [`kv_cache`] | bonus (chapter 4): the KV cache every decoder generates with, and the `CachedLm` trait |
//! | [`gpt2`] | 5.5: OpenAI's GPT-2 weights from Hugging Face (`model.safetensors` + `config.json`) |
//! | [`modern`] | bonus (chapter 5): RMSNorm, RoPE with Llama 3's scaling, SwiGLU, grouped-query attention, Qwen3's query/key norm |
//! | [`decoder`] | bonus (chapter 5): Llama 3.2 and Qwen3 (`DecoderModel`), their configs and parameter counts |
//! | [`hf`] | bonus (chapter 5): Llama 3.2 and Qwen3 from Hugging Face's files (config styles, shards, tokenizer) |

pub mod attention;
pub mod config;
pub mod decoder;
pub mod dummy;
pub mod embedding;
pub mod gpt2;
pub mod hf;
pub mod init;
pub mod kv_cache;
pub mod layers;
pub mod model;
pub mod modern;
pub mod tensor_file;
