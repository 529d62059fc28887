//! Byte-level byte pair encoding, GPT-2's tokenizer (book section 2.5, "Byte pair encoding";
//! the book calls OpenAI's `tiktoken`, this module *is* the tokenizer).
//!
//! How GPT-2 turns text into ids:
//! 1. **Bytes.** The text is taken as UTF-8 bytes, so every string can be encoded and there is
//!    no unknown token: the 256 byte values are the first 256 tokens. OpenAI's files write a
//!    byte as a printable character ([`bytes_to_unicode`]: `' '` is written `Ġ`, `'\n'` is `Ċ`).
//! 2. **Pre-tokenization.** A regular expression cuts the text into words, numbers, punctuation
//!    runs and whitespace ([`pre_tokenize`](super::pre_tokenize)); merges never cross a cut.
//! 3. **Merging by rank.** Inside a piece, start from its bytes and repeatedly merge the adjacent
//!    pair whose merged token has the lowest rank (the earliest line of `vocab.bpe`), the leftmost
//!    one on a tie, until no adjacent pair merges. A piece that is a whole token already is that
//!    token.
//! 4. **Special tokens.** `<|endoftext|>` (id 50256) is not made of merges: it is recognised in
//!    the text only where the caller allows it ([`BpeTokenizer::encode`]).
//!
//! Step 3 ranks a pair by the token it makes, whichever two halves make it: `"Ġ" + "the"` merges
//! into `Ġthe` with the rank of that token although `vocab.bpe` lists `Ġt he`. tiktoken
//! (OpenAI's fast tokenizer) ranks pairs this way, and so does this crate, so that its ids equal
//! `tiktoken-rs`'s `r50k_base` by construction (the tests check it on the book's data and on
//! random Unicode text). OpenAI's original `encoder.py` looks up only the 50,000 listed pairs;
//! with GPT-2's files the two rules gave the same ids on every text the tests try.
//!
//! [`BpeTokenizer`] loads OpenAI's `encoder.json` + `vocab.bpe` ([`BpeTokenizer::gpt2`]) or is
//! learned from a text ([`train_bpe`](super::train_bpe)).

use std::collections::BinaryHeap;
use std::path::Path;
use std::sync::Mutex;

use rustc_hash::FxHashMap;

use super::pretokenize::pre_tokenize;
use crate::error::{Error, Result};

/// GPT-2's end-of-text token: separates documents, and pads batches in chapters 6 and 7.
pub const ENDOFTEXT: &str = "<|endoftext|>";

/// The id of `<|endoftext|>` in GPT-2's vocabulary.
pub const ENDOFTEXT_ID: u32 = 50256;

/// GPT-2's vocabulary size: 256 bytes + 50,000 merges + `<|endoftext|>`.
pub const GPT2_VOCAB_SIZE: usize = 50257;

/// OpenAI's table from bytes to printable characters (`bytes_to_unicode` in GPT-2's
/// `encoder.py`): printable Latin-1 bytes stand for themselves, the other 68 bytes (control
/// characters, space, ...) are moved to U+0100 onwards, so a token can be written as text
/// without whitespace or control characters: the space `0x20` becomes `Ġ` (U+0120), `'\n'` `Ċ`.
pub fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            b as char
        } else {
            n += 1;
            char::from_u32(256 + n - 1).expect("U+0100..U+0143 are chars")
        };
    }
    table
}

/// The inverse of [`bytes_to_unicode`]: the byte a character of OpenAI's files stands for.
fn unicode_to_bytes() -> FxHashMap<char, u8> {
    bytes_to_unicode().iter().enumerate().map(|(b, &c)| (c, b as u8)).collect()
}

