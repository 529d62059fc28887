//! Chapter 6.3, "Creating data loaders": [`SpamDataset`], the texts encoded, truncated and
//! padded to one length, batched by chapter 2's [`DataLoader`](crate::text::dataloader::DataLoader).
//! The training loader's shuffle is this crate's, not PyTorch's, so its batches hold other texts
//! than the book's.

use std::path::Path;

use tch::Tensor;

use crate::error::{Error, Result};
use crate::tasks::classify::data::{read_csv, LabeledText};
use crate::text::dataloader::Dataset;
use crate::text::tokenizer::{Tokenizer, ENDOFTEXT_ID};

/// The padding token of [`SpamDataset`]: `<|endoftext|>` (50256).
pub const PAD_TOKEN_ID: i64 = ENDOFTEXT_ID as i64;

/// Listing 6.4, `SpamDataset`: the texts encoded with a tokenizer, truncated to `max_length`
/// tokens or, without one, as long as the longest text; shorter ones right-padded with
/// `pad_token_id`. The longest text of the book's training split has 120 GPT-2 tokens.
///
/// # Shapes
/// a batch ([`Dataset::batch`]): inputs `[batch, max_length]` (int64), labels `[batch]` (int64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamDataset {
    /// The padded token ids of each text, all `max_length` long.
    pub encoded_texts: Vec<Vec<i64>>,
    /// The class of each text.
    pub labels: Vec<i64>,
    /// Tokens per text after truncating and padding.
    pub max_length: usize,
    pub pad_token_id: i64,
}

impl SpamDataset {
    /// Encode `data` with `tokenizer`, then truncate and pad as the book does.
    pub fn new<T: Tokenizer + ?Sized>(
        data: &[LabeledText],
        tokenizer: &T,
        max_length: Option<usize>,
        pad_token_id: i64,
    ) -> Result<Self> {
        let mut encoded_texts = data
            .iter()
            .map(|row| Ok(tokenizer.encode_text(&row.text)?.into_iter().map(i64::from).collect::<Vec<i64>>()))
            .collect::<Result<Vec<_>>>()?;
        let max_length = match max_length {
            Some(0) => return Err(Error::InvalidArgument { name: "max_length", reason: "must be at least 1".into() }),
            Some(n) => n,
            None => encoded_texts.iter().map(Vec::len).max().unwrap_or(0),
        };
        for ids in &mut encoded_texts {
            ids.truncate(max_length);
            ids.resize(max_length, pad_token_id);
        }
        Ok(SpamDataset { encoded_texts, labels: data.iter().map(|row| row.label).collect(), max_length, pad_token_id })
    }

    /// [`SpamDataset::new`] over a CSV file written by [`write_csv`] (the book's
    /// `SpamDataset(csv_file, tokenizer, max_length)`).
    pub fn from_csv<T: Tokenizer + ?Sized>(
        csv_file: impl AsRef<Path>,
        tokenizer: &T,
        max_length: Option<usize>,
        pad_token_id: i64,
    ) -> Result<Self> {
        Self::new(&read_csv(csv_file)?, tokenizer, max_length, pad_token_id)
    }

    /// Number of texts.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Text `index` as tensors `(input ids [max_length], label [])` (`dataset[index]`).
    pub fn get(&self, index: usize) -> (Tensor, Tensor) {
        (Tensor::from_slice(&self.encoded_texts[index]), Tensor::from(self.labels[index]))
    }
}

impl Dataset for SpamDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    /// # Shapes
    /// inputs `[indices.len(), max_length]`, labels `[indices.len()]`, both int64.
    fn batch(&self, indices: &[usize]) -> (Tensor, Tensor) {
        let ids: Vec<i64> = indices.iter().flat_map(|&i| self.encoded_texts[i].iter().copied()).collect();
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i]).collect();
        let inputs = Tensor::from_slice(&ids).view([indices.len() as i64, self.max_length as i64]); // [batch, max_length]
        (inputs, Tensor::from_slice(&labels))
    }
}
