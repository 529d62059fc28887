//! Checks of chapter 2's exercises ("Working with text data"): the book's 2.1 and 2.2, and the
//! project's 2.3 and 2.4 (`chapters/ch02/exercises.md`). Notebook:
//! `notebooks/exercises/source/ch02/ch02-exercises.ipynb`.

use tch::Tensor;

use super::{check, fail, pass, reference};
use crate::text::data::the_verdict;
use crate::text::dataloader::{create_dataloader_v1, DataLoader, GptDatasetV1};
use crate::text::tokenizer::{train_bpe, BpeTokenizer, Gpt2Tokenizer, ENDOFTEXT};

/// The made-up words of exercise 2.1.
pub const UNKNOWN_WORDS: &str = "Akwirw ier";

/// Exercise 2.1, byte pair encoding of unknown words: `ids` are GPT-2's ids of
/// [`UNKNOWN_WORDS`] and `pieces` the text of each id decoded on its own.
pub fn check_2_1(ids: &[u32], pieces: &[String]) {
    let tokenizer = reference("2.1", Gpt2Tokenizer::gpt2());
    let want = reference("2.1", tokenizer.encode(UNKNOWN_WORDS, &[]));
    check(
        "2.1",
        ids == want,
        format!("{UNKNOWN_WORDS:?} is {} GPT-2 tokens", want.len()),
        format!("the ids should be what GPT-2's tokenizer gives for {UNKNOWN_WORDS:?}, you have {ids:?}"),
    );
    let want: Vec<String> = want.iter().map(|&id| reference("2.1", tokenizer.decode(&[id]))).collect();
    check(
        "2.1",
        pieces == want,
        format!("the pieces are {want:?}: unknown words fall apart into known sub-words"),
        format!("decode each id on its own (`tokenizer.decode(&[id])`); you have {pieces:?}"),
    );
}

/// Exercise 2.2, data loaders with other strides and context sizes: `first_inputs(max_length,
/// stride)` returns the inputs of the first batch of `create_dataloader_v1` over the-verdict
/// (batch size 4, no shuffling, `drop_last`). Checked for (2, 2) and (8, 2).
///
/// # Shapes
/// `first_inputs(max_length, stride)`: `[4, max_length]`, i64.
pub fn check_2_2(first_inputs: impl Fn(usize, usize) -> Tensor) {
    let text = reference("2.2", the_verdict());
    let tokenizer = reference("2.2", Gpt2Tokenizer::gpt2());
    for (max_length, stride) in [(2, 2), (8, 2)] {
        let loader = reference("2.2", create_dataloader_v1(&text, &tokenizer, 4, max_length, stride, false, true, 123));
        let (want, _) = loader.iter().next().unwrap_or_else(|| fail("2.2", "the reference loader has no batch"));
        let got = first_inputs(max_length, stride);
        if got.size() != want.size() {
            fail("2.2", format!("max_length {max_length}, stride {stride}: the batch should be {:?}, not {:?}", want.size(), got.size()));
        }
        if !got.to_kind(want.kind()).equal(&want) {
            fail("2.2", format!("max_length {max_length}, stride {stride}: other token ids than the loader's first batch (batch size 4, no shuffling)"));
        }
    }
    pass("2.2", "first batches of (max_length, stride) = (2, 2) and (8, 2) are right");
}

/// Exercise 2.3, counting windows and batches: `windows(n_tokens, max_length, stride)` is the
/// number of input-target windows `GptDatasetV1` cuts from `n_tokens` tokens, and
/// `batches(windows, batch_size, drop_last)` the number of batches a `DataLoader` makes of them.
/// Checked against the library's dataset and loader over the-verdict for several settings.
pub fn check_2_3(windows: impl Fn(usize, usize, usize) -> usize, batches: impl Fn(usize, usize, bool) -> usize) {
    let text = reference("2.3", the_verdict());
    let tokenizer = reference("2.3", Gpt2Tokenizer::gpt2());
    let n_tokens = tokenizer.encode_ordinary(&text).len();
    for (max_length, stride) in [(4, 1), (4, 4), (256, 128), (7, 3)] {
        let dataset = reference("2.3", GptDatasetV1::new(&text, &tokenizer, max_length, stride));
        let got = windows(n_tokens, max_length, stride);
        if got != dataset.len() {
            fail(
                "2.3",
                format!(
                    "{n_tokens} tokens, max_length {max_length}, stride {stride}: {} windows, not {got}; the book's loop is \
                     `for i in range(0, len(token_ids) - max_length, stride)`",
                    dataset.len()
                ),
            );
        }
        for (batch_size, drop_last) in [(8, true), (8, false), (3, false)] {
            let loader = reference("2.3", DataLoader::new(dataset.clone(), batch_size, false, drop_last, 0));
            let got = batches(dataset.len(), batch_size, drop_last);
            if got != loader.len() {
                let how = if drop_last { "an incomplete last batch is dropped" } else { "an incomplete last batch is kept" };
                fail("2.3", format!("{} windows in batches of {batch_size}: {} batches, not {got} ({how})", dataset.len(), loader.len()));
            }
        }
    }
    pass("2.3", format!("window and batch counts agree with the loader (the-verdict: {n_tokens} tokens)"));
}

