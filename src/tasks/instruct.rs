//! Chapter 7, "Fine-tuning to follow instructions": the instruction data in the Alpaca prompt
//! style (7.2; the Phi-3 style of exercise 7.1 is [`PromptStyle::Phi3`]), batches padded by a custom collate function (7.3, 7.4), finetuning with chapter
//! 5's training loop (7.6), generating and extracting responses and saving them (7.7), and
//! offline scores of the responses (7.8; the judge model is in [`crate::tasks::judge`]).
//!
//! ```text
//! Below is an instruction that describes a task. Write a response that appropriately completes the request.
//!
//! ### Instruction:
//! Identify the correct spelling of the following word.
//!
//! ### Input:
//! Ocassion
//!
//! ### Response:
//! The correct spelling is 'Occasion.'
//! ```
//!
//! The data set is a JSON array of `{"instruction", "input", "output"}` objects ([`INSTRUCTION_DATA`]:
//! 1100 entries, split without shuffling into 935 training, 110 test and 55 validation entries).
//! Each batch is padded to its longest example plus one `<|endoftext|>`; the targets are the inputs
//! shifted by one, with every padding position after the first set to -100, which
//! [`crate::training::train::cross_entropy`] ignores. So the model learns to end its response with one
//! `<|endoftext|>`, and [`generate_response`] stops there.
//!
//! [`INSTRUCTION_DATA`]: crate::text::data::INSTRUCTION_DATA

use std::path::Path;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use tch::nn::ModuleT;
use tch::{Device, Tensor};

use crate::text::data::{DataStore, INSTRUCTION_DATA};
use crate::text::dataloader::{DataLoader, Dataset};
use crate::error::{Error, Result};
use crate::training::generate::generate;
use crate::text::tokenizer::{Tokenizer, ENDOFTEXT_ID};
use crate::training::train::{calc_loss_loader, text_to_token_ids, token_ids_to_text};
pub use crate::nn::model::set_drop_rate;

/// The first sentence of every prompt (the Alpaca prompt style, section 7.2).
pub const PROMPT_PREAMBLE: &str =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.";

/// The token that ends each example and pads the batches: `<|endoftext|>` (50256).
pub const PAD_TOKEN_ID: i64 = ENDOFTEXT_ID as i64;

/// The target value that the loss ignores (PyTorch's `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// One entry of the instruction data: what to do, an optional input (empty when there is none),
/// and the desired output. After section 7.7, `model_response` holds the finetuned model's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct InstructionEntry {
    pub instruction: String,
    pub input: String,
    pub output: String,
    /// The model's response (written by [`generate_responses`], saved by [`save_responses`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_response: Option<String>,
}

impl InstructionEntry {
    /// An entry without a model response.
    pub fn new(instruction: &str, input: &str, output: &str) -> Self {
        InstructionEntry { instruction: instruction.into(), input: input.into(), output: output.into(), model_response: None }
    }
}

/// An entry with an instruction and an (optional, empty when absent) input: what
/// [`format_input`] reads. Chapter 7's [`InstructionEntry`] and the DPO bonus's
/// `PreferenceEntry` ([`crate::tasks::dpo`]) both are, so both get the same prompt.
pub trait InstructionPrompt {
    /// The task (`entry["instruction"]`).
    fn instruction(&self) -> &str;
    /// The task's input (`entry["input"]`), empty when there is none.
    fn input(&self) -> &str;
}

impl InstructionPrompt for InstructionEntry {
    fn instruction(&self) -> &str {
        &self.instruction
    }
    fn input(&self) -> &str {
        &self.input
    }
}

/// Listing 7.2, `format_input`: the Alpaca-style prompt of an entry, with the `### Input:`
/// section only when the input is not empty (and no `### Response:` section).
pub fn format_input<E: InstructionPrompt + ?Sized>(entry: &E) -> String {
    PromptStyle::Alpaca.format_input(entry)
}

/// The response section that follows the prompt in a training example: `\n\n### Response:\n{output}`.
pub fn format_response(output: &str) -> String {
    PromptStyle::Alpaca.format_response(output)
}

/// The whole training text of an entry: `format_input(entry) + format_response(entry.output)`.
pub fn format_example(entry: &InstructionEntry) -> String {
    PromptStyle::Alpaca.format_example(entry)
}

/// How an entry becomes a prompt: the book's Alpaca style (section 7.2), or the Phi-3 style of
/// exercise 7.1, shorter (no preamble, no section headers), so every example has fewer tokens:
///
/// ```text
/// <|user|>
/// Identify the correct spelling of the following word.
/// Ocassion
/// <|assistant|>:
/// The correct spelling is 'Occasion.'
/// ```
///
/// (GPT-2's tokenizer has no special tokens for `<|user|>` and `<|assistant|>`: they are plain
/// text to it, a few tokens each.) A finetuned model must be asked in the style it was trained
/// in: `llm finetune-instruct` saves the style with the model, and `llm respond` reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptStyle {
    /// Listing 7.2's prompt: the preamble, `### Instruction:`, `### Input:`, `### Response:`.
    #[default]
    Alpaca,
    /// Exercise 7.1's prompt: `<|user|>` with the instruction and input, `<|assistant|>:` before the response.
    Phi3,
}

