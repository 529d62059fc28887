//! Data sampling with a sliding window (book section 2.6, listings 2.5 and 2.6): the text's
//! token ids cut into windows of `max_length` inputs, each with the same window shifted by one
//! token as its targets (the next token to predict at every position).
//!
//! ```text
//! ids:     [40, 367, 2885, 1464, 1807, 3619, 402, 271, ...]
//! stride 4, max_length 4:
//!   input  [40, 367, 2885, 1464]     target [367, 2885, 1464, 1807]
//!   input  [1807, 3619, 402, 271]    target [3619, 402, 271, 10899]
//! ```
//!
//! [`GptDatasetV1`] holds the windows; [`DataLoader`] serves them in batches (`[batch,
//! max_length]` i64 tensors), shuffled or not, and is reused by later chapters through the
//! [`Dataset`] trait (each dataset stacks its own batches).
//!
//! **Shuffling** is deterministic for a seed (a SplitMix64 generator of this crate, not
//! libtorch's global one), and each pass over the loader (each epoch) draws a new order, as a
//! PyTorch `DataLoader(shuffle=True)` does. PyTorch's orders come from its own generator, so
//! they cannot be reproduced bit for bit here: only unshuffled loaders match the book exactly.

use std::sync::atomic::{AtomicU64, Ordering};

use tch::Tensor;

use crate::error::{Error, Result};
use crate::text::sampler::DistributedSampler;
use crate::text::tokenizer::Tokenizer;
pub use crate::util::rng::SplitMix64;

/// A data set that a [`DataLoader`] can batch: `len` examples, and a way to stack some of them
/// into one batch `(inputs, targets)`.
///
/// A data set stacks its own batches so that each chapter keeps its batch format (chapter 6's
/// class labels, chapter 7's padded instruction examples) while sharing the loader.
pub trait Dataset {
    /// Number of examples.
    fn len(&self) -> usize;

    /// Whether there is no example.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The examples at `indices` stacked into one batch: `(inputs, targets)`.
    fn batch(&self, indices: &[usize]) -> (Tensor, Tensor);
}

/// Listing 2.5, `GPTDatasetV1`: the windows of a text's token ids.
///
/// Window `i` starts at token `i * stride`; its input is `ids[start..start + max_length]` and
/// its target `ids[start + 1..start + max_length + 1]` (the book's
/// `for i in range(0, len(token_ids) - max_length, stride)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptDatasetV1 {
    token_ids: Vec<i64>,
    max_length: usize,
    stride: usize,
    num_windows: usize,
}

impl GptDatasetV1 {
    /// Encode `txt` (with `<|endoftext|>` allowed) and cut it into windows.
    ///
    /// Errors: a text with no more than `max_length` tokens (not one window: an input and its
    /// shifted target need `max_length + 1` tokens), `max_length` or `stride` of 0, or a
    /// tokenizer error.
    pub fn new<T: Tokenizer + ?Sized>(txt: &str, tokenizer: &T, max_length: usize, stride: usize) -> Result<Self> {
        let ids = tokenizer.encode_text(txt)?;
        Self::from_token_ids(&ids, max_length, stride)
    }

    /// The windows of token ids encoded already.
    pub fn from_token_ids(token_ids: &[u32], max_length: usize, stride: usize) -> Result<Self> {
        if max_length == 0 {
            return Err(Error::InvalidArgument { name: "max_length", reason: "must be at least 1".into() });
        }
        if stride == 0 {
            return Err(Error::InvalidArgument { name: "stride", reason: "must be at least 1".into() });
        }
        if token_ids.len() <= max_length {
            return Err(Error::TextTooShort { tokens: token_ids.len(), max_length });
        }
        // range(0, len - max_length, stride) has ceil((len - max_length) / stride) items.
        let num_windows = (token_ids.len() - max_length).div_ceil(stride);
        Ok(GptDatasetV1 { token_ids: token_ids.iter().map(|&id| id as i64).collect(), max_length, stride, num_windows })
    }

    /// Number of windows (`len(dataset)`).
    pub fn len(&self) -> usize {
        self.num_windows
    }

