//! Chapter 2, section 2.5.1 "BPE and Chinese text": GPT-2's BPE on parallel English and Chinese
//! text (chapter 1 of this project, `text::samples`), its token counts checked against tiktoken-rs
//! (`r50k_base`, OpenAI's GPT-2 encoding), and a BPE trained on the Chinese text.

mod common;

use std::sync::OnceLock;

use llm_from_scratch::ch02::{
    ch01_sections, ch01_text, escape_bytes, pre_tokenize, train_bpe, BpeTokenizer, Language, TokenStats, ENDOFTEXT,
};
use proptest::prelude::*;

/// GPT-2's token count of `text`, after checking that our ids are tiktoken's.
fn gpt2_tokens(text: &str) -> usize {
    let ours = common::gpt2().encode(text, &[ENDOFTEXT]).unwrap();
    let want = tiktoken_rs::r50k_base_singleton().encode_with_special_tokens(text);
    assert_eq!(ours, want, "GPT-2 ids differ from tiktoken's on {:?}...", text.chars().take(40).collect::<String>());
    ours.len()
}

/// Chapter 1's Chinese text without its last section (the summary), which is held out.
fn zh_training() -> String {
    let zh = ch01_sections(Language::Chinese);
    zh[..zh.len() - 1].iter().map(|s| s.text).collect::<Vec<_>>().join("\n\n")
}

/// The notebook's tokenizer: 1,000 tokens trained on [`zh_training`].
fn zh_bpe() -> &'static BpeTokenizer {
    static BPE: OnceLock<BpeTokenizer> = OnceLock::new();
    BPE.get_or_init(|| train_bpe(&zh_training(), 1000, &[ENDOFTEXT]).unwrap())
}