impl PromptStyle {
    /// The prompt of an entry (the instruction and, when not empty, the input), without the
    /// response section: [`format_input`] for Alpaca, `<|user|>\n{instruction}` and `\n{input}`
    /// for Phi-3.
    pub fn format_input<E: InstructionPrompt + ?Sized>(self, entry: &E) -> String {
        let input = entry.input();
        match self {
            PromptStyle::Alpaca => {
                let instruction_text = format!("{PROMPT_PREAMBLE}\n\n### Instruction:\n{}", entry.instruction());
                let input_text = if input.is_empty() { String::new() } else { format!("\n\n### Input:\n{input}") };
                instruction_text + &input_text
            }
            PromptStyle::Phi3 => {
                let input_text = if input.is_empty() { String::new() } else { format!("\n{input}") };
                format!("<|user|>\n{}{input_text}", entry.instruction())
            }
        }
    }

    /// The marker that opens the response section: `### Response:` or `<|assistant|>:`.
    pub fn response_marker(self) -> &'static str {
        match self {
            PromptStyle::Alpaca => "### Response:",
            PromptStyle::Phi3 => "<|assistant|>:",
        }
    }

    /// The response section that follows the prompt: `\n\n### Response:\n{output}` (Alpaca) or
    /// `\n<|assistant|>:\n{output}` (Phi-3).
    pub fn format_response(self, output: &str) -> String {
        let gap = match self {
            PromptStyle::Alpaca => "\n\n",
            PromptStyle::Phi3 => "\n",
        };
        format!("{gap}{}\n{output}", self.response_marker())
    }

    /// The whole training text of an entry: its prompt and its response section.
    pub fn format_example(self, entry: &InstructionEntry) -> String {
        self.format_input(entry) + &self.format_response(&entry.output)
    }

    /// The response in a generated text: what follows the prompt `input_text`, with the
    /// response marker removed and surrounding whitespace trimmed (see [`extract_response`]).
    pub fn extract_response(self, generated_text: &str, input_text: &str) -> String {
        let rest = generated_text.strip_prefix(input_text).unwrap_or_else(|| {
            // Not a prefix (never with GPT-2's lossless tokenizer): cut as many characters, as Python does.
            let cut = generated_text.char_indices().nth(input_text.chars().count()).map_or(generated_text.len(), |(i, _)| i);
            &generated_text[cut..]
        });
        rest.replace(self.response_marker(), "").trim().to_string()
    }

    /// [`generate_response`] with prompts of this style.
    pub fn generate_response<M: ModuleT + ?Sized, E: InstructionPrompt + ?Sized>(
        self,
        model: &M,
        tokenizer: &dyn Tokenizer,
        entry: &E,
        max_new_tokens: i64,
        context_size: i64,
        device: Device,
    ) -> Result<String> {
        let input_text = self.format_input(entry);
        let idx = text_to_token_ids(&input_text, tokenizer)?.to_device(device); // [1, num_tokens]
        let token_ids = generate(model, &idx, max_new_tokens, context_size, 0.0, None, Some(PAD_TOKEN_ID));
        let generated_text = token_ids_to_text(&token_ids, tokenizer)?;
        Ok(self.extract_response(&generated_text, &input_text))
    }

    /// [`generate_responses`] with prompts of this style.
    pub fn generate_responses<M: ModuleT + ?Sized>(
        self,
        model: &M,
        tokenizer: &dyn Tokenizer,
        entries: &[InstructionEntry],
        max_new_tokens: i64,
        context_size: i64,
        device: Device,
        on_entry: &mut dyn FnMut(usize),
    ) -> Result<Vec<InstructionEntry>> {
        let mut out = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let response = self.generate_response(model, tokenizer, entry, max_new_tokens, context_size, device)?;
            out.push(InstructionEntry { model_response: Some(response), ..entry.clone() });
            on_entry(i);
        }
        Ok(out)
    }

    /// [`response_loss`] with prompts of this style.
    pub fn response_loss<M: ModuleT + ?Sized, T: Tokenizer + ?Sized>(
        self,
        model: &M,
        tokenizer: &T,
        entries: &[InstructionEntry],
        batch_size: usize,
        allowed_max_length: Option<usize>,
        device: Device,
    ) -> Result<f64> {
        let dataset = InstructionDataset::with_style(entries, tokenizer, self)?
            .with_allowed_max_length(allowed_max_length)
            .with_prompt_masking(true);
        let loader = DataLoader::new(dataset, batch_size, false, false, 0)?;
        Ok(calc_loss_loader(&loader, model, device, None))
    }
}