/// A byte-level BPE tokenizer: GPT-2's ([`BpeTokenizer::gpt2`]) or one trained from a text
/// ([`train_bpe`](super::train_bpe)).
///
/// `encode` takes `&self` and may be called from many threads; a cache of the pieces already
/// merged is shared and used by one call at a time (the others simply merge without it).
pub struct BpeTokenizer {
    /// Token id -> its bytes (special tokens: the bytes of their text).
    id_to_bytes: Vec<Box<[u8]>>,
    /// Bytes -> token id, for ordinary (non-special) tokens.
    encoder: FxHashMap<Box<[u8]>, u32>,
    /// Byte value -> the id of its single-byte token.
    byte_ids: [u32; 256],
    /// `(left id << 32) | right id` -> `(rank << 32) | merged id`, for every pair of tokens whose
    /// bytes together form a token: lower ranks merge first.
    pairs: FxHashMap<u64, u64>,
    /// The merges in rank order, as written in `vocab.bpe`: (left id, right id, merged id).
    merges: Vec<(u32, u32, u32)>,
    /// Special tokens, `(text, id)`, e.g. `("<|endoftext|>", 50256)`.
    special_tokens: Vec<(String, u32)>,
    /// Pieces merged already: bytes -> ids.
    cache: Mutex<PieceCache>,
}

/// Pieces merged already: a piece's bytes -> its ids.
type PieceCache = FxHashMap<Box<[u8]>, Box<[u32]>>;

/// Past this many cached pieces the cache starts again (bounds its memory on huge inputs).
const CACHE_LIMIT: usize = 1 << 18;
/// Pieces longer than this (bytes) merge with a heap instead of rescanning all pairs.
const LONG_PIECE: usize = 128;

impl Clone for BpeTokenizer {
    fn clone(&self) -> Self {
        BpeTokenizer {
            id_to_bytes: self.id_to_bytes.clone(),
            encoder: self.encoder.clone(),
            byte_ids: self.byte_ids,
            pairs: self.pairs.clone(),
            merges: self.merges.clone(),
            special_tokens: self.special_tokens.clone(),
            cache: Mutex::new(FxHashMap::default()),
        }
    }
}

impl std::fmt::Debug for BpeTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpeTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("merges", &self.merges.len())
            .field("special_tokens", &self.special_tokens)
            .finish()
    }
}

impl BpeTokenizer {
    /// GPT-2's tokenizer (`tiktoken.get_encoding("gpt2")` in the book), from OpenAI's
    /// `encoder.json` and `vocab.bpe` found by the [data module](crate::text::data) (the local data
    /// folder `LLM_DATA_DIR`, the cache, or a download).
    pub fn gpt2() -> Result<Self> {
        let encoder = crate::text::data::fetch(&crate::text::data::GPT2_ENCODER_JSON)?;
        let vocab = crate::text::data::fetch(&crate::text::data::GPT2_VOCAB_BPE)?;
        Self::from_files(encoder, vocab)
    }

    /// Load a tokenizer from OpenAI's two files: `encoder.json` (token text -> id, the bytes
    /// written with [`bytes_to_unicode`]) and `vocab.bpe` (`#version` line, then one merge
    /// `left right` a line, in rank order). An entry of `encoder.json` that is neither a byte nor
    /// made by a merge (GPT-2's `<|endoftext|>`) is a special token.
    pub fn from_files(encoder_json: impl AsRef<Path>, vocab_bpe: impl AsRef<Path>) -> Result<Self> {
        let (encoder_json, vocab_bpe) = (encoder_json.as_ref(), vocab_bpe.as_ref());
        let encoder_text = std::fs::read_to_string(encoder_json).map_err(|e| Error::io(encoder_json, e))?;
        let merges_text = std::fs::read_to_string(vocab_bpe).map_err(|e| Error::io(vocab_bpe, e))?;
        Self::from_gpt2_strings(&encoder_text, &merges_text).map_err(|(which, reason)| Error::Format {
            path: if which == 0 { encoder_json.to_path_buf() } else { vocab_bpe.to_path_buf() },
            reason,
        })
    }

