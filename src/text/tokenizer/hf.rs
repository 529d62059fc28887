//! Hugging Face tokenizers (`tokenizer.json`), read by Hugging Face's own `tokenizers` crate:
//! the tokenizers of Llama 3.2 and Qwen3 (byte-level BPE with a pre-tokenization pattern and
//! special tokens such as `<|begin_of_text|>` or `<|im_start|>`). The book's bonus chapters
//! use the same files through Python's `tokenizers`; this crate only wraps them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::text::tokenizer::Tokenizer;

/// A tokenizer read from a Hugging Face `tokenizer.json`.
pub struct HfTokenizer {
    /// The file it was read from (named in errors).
    pub path: PathBuf,
    pub inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HfTokenizer({}, {} tokens)", self.path.display(), self.vocab_size())
    }
}

impl HfTokenizer {
    /// Read `tokenizer.json` at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no tokenizer.json here")));
        }
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::Format { path: path.into(), reason: format!("not a Hugging Face tokenizer: {e}") })?;
        Ok(Self { path: path.into(), inner })
    }

    /// Encode `text` as `transformers`' `tokenizer(text)` does: with the special tokens the
    /// tokenizer's post-processor adds (Llama 3's `<|begin_of_text|>`; Qwen3 adds none).
    pub fn encode_with_special_tokens(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(text, true)
    }

    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| Error::Format { path: self.path.clone(), reason: format!("encoding {text:?}: {e}") })?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The id of a token, e.g. `<|end_of_text|>`, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// One past the highest id in the vocabulary, added tokens included (what a model's
    /// embedding must hold at least).
    pub fn id_bound(&self) -> usize {
        self.inner.get_vocab(true).values().max().map_or(0, |&m| m as usize + 1)
    }

    /// Check that every id of this tokenizer has a row in a model with `vocab_size` rows
    /// (`config` names the config file whose `vocab_size` key is meant). Real models may have
    /// more rows than tokens (Qwen3: 151,936 rows, 151,669 tokens), never fewer.
    pub fn check_vocab(&self, vocab_size: i64, config: &Path) -> Result<()> {
        let bound = self.id_bound() as i64;
        if bound > vocab_size {
            return Err(Error::Config {
                what: format!("{} (vocabulary) and {} key 'vocab_size'", self.path.display(), config.display()),
                reason: format!(
                    "the tokenizer has ids up to {} but the model's embedding has {vocab_size} rows: the files belong to different models",
                    bound - 1
                ),
            });
        }
        Ok(())
    }
}

impl Tokenizer for HfTokenizer {
    /// The text's ids without added special tokens (special tokens written in the text, such as
    /// `<|endoftext|>`, are still recognised).
    fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(text, false)
    }

    /// Decode ids, special tokens included (`skip_special_tokens=False`).
    fn decode_ids(&self, ids: &[u32]) -> Result<String> {
        let bound = self.id_bound();
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= bound) {
            return Err(Error::UnknownTokenId { id, vocab_size: bound });
        }
        self.inner.decode(ids, false).map_err(|e| Error::Format { path: self.path.clone(), reason: format!("decoding: {e}") })
    }

    fn vocab_size(&self) -> usize {
        self.id_bound()
    }
}