/// Parse the instruction data (a JSON array of objects with the string fields `instruction`,
/// `input` and `output`, and optionally `model_response`). `path` names the source in errors.
///
/// Errors name the entry as the book's Python would index it (`data[17]`): malformed JSON
/// inside an entry (with the line and column), a missing field, or a field that is not a string.
pub fn parse_instruction_data(json: &str, path: &Path) -> Result<Vec<InstructionEntry>> {
    parse_json_entries(json, path, |entry| {
        Ok(InstructionEntry {
            instruction: entry.required("instruction")?,
            input: entry.required("input")?,
            output: entry.required("output")?,
            model_response: entry.optional("model_response")?,
        })
    })
}

/// One object of a JSON array of entries, read by [`parse_json_entries`]: its string fields,
/// with errors that name the file, the entry (`data[17]`) and the field.
pub struct JsonEntry<'a> {
    /// The entry's index in the array.
    pub index: usize,
    obj: &'a serde_json::Map<String, serde_json::Value>,
    path: &'a Path,
}

impl JsonEntry<'_> {
    /// The string field `key`, `None` when absent or `null`; an error when it is not a string.
    pub fn optional(&self, key: &str) -> Result<Option<String>> {
        match self.obj.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.error(format!("field '{key}' is not a string: {other}"))),
        }
    }

    /// The string field `key`; an error naming the entry and the field when it is missing or not a string.
    pub fn required(&self, key: &str) -> Result<String> {
        self.optional(key)?.ok_or_else(|| self.error(format!("missing field '{key}'")))
    }

    fn error(&self, reason: String) -> Error {
        Error::Format { path: self.path.to_path_buf(), reason: format!("entry data[{}]: {reason}", self.index) }
    }
}

/// Parse a JSON array of objects (chapter 7's data files), building each entry with `entry`.
/// `path` names the source in errors.
///
/// Errors name the entry as the book's Python would index it (`data[17]`): malformed JSON
/// inside an entry (with the line and column), an element that is not an object, and what
/// `entry` reports (a missing field, or a field that is not a string: see [`JsonEntry`]).
pub fn parse_json_entries<T>(json: &str, path: &Path, mut entry: impl FnMut(&JsonEntry) -> Result<T>) -> Result<Vec<T>> {
    let bad = |reason: String| Error::Format { path: path.to_path_buf(), reason };
    // Read the array one element at a time, so a syntax error names the entry it is in.
    let mut values: Vec<serde_json::Value> = Vec::new();
    let mut de = serde_json::Deserializer::from_str(json);
    if !json.trim_start().starts_with('[') {
        return Err(bad("not a JSON array of entries (the file must start with '[')".into()));
    }
    ElementsOf(&mut values)
        .deserialize(&mut de)
        .map_err(|e| bad(format!("entry data[{}]: malformed JSON: {e}", values.len())))?;
    de.end().map_err(|e| bad(format!("malformed JSON after the array's last entry: {e}")))?;
    values
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let obj = v.as_object().ok_or_else(|| bad(format!("entry data[{index}] is not a JSON object: {v}")))?;
            entry(&JsonEntry { index, obj, path })
        })
        .collect()
}

/// Collects the elements of a JSON array one by one (the count tells which entry failed).
struct ElementsOf<'a>(&'a mut Vec<serde_json::Value>);

impl<'de> DeserializeSeed<'de> for ElementsOf<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ElementsOf<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        while let Some(v) = seq.next_element::<serde_json::Value>()? {
            self.0.push(v);
        }
        Ok(())
    }
}

/// Read the instruction data (or responses saved by [`save_responses`]) from a JSON file.
pub fn load_instruction_data(path: impl AsRef<Path>) -> Result<Vec<InstructionEntry>> {
    let path = path.as_ref();
    let json = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_instruction_data(&json, path)
}

/// Section 7.2, `download_and_load_file`: the book's instruction data (1100 entries) from the
/// data store (`LLM_DATA_DIR`, the cache, or a download checked against its sha256).
pub fn instruction_data(store: &DataStore) -> Result<Vec<InstructionEntry>> {
    load_instruction_data(store.fetch(&INSTRUCTION_DATA)?)
}

/// Section 7.2: split without shuffling into training (the first 85%), test (the next 10%) and
/// validation data (the rest), with the book's rounding (`int(len(data) * 0.85)`, `int(len(data) * 0.1)`):
/// 1100 entries give 935 / 110 / 55. Returns `(train_data, test_data, val_data)`.
pub fn train_test_val_split<T: Clone>(data: &[T]) -> (Vec<T>, Vec<T>, Vec<T>) {
    let train_portion = (data.len() as f64 * 0.85) as usize;
    let test_portion = (data.len() as f64 * 0.1) as usize;
    let train = data[..train_portion].to_vec();
    let test = data[train_portion..train_portion + test_portion].to_vec();
    let val = data[train_portion + test_portion..].to_vec();
    (train, test, val)
}