    /// [`from_files`](Self::from_files) on the files' contents; the error says which file
    /// (0: encoder.json, 1: vocab.bpe) and why.
    fn from_gpt2_strings(encoder_text: &str, merges_text: &str) -> std::result::Result<Self, (u8, String)> {
        let entries: std::collections::HashMap<String, u32> =
            serde_json::from_str(encoder_text).map_err(|e| (0, format!("not a JSON object of token -> id: {e}")))?;
        let n = entries.len();
        let mut by_id: Vec<Option<&str>> = vec![None; n];
        for (token, &id) in &entries {
            let slot = by_id.get_mut(id as usize).ok_or_else(|| {
                (0, format!("id {id} of {token:?} is outside 0..{n} (ids must be 0..number of entries)"))
            })?;
            if let Some(other) = slot {
                return Err((0, format!("id {id} is given to both {other:?} and {token:?}")));
            }
            *slot = Some(token);
        }
        let decode = unicode_to_bytes();
        let token_bytes = |token: &str| -> Option<Vec<u8>> { token.chars().map(|c| decode.get(&c).copied()).collect() };

        // Single bytes.
        let mut byte_ids = [u32::MAX; 256];
        let mut id_to_bytes: Vec<Option<Vec<u8>>> = vec![None; n];
        for (id, token) in by_id.iter().enumerate() {
            let token = token.expect("every id 0..n is used once");
            if token.chars().count() == 1 {
                if let Some(bytes) = token_bytes(token) {
                    byte_ids[bytes[0] as usize] = id as u32;
                    id_to_bytes[id] = Some(bytes);
                }
            }
        }
        if let Some(b) = byte_ids.iter().position(|&id| id == u32::MAX) {
            return Err((0, format!("no token for the byte {b:#04x} ({:?})", bytes_to_unicode()[b])));
        }

        // Merges, in rank order.
        let mut merges = Vec::new();
        for (line_no, line) in merges_text.lines().enumerate() {
            if line.is_empty() || (line_no == 0 && line.starts_with("#version")) {
                continue;
            }
            let at = |reason: String| (1, format!("line {}: {reason}", line_no + 1));
            let (left, right) = line
                .split_once(' ')
                .filter(|(_, r)| !r.contains(' '))
                .ok_or_else(|| at(format!("expected two tokens separated by one space, found {line:?}")))?;
            let id_of = |token: &str| {
                entries.get(token).copied().ok_or_else(|| at(format!("{token:?} is not in encoder.json")))
            };
            let merged = format!("{left}{right}");
            let (l, r, m) = (id_of(left)?, id_of(right)?, id_of(&merged)?);
            let bytes = token_bytes(&merged)
                .ok_or_else(|| at(format!("{merged:?} has a character that stands for no byte")))?;
            if id_to_bytes[m as usize].is_some() {
                return Err(at(format!("{merged:?} is made twice (merges must each make a new token)")));
            }
            id_to_bytes[m as usize] = Some(bytes);
            merges.push((l, r, m));
        }

        // What is left is special: its text is the token.
        let mut special_tokens = Vec::new();
        let id_to_bytes: Vec<Box<[u8]>> = id_to_bytes
            .into_iter()
            .enumerate()
            .map(|(id, bytes)| {
                bytes.map(Vec::into_boxed_slice).unwrap_or_else(|| {
                    let text = by_id[id].expect("every id is used");
                    special_tokens.push((text.to_string(), id as u32));
                    text.as_bytes().into()
                })
            })
            .collect();
        Ok(Self::from_parts(id_to_bytes, byte_ids, merges, special_tokens))
    }

