//! The solutions of chapters/ch02/exercises.md: each test is one exercise, and asserts the
//! numbers the solution states.

mod common;

use llm_from_scratch::ch02::{create_dataloader_v1, train_bpe, DataLoader, GptDatasetV1, ENDOFTEXT};
use llm_from_scratch::data;
use tch::Tensor;

fn rows(t: &Tensor) -> Vec<Vec<i64>> {
    Vec::<Vec<i64>>::try_from(t).unwrap()
}

#[test]
fn exercise_2_1_bpe_of_unknown_words() {
    let tokenizer = common::gpt2();
    let ids = tokenizer.encode("Akwirw ier", &[]).unwrap();
    assert_eq!(ids, [33901, 86, 343, 86, 220, 959]);
    let pieces: Vec<String> = ids.iter().map(|&id| tokenizer.decode(&[id]).unwrap()).collect();
    assert_eq!(pieces, ["Ak", "w", "ir", "w", " ", "ier"]);
    assert_eq!(tokenizer.decode(&ids).unwrap(), "Akwirw ier");
    let pre: Vec<&str> = llm_from_scratch::tokenizer::pre_tokenize("Akwirw ier").collect();
    assert_eq!(pre, ["Akwirw", " ier"]);
    assert_eq!(tokenizer.token_id(b" ier"), None, "GPT-2 has no token \" ier\"");
}

#[test]
fn exercise_2_2_strides_and_context_sizes() {
    let raw_text = common::text(&data::THE_VERDICT);
    let tokenizer = common::gpt2();
    let loader = create_dataloader_v1(&raw_text, tokenizer, 4, 2, 2, false, true, 123).unwrap();
    let (x, _) = loader.iter().next().unwrap();
    assert_eq!(rows(&x), [[40, 367], [2885, 1464], [1807, 3619], [402, 271]]);
    let loader = create_dataloader_v1(&raw_text, tokenizer, 4, 8, 2, false, true, 123).unwrap();
    let (x, _) = loader.iter().next().unwrap();
    assert_eq!(
        rows(&x),
        [
            [40, 367, 2885, 1464, 1807, 3619, 402, 271],
            [2885, 1464, 1807, 3619, 402, 271, 10899, 2138],
            [1807, 3619, 402, 271, 10899, 2138, 257, 7026],
            [402, 271, 10899, 2138, 257, 7026, 15632, 438],
        ]
    );
}

#[test]
fn exercise_2_3_counting_windows_and_batches() {
    let raw_text = common::text(&data::THE_VERDICT);
    let tokenizer = common::gpt2();
    for (stride, windows, dropped, kept, last) in [(1, 5141, 642, 643, 5), (4, 1286, 160, 161, 6)] {
        let dataset = GptDatasetV1::new(&raw_text, tokenizer, 4, stride).unwrap();
        assert_eq!(dataset.len(), windows, "stride {stride}");
        let loader = DataLoader::new(dataset.clone(), 8, false, true, 0).unwrap();
        assert_eq!(loader.len(), dropped, "stride {stride}, drop_last");
        let loader = DataLoader::new(dataset, 8, false, false, 0).unwrap();
        assert_eq!(loader.len(), kept, "stride {stride}, keep the last batch");
        let (x, _) = loader.iter().last().unwrap();
        assert_eq!(x.size()[0], last, "stride {stride}: size of the last batch");
    }
}

#[test]
fn exercise_2_4_train_your_own_bpe() {
    let raw_text = common::text(&data::THE_VERDICT);
    let bpe = train_bpe(&raw_text, 1000, &[ENDOFTEXT]).unwrap();
    assert_eq!(bpe.merges().len(), 743);
    assert_eq!(bpe.special_token_id(ENDOFTEXT), Some(999));
    let text_of = |id: u32| String::from_utf8(bpe.token_bytes(id).unwrap().to_vec()).unwrap();
    let first: Vec<(String, String, u32)> =
        bpe.merges()[..5].iter().map(|&(l, r, m)| (text_of(l), text_of(r), m)).collect();
    let want = [(" ", "t", 256), ("h", "e", 257), (" ", "a", 258), ("i", "n", 259), (" ", "h", 260)];
    assert_eq!(first, want.map(|(l, r, m)| (l.to_string(), r.to_string(), m)));
    assert_eq!(bpe.encode(&raw_text, &[ENDOFTEXT]).unwrap().len(), 6999);
    assert_eq!(bpe.encode_ordinary(" Gisburn"), [405]);
    assert_eq!(common::gpt2().encode_ordinary(" Gisburn"), [402, 271, 10899]);
    let ids = bpe.encode_ordinary("Akwirw ier");
    let pieces: Vec<String> = ids.iter().map(|&id| text_of(id)).collect();
    assert_eq!(pieces, ["A", "k", "w", "ir", "w", " ", "ier"]);
    let unseen = "未知の文字 🤖";
    assert_eq!(bpe.decode(&bpe.encode_ordinary(unseen)).unwrap(), unseen);
}
