//! Checks for chapter 7's exercises ("Fine-tuning to follow instructions"): the book's 7.1-7.4
//! and the project's 7.5 (how many targets the collate function ignores) and 7.6 (extracting
//! the response from a generated text). The notebook is
//! `notebooks/exercises/source/ch07/ch07-exercises.ipynb`.

use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::{check, fail, pass};
use crate::error::Result;
use crate::nn::config::GptConfig;
use crate::nn::model::{num_parameters, num_trainable_parameters, GptModel};
use crate::tasks::instruct::{
    custom_collate_fn, extract_response, format_example, format_input, parse_instruction_data, train_test_val_split,
    CollateSettings, InstructionDataset, InstructionEntry, IGNORE_INDEX,
};
use crate::tasks::lora::lora_parameters;
use crate::text::dataloader::Dataset;
use crate::text::tokenizer::{BpeTokenizer, Tokenizer};
use crate::training::optim::AdamW;
use crate::training::train::calc_loss_batch;
use crate::util::device::set_seed;

/// The Phi-3 training text of an entry (the book's solution to exercise 7.1): `<|user|>`, the
/// instruction (and the input on its own line), then `<|assistant|>:` and the response.
fn format_phi(entry: &InstructionEntry) -> String {
    let input_text = if entry.input.is_empty() { String::new() } else { format!("\n{}", entry.input) };
    format!("<|user|>\n{}{input_text}\n<|assistant|>:\n{}", entry.instruction, entry.output)
}

/// The number of GPT-2 tokens of `text`.
fn count_tokens(tokenizer: &BpeTokenizer, text: &str) -> usize {
    tokenizer.encode_text(text).unwrap_or_else(|e| panic!("{e}")).len()
}

/// Exercise 7.1: `format_phi(entry)` is the whole training text of `entry` in the Phi-3 prompt
/// style: `<|user|>\n{instruction}` (`\n{input}` when there is one) then `\n<|assistant|>:\n{output}`.
/// Compared on every entry of `data`; then the tokens it saves over Alpaca's style are counted.
pub fn check_7_1(format_phi_style: impl Fn(&InstructionEntry) -> String, data: &[InstructionEntry], tokenizer: &BpeTokenizer) {
    for (i, entry) in data.iter().enumerate() {
        let want = format_phi(entry);
        let got = format_phi_style(entry);
        if got != want {
            let at = want.chars().zip(got.chars()).take_while(|(a, b)| a == b).count();
            let kind = if entry.input.is_empty() { "without an input" } else { "with an input" };
            fail(
                "7.1",
                format!("entry {i} ({kind}) differs from character {at} on.\nexpected: {want:?}\nyours:    {got:?}"),
            );
        }
    }
    let n = data.len().min(200);
    let (alpaca, phi): (usize, usize) = data[..n]
        .iter()
        .map(|e| (count_tokens(tokenizer, &format_example(e)), count_tokens(tokenizer, &format_phi(e))))
        .fold((0, 0), |(a, p), (x, y)| (a + x, p + y));
    pass(
        "7.1",
        format!(
            "over the first {n} entries an example takes {:.1} tokens in Phi-3's style against {:.1} in Alpaca's: {:.1} \
             fewer, so an epoch is faster. The collate function and the loop do not change",
            phi as f64 / n as f64,
            alpaca as f64 / n as f64,
            (alpaca - phi) as f64 / n as f64
        ),
    );
}

/// `targets` with the first `lengths[row] - shift` targets of each row set to -100.
fn mask_first(targets: &Tensor, lengths: &[usize], shift: usize) -> Tensor {
    let masked = targets.copy();
    let width = targets.size()[1];
    for (row, &len) in lengths.iter().enumerate() {
        let n = (len.saturating_sub(shift) as i64).min(width);
        let _ = masked.get(row as i64).narrow(0, 0, n).fill_(IGNORE_INDEX);
    }
    masked
}

