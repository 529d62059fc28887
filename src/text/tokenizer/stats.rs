//! How much a tokenizer compresses a text (chapter 2, section 2.5.1 "BPE and Chinese text"):
//! tokens per character and bytes per token, the figures that show GPT-2's BPE, learnt on mostly
//! English web text, spending far more tokens on a Chinese character than on an English one.

use super::Tokenizer;
use crate::error::Result;

/// A text's length in characters, UTF-8 bytes and tokens under one tokenizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStats {
    /// Unicode characters (`text.chars().count()`).
    pub chars: usize,
    /// UTF-8 bytes (`text.len()`): 1 for ASCII, 3 for a Chinese character.
    pub bytes: usize,
    /// Token ids the tokenizer gives (`<|endoftext|>` recognised as a special token).
    pub tokens: usize,
}

impl TokenStats {
    /// Encode `text` with `tokenizer` ([`Tokenizer::encode_text`]) and count.
    ///
    /// ```
    /// use llm_from_scratch::tokenizer::{train_bpe, TokenStats};
    /// let bpe = train_bpe("低 低 低", 256, &[])?; // bytes only: one token per byte
    /// let stats = TokenStats::measure(&bpe, "低")?;
    /// assert_eq!((stats.chars, stats.bytes, stats.tokens), (1, 3, 3));
    /// assert_eq!(stats.tokens_per_char(), 3.0);
    /// # Ok::<(), llm_from_scratch::Error>(())
    /// ```
    pub fn measure<T: Tokenizer + ?Sized>(tokenizer: &T, text: &str) -> Result<Self> {
        Ok(TokenStats { chars: text.chars().count(), bytes: text.len(), tokens: tokenizer.encode_text(text)?.len() })
    }

    /// Tokens per character: below 1 when tokens span several characters (English words), above
    /// 1 when characters are cut into byte pieces. 0 for an empty text.
    pub fn tokens_per_char(&self) -> f64 {
        ratio(self.tokens, self.chars)
    }

    /// UTF-8 bytes per token: how many bytes one token covers on average. 0 for an empty text.
    pub fn bytes_per_token(&self) -> f64 {
        ratio(self.bytes, self.tokens)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A token's bytes as text, for printing: valid UTF-8 as it is, every byte that is not part of a
/// whole UTF-8 character as `\xNN` (the way Python prints `bytes`). A byte-level BPE token may hold
/// part of a character: say the first two of the three bytes of `"的"` (`e7 9a 84`), `"\xe7\x9a"`.
///
/// ```
/// use llm_from_scratch::tokenizer::escape_bytes;
/// assert_eq!(escape_bytes("模型".as_bytes()), "模型");
/// assert_eq!(escape_bytes(&[0xe7, 0x9a]), r"\xe7\x9a");
/// assert_eq!(escape_bytes(&[0x84, b'a', 0xe6, 0xa8, 0xa1]), r"\x84a模");
/// ```
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_partial_characters() {
        assert_eq!(escape_bytes(b""), "");
        assert_eq!(escape_bytes("的".as_bytes()), "的");
        assert_eq!(escape_bytes(&"的".as_bytes()[1..]), r"\x9a\x84", "a character without its first byte");
        assert_eq!(escape_bytes(&"的a".as_bytes()[..2]), r"\xe7\x9a", "a character without its last byte");
    }

    #[test]
    fn ratios() {
        let s = TokenStats { chars: 4, bytes: 12, tokens: 6 };
        assert_eq!((s.tokens_per_char(), s.bytes_per_token()), (1.5, 2.0));
        let empty = TokenStats { chars: 0, bytes: 0, tokens: 0 };
        assert_eq!((empty.tokens_per_char(), empty.bytes_per_token()), (0.0, 0.0));
    }
}