#[test]
fn samples_are_the_chapter_1_notebooks_markdown() {
    for (language, notebook) in [
        (Language::English, "notebooks/ch01-understanding-llms.ipynb"),
        (Language::Chinese, "notebooks/zh/ch01-understanding-llms.ipynb"),
    ] {
        let path = common::manifest_dir().join(notebook);
        let nb: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{notebook}: {e}"))).unwrap();
        let cells: Vec<(String, String)> = nb["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["cell_type"] == "markdown")
            .map(|c| {
                let source = c["source"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<String>();
                (c["id"].as_str().unwrap().to_string(), source.trim().to_string())
            })
            .collect();
        let sections: Vec<(String, String)> =
            ch01_sections(language).iter().map(|s| (s.cell_id.to_string(), s.text.to_string())).collect();
        assert_eq!(sections, cells, "assets/text/ch01-*.md is out of date with {notebook}: run python scripts/ch01_text.py");
    }
}

#[test]
fn gpt2_spends_more_tokens_per_chinese_character() {
    let (en, zh) = (ch01_sections(Language::English), ch01_sections(Language::Chinese));
    // Section 1.1, "What is an LLM?", the same paragraph in both languages.
    assert!(en[2].text.starts_with("## 1.1 What is an LLM?") && zh[2].text.starts_with("## 1.1 什么是大语言模型？"));
    let gpt2 = common::gpt2();
    let en_11 = TokenStats::measure(gpt2, en[2].text).unwrap();
    let zh_11 = TokenStats::measure(gpt2, zh[2].text).unwrap();
    assert_eq!((en_11.chars, en_11.bytes, en_11.tokens), (855, 855, gpt2_tokens(en[2].text)));
    assert_eq!((zh_11.chars, zh_11.bytes, zh_11.tokens), (336, 916, gpt2_tokens(zh[2].text)));
    assert_eq!((en_11.tokens, zh_11.tokens), (208, 643), "GPT-2 tokens of section 1.1, English and Chinese");
    let en_all = TokenStats::measure(gpt2, &ch01_text(Language::English)).unwrap();
    let zh_all = TokenStats::measure(gpt2, &ch01_text(Language::Chinese)).unwrap();
    assert_eq!((en_all.chars, en_all.tokens), (16236, gpt2_tokens(&ch01_text(Language::English))));
    assert_eq!((zh_all.chars, zh_all.tokens), (7012, gpt2_tokens(&ch01_text(Language::Chinese))));
    assert_eq!((en_all.tokens, zh_all.tokens), (4033, 11959), "GPT-2 tokens of chapter 1");
    // English: about 4 characters per token; Chinese: more than 1.5 tokens per character.
    assert!((en_11.tokens_per_char() - 0.2433).abs() < 1e-3, "{}", en_11.tokens_per_char());
    assert!((zh_11.tokens_per_char() - 1.9137).abs() < 1e-3, "{}", zh_11.tokens_per_char());
    assert!((zh_all.tokens_per_char() - 1.7055).abs() < 1e-3, "{}", zh_all.tokens_per_char());
    assert!(zh_all.tokens_per_char() > 6.0 * en_all.tokens_per_char(), "{zh_all:?} against {en_all:?}");
    assert!(zh_all.bytes_per_token() < 1.5 && en_all.bytes_per_token() > 4.0, "{zh_all:?} {en_all:?}");
}

#[test]
fn gpt2_cuts_chinese_characters_into_bytes() {
    let sentence = "大语言模型是一种深度神经网络。";
    let pieces: Vec<&str> = pre_tokenize(sentence).collect();
    assert_eq!(pieces, ["大语言模型是一种深度神经网络", "。"], "a run of Chinese letters is one pre-token");
    let gpt2 = common::gpt2();
    let ids = gpt2.encode_ordinary(sentence);
    assert_eq!(ids.len(), gpt2_tokens(sentence));
    assert_eq!((sentence.chars().count(), sentence.len(), ids.len()), (15, 45, 33));
    let shown: Vec<String> = ids.iter().map(|&id| escape_bytes(gpt2.token_bytes(id).unwrap())).collect();
    let whole: Vec<&str> = shown.iter().map(String::as_str).filter(|s| !s.contains("\\x")).collect();
    assert_eq!(whole, ["大", "是", "一", "神", "。"], "the characters GPT-2 has a token for");
    assert_eq!(&shown[1..3], [r"\xe8\xaf", r"\xad"], "语 is two byte tokens");
    assert_eq!(gpt2.decode(&ids[1..2]).unwrap(), "\u{fffd}", "part of a character decodes to U+FFFD");
    assert_eq!(gpt2.decode(&ids[1..3]).unwrap(), "语");
    assert_eq!(gpt2.decode(&ids).unwrap(), sentence);
}

#[test]
fn chinese_bpe_round_trips_and_beats_gpt2_on_held_out_text() {
    let bpe = zh_bpe();
    let training = zh_training();
    assert_eq!(training.chars().count(), 6043, "11 sections of chapter 1");
    assert_eq!((bpe.vocab_size(), bpe.merges().len()), (1000, 743), "256 bytes, 743 merges, <|endoftext|>");
    let text_of = |id: u32| escape_bytes(bpe.token_bytes(id).unwrap());
    assert_eq!(text_of(256), r"\xe4\xb8", "the first merge: the lead bytes of U+4E00..U+4E3F");
    assert_eq!(text_of(259), "的", "the first whole character is the most frequent one");
    assert!(bpe.token_id("大语言模型".as_bytes()).is_some(), "the chapter's key term is one token");

    // Round trips: the training text, the held-out summary, and characters never seen.
    let ids = bpe.encode(&training, &[ENDOFTEXT]).unwrap();
    assert_eq!(bpe.decode(&ids).unwrap(), training, "round trip of the training text");
    let held_out = ch01_sections(Language::Chinese).last().unwrap().text;
    assert!(!training.contains(held_out), "the summary is not in the training text");
    let ids = bpe.encode(held_out, &[ENDOFTEXT]).unwrap();
    assert_eq!(bpe.decode(&ids).unwrap(), held_out, "round trip of the held-out summary");
    let unseen = "鹦鹉学舌的模型并不懂得语言。";
    let new_chars: String = unseen.chars().filter(|&c| !training.contains(c)).collect();
    assert_eq!(new_chars, "鹦鹉舌");
    let ids = bpe.encode(unseen, &[ENDOFTEXT]).unwrap();
    assert_eq!(bpe.decode(&ids).unwrap(), unseen, "byte fallback for unseen characters");
    assert!(ids[..6].iter().all(|&id| id < 256), "鹦鹉: six single bytes: {ids:?}");
    assert_eq!((ids.len(), gpt2_tokens(unseen)), (19, 31));

    // Fewer tokens per character than GPT-2 on the held-out Chinese, more on English.
    let ours = TokenStats::measure(bpe, held_out).unwrap();
    let gpt2 = TokenStats::measure(common::gpt2(), held_out).unwrap();
    assert_eq!((ours.chars, ours.tokens, gpt2.tokens), (967, 767, 1703), "the held-out summary's tokens");
    assert!(ours.tokens_per_char() < 0.5 * gpt2.tokens_per_char(), "{ours:?} against GPT-2's {gpt2:?}");
    let en_summary = ch01_sections(Language::English).last().unwrap().text;
    let (ours_en, gpt2_en) = (TokenStats::measure(bpe, en_summary).unwrap(), TokenStats::measure(common::gpt2(), en_summary).unwrap());
    assert_eq!((ours_en.tokens, gpt2_en.tokens), (1673, 565), "the English summary's tokens");
}

/// Chinese-looking text: CJK characters (common and rare), full-width punctuation, ASCII, emoji.
fn chinese_text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        4 => (0x4e00u32..=0x9fff).prop_map(|c| char::from_u32(c).unwrap()),
        2 => prop::sample::select("的是一个模型语言词元训练，。：（）“”".chars().collect::<Vec<_>>()),
        1 => prop::char::range(' ', '~'),
        1 => prop::sample::select(vec!['\n', '🤖', 'é', '\u{3000}']),
    ];
    prop::collection::vec(ch, 0..60).prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any text round-trips through the Chinese BPE and never takes more tokens than bytes.
    #[test]
    fn chinese_bpe_round_trips_any_text(s in chinese_text()) {
        let bpe = zh_bpe();
        let ids = bpe.encode(&s, &[ENDOFTEXT]).unwrap();
        prop_assert_eq!(bpe.decode(&ids).unwrap(), s.clone());
        prop_assert!(ids.len() <= s.len(), "{} tokens for {} bytes", ids.len(), s.len());
        let stats = TokenStats::measure(bpe, &s).unwrap();
        prop_assert_eq!((stats.chars, stats.bytes, stats.tokens), (s.chars().count(), s.len(), ids.len()));
    }
}