    /// Build a tokenizer from its vocabulary (`id_to_bytes`, special tokens included), the ids of
    /// the 256 bytes, the merges `(left, right, merged)` in rank order, and the special tokens.
    pub(crate) fn from_parts(
        id_to_bytes: Vec<Box<[u8]>>,
        byte_ids: [u32; 256],
        merges: Vec<(u32, u32, u32)>,
        special_tokens: Vec<(String, u32)>,
    ) -> Self {
        let is_special = |id: u32| special_tokens.iter().any(|&(_, s)| s == id);
        let mut encoder: FxHashMap<Box<[u8]>, u32> = FxHashMap::default();
        for (id, bytes) in id_to_bytes.iter().enumerate() {
            if !is_special(id as u32) {
                encoder.entry(bytes.clone()).or_insert(id as u32);
            }
        }
        // Pairs: the listed merges, then every other split of a merged token into two tokens
        // (tiktoken's rule: a pair ranks as the token it makes).
        let mut pairs: FxHashMap<u64, u64> = FxHashMap::default();
        for (rank, &(l, r, m)) in merges.iter().enumerate() {
            pairs.insert(pair_key(l, r), ((rank as u64) << 32) | m as u64);
        }
        for (rank, &(_, _, m)) in merges.iter().enumerate() {
            let bytes = &id_to_bytes[m as usize];
            for k in 1..bytes.len() {
                if let (Some(&l), Some(&r)) = (encoder.get(&bytes[..k]), encoder.get(&bytes[k..])) {
                    pairs.entry(pair_key(l, r)).or_insert(((rank as u64) << 32) | m as u64);
                }
            }
        }
        BpeTokenizer {
            id_to_bytes,
            encoder,
            byte_ids,
            pairs,
            merges,
            special_tokens,
            cache: Mutex::new(FxHashMap::default()),
        }
    }

    /// Number of tokens, special tokens included (50257 for GPT-2).
    pub fn vocab_size(&self) -> usize {
        self.id_to_bytes.len()
    }

    /// The special tokens and their ids.
    pub fn special_tokens(&self) -> &[(String, u32)] {
        &self.special_tokens
    }

    /// The id of a special token, e.g. `special_token_id("<|endoftext|>") == Some(50256)` for GPT-2.
    pub fn special_token_id(&self, token: &str) -> Option<u32> {
        self.special_tokens.iter().find(|(t, _)| t == token).map(|&(_, id)| id)
    }

    /// The merges in rank order as `(left, right, merged)` ids (`vocab.bpe`'s lines).
    pub fn merges(&self) -> &[(u32, u32, u32)] {
        &self.merges
    }

