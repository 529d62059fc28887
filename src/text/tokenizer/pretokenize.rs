//! GPT-2's pre-tokenization (book section 2.5, "Byte pair encoding"): before any merge, GPT-2
//! cuts a text into pieces with one regular expression, and BPE then works inside each piece
//! (so no token ever spans two words):
//!
//! ```text
//! 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//! ```
//!
//! In words, at each position the first alternative that matches wins:
//! 1. an English contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`; lower case only);
//! 2. an optional single space and a run of letters (`\p{L}`);
//! 3. an optional single space and a run of digits or other numbers (`\p{N}`);
//! 4. an optional single space and a run of anything else that is not whitespace (punctuation,
//!    symbols, emoji);
//! 5. a run of whitespace that is *not followed by* a non-space character: the look-ahead
//!    `(?!\S)` gives back the run's last character when a word follows, so that character (a
//!    space) can start the next piece, `" world"`;
//! 6. a run of whitespace (what is left: a single whitespace character before a word).
//!
//! `regex` cannot run the look-ahead, and a backtracking engine (`fancy-regex`, which tiktoken
//! uses) is slow, so [`pre_tokenize`] is a hand-written scanner that makes the same choices
//! character by character. It classifies characters with the very tables the regex engines use
//! (`regex-syntax`'s `\p{L}`, `\p{N}`, `\s`), and a property test checks it against
//! `fancy-regex` and tiktoken-rs on random Unicode text.

use std::sync::OnceLock;

/// The class of a character, as GPT-2's pattern sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum CharClass {
    /// `\p{L}`: letters of any script.
    Letter = 0,
    /// `\p{N}`: digits and other numbers (`²`, `Ⅻ`, `٣`).
    Number = 1,
    /// `\s`: Unicode whitespace (`White_Space`).
    Space = 2,
    /// Anything else: punctuation, symbols, emoji, control characters.
    Other = 3,
}

/// Character classes: a table for the Basic Multilingual Plane and sorted ranges for the rest.
struct Classes {
    bmp: Box<[CharClass]>,
    astral: Vec<(u32, u32, CharClass)>,
}

fn classes() -> &'static Classes {
    static CLASSES: OnceLock<Classes> = OnceLock::new();
    CLASSES.get_or_init(|| {
        let mut ranges: Vec<(u32, u32, CharClass)> = Vec::new();
        for (pattern, class) in
            [(r"\p{L}", CharClass::Letter), (r"\p{N}", CharClass::Number), (r"\s", CharClass::Space)]
        {
            let hir = regex_syntax::parse(pattern).expect("a valid Unicode class");
            match hir.kind() {
                regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(cls)) => {
                    ranges.extend(cls.ranges().iter().map(|r| (r.start() as u32, r.end() as u32, class)));
                }
                other => unreachable!("{pattern} parsed as {other:?}"),
            }
        }
        ranges.sort_unstable();
        let mut bmp = vec![CharClass::Other; 0x10000].into_boxed_slice();
        let mut astral = Vec::new();
        for &(start, end, class) in &ranges {
            for c in start..=end.min(0xFFFF) {
                bmp[c as usize] = class;
            }
            if end > 0xFFFF {
                astral.push((start.max(0x10000), end, class));
            }
        }
        Classes { bmp, astral }
    })
}

/// The class of `c` in GPT-2's pattern (`\p{L}`, `\p{N}`, `\s`, or none of them).
#[inline]
pub fn char_class(c: char) -> CharClass {
    let classes = classes();
    let c = c as u32;
    if c < 0x10000 {
        return classes.bmp[c as usize];
    }
    let astral = &classes.astral;
    match astral.binary_search_by(|&(start, end, _)| {
        if end < c {
            std::cmp::Ordering::Less
        } else if start > c {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(i) => astral[i].2,
        Err(_) => CharClass::Other,
    }
}

/// Split `text` into GPT-2's pre-tokens; concatenated, they give back `text`.
///
/// ```
/// use llm_from_scratch::tokenizer::pre_tokenize;
/// let pieces: Vec<&str> = pre_tokenize("Hello, world! It's  2024\n").collect();
/// assert_eq!(pieces, ["Hello", ",", " world", "!", " It", "'s", " ", " 2024", "\n"]);
/// ```
pub fn pre_tokenize(text: &str) -> PreTokens<'_> {
    PreTokens { text, pos: 0, classes: classes() }
}

/// The iterator of [`pre_tokenize`]: one `&str` piece of the text at a time.
#[derive(Clone)]
pub struct PreTokens<'a> {
    text: &'a str,
    pos: usize,
    classes: &'static Classes,
}

impl std::fmt::Debug for PreTokens<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreTokens").field("rest", &&self.text[self.pos..]).finish()
    }
}

impl<'a> PreTokens<'a> {
    /// The character at byte `i` (a char boundary) with its class and length in bytes.
    #[inline(always)]
    fn char_at(&self, i: usize) -> (char, CharClass, usize) {
        let bytes = self.text.as_bytes();
        let b = bytes[i];
        if b < 0x80 {
            return (b as char, ASCII_CLASS[b as usize], 1);
        }
        // SAFETY-free decoding: `i` is a char boundary of a valid `str`.
        let c = self.text[i..].chars().next().expect("a char at a boundary");
        let cp = c as u32;
        let class = if cp < 0x10000 { self.classes.bmp[cp as usize] } else { char_class(c) };
        (c, class, c.len_utf8())
    }

