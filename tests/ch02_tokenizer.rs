//! Chapter 2 tokenizers against the book's numbers, and GPT-2's BPE against tiktoken-rs
//! (`r50k_base`, OpenAI's GPT-2 encoding) on the book's data and on random Unicode text.

mod common;

use llm_from_scratch::data;
use llm_from_scratch::tokenizer::{
    pre_tokenize, split_words, train_bpe, BpeTokenizer, SimpleTokenizerV1, SimpleTokenizerV2, Vocab, ENDOFTEXT,
    ENDOFTEXT_ID,
};
use proptest::prelude::*;
use tiktoken_rs::CoreBPE;

fn tiktoken() -> &'static CoreBPE {
    tiktoken_rs::r50k_base_singleton()
}

/// Our ids equal tiktoken's, ordinary and with `<|endoftext|>` allowed, and decode back.
fn assert_same_as_tiktoken(ours: &BpeTokenizer, text: &str) {
    let want = tiktoken().encode_ordinary(text);
    let got = ours.encode_ordinary(text);
    assert_eq!(got, want, "encode_ordinary differs from tiktoken on {text:?}");
    let want = tiktoken().encode_with_special_tokens(text);
    let got = ours.encode(text, &[ENDOFTEXT]).unwrap();
    assert_eq!(got, want, "encode with <|endoftext|> allowed differs from tiktoken on {text:?}");
    assert_eq!(ours.decode(&got).unwrap(), text, "decode(encode(s)) != s");
}

// ---- sections 2.2-2.4: the regex tokenizers ----

#[test]
fn the_verdict_regex_tokens_and_vocabulary() {
    let raw_text = common::text(&data::THE_VERDICT);
    assert_eq!(raw_text.chars().count(), 20479, "total number of characters");
    let preprocessed = split_words(&raw_text);
    assert_eq!(preprocessed.len(), 4690, "regex tokens");
    assert_eq!(&preprocessed[..5], ["I", "HAD", "always", "thought", "Jack"]);
    let vocab = Vocab::from_words(&preprocessed);
    assert_eq!(vocab.len(), 1130, "vocabulary size");
    let vocab = vocab.with_special_tokens(&[ENDOFTEXT, "<|unk|>"]);
    assert_eq!(vocab.len(), 1132);
    assert_eq!(vocab.id("<|endoftext|>"), Some(1130));
    assert_eq!(vocab.id("<|unk|>"), Some(1131));
    let last: Vec<&str> = vocab.iter().skip(1127).map(|(t, _)| t).collect();
    assert_eq!(last, ["younger", "your", "yourself", "<|endoftext|>", "<|unk|>"]);
}

#[test]
fn simple_tokenizer_v1_ids() {
    let tokenizer = SimpleTokenizerV1::from_text(&common::text(&data::THE_VERDICT));
    let text = "\"It's the last he painted, you know,\" \n           Mrs. Gisburn said with pardonable pride.";
    let ids = tokenizer.encode(text).unwrap();
    assert_eq!(ids, [1, 56, 2, 850, 988, 602, 533, 746, 5, 1126, 596, 5, 1, 67, 7, 38, 851, 1108, 754, 793, 7]);
    assert_eq!(
        tokenizer.decode(&ids).unwrap(),
        "\" It' s the last he painted, you know,\" Mrs. Gisburn said with pardonable pride."
    );
    let err = tokenizer.encode("Hello, do you like tea?").unwrap_err();
    assert!(err.to_string().contains("\"Hello\""), "V1 names the unknown word: {err}");
}

#[test]
fn simple_tokenizer_v2_ids() {
    let tokenizer = SimpleTokenizerV2::from_text(&common::text(&data::THE_VERDICT));
    let text = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of the palace.";
    let ids = tokenizer.encode(text);
    assert_eq!(ids, [1131, 5, 355, 1126, 628, 975, 10, 1130, 55, 988, 956, 984, 722, 988, 1131, 7]);
    assert_eq!(
        tokenizer.decode(&ids).unwrap(),
        "<|unk|>, do you like tea? <|endoftext|> In the sunlit terraces of the <|unk|>."
    );
}