/// Exercise 2.4, train your own BPE vocabulary: `bpe` is a tokenizer of 1000 tokens (with
/// `<|endoftext|>`) trained on the-verdict, and `verdict_tokens` the number of tokens the
/// story takes with it.
pub fn check_2_4(bpe: &BpeTokenizer, verdict_tokens: usize) {
    let text = reference("2.4", the_verdict());
    let want = reference("2.4", train_bpe(&text, 1000, &[ENDOFTEXT]));
    check(
        "2.4",
        bpe.vocab_size() == want.vocab_size() && bpe.special_token_id(ENDOFTEXT) == want.special_token_id(ENDOFTEXT),
        format!("{} tokens: 256 bytes, {} merges and <|endoftext|>", want.vocab_size(), want.merges().len()),
        format!("train 1000 tokens including <|endoftext|> (`train_bpe(&raw_text, 1000, &[ENDOFTEXT])`); yours has {}", bpe.vocab_size()),
    );
    check("2.4", bpe.merges() == want.merges(), "the merges are right", "train on the-verdict itself (`the_verdict()?`)");
    let n = want.encode_ordinary(&text).len();
    check(
        "2.4",
        verdict_tokens == n,
        format!("the-verdict takes {n} tokens (GPT-2: 5145)"),
        format!("encode the whole of the-verdict with your tokenizer and count; {verdict_tokens} is not it"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercises::tests::fails;

    fn gpt2() -> BpeTokenizer {
        Gpt2Tokenizer::gpt2().unwrap()
    }

    #[test]
    fn check_2_1_takes_the_tokens_and_rejects_other_pieces() {
        let tokenizer = gpt2();
        let ids = tokenizer.encode(UNKNOWN_WORDS, &[]).unwrap();
        let pieces: Vec<String> = ids.iter().map(|&id| tokenizer.decode(&[id]).unwrap()).collect();
        check_2_1(&ids, &pieces);
        fails("2.1", || check_2_1(&ids, &["Akwirw".to_string(), " ier".to_string()]));
        fails("2.1", || check_2_1(&ids[1..], &pieces));
    }

    #[test]
    fn check_2_2_takes_the_loader_and_rejects_another_stride() {
        let (text, tokenizer) = (the_verdict().unwrap(), gpt2());
        let first = |max_length: usize, stride: usize| {
            let loader = create_dataloader_v1(&text, &tokenizer, 4, max_length, stride, false, true, 123).unwrap();
            loader.iter().next().unwrap().0
        };
        check_2_2(first);
        fails("2.2", || check_2_2(|max_length, _| first(max_length, max_length)));
    }

    #[test]
    fn check_2_3_takes_the_formulas_and_rejects_an_off_by_one() {
        let windows = |n: usize, max_length: usize, stride: usize| (n - max_length).div_ceil(stride);
        let batches = |w: usize, b: usize, drop_last: bool| if drop_last { w / b } else { w.div_ceil(b) };
        check_2_3(windows, batches);
        fails("2.3", || check_2_3(|n, m, s| (n - m + 1).div_ceil(s), batches));
        fails("2.3", || check_2_3(windows, |w, b, _| w / b));
    }

    #[test]
    fn check_2_4_takes_the_trained_tokenizer_and_rejects_a_wrong_count() {
        let text = the_verdict().unwrap();
        let bpe = train_bpe(&text, 1000, &[ENDOFTEXT]).unwrap();
        let n = bpe.encode_ordinary(&text).len();
        check_2_4(&bpe, n);
        fails("2.4", || check_2_4(&bpe, 5145));
        let smaller = train_bpe(&text, 500, &[ENDOFTEXT]).unwrap();
        fails("2.4", || check_2_4(&smaller, smaller.encode_ordinary(&text).len()));
    }
}
