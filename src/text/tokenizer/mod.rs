//! Chapter 2, "Working with text data": from text to token ids and back.
//!
//! | book | here |
//! |---|---|
//! | 2.2 tokenizing text (`re.split`) | [`split_words`] |
//! | 2.3 tokens to ids, listing 2.3 `SimpleTokenizerV1` | [`Vocab`], [`SimpleTokenizerV1`] |
//! | 2.4 special tokens, listing 2.4 `SimpleTokenizerV2` | [`SimpleTokenizerV2`] (`<\|unk\|>`, `<\|endoftext\|>`) |
//! | 2.5 byte pair encoding (`tiktoken.get_encoding("gpt2")`) | [`BpeTokenizer::gpt2`] ([`Gpt2Tokenizer`]), [`pre_tokenize`], [`bytes_to_unicode`] |
//! | bonus: BPE from scratch | [`train_bpe`] |
//! | 2.5.1 (this project): BPE and Chinese text | [`TokenStats`], [`escape_bytes`] |
//! | bonus (Llama 3.2, Qwen3): Hugging Face's `tokenizer.json` | [`HfTokenizer`] |
//!
//! Every tokenizer implements [`Tokenizer`], which the data loaders take.

mod bpe;
mod hf;
mod pretokenize;
mod simple;
mod stats;
mod train;

pub use bpe::{bytes_to_unicode, BpeTokenizer, Gpt2Tokenizer, ENDOFTEXT, ENDOFTEXT_ID, GPT2_VOCAB_SIZE};
pub use hf::HfTokenizer;
pub use pretokenize::{char_class, pre_tokenize, CharClass, PreTokens};
pub use simple::{split_words, SimpleTokenizerV1, SimpleTokenizerV2, Vocab, UNK};
pub use stats::{escape_bytes, TokenStats};
pub use train::train_bpe;

use crate::error::Result;

/// What the data loaders need from a tokenizer: text to ids as the book's data code encodes it
/// (`tokenizer.encode(txt, allowed_special={"<|endoftext|>"})`), and ids back to text.
///
/// The methods have their own names so that each tokenizer's own `encode`/`decode` (whose
/// arguments differ: GPT-2's takes the allowed special tokens) stay the book's.
pub trait Tokenizer {
    /// Encode `text`, with `<|endoftext|>` recognised as a special token where the vocabulary has it.
    fn encode_text(&self, text: &str) -> Result<Vec<u32>>;
    /// Decode ids to text; an id outside the vocabulary is an error.
    fn decode_ids(&self, ids: &[u32]) -> Result<String>;
    /// Number of tokens in the vocabulary.
    fn vocab_size(&self) -> usize;
}