/// Exercise 7.2: `mask_prompt(targets, prompt_lengths)` sets to -100 the targets that predict
/// prompt tokens, so that the loss sees only the response (and its `<|endoftext|>`);
/// `prompt_lengths[i]` is the number of tokens of row `i`'s prompt (`format_input`). Compared with
/// `InstructionDataset::with_prompt_masking(true)` on eight validation entries of `data`.
pub fn check_7_2(mask_prompt: impl Fn(&Tensor, &[usize]) -> Tensor, data: &[InstructionEntry], tokenizer: &BpeTokenizer) {
    let (_, _, val) = train_test_val_split(data);
    let dataset = InstructionDataset::new(&val[..8], tokenizer).unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<usize> = (0..8).collect();
    let (_, targets) = dataset.batch(&rows);
    let (_, want) = dataset.clone().with_prompt_masking(true).batch(&rows);
    let got = mask_prompt(&targets, &dataset.prompt_lengths);
    if got.size() != want.size() || !got.equal(&want) {
        let hint = if got.size() == want.size() && got.equal(&mask_first(&targets, &dataset.prompt_lengths, 0)) {
            "one target too many is masked: target j predicts token j + 1, so the last prompt token's target is the \
             response's first token, which the model must learn"
        } else if got.size() == want.size() && got.equal(&targets) {
            "nothing is masked: set the targets that predict prompt tokens to -100"
        } else {
            "in row i, set the first prompt_lengths[i] - 1 targets to -100 (target j predicts token j + 1) and keep the \
             rest, including the -100 of the padding"
        };
        fail("7.2", hint);
    }
    let count = |t: &Tensor| t.ne(IGNORE_INDEX).sum(Kind::Int64).int64_value(&[]);
    pass("7.2", format!("of the batch's targets, {} remain without masking and {} with it: the response tokens and one <|endoftext|> per row", count(&targets), count(&got)));
}

/// Three entries in the format of Stanford's `alpaca_data.json`, the last one with an output
/// over 512 GPT-2 tokens.
fn alpaca_sample() -> String {
    let long_output = "Exercise regularly and sleep well. ".repeat(120);
    serde_json::json!([
        {"instruction": "Give three tips for staying healthy.", "input": "", "output": "1. Eat a balanced diet.\n2. Exercise.\n3. Sleep."},
        {"instruction": "Identify the odd one out.", "input": "Twitter, Instagram, Telegram", "output": "Telegram"},
        {"instruction": "Write a long essay on health.", "input": "", "output": long_output}
    ])
    .to_string()
}

/// Exercise 7.3: `alpaca_dataset(json, tokenizer)` reads instruction data in the format of
/// Stanford's Alpaca (`alpaca_data.json`, 52,002 entries) and returns the data set the book's
/// solution trains on, its batches cut at 512 tokens. Compared on three entries in that format.
pub fn check_7_3(alpaca_dataset: impl Fn(&str, &BpeTokenizer) -> Result<InstructionDataset>, tokenizer: &BpeTokenizer) {
    let json = alpaca_sample();
    let entries = parse_instruction_data(&json, Path::new("alpaca_data.json")).unwrap_or_else(|e| panic!("{e}"));
    let want = InstructionDataset::new(&entries, tokenizer).unwrap_or_else(|e| panic!("{e}")).with_allowed_max_length(Some(512));
    let got = match alpaca_dataset(&json, tokenizer) {
        Ok(d) => d,
        Err(e) => fail("7.3", format!("your function returned an error: {e}")),
    };
    if got.encoded_texts != want.encoded_texts {
        fail(
            "7.3",
            format!(
                "expected {} examples encoded from the Alpaca prompt (format_example), you have {}: the entries have \
                 the same three fields as the book's data, so parse_instruction_data reads them",
                want.len(),
                got.len()
            ),
        );
    }
    check(
        "7.3",
        got == want,
        format!(
            "the longest example has {} tokens, its batches are cut to {:?}. The book's solution trains on the 52,002 \
             entries with batch size 4 and this cut (`llm finetune-instruct --data alpaca_data.json --batch-size 4 \
             --allowed-max-length 512`)",
            got.max_length(),
            got.batch(&[0, 1, 2]).0.size()
        ),
        format!(
            "the examples are right but the batches are not cut at 512 tokens (allowed_max_length {:?}): \
             with_allowed_max_length(Some(512)) keeps the long Alpaca examples within memory",
            got.collate.allowed_max_length
        ),
    );
}