// ---- section 2.5: GPT-2's BPE ----

#[test]
fn gpt2_book_examples() {
    let t = common::gpt2();
    assert_eq!(t.vocab_size(), 50257);
    assert_eq!(t.special_token_id(ENDOFTEXT), Some(ENDOFTEXT_ID));
    let text = "Hello, do you like tea? <|endoftext|> In the sunlit terracesof someunknownPlace.";
    let ids = t.encode(text, &[ENDOFTEXT]).unwrap();
    assert_eq!(
        ids,
        [
            15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114, 1659, 617, 34680, 27271,
            13
        ]
    );
    assert_eq!(t.decode(&ids).unwrap(), text);
    assert_eq!(t.encode("Akwirw ier", &[]).unwrap(), [33901, 86, 343, 86, 220, 959]);
    assert_eq!(t.encode("Every effort moves you", &[]).unwrap(), [6109, 3626, 6100, 345]);
}

#[test]
fn endoftext_only_when_allowed() {
    let t = common::gpt2();
    let err = t.encode("a <|endoftext|> b", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("<|endoftext|>"), "the error names the token: {msg}");
    let ordinary = t.encode_ordinary("<|endoftext|>");
    assert_eq!(ordinary, tiktoken().encode_ordinary("<|endoftext|>"));
    assert!(!ordinary.contains(&ENDOFTEXT_ID), "as ordinary text it is not the special token");
    assert_eq!(t.encode("<|endoftext|><|endoftext|>", &[ENDOFTEXT]).unwrap(), [50256, 50256]);
}

#[test]
fn decode_any_ids() {
    let t = common::gpt2();
    let err = t.decode(&[15496, 50257]).unwrap_err();
    assert!(err.to_string().contains("50257"), "{err}");
    assert!(t.decode(&[u32::MAX]).is_err());
    // Every single id decodes (lossily where it is part of a character) to tiktoken's bytes.
    for id in 0..50257u32 {
        let want = tiktoken().decode_bytes(&[id]).unwrap();
        assert_eq!(t.decode_bytes(&[id]).unwrap(), want, "id {id}");
        assert_eq!(t.decode(&[id]).unwrap(), String::from_utf8_lossy(&want), "id {id}");
    }
    // A character split over two tokens: the first alone is lossy, both together exact.
    let robot = t.encode_ordinary("🤖");
    assert!(robot.len() > 1, "🤖 is more than one byte-level token: {robot:?}");
    assert!(t.decode(&robot[..1]).unwrap().contains('\u{FFFD}'));
    assert_eq!(t.decode(&robot).unwrap(), "🤖");
}

#[test]
fn the_verdict_gpt2_tokens() {
    let t = common::gpt2();
    let raw_text = common::text(&data::THE_VERDICT);
    let ids = t.encode(&raw_text, &[ENDOFTEXT]).unwrap();
    assert_eq!(ids.len(), 5145, "GPT-2 tokens of the-verdict");
    assert_eq!(&ids[..8], [40, 367, 2885, 1464, 1807, 3619, 402, 271]);
    assert_same_as_tiktoken(t, &raw_text);
}

#[test]
fn every_sms_message_like_tiktoken() {
    let t = common::gpt2();
    let messages = common::sms_messages();
    assert_eq!(messages.len(), 5574);
    for m in &messages {
        assert_same_as_tiktoken(t, m);
    }
    // And the whole file at once.
    assert_same_as_tiktoken(t, &common::text(&data::SMS_SPAM_COLLECTION));
}