/// The settings of the collate function: the padding id, the ignored target value, and the
/// optional cut of every sequence to `allowed_max_length` tokens (the book's 1024, the model's
/// context length, so that no example is longer than the model can read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollateSettings {
    pub pad_token_id: i64,
    pub ignore_index: i64,
    pub allowed_max_length: Option<usize>,
}

impl Default for CollateSettings {
    /// The book's defaults: pad with 50256, ignore -100, no cut.
    fn default() -> Self {
        CollateSettings { pad_token_id: PAD_TOKEN_ID, ignore_index: IGNORE_INDEX, allowed_max_length: None }
    }
}

/// Section 7.3, `custom_collate_fn`: pad a batch of token-id sequences and build the targets.
///
/// Each sequence gets one `pad_token_id` appended and is padded with more to the batch's longest
/// sequence + 1; the inputs are all but the last token, the targets all but the first. In each
/// target row every position equal to `pad_token_id` except the first becomes `ignore_index`
/// (the first stays, so the model learns to emit `<|endoftext|>`; like the book, this also
/// masks a `<|endoftext|>` that the text itself held after the first). Both are cut to
/// `allowed_max_length` tokens when given.
///
/// # Shapes
/// `batch`: sequences of lengths `n_i` → inputs and targets `[batch.len(), min(max n_i,
/// allowed_max_length)]`, i64.
pub fn custom_collate_fn(batch: &[&[i64]], settings: &CollateSettings) -> (Tensor, Tensor) {
    collate(batch, None, settings)
}

/// [`custom_collate_fn`], and when `prompt_lengths` is given, also the targets that predict
/// prompt tokens set to `ignore_index` (exercise 7.2: the loss then sees only the responses).
fn collate(batch: &[&[i64]], prompt_lengths: Option<&[usize]>, settings: &CollateSettings) -> (Tensor, Tensor) {
    assert!(!batch.is_empty(), "custom_collate_fn needs at least one sequence");
    let batch_max_length = batch.iter().map(|item| item.len() + 1).max().unwrap_or(1);
    let width = settings.allowed_max_length.map_or(batch_max_length - 1, |m| m.min(batch_max_length - 1));
    let mut inputs = Vec::with_capacity(batch.len() * width);
    let mut targets = Vec::with_capacity(batch.len() * width);
    for (row, item) in batch.iter().enumerate() {
        let mut padded = item.to_vec();
        padded.resize(batch_max_length, settings.pad_token_id); // one <|endoftext|>, then padding
        let mut target_row = padded[1..].to_vec();
        let mut pads = target_row.iter_mut().filter(|t| **t == settings.pad_token_id);
        pads.next(); // the first <|endoftext|> stays a target
        for t in pads {
            *t = settings.ignore_index;
        }
        if let Some(lengths) = prompt_lengths {
            // Target j predicts token j + 1: the first `prompt_len - 1` targets are prompt tokens.
            let masked = lengths[row].saturating_sub(1).min(target_row.len());
            target_row[..masked].fill(settings.ignore_index);
        }
        inputs.extend_from_slice(&padded[..width]);
        targets.extend_from_slice(&target_row[..width]);
    }
    let shape = [batch.len() as i64, width as i64];
    (Tensor::from_slice(&inputs).view(shape), Tensor::from_slice(&targets).view(shape)) // [batch, width]
}

/// Listing 7.4, `InstructionDataset`: each entry's [`format_example`] text, encoded once. As a
/// [`Dataset`], its batches come from [`custom_collate_fn`], so chapter 5's [`DataLoader`] and
/// training loop serve it unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionDataset {
    /// The token ids of each example (prompt and response).
    pub encoded_texts: Vec<Vec<i64>>,
    /// The number of tokens of each example's prompt (`format_input`).
    pub prompt_lengths: Vec<usize>,
    /// How batches are padded and cut.
    pub collate: CollateSettings,
    /// Exercise 7.2: also ignore the targets that predict prompt tokens (off in the book's run).
    pub mask_prompt: bool,
}

impl InstructionDataset {
    /// Encode every entry of `data` (with [`CollateSettings::default`]; see
    /// [`with_allowed_max_length`](Self::with_allowed_max_length)).
    pub fn new<T: Tokenizer + ?Sized>(data: &[InstructionEntry], tokenizer: &T) -> Result<Self> {
        Self::with_style(data, tokenizer, PromptStyle::Alpaca)
    }

