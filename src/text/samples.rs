//! Chapter 2, section 2.5.1 "BPE and Chinese text": parallel English and Chinese text that the
//! project wrote itself, compiled into the library so that any notebook folder finds it.
//!
//! The text is the markdown of chapter 1's notebook, `notebooks/ch01-understanding-llms.ipynb`,
//! and of its Chinese twin `notebooks/zh/ch01-understanding-llms.ipynb`, written out by
//! `scripts/ch01_text.py` to `assets/text/ch01-en.md` and `assets/text/ch01-zh.md`. The Chinese
//! notebook has one Chinese markdown cell per English one, so section `i` of one language says
//! what section `i` of the other says: the two texts are parallel section by section, which makes
//! token counts comparable. (The Chinese text is written for Chinese readers, not word by word,
//! and keeps code names, numbers and some English terms in parentheses.)

/// `assets/text/ch01-en.md`: chapter 1's English markdown, one section per cell.
pub const CH01_EN: &str = include_str!("../../assets/text/ch01-en.md");
/// `assets/text/ch01-zh.md`: chapter 1's Chinese markdown, one section per cell.
pub const CH01_ZH: &str = include_str!("../../assets/text/ch01-zh.md");

/// The language of a text sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// English (`notebooks/`).
    English,
    /// Simplified Chinese (`notebooks/zh/`).
    Chinese,
}

/// One markdown cell of chapter 1's notebook: its cell id and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// The notebook cell's id, e.g. `"028606e0"` (the same in both languages).
    pub cell_id: &'static str,
    /// The cell's markdown, without leading or trailing whitespace.
    pub text: &'static str,
}

/// Chapter 1's markdown cells in `language`, in notebook order (12 in each language).
///
/// ```
/// use llm_from_scratch::text::samples::{ch01_sections, Language};
/// let (en, zh) = (ch01_sections(Language::English), ch01_sections(Language::Chinese));
/// assert_eq!(en.len(), zh.len());
/// assert!(en.iter().zip(&zh).all(|(e, z)| e.cell_id == z.cell_id), "parallel, cell by cell");
/// assert!(zh[2].text.starts_with("## 1.1 什么是大语言模型"));
/// ```
pub fn ch01_sections(language: Language) -> Vec<Section> {
    let file = match language {
        Language::English => CH01_EN,
        Language::Chinese => CH01_ZH,
    };
    // Each section starts with a line `<!-- <notebook> cell <id> -->`.
    file.split("<!-- ")
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (header, text) = s.split_once(" -->").expect("a section header ends with ' -->'");
            let cell_id = header.rsplit(' ').next().expect("a cell id");
            Section { cell_id, text: text.trim() }
        })
        .collect()
}

/// Chapter 1's markdown in `language` as one text: the sections joined by blank lines.
pub fn ch01_text(language: Language) -> String {
    ch01_sections(language).iter().map(|s| s.text).collect::<Vec<_>>().join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_parallel() {
        let (en, zh) = (ch01_sections(Language::English), ch01_sections(Language::Chinese));
        assert_eq!(en.len(), 12, "chapter 1 has 12 markdown cells");
        let ids = |s: &[Section]| s.iter().map(|s| s.cell_id).collect::<Vec<_>>();
        assert_eq!(ids(&en), ids(&zh), "the same cells in the same order");
        assert!(en[0].text.starts_with("# Chapter 1"), "{:?}", &en[0].text[..20]);
        assert!(zh[0].text.starts_with("# 第 1 章"), "{:?}", &zh[0].text[..20]);
        assert!(zh.iter().all(|s| !s.text.contains("<!--")), "headers are cut out");
    }
}