    /// Whether there is no window (never: a text too short is an error).
    pub fn is_empty(&self) -> bool {
        self.num_windows == 0
    }

    /// Tokens per window.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Tokens between the starts of two windows.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// All the text's token ids.
    pub fn token_ids(&self) -> &[i64] {
        &self.token_ids
    }

    /// Window `index` as slices `(input, target)`. Panics when `index >= len()`.
    pub fn window(&self, index: usize) -> (&[i64], &[i64]) {
        assert!(index < self.num_windows, "window {index} of a data set of {} windows", self.num_windows);
        let start = index * self.stride;
        (&self.token_ids[start..start + self.max_length], &self.token_ids[start + 1..start + self.max_length + 1])
    }

    /// Window `index` as tensors `(input, target)` (`dataset[index]`).
    ///
    /// # Shapes
    /// both `[max_length]`, i64.
    pub fn get(&self, index: usize) -> (Tensor, Tensor) {
        let (input, target) = self.window(index);
        (Tensor::from_slice(input), Tensor::from_slice(target))
    }
}

impl Dataset for GptDatasetV1 {
    fn len(&self) -> usize {
        self.num_windows
    }

    /// # Shapes
    /// inputs and targets `[indices.len(), max_length]`, i64.
    fn batch(&self, indices: &[usize]) -> (Tensor, Tensor) {
        let mut inputs = Vec::with_capacity(indices.len() * self.max_length);
        let mut targets = Vec::with_capacity(indices.len() * self.max_length);
        for &i in indices {
            let (input, target) = self.window(i);
            inputs.extend_from_slice(input);
            targets.extend_from_slice(target);
        }
        let shape = [indices.len() as i64, self.max_length as i64];
        (Tensor::from_slice(&inputs).view(shape), Tensor::from_slice(&targets).view(shape))
    }
}

/// Batches of a [`Dataset`], as PyTorch's `DataLoader(dataset, batch_size, shuffle, drop_last)`.
///
/// `loader.iter()` (or `for (inputs, targets) in &loader`) is one pass over the data (one
/// epoch); with `shuffle`, each pass draws the next order of the seeded generator. Iterating
/// takes `&self`, so a training loop may also evaluate on the same loader while iterating it.
#[derive(Debug)]
pub struct DataLoader<D> {
    /// The examples.
    pub dataset: D,
    /// Examples per batch.
    pub batch_size: usize,
    /// Whether each pass visits the examples in a new random order.
    pub shuffle: bool,
    /// Whether a last batch smaller than `batch_size` is left out.
    pub drop_last: bool,
    /// Seed of the shuffling order.
    pub seed: u64,
    /// Appendix A.9.3: where the order comes from in data-parallel training (this rank's shard
    /// of each epoch, [`DataLoader::with_sampler`]); `None`: all examples, in the loader's order.
    pub sampler: Option<DistributedSampler>,
    epoch: AtomicU64,
}

impl<D: Clone> Clone for DataLoader<D> {
    fn clone(&self) -> Self {
        DataLoader {
            dataset: self.dataset.clone(),
            batch_size: self.batch_size,
            shuffle: self.shuffle,
            drop_last: self.drop_last,
            seed: self.seed,
            sampler: self.sampler.clone(),
            epoch: AtomicU64::new(self.epoch.load(Ordering::Relaxed)),
        }
    }
}

