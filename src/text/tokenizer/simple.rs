//! The book's first tokenizers (sections 2.2-2.4): split a text with a regular expression,
//! give each distinct token an id, and add special tokens for unknown words and text boundaries.
//!
//! - [`split_words`]: the book's `re.split(r'([,.:;?_!"()\']|--|\s)', text)`, items stripped and
//!   empty ones dropped (section 2.2). The-verdict gives 4690 tokens.
//! - [`Vocab`]: the sorted distinct tokens numbered from 0 (section 2.3); 1130 for the-verdict.
//! - [`SimpleTokenizerV1`]: encode with the vocabulary, decode by joining with spaces and
//!   removing the space before punctuation. A word outside the vocabulary is an error.
//! - [`SimpleTokenizerV2`]: the same plus `<|unk|>` for unknown words and `<|endoftext|>`
//!   between texts (section 2.4); 1132 tokens for the-verdict.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// The unknown-word token of [`SimpleTokenizerV2`].
pub const UNK: &str = "<|unk|>";

/// The characters the book's regular expression splits on (and keeps as tokens), besides `--`
/// and whitespace.
const SPLIT_CHARS: &[char] = &[',', '.', ':', ';', '?', '_', '!', '"', '(', ')', '\''];

/// Split `text` as the book does in section 2.2: on `,.:;?_!"()'`, on `--` and on whitespace,
/// keeping the punctuation as tokens and dropping the whitespace.
///
/// The book's code is `[item.strip() for item in re.split(r'([,.:;?_!"()\']|--|\s)', text) if item.strip()]`.
///
/// ```
/// use llm_from_scratch::tokenizer::split_words;
/// assert_eq!(split_words("Hello, world. Is this-- a test?"),
///            ["Hello", ",", "world", ".", "Is", "this", "--", "a", "test", "?"]);
/// ```
pub fn split_words(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut word_start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let sep_len = if SPLIT_CHARS.contains(&c) {
            1
        } else if c == '-' && text[i + 1..].starts_with('-') {
            2
        } else if c.is_whitespace() {
            0
        } else {
            continue;
        };
        if word_start < i {
            tokens.push(&text[word_start..i]);
        }
        if sep_len > 0 {
            tokens.push(&text[i..i + sep_len]);
        }
        if sep_len == 2 {
            chars.next();
        }
        word_start = i + c.len_utf8().max(sep_len);
    }
    if word_start < text.len() {
        tokens.push(&text[word_start..]);
    }
    tokens
}

/// A vocabulary: tokens numbered 0, 1, 2, ... (section 2.3, `vocab = {token: integer ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    tokens: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocab {
    /// The distinct `words`, sorted (the book's `sorted(set(preprocessed))`), numbered from 0.
    pub fn from_words<S: AsRef<str>>(words: &[S]) -> Self {
        let mut tokens: Vec<String> = words.iter().map(|w| w.as_ref().to_string()).collect();
        tokens.sort_unstable();
        tokens.dedup();
        Self::from_tokens(tokens)
    }

    /// The book's vocabulary of a text: [`split_words`], then [`from_words`](Self::from_words).
    pub fn from_text(text: &str) -> Self {
        Self::from_words(&split_words(text))
    }

    /// Tokens numbered in the given order (duplicates keep their first id).
    pub fn from_tokens(tokens: Vec<String>) -> Self {
        let mut ids = HashMap::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            ids.entry(t.clone()).or_insert(i as u32);
        }
        Vocab { tokens, ids }
    }

    /// This vocabulary with `special` appended (section 2.4: `all_tokens.extend(["<|endoftext|>", "<|unk|>"])`).
    pub fn with_special_tokens(mut self, special: &[&str]) -> Self {
        for &s in special {
            if !self.ids.contains_key(s) {
                self.ids.insert(s.to_string(), self.tokens.len() as u32);
                self.tokens.push(s.to_string());
            }
        }
        self
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of `token` (`vocab[token]`).
    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// The token of `id` (`int_to_str[id]`).
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// `(token, id)` pairs in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32))
    }

    fn decode_join(&self, ids: &[u32], no_space_before: &[char]) -> Result<String> {
        let mut text = String::new();
        for (k, &id) in ids.iter().enumerate() {
            let token = self.token(id).ok_or(Error::UnknownTokenId { id, vocab_size: self.len() })?;
            let mut chars = token.chars();
            let punct = matches!((chars.next(), chars.next()), (Some(c), None) if no_space_before.contains(&c));
            if k > 0 && !punct {
                text.push(' ');
            }
            text.push_str(token);
        }
        Ok(text)
    }
}

/// Listing 2.3: a tokenizer over a fixed vocabulary, with no way to encode an unknown word.
#[derive(Debug, Clone)]
pub struct SimpleTokenizerV1 {
    /// The vocabulary (`str_to_int` and `int_to_str`).
    pub vocab: Vocab,
}

impl SimpleTokenizerV1 {
    /// The tokenizer of `vocab` (`SimpleTokenizerV1(vocab)`).
    pub fn new(vocab: Vocab) -> Self {
        SimpleTokenizerV1 { vocab }
    }