/// Exercise 7.4: `add_lora(model, vs, rank, alpha)` prepares `model` for LoRA finetuning: every
/// original parameter frozen, a LoRA update of `rank` and `alpha` on every linear layer. The
/// check counts the trainable parameters, finetunes a small GPT on four instructions of `data`
/// (their first 32 tokens) for 20 steps, and checks that the loss falls and that no original
/// weight moved.
pub fn check_7_4(add_lora: impl Fn(&mut GptModel, &VarStore, i64, f64), data: &[InstructionEntry], tokenizer: &BpeTokenizer) {
    let (train, _, _) = train_test_val_split(data);
    let dataset = InstructionDataset::new(&train[..4], tokenizer).unwrap_or_else(|e| panic!("{e}")).with_allowed_max_length(Some(32));
    let (inputs, targets) = dataset.batch(&[0, 1, 2, 3]);
    let cfg = GptConfig { context_length: 32, emb_dim: 32, n_heads: 2, n_layers: 2, drop_rate: 0.0, qkv_bias: true, ..GptConfig::gpt2_124m() };
    set_seed(123);
    let vs = VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    let original = num_parameters(&vs);
    let (rank, alpha) = (8, 16.0);
    add_lora(&mut model, &vs, rank, alpha);
    let e = cfg.emb_dim;
    let per_block = 4 * lora_parameters(e, e, rank) + lora_parameters(e, 4 * e, rank) + lora_parameters(4 * e, e, rank);
    let want = cfg.n_layers * per_block + lora_parameters(e, cfg.vocab_size, rank);
    let trainable = num_trainable_parameters(&vs);
    if trainable != want {
        let hint = if trainable >= original {
            "the original weights still train: freeze the whole model first (set_requires_grad_under(&vs, \"\", false)), then add LoRA"
        } else if trainable == 0 {
            "nothing trains: give every linear layer a LoRA update (replace_linear_with_lora(model, vs, rank, alpha)) after freezing"
        } else {
            "every linear layer (the attention's four projections, the feed-forward network's two layers and out_head) gets \
             A [in, rank] and B [rank, out], and only those train"
        };
        fail("7.4", format!("{trainable} parameters train, expected {want} (rank {rank}): {hint}."));
    }
    let frozen: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(n, _)| !n.contains(".lora.")).map(|(n, t)| (n, t.copy())).collect();
    let mut optimizer = AdamW::new(&vs, 1e-2, 0.1);
    let first = tch::no_grad(|| calc_loss_batch(&inputs, &targets, &model, Device::Cpu, false)).double_value(&[]);
    for _ in 0..20 {
        optimizer.backward_step(&calc_loss_batch(&inputs, &targets, &model, Device::Cpu, true));
    }
    let last = tch::no_grad(|| calc_loss_batch(&inputs, &targets, &model, Device::Cpu, false)).double_value(&[]);
    let vars = vs.variables();
    let moved: Vec<&String> = frozen.iter().filter(|(n, t)| !vars[n].equal(t)).map(|(n, _)| n).collect();
    if !moved.is_empty() {
        fail("7.4", format!("these original weights changed in training: {moved:?}; freeze everything before adding LoRA"));
    }
    check(
        "7.4",
        last < 0.7 * first,
        format!(
            "{trainable} LoRA parameters train ({:.1}% of the model's {original}); 20 steps on four instructions take the \
             loss from {first:.3} to {last:.3} with every original weight unchanged",
            100.0 * trainable as f64 / original as f64
        ),
        format!("the loss went from {first:.3} to only {last:.3} in 20 steps: is alpha passed on? (the update is scaled by alpha)"),
    );
}

/// Exercise 7.5: `ignored_targets(lengths)` is the number of -100 targets `custom_collate_fn`
/// makes for a batch of sequences of these lengths (the book's defaults: no cut). Compared with
/// counting them in the collate function's output.
pub fn check_7_5(ignored_targets: impl Fn(&[usize]) -> usize) {
    let cases: [&[usize]; 5] = [&[5, 2, 3], &[4, 4], &[1, 7], &[3, 10, 6, 1], &[9]];
    for lengths in cases {
        let sequences: Vec<Vec<i64>> = lengths.iter().map(|&n| (1..=n as i64).collect()).collect();
        let batch: Vec<&[i64]> = sequences.iter().map(Vec::as_slice).collect();
        let (_, targets) = custom_collate_fn(&batch, &CollateSettings::default());
        let want = targets.eq(IGNORE_INDEX).sum(Kind::Int64).int64_value(&[]) as usize;
        let got = ignored_targets(lengths);
        if got != want {
            let hint = if got == want + lengths.len() {
                "the first <|endoftext|> after each sequence stays a target (the model learns to stop); only the padding after it is -100"
            } else {
                "each sequence gets one <|endoftext|> and is padded to the longest sequence + 1; the targets drop the first \
                 token; in each row every padding token after the first becomes -100"
            };
            fail("7.5", format!("lengths {lengths:?}: {want} targets are -100, you count {got}; {hint}."));
        }
    }
    pass("7.5", "your count matches custom_collate_fn on five batches (the book's [5, 2, 3]: 5 of 15 targets ignored)");
}