impl<D: Dataset> DataLoader<D> {
    /// A loader over `dataset`; `batch_size` must be at least 1.
    pub fn new(dataset: D, batch_size: usize, shuffle: bool, drop_last: bool, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::InvalidArgument { name: "batch_size", reason: "must be at least 1".into() });
        }
        Ok(DataLoader { dataset, batch_size, shuffle, drop_last, seed, sampler: None, epoch: AtomicU64::new(0) })
    }

    /// `DataLoader(dataset, batch_size, sampler=DistributedSampler(...))`: each epoch visits
    /// this rank's shard ([`DistributedSampler::indices`]) in batches; the sampler shuffles (the
    /// loader's own `shuffle` and `seed` are then unused). Errors when the sampler was made for a
    /// data set of another size.
    pub fn with_sampler(mut self, sampler: DistributedSampler) -> Result<Self> {
        if sampler.dataset_len != self.dataset.len() {
            return Err(Error::InvalidArgument {
                name: "sampler",
                reason: format!("made for {} examples, the data set has {}", sampler.dataset_len, self.dataset.len()),
            });
        }
        self.sampler = Some(sampler);
        Ok(self)
    }

    /// Batches per pass (`len(loader)`): 0 when `drop_last` and fewer examples than `batch_size`.
    pub fn len(&self) -> usize {
        let n = self.sampler.as_ref().map_or(self.dataset.len(), DistributedSampler::num_samples);
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// Whether a pass yields no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One pass over the data: the next epoch's order (the first call is epoch 0).
    pub fn iter(&self) -> Batches<'_, D> {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed);
        self.iter_epoch(epoch)
    }

    /// The pass of a given epoch, without moving the loader's epoch counter.
    pub fn iter_epoch(&self, epoch: u64) -> Batches<'_, D> {
        Batches {
            dataset: &self.dataset,
            order: self.order(epoch),
            batch_size: self.batch_size,
            drop_last: self.drop_last,
            pos: 0,
        }
    }

    /// The order in which epoch `epoch` visits the examples: `0..len` unshuffled, else a
    /// permutation drawn (Fisher-Yates) from a generator seeded with `seed` and `epoch`; with a
    /// sampler, this rank's indices of the epoch.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        if let Some(sampler) = &self.sampler {
            return sampler.indices(epoch);
        }
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.shuffle {
            let mut rng = SplitMix64::new(self.seed ^ SplitMix64::new(epoch).next_u64());
            for i in (1..order.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
        }
        order
    }
}

impl<'a, D: Dataset> IntoIterator for &'a DataLoader<D> {
    type Item = (Tensor, Tensor);
    type IntoIter = Batches<'a, D>;
    fn into_iter(self) -> Batches<'a, D> {
        self.iter()
    }
}

/// One pass of a [`DataLoader`]: yields `(inputs, targets)` batches.
#[derive(Debug, Clone)]
pub struct Batches<'a, D> {
    dataset: &'a D,
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    pos: usize,
}

impl<D: Dataset> Iterator for Batches<'_, D> {
    type Item = (Tensor, Tensor);

    fn next(&mut self) -> Option<(Tensor, Tensor)> {
        let rest = self.order.len() - self.pos;
        if rest == 0 || (self.drop_last && rest < self.batch_size) {
            return None;
        }
        let end = self.pos + rest.min(self.batch_size);
        let batch = self.dataset.batch(&self.order[self.pos..end]);
        self.pos = end;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let rest = self.order.len() - self.pos;
        let n = if self.drop_last { rest / self.batch_size } else { rest.div_ceil(self.batch_size) };
        (n, Some(n))
    }
}

impl<D: Dataset> ExactSizeIterator for Batches<'_, D> {}