    /// The tokenizer whose vocabulary is the words of `text` ([`Vocab::from_text`]).
    pub fn from_text(text: &str) -> Self {
        Self::new(Vocab::from_text(text))
    }

    /// Split `text` with [`split_words`] and look each token up. A token outside the vocabulary
    /// is an error naming it (Python raises `KeyError`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        split_words(text)
            .into_iter()
            .map(|w| self.vocab.id(w).ok_or_else(|| Error::UnknownWord { word: w.to_string() }))
            .collect()
    }

    /// Join the tokens with spaces and remove the space before `, . ? ! " ( ) '` (the book's
    /// `re.sub(r'\s+([,.?!"()\'])', r'\1', text)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.vocab.decode_join(ids, &[',', '.', '?', '!', '"', '(', ')', '\''])
    }
}

/// Listing 2.4: [`SimpleTokenizerV1`] that maps unknown words to `<|unk|>` and knows
/// `<|endoftext|>`.
#[derive(Debug, Clone)]
pub struct SimpleTokenizerV2 {
    /// The vocabulary, with `<|endoftext|>` and `<|unk|>`.
    pub vocab: Vocab,
    unk_id: u32,
}

impl SimpleTokenizerV2 {
    /// The tokenizer of `vocab`, which must contain `<|unk|>` (else an error).
    pub fn new(vocab: Vocab) -> Result<Self> {
        let unk_id = vocab.id(UNK).ok_or_else(|| Error::InvalidArgument {
            name: "vocab",
            reason: format!(
                "SimpleTokenizerV2 needs the token {UNK} in its vocabulary; add it with Vocab::with_special_tokens"
            ),
        })?;
        Ok(SimpleTokenizerV2 { vocab, unk_id })
    }

    /// The tokenizer whose vocabulary is the words of `text` then `<|endoftext|>` and `<|unk|>`
    /// (the book's order: 1130 words of the-verdict, then ids 1130 and 1131).
    pub fn from_text(text: &str) -> Self {
        let vocab = Vocab::from_text(text).with_special_tokens(&[super::ENDOFTEXT, UNK]);
        Self::new(vocab).expect("the vocabulary has <|unk|>")
    }

    /// Split `text` with [`split_words`]; words outside the vocabulary become `<|unk|>`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        split_words(text).into_iter().map(|w| self.vocab.id(w).unwrap_or(self.unk_id)).collect()
    }

    /// Join with spaces and remove the space before `, . : ; ? ! " ( ) '` (the book's
    /// `re.sub(r'\s+([,.:;?!"()\'])', r'\1', text)`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.vocab.decode_join(ids, &[',', '.', ':', ';', '?', '!', '"', '(', ')', '\''])
    }
}

impl super::Tokenizer for SimpleTokenizerV1 {
    fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(text)
    }
    fn decode_ids(&self, ids: &[u32]) -> Result<String> {
        self.decode(ids)
    }
    fn vocab_size(&self) -> usize {
        self.vocab.len()
    }
}

impl super::Tokenizer for SimpleTokenizerV2 {
    fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.encode(text))
    }
    fn decode_ids(&self, ids: &[u32]) -> Result<String> {
        self.decode(ids)
    }
    fn vocab_size(&self) -> usize {
        self.vocab.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_the_book() {
        assert_eq!(
            split_words("Hello, world. This, is a test."),
            ["Hello", ",", "world", ".", "This", ",", "is", "a", "test", "."]
        );
        assert_eq!(split_words("a---b -- c"), ["a", "--", "-b", "--", "c"]);
        assert_eq!(split_words("  \n "), Vec::<&str>::new());
        assert_eq!(split_words("It's"), ["It", "'", "s"]);
        assert_eq!(split_words("<|endoftext|> x"), ["<|endoftext|>", "x"]);
    }

    #[test]
    fn v1_round_trip_and_unknown_word() {
        let t = SimpleTokenizerV1::from_text("\"It's the last he painted, you know,\" Mrs. Gisburn said.");
        let text = "\"It's the last he painted, you know,\" Mrs. Gisburn said.";
        let ids = t.encode(text).unwrap();
        assert_eq!(t.decode(&ids).unwrap(), "\" It' s the last he painted, you know,\" Mrs. Gisburn said.");
        let err = t.encode("Hello").unwrap_err();
        assert!(err.to_string().contains("\"Hello\""), "{err}");
    }

    #[test]
    fn v2_unknown_and_special() {
        let t = SimpleTokenizerV2::from_text("the cat sat");
        assert_eq!(t.vocab.len(), 5);
        let ids = t.encode("the dog <|endoftext|> sat");
        assert_eq!(ids, [2, 4, 3, 1]);
        assert_eq!(t.decode(&ids).unwrap(), "the <|unk|> <|endoftext|> sat");
        assert!(t.decode(&[9]).is_err());
        assert!(SimpleTokenizerV2::new(Vocab::from_text("a b")).is_err());
    }
}