    /// The id of the token whose bytes are `bytes`, if there is one (special tokens excluded).
    pub fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        self.encoder.get(bytes).copied()
    }

    /// The bytes of token `id` (`None` outside the vocabulary).
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.id_to_bytes.get(id as usize).map(|b| &b[..])
    }

    /// Encode `text`, recognising the special tokens listed in `allowed_special` (the book's
    /// `tokenizer.encode(text, allowed_special={"<|endoftext|>"})`). A special token that appears
    /// in the text but is not allowed is an error naming it (as tiktoken's default); use
    /// [`encode_ordinary`](Self::encode_ordinary) to encode such text as plain characters.
    ///
    /// ```no_run
    /// # use llm_from_scratch::tokenizer::BpeTokenizer;
    /// let tokenizer = BpeTokenizer::gpt2()?;
    /// let ids = tokenizer.encode("Hello, do you like tea? <|endoftext|> In the sunlit", &["<|endoftext|>"])?;
    /// assert_eq!(ids, [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250]);
    /// assert!(tokenizer.encode("<|endoftext|>", &[]).is_err());
    /// # Ok::<(), llm_from_scratch::Error>(())
    /// ```
    pub fn encode(&self, text: &str, allowed_special: &[&str]) -> Result<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len() / 4 + 1);
        let mut cache = self.cache.try_lock().ok();
        let mut rest = text;
        while let Some((at, token, id)) = self.next_special(rest) {
            if !allowed_special.contains(&token) {
                return Err(Error::DisallowedSpecialToken { token: token.to_string() });
            }
            self.encode_ordinary_into(&rest[..at], &mut ids, cache.as_deref_mut());
            ids.push(id);
            rest = &rest[at + token.len()..];
        }
        self.encode_ordinary_into(rest, &mut ids, cache.as_deref_mut());
        Ok(ids)
    }

    /// Encode `text` as ordinary text: special tokens' text is encoded like any other characters
    /// (`"<|endoftext|>"` becomes `<`, `|`, `endoftext`, `|`, `>`). Never fails.
    pub fn encode_ordinary(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(text.len() / 4 + 1);
        let mut cache = self.cache.try_lock().ok();
        self.encode_ordinary_into(text, &mut ids, cache.as_deref_mut());
        ids
    }

    /// The first special token in `text`: (byte offset, its text, its id).
    fn next_special<'t>(&'t self, text: &str) -> Option<(usize, &'t str, u32)> {
        self.special_tokens
            .iter()
            .filter_map(|(token, id)| text.find(token.as_str()).map(|at| (at, token.as_str(), *id)))
            .min_by_key(|&(at, token, _)| (at, std::cmp::Reverse(token.len())))
    }

    fn encode_ordinary_into(
        &self,
        text: &str,
        ids: &mut Vec<u32>,
        mut cache: Option<&mut PieceCache>,
    ) {
        for piece in pre_tokenize(text) {
            let piece = piece.as_bytes();
            if let Some(&id) = self.encoder.get(piece) {
                ids.push(id);
                continue;
            }
            match cache.as_deref_mut() {
                Some(cache) => {
                    if let Some(cached) = cache.get(piece) {
                        ids.extend_from_slice(cached);
                        continue;
                    }
                    let start = ids.len();
                    self.merge_piece(piece, ids);
                    if cache.len() >= CACHE_LIMIT {
                        cache.clear();
                    }
                    cache.insert(piece.into(), ids[start..].into());
                }
                None => self.merge_piece(piece, ids),
            }
        }
    }

    /// Rank and merged id of the pair `(left, right)`, or `u64::MAX` when it does not merge.
    #[inline(always)]
    fn pair(&self, left: u32, right: u32) -> u64 {
        self.pairs.get(&pair_key(left, right)).copied().unwrap_or(u64::MAX)
    }

    /// BPE inside one piece: start from its bytes, merge the lowest-ranked adjacent pair (the
    /// leftmost on a tie) until none merges; push the ids.
    fn merge_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if piece.len() > LONG_PIECE {
            return self.merge_piece_long(piece, out);
        }
        let mut parts: Vec<u32> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        // ranks[i]: the pair (parts[i], parts[i + 1]).
        let mut ranks: Vec<u64> = parts.windows(2).map(|w| self.pair(w[0], w[1])).collect();
        loop {
            let mut best = (u64::MAX, 0);
            for (i, &rank) in ranks.iter().enumerate() {
                if rank < best.0 {
                    best = (rank, i);
                }
            }
            let (rank, i) = best;
            if rank == u64::MAX {
                break;
            }
            parts[i] = rank as u32;
            parts.remove(i + 1);
            ranks.remove(i);
            if i > 0 {
                ranks[i - 1] = self.pair(parts[i - 1], parts[i]);
            }
            if i < ranks.len() {
                ranks[i] = self.pair(parts[i], parts[i + 1]);
            }
        }
        out.extend_from_slice(&parts);
    }

    /// [`merge_piece`](Self::merge_piece) for long pieces (a run of 10,000 spaces, say): the same
    /// merges in the same order, found with a heap over a linked list, O(n log n).
    fn merge_piece_long(&self, piece: &[u8], out: &mut Vec<u32>) {
        let n = piece.len();
        const NONE: usize = usize::MAX;
        let mut ids: Vec<u32> = piece.iter().map(|&b| self.byte_ids[b as usize]).collect();
        let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
        let mut alive = vec![true; n];
        // Min-heap of (rank, position, left id, right id): stale entries are skipped when popped.
        let mut heap = BinaryHeap::new();
        for i in 0..n - 1 {
            let r = self.pair(ids[i], ids[i + 1]);
            if r != u64::MAX {
                heap.push(std::cmp::Reverse((r, i, ids[i], ids[i + 1])));
            }
        }
        while let Some(std::cmp::Reverse((rank, i, l, r))) = heap.pop() {
            let j = next[i];
            if !alive[i] || j == NONE || ids[i] != l || ids[j] != r {
                continue;
            }
            ids[i] = rank as u32;
            alive[j] = false;
            next[i] = next[j];
            if next[j] != NONE {
                prev[next[j]] = i;
            }
            if prev[i] != NONE {
                let p = prev[i];
                let pr = self.pair(ids[p], ids[i]);
                if pr != u64::MAX {
                    heap.push(std::cmp::Reverse((pr, p, ids[p], ids[i])));
                }
            }
            if next[i] != NONE {
                let k = next[i];
                let nr = self.pair(ids[i], ids[k]);
                if nr != u64::MAX {
                    heap.push(std::cmp::Reverse((nr, i, ids[i], ids[k])));
                }
            }
        }
        let mut i = 0;
        while i != NONE {
            out.push(ids[i]);
            i = next[i];
        }
    }

    /// The bytes that `ids` stand for, concatenated. An id outside the vocabulary is an error.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let token =
                self.id_to_bytes.get(id as usize).ok_or(Error::UnknownTokenId { id, vocab_size: self.vocab_size() })?;
            bytes.extend_from_slice(token);
        }
        Ok(bytes)
    }

    /// Decode `ids` to text. Any sequence of valid ids decodes: bytes that are not valid UTF-8
    /// (half of a multi-byte character, say `decode(&[447])`) become U+FFFD, as Python's
    /// `errors="replace"` does. An id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let bytes = self.decode_bytes(ids)?;
        Ok(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Empty the cache of merged pieces (to time encoding from a cold start).
    pub fn clear_cache(&self) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.clear();
        }
    }

    /// Write the tokenizer as OpenAI's two files, `encoder.json` and `vocab.bpe`, in `dir`
    /// (created if needed); [`from_files`](Self::from_files) loads them back.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let table = bytes_to_unicode();
        let text_of = |id: u32| -> String {
            match self.special_tokens.iter().find(|&&(_, s)| s == id) {
                Some((text, _)) => text.clone(),
                None => self.id_to_bytes[id as usize].iter().map(|&b| table[b as usize]).collect(),
            }
        };
        let mut encoder = serde_json::Map::new();
        for id in 0..self.vocab_size() as u32 {
            encoder.insert(text_of(id), serde_json::Value::from(id));
        }
        let path = dir.join("encoder.json");
        let json = serde_json::to_string(&encoder).expect("a map of strings serialises");
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))?;
        let mut bpe = String::from("#version: 0.2\n");
        for &(l, r, _) in &self.merges {
            bpe.push_str(&text_of(l));
            bpe.push(' ');
            bpe.push_str(&text_of(r));
            bpe.push('\n');
        }
        let path = dir.join("vocab.bpe");
        std::fs::write(&path, bpe).map_err(|e| Error::io(&path, e))
    }
}