    /// Encode every entry of `data` in the prompt style `style` (exercise 7.1: Phi-3).
    pub fn with_style<T: Tokenizer + ?Sized>(data: &[InstructionEntry], tokenizer: &T, style: PromptStyle) -> Result<Self> {
        let mut encoded_texts = Vec::with_capacity(data.len());
        let mut prompt_lengths = Vec::with_capacity(data.len());
        for entry in data {
            let ids = tokenizer.encode_text(&style.format_example(entry))?;
            // GPT-2's pre-tokenizer never merges across the non-space character that ends a
            // prompt and the "\n" that starts the response, so the prompt's ids are a prefix.
            prompt_lengths.push(tokenizer.encode_text(&style.format_input(entry))?.len());
            encoded_texts.push(ids.into_iter().map(i64::from).collect());
        }
        Ok(InstructionDataset { encoded_texts, prompt_lengths, collate: CollateSettings::default(), mask_prompt: false })
    }

    /// A data set of sequences encoded already (prompt lengths unknown: 0).
    pub fn from_token_ids(encoded_texts: Vec<Vec<i64>>) -> Self {
        let prompt_lengths = vec![0; encoded_texts.len()];
        InstructionDataset { encoded_texts, prompt_lengths, collate: CollateSettings::default(), mask_prompt: false }
    }

    /// The same data set, its batches cut to `allowed_max_length` tokens.
    pub fn with_allowed_max_length(mut self, allowed_max_length: Option<usize>) -> Self {
        self.collate.allowed_max_length = allowed_max_length;
        self
    }

    /// The same data set, with the prompt's targets masked (exercise 7.2) or not.
    pub fn with_prompt_masking(mut self, mask_prompt: bool) -> Self {
        self.mask_prompt = mask_prompt;
        self
    }

    /// The token ids of example `index` (`dataset[index]`).
    pub fn get(&self, index: usize) -> &[i64] {
        &self.encoded_texts[index]
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.encoded_texts.len()
    }

    /// Whether there is no example.
    pub fn is_empty(&self) -> bool {
        self.encoded_texts.is_empty()
    }

    /// The longest example, in tokens.
    pub fn max_length(&self) -> usize {
        self.encoded_texts.iter().map(Vec::len).max().unwrap_or(0)
    }
}

impl Dataset for InstructionDataset {
    fn len(&self) -> usize {
        self.encoded_texts.len()
    }

    /// # Shapes
    /// inputs and targets `[indices.len(), n]`, i64, where `n` is the longest example's length
    /// (one `<|endoftext|>` appended, one token lost to the shift), cut to `allowed_max_length`.
    fn batch(&self, indices: &[usize]) -> (Tensor, Tensor) {
        let items: Vec<&[i64]> = indices.iter().map(|&i| self.encoded_texts[i].as_slice()).collect();
        let lengths: Vec<usize> = indices.iter().map(|&i| self.prompt_lengths[i]).collect();
        collate(&items, self.mask_prompt.then_some(lengths.as_slice()), &self.collate)
    }
}

/// Section 7.4: the book's three loaders over the split data: training batches shuffled (seeded)
/// with `drop_last`, validation and test batches in order with the last partial batch kept.
/// Returns `(train_loader, val_loader, test_loader)`.
pub fn create_instruction_loaders<T: Tokenizer + ?Sized>(
    train_data: &[InstructionEntry],
    val_data: &[InstructionEntry],
    test_data: &[InstructionEntry],
    tokenizer: &T,
    batch_size: usize,
    allowed_max_length: Option<usize>,
    seed: u64,
) -> Result<(DataLoader<InstructionDataset>, DataLoader<InstructionDataset>, DataLoader<InstructionDataset>)> {
    let dataset = |data: &[InstructionEntry]| -> Result<InstructionDataset> {
        Ok(InstructionDataset::new(data, tokenizer)?.with_allowed_max_length(allowed_max_length))
    };
    Ok((
        DataLoader::new(dataset(train_data)?, batch_size, true, true, seed)?,
        DataLoader::new(dataset(val_data)?, batch_size, false, false, seed)?,
        DataLoader::new(dataset(test_data)?, batch_size, false, false, seed)?,
    ))
}

/// Section 7.7: the response in a generated text: what follows the prompt `input_text`, with
/// `### Response:` removed and surrounding whitespace trimmed (the book's
/// `generated_text[len(input_text):].replace("### Response:", "").strip()`).
pub fn extract_response(generated_text: &str, input_text: &str) -> String {
    PromptStyle::Alpaca.extract_response(generated_text, input_text)
}