#[test]
fn every_instruction_entry_like_tiktoken() {
    let t = common::gpt2();
    let entries = common::instruction_entries();
    assert_eq!(entries.len(), 1100);
    for (instruction, input, output) in &entries {
        assert_same_as_tiktoken(t, instruction);
        assert_same_as_tiktoken(t, input);
        assert_same_as_tiktoken(t, output);
        // The chapter 7 prompt (Alpaca style) with its response.
        let mut prompt = format!(
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}"
        );
        if !input.is_empty() {
            prompt.push_str(&format!("\n\n### Input:\n{input}"));
        }
        prompt.push_str(&format!("\n\n### Response:\n{output}"));
        assert_same_as_tiktoken(t, &prompt);
    }
    assert_same_as_tiktoken(t, &common::text(&data::INSTRUCTION_DATA));
}

#[test]
fn long_pieces_like_tiktoken() {
    // Pieces past 128 bytes merge with the heap; tiktoken switches at 100 bytes.
    let t = common::gpt2();
    for text in [
        " ".repeat(5000),
        "a".repeat(3000),
        "ab".repeat(700),
        "-=".repeat(400) + "x",
        "\n".repeat(300) + "end",
        "日本語".repeat(200),
        "😀".repeat(150),
        "1234567890".repeat(40),
        "Supercalifragilisticexpialidocious".repeat(9),
    ] {
        assert_same_as_tiktoken(t, &text);
    }
}

#[test]
fn loads_from_the_data_module() {
    // BpeTokenizer::gpt2() goes through the data module (LLM_DATA_DIR, cache or download).
    if std::env::var_os(data::DATA_DIR_VAR).is_none() {
        eprintln!("LLM_DATA_DIR is not set: BpeTokenizer::gpt2() not exercised");
        return;
    }
    let t = BpeTokenizer::gpt2().unwrap();
    assert_eq!(t.encode_ordinary("Every effort moves you"), [6109, 3626, 6100, 345]);
}

// ---- bonus: BPE from scratch ----

#[test]
fn trained_bpe_round_trips_the_verdict() {
    let raw_text = common::text(&data::THE_VERDICT);
    let t = train_bpe(&raw_text, 1000, &[ENDOFTEXT]).unwrap();
    assert_eq!(t.vocab_size(), 1000);
    assert_eq!(t.special_token_id(ENDOFTEXT), Some(999));
    assert_eq!(t.merges().len(), 1000 - 256 - 1);
    let ids = t.encode(&raw_text, &[ENDOFTEXT]).unwrap();
    assert_eq!(t.decode(&ids).unwrap(), raw_text, "round trip of the-verdict");
    // 743 merges take the 20,479 bytes to 6999 tokens (a Python transcription of the same
    // algorithm, with the `regex` module's pattern, also gives 6999); GPT-2's 50,000 give 5145.
    assert_eq!(ids.len(), 6999, "tokens of the-verdict with the trained vocabulary");
    // Text it never saw round-trips too (bytes are always in the vocabulary).
    for text in ["Jack Gisburn's villa on the Riviera.", "未知の文字 🤖 <|endoftext|> 42"] {
        let ids = t.encode(text, &[ENDOFTEXT]).unwrap();
        assert_eq!(t.decode(&ids).unwrap(), text);
    }
    // Saved in GPT-2's file format, it loads back and encodes the same.
    let dir = std::env::temp_dir().join(format!("llm-ch02-bpe-{}", std::process::id()));
    t.save(&dir).unwrap();
    let loaded = BpeTokenizer::from_files(dir.join("encoder.json"), dir.join("vocab.bpe")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(loaded.encode(&raw_text, &[ENDOFTEXT]).unwrap(), ids);
    // Training is deterministic.
    let again = train_bpe(&raw_text, 1000, &[ENDOFTEXT]).unwrap();
    assert_eq!(again.merges(), t.merges());
}

#[test]
fn gpt2_saves_to_the_same_files() {
    // Writing GPT-2's tokenizer back out gives OpenAI's vocab.bpe line for line.
    let t = common::gpt2();
    let dir = std::env::temp_dir().join(format!("llm-ch02-gpt2-{}", std::process::id()));
    t.save(&dir).unwrap();
    let written = std::fs::read_to_string(dir.join("vocab.bpe")).unwrap();
    let original = std::fs::read_to_string(common::path(&data::GPT2_VOCAB_BPE)).unwrap();
    let encoder: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("encoder.json")).unwrap()).unwrap();
    let original_encoder: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::path(&data::GPT2_ENCODER_JSON)).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        written.lines().skip(1).collect::<Vec<_>>(),
        original.lines().skip(1).filter(|l| !l.is_empty()).collect::<Vec<_>>()
    );
    assert_eq!(encoder, original_encoder);
}