    /// End of the run of characters of class `class` that starts at byte `i`.
    #[inline(always)]
    fn run_end(&self, mut i: usize, class: CharClass) -> usize {
        let bytes = self.text.as_bytes();
        let len = bytes.len();
        while i < len {
            let b = bytes[i];
            if b < 0x80 {
                if ASCII_CLASS[b as usize] != class {
                    break;
                }
                i += 1;
            } else {
                let (_, k, n) = self.char_at(i);
                if k != class {
                    break;
                }
                i += n;
            }
        }
        i
    }

    /// End (exclusive) of the piece that starts at byte `start`.
    #[inline]
    fn piece_end(&self, start: usize) -> usize {
        let bytes = self.text.as_bytes();
        let len = bytes.len();
        // 1. Contractions: 's 't 'm 'd 're 've 'll.
        if bytes[start] == b'\'' && start + 1 < len {
            match bytes[start + 1] {
                b's' | b't' | b'm' | b'd' => return start + 2,
                b'r' | b'v' if start + 2 < len && bytes[start + 2] == b'e' => return start + 3,
                b'l' if start + 2 < len && bytes[start + 2] == b'l' => return start + 3,
                _ => {}
            }
        }
        let (c, class, n) = self.char_at(start);
        // 2-4. An optional space, then a run of letters, of numbers, or of other characters.
        if c == ' ' && start + 1 < len {
            let (_, next_class, _) = self.char_at(start + 1);
            if next_class != CharClass::Space {
                return self.run_end(start + 1, next_class);
            }
        }
        if class != CharClass::Space {
            return self.run_end(start + n, class);
        }
        // 5. Whitespace not followed by a non-space: the whole run at the end of the text, else
        //    the run less its last character (which then starts the next piece).
        // 6. Otherwise (a single whitespace character before a word): that character.
        let mut i = start + n;
        let mut last = start;
        while i < len {
            let (_, k, m) = self.char_at(i);
            if k != CharClass::Space {
                break;
            }
            last = i;
            i += m;
        }
        if i == len || last == start {
            i
        } else {
            last
        }
    }
}

impl<'a> Iterator for PreTokens<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if start >= self.text.len() {
            return None;
        }
        let end = self.piece_end(start);
        self.pos = end;
        Some(&self.text[start..end])
    }
}

impl std::iter::FusedIterator for PreTokens<'_> {}

/// Classes of the ASCII characters (the same as the Unicode tables give them).
static ASCII_CLASS: [CharClass; 128] = {
    let mut table = [CharClass::Other; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphabetic() {
            CharClass::Letter
        } else if c.is_ascii_digit() {
            CharClass::Number
        } else if matches!(c, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r') {
            CharClass::Space
        } else {
            CharClass::Other
        };
        b += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        pre_tokenize(text).collect()
    }

    #[test]
    fn ascii_table_agrees_with_unicode_tables() {
        for b in 0u8..128 {
            let cp = b as u32;
            let from_tables = classes().bmp[cp as usize];
            assert_eq!(ASCII_CLASS[b as usize], from_tables, "byte {b:#04x}");
        }
    }

    #[test]
    fn classes_of_some_characters() {
        assert_eq!(char_class('é'), CharClass::Letter);
        assert_eq!(char_class('中'), CharClass::Letter);
        assert_eq!(char_class('²'), CharClass::Number);
        assert_eq!(char_class('\u{3000}'), CharClass::Space);
        assert_eq!(char_class('😀'), CharClass::Other);
        assert_eq!(char_class('𝐀'), CharClass::Letter, "mathematical bold A (astral plane) is a letter");
        assert_eq!(char_class('\u{0301}'), CharClass::Other, "a combining mark is neither L nor N");
    }

    #[test]
    fn splits_like_the_pattern() {
        assert_eq!(pieces("Hello world"), ["Hello", " world"]);
        assert_eq!(pieces("I'm   here\n\nnow  "), ["I", "'m", "  ", " here", "\n", "\n", "now", "  "]);
        assert_eq!(pieces("x\n y"), ["x", "\n", " y"]);
        assert_eq!(pieces("a \tb"), ["a", " ", "\t", "b"]);
        assert_eq!(pieces("'''s 'S"), ["'''", "s", " '", "S"]);
        assert_eq!(pieces("won't they've"), ["won", "'t", " they", "'ve"]);
        assert_eq!(pieces(" 123abc!!"), [" 123", "abc", "!!"]);
        assert_eq!(pieces("日本語 テキスト😀😀"), ["日本語", " テキスト", "😀😀"]);
        assert_eq!(pieces(""), Vec::<&str>::new());
        assert_eq!(pieces(" "), [" "]);
        assert_eq!(pieces("\u{3000}x"), ["\u{3000}", "x"]);
    }

    #[test]
    fn pieces_concatenate_to_the_text() {
        let text = "It's the last he painted, you know,\" Mrs. Gisburn said—with pardonable pride.\n\n  ";
        assert_eq!(pieces(text).concat(), text);
    }
}