/// Section 7.7: the model's response to an entry. Encodes [`format_input`], extends it greedily by
/// up to `max_new_tokens` tokens with chapter 5's [`generate`], stopping at `<|endoftext|>`, and
/// returns [`extract_response`] of the decoded text. The model should be in evaluation mode
/// (`generate` calls it with `train = false`). Any [`InstructionPrompt`] will do (the DPO
/// bonus asks its preference entries before and after DPO).
pub fn generate_response<M: ModuleT + ?Sized, E: InstructionPrompt + ?Sized>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    entry: &E,
    max_new_tokens: i64,
    context_size: i64,
    device: Device,
) -> Result<String> {
    PromptStyle::Alpaca.generate_response(model, tokenizer, entry, max_new_tokens, context_size, device)
}

/// Section 7.7: the entries with `model_response` filled in by [`generate_response`].
/// `on_entry(i)` is called after entry `i` (for a progress bar).
pub fn generate_responses<M: ModuleT + ?Sized>(
    model: &M,
    tokenizer: &dyn Tokenizer,
    entries: &[InstructionEntry],
    max_new_tokens: i64,
    context_size: i64,
    device: Device,
    on_entry: &mut dyn FnMut(usize),
) -> Result<Vec<InstructionEntry>> {
    PromptStyle::Alpaca.generate_responses(model, tokenizer, entries, max_new_tokens, context_size, device, on_entry)
}

/// Section 7.7: save entries (with their `model_response`) as the book's
/// `instruction-data-with-response.json`: a JSON array, indented by 4 spaces. Written atomically.
pub fn save_responses(path: impl AsRef<Path>, entries: &[InstructionEntry]) -> Result<()> {
    let path = path.as_ref();
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    serde::Serialize::serialize(entries, &mut ser)
        .map_err(|e| Error::Format { path: path.to_path_buf(), reason: e.to_string() })?;
    crate::util::files::write_atomic(path, &buf)
}

/// The book's file name for the test set with the model's responses.
pub const RESPONSES_FILE: &str = "instruction-data-with-response.json";

/// An offline score (no judge model needed): ROUGE-L F1 of a response against the reference
/// output, from the longest common subsequence of their words (lower-cased, split at every
/// character that is not a letter or digit). 1.0 for the same words in the same order, 0.0 for
/// no word in common. It rewards overlap, not meaning: a correct paraphrase scores low.
pub fn rouge_l(candidate: &str, reference: &str) -> f64 {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
    };
    let (c, r) = (words(candidate), words(reference));
    if c.is_empty() || r.is_empty() {
        return if c.is_empty() && r.is_empty() { 1.0 } else { 0.0 };
    }
    // lcs[j] of the dynamic programme, one row at a time.
    let mut prev = vec![0usize; r.len() + 1];
    for cw in &c {
        let mut row = vec![0usize; r.len() + 1];
        for (j, rw) in r.iter().enumerate() {
            row[j + 1] = if cw == rw { prev[j] + 1 } else { row[j].max(prev[j + 1]) };
        }
        prev = row;
    }
    let lcs = prev[r.len()] as f64;
    if lcs == 0.0 {
        return 0.0;
    }
    let (precision, recall) = (lcs / c.len() as f64, lcs / r.len() as f64);
    2.0 * precision * recall / (precision + recall)
}