// ---- random Unicode text ----

/// Pieces of text that exercise every branch of GPT-2's pattern.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z]{1,8}",
        2 => prop::sample::select(vec!["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'RE", "'", "''", "'x", "’s"]).prop_map(String::from),
        3 => "[ ]{1,4}",
        2 => "[ \t\n\r]{1,6}",
        1 => prop::sample::select(vec!["\u{3000}", "\u{a0}", "\u{2028}", "\u{85}", "\u{200b}", "\u{feff}", "\u{b}", "\u{c}"]).prop_map(String::from),
        2 => "[0-9]{1,6}",
        1 => prop::sample::select(vec!["²", "½", "Ⅻ", "٣", "𝟙", "①"]).prop_map(String::from),
        2 => "[!-/:-@\\[-`{-~]{1,4}",
        2 => "[\u{4e00}-\u{9fff}\u{3040}-\u{30ff}\u{ac00}-\u{d7a3}]{1,5}",
        2 => "[\u{1F300}-\u{1FAFF}\u{2600}-\u{27BF}]{1,3}",
        1 => prop::sample::select(vec!["👨‍👩‍👧", "❤️", "🇫🇷", "e\u{301}", "ﬁ", "Ω", "ß", "İ", "Straße", "naïve", "Ελληνικά", "русский", "عربى", "हिन्दी"]).prop_map(String::from),
        1 => any::<char>().prop_map(String::from),
        1 => Just(ENDOFTEXT.to_string()),
        1 => "[a-z]{90,200}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..14).prop_map(|parts| parts.concat())
}

/// GPT-2's pattern run by fancy-regex (the regex engine tiktoken uses).
fn regex_pieces(text: &str) -> Vec<String> {
    static RE: std::sync::OnceLock<fancy_regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        fancy_regex::Regex::new(r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+").unwrap()
    });
    re.find_iter(text).map(|m| m.unwrap().as_str().to_string()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_text_like_tiktoken(s in text()) {
        let t = common::gpt2();
        let pieces: Vec<&str> = pre_tokenize(&s).collect();
        prop_assert_eq!(pieces, regex_pieces(&s), "pre-tokenization differs from GPT-2's regex");
        prop_assert_eq!(t.encode_ordinary(&s), tiktoken().encode_ordinary(&s));
        let ids = t.encode(&s, &[ENDOFTEXT]).unwrap();
        prop_assert_eq!(&ids, &tiktoken().encode_with_special_tokens(&s));
        prop_assert_eq!(t.decode(&ids).unwrap(), s.clone());
        if s.contains(ENDOFTEXT) {
            prop_assert!(t.encode(&s, &[]).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any sequence of valid ids decodes, without a panic, to tiktoken's bytes (lossily where
    /// they are not UTF-8); one id past the vocabulary makes it an error.
    #[test]
    fn random_ids_decode_like_tiktoken(ids in prop::collection::vec(0u32..50257, 0..40), bad in 50257u32..) {
        let t = common::gpt2();
        let want = tiktoken().decode_bytes(&ids).unwrap();
        prop_assert_eq!(t.decode_bytes(&ids).unwrap(), want.clone());
        prop_assert_eq!(t.decode(&ids).unwrap(), String::from_utf8_lossy(&want).into_owned());
        let mut with_bad = ids.clone();
        with_bad.push(bad);
        prop_assert!(t.decode(&with_bad).is_err());
    }
}