#[inline(always)]
fn pair_key(left: u32, right: u32) -> u64 {
    ((left as u64) << 32) | right as u64
}

impl super::Tokenizer for BpeTokenizer {
    fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(text, &[ENDOFTEXT])
    }
    fn decode_ids(&self, ids: &[u32]) -> Result<String> {
        self.decode(ids)
    }
    fn vocab_size(&self) -> usize {
        self.id_to_bytes.len()
    }
}

/// GPT-2's tokenizer is a [`BpeTokenizer`] loaded with [`BpeTokenizer::gpt2`].
pub type Gpt2Tokenizer = BpeTokenizer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_to_unicode_matches_openai() {
        let table = bytes_to_unicode();
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[b'!' as usize], '!');
        assert_eq!(table[0], 'Ā');
        assert_eq!(table[0xAD], 'Ń', "the soft hyphen is moved");
        let distinct: std::collections::HashSet<char> = table.iter().copied().collect();
        assert_eq!(distinct.len(), 256, "the table is one-to-one");
    }

    /// A tiny vocabulary: bytes a b c, merges (a b) -> ab, (ab c) -> abc, (b c) -> bc.
    fn toy() -> BpeTokenizer {
        let mut id_to_bytes: Vec<Box<[u8]>> = (0..=255u8).map(|b| vec![b].into_boxed_slice()).collect();
        let byte_ids: [u32; 256] = std::array::from_fn(|b| b as u32);
        id_to_bytes.push(b"ab".to_vec().into());
        id_to_bytes.push(b"abc".to_vec().into());
        id_to_bytes.push(b"bc".to_vec().into());
        id_to_bytes.push(b"<|end|>".to_vec().into());
        let merges = vec![(97, 98, 256), (256, 99, 257), (98, 99, 258)];
        BpeTokenizer::from_parts(id_to_bytes, byte_ids, merges, vec![("<|end|>".into(), 259)])
    }

    #[test]
    fn merges_by_rank() {
        let t = toy();
        assert_eq!(t.encode_ordinary("abc"), [257]);
        assert_eq!(t.encode_ordinary("abcbc"), [257, 258]);
        assert_eq!(t.encode_ordinary("cab"), [99, 256]);
        assert_eq!(t.encode_ordinary("ab ab"), [256, 32, 256], "' ab' is a piece of its own: ' ' + ab");
        assert_eq!(t.decode(&[257, 258]).unwrap(), "abcbc");
    }

    #[test]
    fn long_and_short_merges_agree() {
        let t = toy();
        let piece: Vec<u8> = b"abcabcbcbbcaab".iter().cycle().take(400).copied().collect();
        let (mut short, mut long) = (Vec::new(), Vec::new());
        t.merge_piece(&piece[..100], &mut short);
        t.merge_piece_long(&piece[..100], &mut long);
        assert_eq!(short, long);
    }

    #[test]
    fn special_tokens_only_when_allowed() {
        let t = toy();
        assert_eq!(t.encode("ab<|end|>c", &["<|end|>"]).unwrap(), [256, 259, 99]);
        let err = t.encode("ab<|end|>c", &[]).unwrap_err();
        assert!(err.to_string().contains("<|end|>"), "the error names the token: {err}");
        assert_eq!(t.encode_ordinary("<|end|>"), b"<|end|>".map(u32::from), "ordinary text: its seven bytes");
    }

    #[test]
    fn decode_checks_ids_and_is_lossy() {
        let t = toy();
        let err = t.decode(&[97, 260]).unwrap_err();
        assert!(err.to_string().contains("260"), "{err}");
        // The first two bytes of "€" (E2 82 AC): an incomplete character, one U+FFFD.
        assert_eq!(t.decode(&[0xE2, 0x82]).unwrap(), "\u{FFFD}");
        assert_eq!(t.decode(&[0xE2, 0x82, 0xAC]).unwrap(), "€");
    }

    #[test]
    fn save_and_load_round_trip() {
        let t = toy();
        let dir = std::env::temp_dir().join(format!("llm-bpe-toy-{}", std::process::id()));
        t.save(&dir).unwrap();
        let u = BpeTokenizer::from_files(dir.join("encoder.json"), dir.join("vocab.bpe")).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(u.vocab_size(), t.vocab_size());
        assert_eq!(u.special_tokens(), t.special_tokens());
        for text in ["abcbc", "cab ab", "xyz"] {
            assert_eq!(u.encode_ordinary(text), t.encode_ordinary(text), "{text}");
        }
    }
}
