//! Learning BPE merges from a text (the book's bonus notebook "Byte Pair Encoding (BPE)
//! Tokenizer From Scratch", `ch02/05_bpe-from-scratch`): how GPT-2's 50,000 merges came to be.
//!
//! Training, byte-level as GPT-2:
//! 1. Cut the text into GPT-2 pre-tokens ([`pre_tokenize`](super::pre_tokenize)) and count
//!    each distinct piece; special tokens in the text are cut out first and never learned.
//! 2. Start every piece as its bytes: tokens 0-255 are the bytes.
//! 3. Count adjacent pairs over all pieces (weighted by how often each piece occurs); merge the
//!    most frequent pair everywhere into a new token (ties: the pair of smaller ids). Repeat
//!    until the vocabulary has `vocab_size` tokens or no pair is left.
//!
//! A pair whose bytes already form a token (`"a" + "bc"` when `"ab" + "c"` made `"abc"`) merges
//! into that token instead of a duplicate, so every token has distinct bytes, as in GPT-2's files.
//! The result is a [`BpeTokenizer`], which encodes, decodes and saves like GPT-2's.
//!
//! Counting every pair of the whole text again for each merge costs (merges × text length). That
//! is cheap for English, whose pieces are words repeated many times (counted once each), but not
//! for Chinese: with no spaces between words, a GPT-2 pre-token is a whole run of characters
//! between two punctuation marks, nearly every piece is distinct, and the work grows with the
//! text. So the counts are kept from one merge to the next: a merge recounts only the pieces that
//! contain the pair, and a max-heap (stale entries skipped) finds the next most frequent pair.
//! The merges are the same as recounting everything (a test checks it against that simple loop).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use super::bpe::BpeTokenizer;
use super::pretokenize::pre_tokenize;
use crate::error::{Error, Result};

/// Learn a byte-level BPE vocabulary of `vocab_size` tokens from `text`: the 256 bytes, the
/// merges learned, then `special_tokens` (e.g. `["<|endoftext|>"]`) as the last ids.
/// Stops early (a smaller vocabulary) when every piece of the text is a single token.
///
/// ```
/// use llm_from_scratch::tokenizer::train_bpe;
/// let text = "low lower lowest low low newer newest";
/// let tokenizer = train_bpe(text, 270, &["<|endoftext|>"])?;
/// let ids = tokenizer.encode_ordinary(text);
/// assert!(ids.len() < text.len(), "merges shorten the text: {} ids", ids.len());
/// assert_eq!(tokenizer.decode(&ids)?, text);
/// # Ok::<(), llm_from_scratch::Error>(())
/// ```
pub fn train_bpe(text: &str, vocab_size: usize, special_tokens: &[&str]) -> Result<BpeTokenizer> {
    let min = 256 + special_tokens.len();
    if vocab_size < min {
        return Err(Error::InvalidArgument {
            name: "vocab_size",
            reason: format!("{vocab_size} is below {min} (the 256 bytes and {} special tokens)", special_tokens.len()),
        });
    }

    // 1. Count the pieces, outside special tokens.
    let mut piece_counts: FxHashMap<&str, u64> = FxHashMap::default();
    let mut segments = vec![text];
    for special in special_tokens.iter().filter(|s| !s.is_empty()) {
        segments = segments.iter().flat_map(|s| s.split(special)).collect();
    }
    for segment in segments {
        for piece in pre_tokenize(segment) {
            *piece_counts.entry(piece).or_insert(0) += 1;
        }
    }
    // Sorted, so training does not depend on hash order.
    let mut pieces: Vec<(&str, u64)> = piece_counts.into_iter().collect();
    pieces.sort_unstable();
    // 2. Every piece as its bytes.
    let mut words: Vec<(Vec<u32>, u64)> =
        pieces.iter().map(|&(p, n)| (p.bytes().map(u32::from).collect(), n)).collect();

    let mut id_to_bytes: Vec<Box<[u8]>> = (0..=255u8).map(|b| vec![b].into_boxed_slice()).collect();
    let mut by_bytes: FxHashMap<Box<[u8]>, u32> =
        id_to_bytes.iter().enumerate().map(|(i, b)| (b.clone(), i as u32)).collect();
    let mut merges: Vec<(u32, u32, u32)> = Vec::new();
    let target = vocab_size - special_tokens.len();

    // 3. Merge the most frequent pair until the vocabulary is full.
    let mut counts = PairCounts::new(&words);
    while id_to_bytes.len() < target {
        let Some((left, right)) = counts.most_frequent() else {
            break; // every piece is one token
        };
        let bytes: Box<[u8]> = [&id_to_bytes[left as usize][..], &id_to_bytes[right as usize][..]].concat().into();
        let merged = match by_bytes.get(&bytes) {
            Some(&existing) => existing,
            None => {
                let id = id_to_bytes.len() as u32;
                id_to_bytes.push(bytes.clone());
                by_bytes.insert(bytes, id);
                merges.push((left, right, id));
                id
            }
        };
        counts.merge(&mut words, left, right, merged);
    }

    let mut specials = Vec::new();
    for &s in special_tokens {
        specials.push((s.to_string(), id_to_bytes.len() as u32));
        id_to_bytes.push(s.as_bytes().into());
    }
    let byte_ids: [u32; 256] = std::array::from_fn(|b| b as u32);
    Ok(BpeTokenizer::from_parts(id_to_bytes, byte_ids, merges, specials))
}