/// Exercise 7.6: `extract(generated, prompt)` is the response in a generated text: what follows
/// the prompt, without the `### Response:` header and the surrounding whitespace. Compared with
/// `extract_response` on model outputs of several shapes.
pub fn check_7_6(extract: impl Fn(&str, &str) -> String) {
    let prompt = format_input(&InstructionEntry::new("Identify the correct spelling of the following word.", "Ocassion", ""));
    let generated = [
        format!("{prompt}\n\n### Response:\nThe correct spelling is 'Occasion.'"),
        format!("{prompt}\n\n### Response:\n  Occasion  \n\n"),
        format!("{prompt}\n\n### Response:\n"),
        format!("{prompt} and then the model went on without a header"),
    ];
    for text in &generated {
        let want = extract_response(text, &prompt);
        let got = extract(text, &prompt);
        if got != want {
            let tail = &text[prompt.len()..];
            fail(
                "7.6",
                format!(
                    "for a generation that continues the prompt with {tail:?}, the response is {want:?}, you give {got:?}: \
                     take the text after the prompt, remove \"### Response:\" and trim the whitespace."
                ),
            );
        }
    }
    pass("7.6", "your extraction agrees with extract_response on four generations");
}

#[cfg(test)]
mod tests {
    use crate::exercises::tests::failure;
    use super::*;
    use crate::tasks::classify::set_requires_grad_under;
    use crate::tasks::instruct::instruction_data;
    use crate::tasks::lora::replace_linear_with_lora;
    use crate::text::data::DataStore;
    use crate::util::device::rng_lock;

    fn data() -> Vec<InstructionEntry> {
        instruction_data(&DataStore::from_env()).unwrap()
    }

    #[test]
    fn check_7_1_wants_the_phi3_text() {
        let (data, tokenizer) = (data(), BpeTokenizer::gpt2().unwrap());
        check_7_1(format_phi, &data, &tokenizer);
        // Forgetting the newline before the input.
        let msg = failure(|| {
            check_7_1(
                |e| format_phi(e).replacen(&format!("\n{}\n<|assistant|>", e.input), &format!("{}\n<|assistant|>", e.input), 1),
                &data,
                &tokenizer,
            )
        });
        assert!(msg.contains("with an input"), "{msg}");
    }

    #[test]
    fn check_7_2_masks_one_less_than_the_prompt() {
        let (data, tokenizer) = (data(), BpeTokenizer::gpt2().unwrap());
        check_7_2(|t, lengths| mask_first(t, lengths, 1), &data, &tokenizer);
        let msg = failure(|| check_7_2(|t, lengths| mask_first(t, lengths, 0), &data, &tokenizer));
        assert!(msg.contains("one target too many"), "{msg}");
    }

    fn alpaca_dataset(json: &str, tokenizer: &BpeTokenizer) -> Result<InstructionDataset> {
        let entries = parse_instruction_data(json, Path::new("alpaca_data.json"))?;
        Ok(InstructionDataset::new(&entries, tokenizer)?.with_allowed_max_length(Some(512)))
    }

    #[test]
    fn check_7_3_wants_the_cut_at_512() {
        let tokenizer = BpeTokenizer::gpt2().unwrap();
        check_7_3(alpaca_dataset, &tokenizer);
        let msg = failure(|| check_7_3(|j, t| Ok(alpaca_dataset(j, t)?.with_allowed_max_length(None)), &tokenizer));
        assert!(msg.contains("not cut at 512"), "{msg}");
    }

    #[test]
    fn check_7_4_wants_a_frozen_model_with_lora() {
        let _rng = rng_lock();
        let (data, tokenizer) = (data(), BpeTokenizer::gpt2().unwrap());
        let lora = |model: &mut GptModel, vs: &VarStore, rank: i64, alpha: f64| {
            set_requires_grad_under(vs, "", false);
            replace_linear_with_lora(model, vs, rank, alpha);
        };
        check_7_4(lora, &data, &tokenizer);
        let msg = failure(|| check_7_4(|m, vs, r, a| { replace_linear_with_lora(m, vs, r, a); }, &data, &tokenizer));
        assert!(msg.contains("freeze the whole model first"), "{msg}");
    }

    #[test]
    fn check_7_5_counts_the_ignored_padding() {
        let right = |lengths: &[usize]| {
            let max = *lengths.iter().max().unwrap();
            lengths.iter().map(|&n| max - n).sum()
        };
        assert_eq!(right(&[5, 2, 3]), 5, "the book's example");
        check_7_5(right);
        let msg = failure(|| check_7_5(|l| right(l) + l.len()));
        assert!(msg.contains("stays a target"), "{msg}");
    }

    #[test]
    fn check_7_6_compares_with_extract_response() {
        check_7_6(extract_response);
        let msg = failure(|| check_7_6(|g, p| g[p.len()..].replace("### Response:", "")));
        assert!(msg.starts_with("✘ Exercise 7.6: for a generation"), "{msg}");
    }
}