/// The mean [`rouge_l`] of the entries' `model_response` against their `output` (entries
/// without a response are left out); `None` when no entry has one.
pub fn mean_rouge_l(entries: &[InstructionEntry]) -> Option<f64> {
    let scores: Vec<f64> =
        entries.iter().filter_map(|e| e.model_response.as_ref().map(|r| rouge_l(r, &e.output))).collect();
    (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
}

/// An offline score of the model itself: its mean cross-entropy on the reference responses of
/// `entries` (and the `<|endoftext|>` after each), given their prompts, i.e. the loss of
/// [`calc_loss_loader`] over a prompt-masked [`InstructionDataset`] in batches of `batch_size`.
/// `exp` of it is the perplexity: how many tokens the model hesitates between, on average,
/// when writing the reference answer. NaN for no entries.
pub fn response_loss<M: ModuleT + ?Sized, T: Tokenizer + ?Sized>(
    model: &M,
    tokenizer: &T,
    entries: &[InstructionEntry],
    batch_size: usize,
    allowed_max_length: Option<usize>,
    device: Device,
) -> Result<f64> {
    PromptStyle::Alpaca.response_loss(model, tokenizer, entries, batch_size, allowed_max_length, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t2(t: &Tensor) -> Vec<Vec<i64>> {
        Vec::<Vec<i64>>::try_from(t).unwrap()
    }

    #[test]
    fn collate_pads_shifts_and_masks_the_books_toy_batch() {
        let (a, b, c) = ([0i64, 1, 2, 3, 4], [5i64, 6], [7i64, 8, 9]);
        let batch: [&[i64]; 3] = [&a, &b, &c];
        let (inputs, targets) = custom_collate_fn(&batch, &CollateSettings::default());
        assert_eq!(t2(&inputs), [vec![0, 1, 2, 3, 4], vec![5, 6, 50256, 50256, 50256], vec![7, 8, 9, 50256, 50256]], "inputs");
        assert_eq!(t2(&targets), [vec![1, 2, 3, 4, 50256], vec![6, 50256, -100, -100, -100], vec![8, 9, 50256, -100, -100]], "targets");
        // allowed_max_length cuts inputs and targets alike.
        let cut = CollateSettings { allowed_max_length: Some(3), ..Default::default() };
        let (inputs, targets) = custom_collate_fn(&batch, &cut);
        assert_eq!(t2(&inputs), [vec![0, 1, 2], vec![5, 6, 50256], vec![7, 8, 9]], "cut inputs");
        assert_eq!(t2(&targets), [vec![1, 2, 3], vec![6, 50256, -100], vec![8, 9, 50256]], "cut targets");
        // A limit above the batch's length changes nothing.
        let wide = CollateSettings { allowed_max_length: Some(1024), ..Default::default() };
        assert_eq!(custom_collate_fn(&batch, &wide).0.size(), [3, 5]);
    }

    #[test]
    fn dataset_batches_through_the_loader_and_masks_prompts() {
        let d = InstructionDataset::from_token_ids(vec![vec![0, 1, 2, 3, 4], vec![5, 6], vec![7, 8, 9]]);
        let loader = DataLoader::new(d.clone(), 2, false, false, 0).unwrap();
        let batches: Vec<(Tensor, Tensor)> = loader.iter().collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(t2(&batches[0].1), [vec![1, 2, 3, 4, 50256], vec![6, 50256, -100, -100, -100]], "padded to the batch's longest");
        assert_eq!(t2(&batches[1].0), [vec![7, 8, 9]], "a batch of one is padded by the one <|endoftext|> only");
        // Exercise 7.2: with prompts of 3 and 1 tokens, targets predicting prompt tokens are ignored.
        let masked = InstructionDataset { prompt_lengths: vec![3, 1, 2], ..d }.with_prompt_masking(true);
        let (_, targets) = masked.batch(&[0, 1]);
        assert_eq!(t2(&targets), [vec![-100, -100, 3, 4, 50256], vec![6, 50256, -100, -100, -100]]);
    }

    #[test]
    fn prompt_text_is_the_books() {
        let with_input = InstructionEntry::new("Identify the correct spelling of the following word.", "Ocassion", "The correct spelling is 'Occasion.'");
        assert_eq!(
            format_example(&with_input),
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n\
             ### Instruction:\nIdentify the correct spelling of the following word.\n\n### Input:\nOcassion\n\n\
             ### Response:\nThe correct spelling is 'Occasion.'"
        );
        let without = InstructionEntry::new("What is an antonym of 'complicated'?", "", "An antonym of 'complicated' is 'simple'.");
        assert_eq!(
            format_input(&without),
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n\
             ### Instruction:\nWhat is an antonym of 'complicated'?",
            "no Input section for an empty input"
        );
    }

    /// One token per byte: prompt lengths are the prompts' byte counts.
    struct ByteTokenizer;

    impl Tokenizer for ByteTokenizer {
        fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
            Ok(text.bytes().map(u32::from).collect())
        }
        fn decode_ids(&self, ids: &[u32]) -> Result<String> {
            Ok(String::from_utf8_lossy(&ids.iter().map(|&i| i as u8).collect::<Vec<u8>>()).into_owned())
        }
        fn vocab_size(&self) -> usize {
            256
        }
    }

    #[test]
    fn phi3_prompt_style_is_exercise_7_1s() {
        let with_input = InstructionEntry::new("Identify the correct spelling of the following word.", "Ocassion", "The correct spelling is 'Occasion.'");
        let text = PromptStyle::Phi3.format_example(&with_input);
        assert_eq!(text, "<|user|>\nIdentify the correct spelling of the following word.\nOcassion\n<|assistant|>:\nThe correct spelling is 'Occasion.'");
        let without = InstructionEntry::new("Say hi.", "", "Hi.");
        assert_eq!(PromptStyle::Phi3.format_input(&without), "<|user|>\nSay hi.", "no input line for an empty input");
        let prompt = PromptStyle::Phi3.format_input(&with_input);
        assert_eq!(PromptStyle::Phi3.extract_response(&text, &prompt), "The correct spelling is 'Occasion.'");
        assert_eq!(PromptStyle::Alpaca.format_example(&with_input), format_example(&with_input), "Alpaca is the book's format");
        assert_eq!(PromptStyle::default(), PromptStyle::Alpaca);
    }

    #[test]
    fn instruction_masking_ignores_exactly_the_prompt_targets() {
        // Phi-3 prompts of 15 and 18 bytes ("<|user|>\nSay hi", "<|user|>\nEcho\nabcd"), responses
        // of 18 and 19 ("\n<|assistant|>:\nHi", "\n<|assistant|>:\nabc"): examples of 33 and 37 tokens.
        let data = [InstructionEntry::new("Say hi", "", "Hi"), InstructionEntry::new("Echo", "abcd", "abc")];
        let plain = InstructionDataset::with_style(&data, &ByteTokenizer, PromptStyle::Phi3).unwrap();
        assert_eq!(plain.prompt_lengths, [15, 18]);
        assert_eq!((plain.get(0).len(), plain.get(1).len()), (33, 37));
        let masked = plain.clone().with_prompt_masking(true);
        let (inputs, targets) = masked.batch(&[0, 1]);
        let (_, plain_targets) = plain.batch(&[0, 1]);
        assert!(inputs.equal(&plain.batch(&[0, 1]).0), "masking changes the targets only");
        let (targets, plain_targets) = (t2(&targets), t2(&plain_targets));
        let ignored = |row: &[i64]| row.iter().filter(|&&t| t == IGNORE_INDEX).count();
        // Without masking only the padding after the first <|endoftext|> is ignored: 37 - 33 = 4
        // positions in the first row, none in the second.
        assert_eq!((ignored(&plain_targets[0]), ignored(&plain_targets[1])), (4, 0));
        // With masking the 14 and 17 targets that predict prompt tokens 1.. are ignored too.
        assert_eq!((ignored(&targets[0]), ignored(&targets[1])), (4 + 14, 17));
        assert!(targets[1][..17].iter().all(|&t| t == IGNORE_INDEX), "the instruction and input");
        assert_eq!(&targets[1][17..], &plain_targets[1][17..], "the response and <|endoftext|> stay targets");
        assert_eq!(targets[1][17], i64::from(b'\n'), "the first kept target is the response's first token");
    }

    #[test]
    fn split_uses_the_books_rounding() {
        let data: Vec<usize> = (0..1100).collect();
        let (train, test, val) = train_test_val_split(&data);
        assert_eq!((train.len(), test.len(), val.len()), (935, 110, 55));
        assert_eq!((train[934], test[0], test[109], val[0], val[54]), (934, 935, 1044, 1045, 1099), "in order, no shuffle");
        let (train, test, val) = train_test_val_split(&data[..10]);
        assert_eq!((train.len(), test.len(), val.len()), (8, 1, 1));
    }

    #[test]
    fn malformed_data_names_the_entry() {
        let path = Path::new("data.json");
        let good = r#"{"instruction": "a", "input": "", "output": "b"}"#;
        let err = |json: &str| parse_instruction_data(json, path).unwrap_err().to_string();
        assert_eq!(parse_instruction_data(&format!("[{good}, {good}]"), path).unwrap().len(), 2);
        let e = err(&format!("[{good}, {{\"instruction\": \"a\", \"input\": \"\"}}]"));
        assert!(e.contains("data.json") && e.contains("data[1]") && e.contains("missing field 'output'"), "{e}");
        let e = err(&format!("[{good}, {good}, {{\"instruction\": \"a\" \"input\": \"\"}}]"));
        assert!(e.contains("data[2]") && e.contains("malformed JSON") && e.contains("line 1"), "{e}");
        let e = err(&format!("[{good}, {{\"instruction\": 3, \"input\": \"\", \"output\": \"\"}}]"));
        assert!(e.contains("data[1]") && e.contains("'instruction' is not a string"), "{e}");
        let e = err(&format!("[{good}, 7]"));
        assert!(e.contains("data[1] is not a JSON object"), "{e}");
        let e = err(good);
        assert!(e.contains("not a JSON array"), "{e}");
        let e = err(&format!("[{good}] trailing"));
        assert!(e.contains("malformed JSON"), "{e}");
    }

    #[test]
    fn response_extraction_and_rouge() {
        let prompt = "### Instruction:\nSay hi";
        assert_eq!(extract_response("### Instruction:\nSay hi\n\n### Response:\nHi there. ", prompt), "Hi there.");
        assert_eq!(rouge_l("The cat sat.", "the cat sat"), 1.0);
        assert_eq!(rouge_l("dogs bark", "the cat sat"), 0.0);
        // LCS of [a b c d] and [a c e] is [a c]: P = 2/4, R = 2/3, F1 = 2PR/(P+R) = 4/7.
        assert!((rouge_l("a b c d", "a c e") - 4.0 / 7.0).abs() < 1e-12);
        let mut e = InstructionEntry::new("i", "", "a c e");
        assert_eq!(mean_rouge_l(&[e.clone()]), None);
        e.model_response = Some("a b c d".into());
        assert!((mean_rouge_l(&[e.clone(), InstructionEntry { model_response: Some("a c e".into()), ..e }]).unwrap() - (4.0 / 7.0 + 1.0) / 2.0).abs() < 1e-12);
    }
}