/// The adjacent-pair counts of the pieces, weighted by how often each piece occurs, kept up to
/// date merge after merge.
struct PairCounts {
    /// Pair -> its count over all pieces (pairs that no longer occur are removed).
    counts: FxHashMap<(u32, u32), u64>,
    /// Pair -> the pieces (indices into `words`) that contained it when it was counted: a superset
    /// of those that contain it now.
    pieces: FxHashMap<(u32, u32), Vec<usize>>,
    /// Max-heap of (count, pair with the smaller ids first): an entry whose count is no longer
    /// the pair's count is stale and skipped; every change of a count pushes a fresh entry.
    heap: BinaryHeap<(u64, Reverse<(u32, u32)>)>,
}

impl PairCounts {
    fn new(words: &[(Vec<u32>, u64)]) -> Self {
        let mut this = PairCounts { counts: FxHashMap::default(), pieces: FxHashMap::default(), heap: BinaryHeap::new() };
        let mut changed = Vec::new();
        for (i, (ids, n)) in words.iter().enumerate() {
            this.add(i, ids, *n, &mut changed);
        }
        this.push(changed);
        this
    }

    /// Count the pairs of piece `i` (`ids`, occurring `n` times); note the pairs whose count changed.
    fn add(&mut self, i: usize, ids: &[u32], n: u64, changed: &mut Vec<(u32, u32)>) {
        for w in ids.windows(2) {
            let pair = (w[0], w[1]);
            *self.counts.entry(pair).or_insert(0) += n;
            let pieces = self.pieces.entry(pair).or_default();
            if pieces.last() != Some(&i) {
                pieces.push(i);
            }
            changed.push(pair);
        }
    }

    /// Take back the pair counts of piece `ids` (occurring `n` times).
    fn remove(&mut self, ids: &[u32], n: u64, changed: &mut Vec<(u32, u32)>) {
        for w in ids.windows(2) {
            let pair = (w[0], w[1]);
            let count = self.counts.get_mut(&pair).expect("a counted pair");
            *count -= n;
            if *count == 0 {
                self.counts.remove(&pair);
            }
            changed.push(pair);
        }
    }

    /// Fresh heap entries for the pairs whose count changed.
    fn push(&mut self, mut changed: Vec<(u32, u32)>) {
        changed.sort_unstable();
        changed.dedup();
        for pair in changed {
            if let Some(&count) = self.counts.get(&pair) {
                self.heap.push((count, Reverse(pair)));
            }
        }
    }

    /// The most frequent pair (ties: the smaller ids), or `None` when no pair is left.
    fn most_frequent(&mut self) -> Option<(u32, u32)> {
        while let Some(&(count, Reverse(pair))) = self.heap.peek() {
            if self.counts.get(&pair) == Some(&count) {
                return Some(pair);
            }
            self.heap.pop(); // stale
        }
        None
    }

    /// Merge `left, right` into `merged` in every piece that contains it, and recount those pieces.
    fn merge(&mut self, words: &mut [(Vec<u32>, u64)], left: u32, right: u32, merged: u32) {
        let mut changed = Vec::new();
        for i in self.pieces.remove(&(left, right)).unwrap_or_default() {
            let (ids, n) = &mut words[i];
            if !ids.windows(2).any(|w| w == [left, right]) {
                continue; // merged away by an earlier pair
            }
            let n = *n;
            self.remove(ids, n, &mut changed);
            merge_pair(ids, left, right, merged);
            let ids = std::mem::take(&mut words[i].0);
            self.add(i, &ids, n, &mut changed);
            words[i].0 = ids;
        }
        self.push(changed);
    }
}