/// Listing 2.6, `create_dataloader_v1`: encode `txt`, cut it into windows of `max_length`
/// tokens `stride` apart ([`GptDatasetV1`]), and batch them.
///
/// The book's defaults are `batch_size 4, max_length 256, stride 128, shuffle true, drop_last
/// true` (and GPT-2's tokenizer). Errors as [`GptDatasetV1::new`] and for `batch_size` 0.
///
/// # Shapes
/// each batch: inputs and targets `[batch_size, max_length]`, i64 (the last one smaller
/// when `drop_last` is false).
///
/// ```no_run
/// use llm_from_scratch::ch02::{create_dataloader_v1, the_verdict, Gpt2Tokenizer};
/// let tokenizer = Gpt2Tokenizer::gpt2()?;
/// let loader = create_dataloader_v1(&the_verdict()?, &tokenizer, 8, 4, 4, false, true, 123)?;
/// let (inputs, targets) = loader.iter().next().unwrap();
/// assert_eq!(inputs.size(), [8, 4]);
/// # Ok::<(), llm_from_scratch::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn create_dataloader_v1<T: Tokenizer + ?Sized>(
    txt: &str,
    tokenizer: &T,
    batch_size: usize,
    max_length: usize,
    stride: usize,
    shuffle: bool,
    drop_last: bool,
    seed: u64,
) -> Result<DataLoader<GptDatasetV1>> {
    let dataset = GptDatasetV1::new(txt, tokenizer, max_length, stride)?;
    DataLoader::new(dataset, batch_size, shuffle, drop_last, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32) -> Vec<u32> {
        (0..n).collect()
    }

    #[test]
    fn windows_like_the_book() {
        // range(0, 10 - 4, 4) = [0, 4]
        let d = GptDatasetV1::from_token_ids(&ids(10), 4, 4).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.window(1), (&[4i64, 5, 6, 7][..], &[5i64, 6, 7, 8][..]));
        // range(0, 9 - 4, 1) has 5 windows; the last target ends at the last token.
        let d = GptDatasetV1::from_token_ids(&ids(9), 4, 1).unwrap();
        assert_eq!(d.len(), 5);
        assert_eq!(d.window(4).1, &[5i64, 6, 7, 8][..]);
    }

    #[test]
    fn too_short_is_an_error() {
        let err = GptDatasetV1::from_token_ids(&ids(4), 4, 1).unwrap_err();
        assert!(matches!(err, Error::TextTooShort { tokens: 4, max_length: 4 }), "{err}");
        assert!(err.to_string().contains("at least 5"), "{err}");
        assert!(GptDatasetV1::from_token_ids(&ids(5), 4, 1).is_ok(), "max_length + 1 tokens make one window");
        assert!(GptDatasetV1::from_token_ids(&ids(9), 4, 0).is_err());
        assert!(GptDatasetV1::from_token_ids(&ids(9), 0, 1).is_err());
    }

    #[test]
    fn batches_shapes_and_drop_last() {
        let d = GptDatasetV1::from_token_ids(&ids(23), 2, 2).unwrap(); // windows at 0, 2, ..., 20: 11
        let loader = DataLoader::new(d.clone(), 4, false, true, 0).unwrap();
        assert_eq!(loader.len(), 2);
        let shapes: Vec<Vec<i64>> = loader.iter().map(|(x, _)| x.size()).collect();
        assert_eq!(shapes, [[4, 2], [4, 2]]);
        let loader = DataLoader::new(d, 4, false, false, 0).unwrap();
        assert_eq!(loader.len(), 3);
        let (x, y) = loader.iter().last().unwrap();
        assert_eq!(x.size(), [3, 2]);
        assert_eq!(Vec::<i64>::try_from(y.flatten(0, -1)).unwrap(), [17, 18, 19, 20, 21, 22]);
        assert!(DataLoader::new(GptDatasetV1::from_token_ids(&ids(9), 2, 2).unwrap(), 0, false, false, 0).is_err());
    }

    #[test]
    fn shuffling_is_a_deterministic_permutation() {
        let d = GptDatasetV1::from_token_ids(&ids(101), 1, 1).unwrap(); // 100 windows
        let a = DataLoader::new(d.clone(), 10, true, false, 123).unwrap();
        let b = DataLoader::new(d.clone(), 10, true, false, 123).unwrap();
        let c = DataLoader::new(d, 10, true, false, 124).unwrap();
        let (o0, o1) = (a.order(0), a.order(1));
        assert_eq!(o0, b.order(0), "same seed, same order");
        assert_ne!(o0, o1, "each epoch draws a new order");
        assert_ne!(o0, c.order(0), "another seed, another order");
        assert_ne!(o0, (0..100).collect::<Vec<_>>(), "shuffled");
        let mut sorted = o0.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>(), "a permutation");
        // iter() walks the epochs in turn.
        let first: Vec<i64> = a.iter().flat_map(|(x, _)| Vec::<i64>::try_from(x.flatten(0, -1)).unwrap()).collect();
        assert_eq!(first, o0.iter().map(|&i| i as i64).collect::<Vec<_>>());
        let second: Vec<i64> = a.iter().flat_map(|(x, _)| Vec::<i64>::try_from(x.flatten(0, -1)).unwrap()).collect();
        assert_eq!(second, o1.iter().map(|&i| i as i64).collect::<Vec<_>>());
    }

    #[test]
    fn splitmix_known_values() {
        // Reference values of SplitMix64 seeded with 0 (the generator's published test vector).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