/// Replace every occurrence of `left, right` in `ids` (left to right, not overlapping) by `merged`.
fn merge_pair(ids: &mut Vec<u32>, left: u32, right: u32, merged: u32) {
    if ids.len() < 2 {
        return;
    }
    let mut out = 0;
    let mut i = 0;
    while i < ids.len() {
        if i + 1 < ids.len() && ids[i] == left && ids[i + 1] == right {
            ids[out] = merged;
            i += 2;
        } else {
            ids[out] = ids[i];
            i += 1;
        }
        out += 1;
    }
    ids.truncate(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_pair_is_left_to_right() {
        let mut ids = vec![1, 1, 1, 2, 1, 1];
        merge_pair(&mut ids, 1, 1, 9);
        assert_eq!(ids, [9, 1, 2, 9]);
    }

    #[test]
    fn learns_the_most_frequent_pair_first() {
        let t = train_bpe("aaab aaab aaab", 257, &[]).unwrap();
        assert_eq!(t.merges(), [(97, 97, 256)], "'aa' is the most frequent pair");
        assert_eq!(t.vocab_size(), 257);
    }

    /// The merges of the plain algorithm: recount every pair of every piece before each merge.
    fn reference_merges(text: &str, vocab_size: usize) -> Vec<(u32, u32, u32)> {
        let mut piece_counts: FxHashMap<&str, u64> = FxHashMap::default();
        for piece in pre_tokenize(text) {
            *piece_counts.entry(piece).or_insert(0) += 1;
        }
        let mut words: Vec<(Vec<u32>, u64)> =
            piece_counts.into_iter().map(|(p, n)| (p.bytes().map(u32::from).collect(), n)).collect();
        let mut id_to_bytes: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        let mut merges = Vec::new();
        while id_to_bytes.len() < vocab_size {
            let mut counts: FxHashMap<(u32, u32), u64> = FxHashMap::default();
            for (ids, n) in &words {
                for w in ids.windows(2) {
                    *counts.entry((w[0], w[1])).or_insert(0) += n;
                }
            }
            let Some((&(left, right), _)) = counts.iter().max_by(|(pa, ca), (pb, cb)| ca.cmp(cb).then(pb.cmp(pa)))
            else {
                break;
            };
            let bytes = [&id_to_bytes[left as usize][..], &id_to_bytes[right as usize][..]].concat();
            let merged = match id_to_bytes.iter().position(|b| *b == bytes) {
                Some(existing) => existing as u32,
                None => {
                    id_to_bytes.push(bytes);
                    merges.push((left, right, id_to_bytes.len() as u32 - 1));
                    id_to_bytes.len() as u32 - 1
                }
            };
            for (ids, _) in &mut words {
                merge_pair(ids, left, right, merged);
            }
        }
        merges
    }

    #[test]
    fn counts_kept_between_merges_give_the_reference_merges() {
        use crate::text::samples::{CH01_EN, CH01_ZH};
        for (name, text, vocab_size) in [("Chinese chapter 1", CH01_ZH, 1000), ("English chapter 1", CH01_EN, 600)] {
            let t = train_bpe(text, vocab_size, &[]).unwrap();
            assert_eq!(t.merges(), reference_merges(text, vocab_size), "merges of {name}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, failure_persistence: None, ..Default::default() })]

        /// Small alphabets: many ties, runs (`aaaa`), and pairs whose bytes are already a token.
        #[test]
        fn same_merges_as_the_reference(text in "[ab c的是]{0,80}", extra in 0usize..40) {
            let t = train_bpe(&text, 256 + extra, &[]).unwrap();
            proptest::prop_assert_eq!(t.merges(), &reference_merges(&text, 256 + extra)[..]);
            let ids = t.encode_ordinary(&text);
            proptest::prop_assert_eq!(t.decode(&ids).unwrap(), text);
        }
    }

    #[test]
    fn special_tokens_are_last_and_never_merged() {
        let t = train_bpe("ab<|endoftext|>ab<|endoftext|>ab", 300, &["<|endoftext|>"]).unwrap();
        assert_eq!(t.special_token_id("<|endoftext|>"), Some(t.vocab_size() as u32 - 1));
        assert_eq!(t.encode("ab<|endoftext|>", &["<|endoftext|>"]).unwrap(), [256, t.vocab_size() as u32 - 1]);
        assert!(train_bpe("x", 100, &[]).is_err(), "below 256 is an error");
    }
}
