//! Chapter 7's bonus, "Direct Preference Optimization (DPO) for LLM alignment" (the book's
//! `ch07/04_preference-tuning-with-dpo/dpo-from-scratch.ipynb`): after instruction fine-tuning,
//! align the model with preferences. Each entry of the preference data pairs a preferred
//! (`chosen`) and a dispreferred (`rejected`) response to the same prompt; DPO trains the
//! *policy* so that it raises the chosen response's log-probability relative to the rejected one,
//! measured against a frozen *reference* copy of itself (Rafailov et al. 2023, eq. 7):
//!
//! ```text
//! loss = -log σ(β · [(log π(chosen) - log π(rejected)) - (log π_ref(chosen) - log π_ref(rejected))])
//! ```
//!
//! The sections, as in the book's notebook:
//! - 2, the data: [`read_preference_data`] ([`INSTRUCTION_DATA_WITH_PREFERENCE`], 1,100 entries),
//!   [`split_preference_data`] (chapter 7's split: 935 / 55 / 110), the prompt of chapter 7's
//!   [`format_input`];
//! - 2.4, the batches: [`PreferenceDataset`], [`custom_collate_fn_dpo`] (the book's
//!   `custom_collate_fn`: chosen and rejected padded to a common length, with selection masks
//!   that keep the response tokens only), and the packing that lets chapter 5's [`DataLoader`]
//!   serve them (see [`PreferenceDataset`]);
//! - 4, the loss: [`compute_logprobs`], [`compute_dpo_loss`], [`compute_dpo_loss_batch`],
//!   [`compute_dpo_loss_loader`], [`evaluate_dpo_loss_loader`];
//! - 5, training: [`reference_model`] (the frozen copy), [`DpoTask`] for the one training loop
//!   ([`train_steps`]), and the book's [`train_model_dpo_simple`] over it, whose
//!   [`DpoHistory`] draws the loss and reward-margin plots.
//!
//! [`INSTRUCTION_DATA_WITH_PREFERENCE`]: crate::text::data::INSTRUCTION_DATA_WITH_PREFERENCE

use std::path::Path;

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::nn::config::GptConfig;
use crate::nn::model::GptModel;
use crate::tasks::instruct::{format_input, format_response, parse_json_entries, train_test_val_split, InstructionPrompt};
use crate::text::data::{DataStore, INSTRUCTION_DATA_WITH_PREFERENCE};
use crate::text::dataloader::{DataLoader, Dataset};
use crate::text::tokenizer::Tokenizer;
use crate::training::optim::AdamW;
use crate::training::train::{generate_sample, token_ids_to_text};
use crate::training::trainer::{
    eval_log_line, print_book_lines, train_steps, Evaluation, TrainEvent, TrainHistory, TrainSettings, TrainState, TrainTask,
};
use crate::viz::figures::LossPlot;

pub use crate::tasks::instruct::PAD_TOKEN_ID;

/// The book's DPO run (section 5 of its notebook): β 0.1, AdamW with learning rate 5e-6 and
/// weight decay 0.01, batches of 8 pairs, one epoch, evaluating every 5 steps on 5 batches,
/// batches cut to 1024 tokens (GPT-2's context) with the prompts masked.
pub const BOOK_BETA: f64 = 0.1;
/// See [`BOOK_BETA`].
pub const BOOK_LEARNING_RATE: f64 = 5e-6;
/// See [`BOOK_BETA`].
pub const BOOK_WEIGHT_DECAY: f64 = 0.01;
/// See [`BOOK_BETA`].
pub const BOOK_BATCH_SIZE: usize = 8;
/// See [`BOOK_BETA`].
pub const BOOK_EVAL_FREQ: i64 = 5;
/// See [`BOOK_BETA`].
pub const BOOK_EVAL_ITER: usize = 5;
/// See [`BOOK_BETA`].
pub const BOOK_ALLOWED_MAX_LENGTH: usize = 1024;

// ---------------------------------------------------------------------------------------------
// 2. The preference data
// ---------------------------------------------------------------------------------------------

/// One entry of the preference data: chapter 7's instruction, input and output, and two
/// responses, the preferred (`chosen`) and the dispreferred (`rejected`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PreferenceEntry {
    pub instruction: String,
    pub input: String,
    pub output: String,
    pub chosen: String,
    pub rejected: String,
}

impl InstructionPrompt for PreferenceEntry {
    fn instruction(&self) -> &str {
        &self.instruction
    }
    fn input(&self) -> &str {
        &self.input
    }
}

/// Parse the preference data: a JSON array of objects with the string fields `instruction`,
/// `input`, `output`, `chosen` and `rejected`. `path` names the source in errors.
///
/// Errors name the file, the entry (`data[17]`) and the field that is missing or not a string,
/// or the entry with malformed JSON (and its line and column).
pub fn parse_preference_data(json: &str, path: &Path) -> Result<Vec<PreferenceEntry>> {
    parse_json_entries(json, path, |entry| {
        Ok(PreferenceEntry {
            instruction: entry.required("instruction")?,
            input: entry.required("input")?,
            output: entry.required("output")?,
            chosen: entry.required("chosen")?,
            rejected: entry.required("rejected")?,
        })
    })
}

/// Read the preference data from a JSON file (errors as [`parse_preference_data`]).
pub fn load_preference_file(path: &Path) -> Result<Vec<PreferenceEntry>> {
    let json = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_preference_data(&json, path)
}

/// The book's `download_and_load_file` of the preference data: 1,100 entries from the data store
/// (`LLM_DATA_DIR`, the cache, or a download checked against its sha256).
pub fn read_preference_data(store: &DataStore) -> Result<Vec<PreferenceEntry>> {
    load_preference_file(&store.fetch(&INSTRUCTION_DATA_WITH_PREFERENCE)?)
}

/// Chapter 7's split without shuffling (`train_test_val_split`): the first `int(0.85 n)` entries
/// train, the next `int(0.1 n)` test, the rest validate; 1,100 entries give 935 / 110 / 55.
/// Returned in the order `(train, validation, test)`.
pub fn split_preference_data(data: &[PreferenceEntry]) -> (Vec<PreferenceEntry>, Vec<PreferenceEntry>, Vec<PreferenceEntry>) {
    let (train, test, val) = train_test_val_split(data);
    (train, val, test)
}

// ---------------------------------------------------------------------------------------------
// 2.4 Batches
// ---------------------------------------------------------------------------------------------

/// One encoded entry (the book's dict `{"prompt", "chosen", "rejected"}`): the prompt's ids, and
/// the ids of `prompt + "\n\n### Response:\n" + response` for each response, encoded whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PreferenceExample {
    pub prompt: Vec<i64>,
    pub chosen: Vec<i64>,
    pub rejected: Vec<i64>,
}

impl PreferenceExample {
    /// Encode an entry: [`format_input`] and the two full texts.
    pub fn encode<T: Tokenizer + ?Sized>(entry: &PreferenceEntry, tokenizer: &T) -> Result<Self> {
        let encode = |text: &str| -> Result<Vec<i64>> { Ok(tokenizer.encode_text(text)?.into_iter().map(i64::from).collect()) };
        let prompt = format_input(entry);
        Ok(PreferenceExample {
            prompt: encode(&prompt)?,
            chosen: encode(&(prompt.clone() + &format_response(&entry.chosen)))?,
            rejected: encode(&(prompt + &format_response(&entry.rejected)))?,
        })
    }
}

/// A collated batch, the book's dict of `custom_collate_fn`: the prompts (unpadded, one tensor
/// each), the padded chosen and rejected ids, and their selection masks (`true` where the loss
/// reads the token: a response token, not a prompt token, not padding).
///
/// # Shapes
/// `prompt[i]: [prompt_len_i]` (int64); `chosen, rejected: [batch, num_tokens]` (int64);
/// `chosen_mask, rejected_mask: [batch, num_tokens]` (bool)
#[derive(Debug)]
pub struct PreferenceBatch {
    pub prompt: Vec<Tensor>,
    pub chosen: Tensor,
    pub rejected: Tensor,
    pub chosen_mask: Tensor,
    pub rejected_mask: Tensor,
}

impl PreferenceBatch {
    /// The batch as the [`Dataset`] serves it: `(inputs, masks)` with the chosen rows first and
    /// the rejected rows after, masks as int64 (1 = a token the loss reads).
    ///
    /// # Shapes
    /// `[2 * batch, num_tokens]` each
    pub fn packed(&self) -> (Tensor, Tensor) {
        let inputs = Tensor::cat(&[&self.chosen, &self.rejected], 0); // [2b, num_tokens]
        let masks = Tensor::cat(&[&self.chosen_mask, &self.rejected_mask], 0).to_kind(Kind::Int64); // [2b, num_tokens]
        (inputs, masks)
    }

    /// The inverse of [`packed`](Self::packed) (the prompts are not in a packed batch: empty).
    pub fn unpack(inputs: &Tensor, masks: &Tensor) -> Self {
        let (rows, _) = inputs.size2().expect("packed inputs are [2 * batch, num_tokens]");
        assert!(rows % 2 == 0, "a packed DPO batch has an even number of rows (chosen, then rejected), not {rows}");
        let half = rows / 2;
        let masks = masks.to_kind(Kind::Bool);
        PreferenceBatch {
            prompt: Vec::new(),
            chosen: inputs.narrow(0, 0, half),       // [b, num_tokens]
            rejected: inputs.narrow(0, half, half),  // [b, num_tokens]
            chosen_mask: masks.narrow(0, 0, half),   // [b, num_tokens]
            rejected_mask: masks.narrow(0, half, half), // [b, num_tokens]
        }
    }
}

/// The book's `custom_collate_fn` of the DPO notebook.
///
/// Both the chosen and the rejected sequences of every example are padded with `pad_token_id`
/// to one common length, the longest of them all plus one (so every row ends in at least one
/// padding token, as the book). The selection mask of a row is `true` on its own tokens, `false`
/// on its padding, and with `mask_prompt_tokens` also `false` on the prompt's tokens and the two
/// after them (`+2`: the two newlines before `### Response`, which GPT-2 encodes as two `\n`
/// tokens before a non-space; the header `### Response:\n` itself stays selected, as in the
/// book). Last, ids and
/// masks are cut to their first `allowed_max_length` columns when given, and moved to `device`.
///
/// # Shapes
/// → `chosen, rejected, chosen_mask, rejected_mask: [batch.len(), min(max_len + 1,
/// allowed_max_length)]`, where `max_len` is the longest chosen or rejected sequence.
///
/// Panics on an empty batch (PyTorch's `torch.stack` of nothing fails too).
pub fn custom_collate_fn_dpo(
    batch: &[&PreferenceExample],
    pad_token_id: i64,
    allowed_max_length: Option<usize>,
    mask_prompt_tokens: bool,
    device: Device,
) -> PreferenceBatch {
    assert!(!batch.is_empty(), "custom_collate_fn_dpo needs at least one example");
    let max_length_common = batch.iter().map(|item| item.chosen.len().max(item.rejected.len()) + 1).max().unwrap_or(0);
    let width = allowed_max_length.map_or(max_length_common, |m| m.min(max_length_common));
    let mut ids = [Vec::with_capacity(batch.len() * width), Vec::with_capacity(batch.len() * width)];
    let mut masks = [Vec::with_capacity(batch.len() * width), Vec::with_capacity(batch.len() * width)];
    for item in batch {
        for (k, sequence) in [&item.chosen, &item.rejected].into_iter().enumerate() {
            let mut padded = sequence.clone();
            padded.resize(max_length_common, pad_token_id);
            let mut mask = vec![true; max_length_common];
            mask[sequence.len()..].fill(false); // padding
            if mask_prompt_tokens {
                let prompt_end = (item.prompt.len() + 2).min(max_length_common);
                mask[..prompt_end].fill(false); // the prompt and the "\n", "\n" after it
            }
            ids[k].extend_from_slice(&padded[..width]);
            masks[k].extend_from_slice(&mask[..width]);
        }
    }
    let shape = [batch.len() as i64, width as i64];
    let tensor = |v: &[i64]| Tensor::from_slice(v).view(shape).to_device(device); // [batch, width]
    let mask = |v: &[bool]| Tensor::from_slice(v).view(shape).to_device(device); // [batch, width]
    PreferenceBatch {
        prompt: batch.iter().map(|item| Tensor::from_slice(&item.prompt).to_device(device)).collect(),
        chosen: tensor(&ids[0]),
        rejected: tensor(&ids[1]),
        chosen_mask: mask(&masks[0]),
        rejected_mask: mask(&masks[1]),
    }
}

/// The book's `PreferenceDataset`: every entry encoded once ([`PreferenceExample`]), with the
/// settings of its collate function (the book's `partial(custom_collate_fn, ...)`).
///
/// As a [`Dataset`] for chapter 5's [`DataLoader`] and training loop, whose batches are a pair of
/// tensors, a batch is *packed*: `batch(indices)` is [`custom_collate_fn_dpo`] of the examples
/// (on the CPU) as [`PreferenceBatch::packed`], `(inputs, masks)` with
/// `inputs = cat([chosen; rejected])` and `masks = cat([chosen_mask; rejected_mask])` (int64, 1 =
/// a response token the loss reads). [`PreferenceBatch::unpack`] splits it back; [`DpoTask`]
/// reads it so.
///
/// # Shapes
/// `batch(indices)`: inputs and masks `[2 * indices.len(), num_tokens]`, int64, the chosen rows
/// first (row `i` and row `indices.len() + i` are the same example's pair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferenceDataset {
    /// The encoded entries (the book's `encoded_texts`).
    pub encoded_texts: Vec<PreferenceExample>,
    /// The padding id (the book's 50256, `<|endoftext|>`).
    pub pad_token_id: i64,
    /// The cut of every batch (the book's 1024, the model's context length).
    pub allowed_max_length: Option<usize>,
    /// Whether the masks hide the prompt (the book's run: `true`).
    pub mask_prompt_tokens: bool,
}

impl PreferenceDataset {
    /// Encode every entry of `data` with `tokenizer`.
    pub fn new<T: Tokenizer + ?Sized>(
        data: &[PreferenceEntry],
        tokenizer: &T,
        pad_token_id: i64,
        allowed_max_length: Option<usize>,
        mask_prompt_tokens: bool,
    ) -> Result<Self> {
        let encoded_texts = data.iter().map(|entry| PreferenceExample::encode(entry, tokenizer)).collect::<Result<_>>()?;
        Ok(PreferenceDataset { encoded_texts, pad_token_id, allowed_max_length, mask_prompt_tokens })
    }

    /// Example `index` (`dataset[index]`).
    pub fn get(&self, index: usize) -> &PreferenceExample {
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

    /// The examples at `indices` collated as the book's dict ([`custom_collate_fn_dpo`] with this
    /// data set's settings), on `device`.
    pub fn collate(&self, indices: &[usize], device: Device) -> PreferenceBatch {
        let items: Vec<&PreferenceExample> = indices.iter().map(|&i| &self.encoded_texts[i]).collect();
        custom_collate_fn_dpo(&items, self.pad_token_id, self.allowed_max_length, self.mask_prompt_tokens, device)
    }
}

impl Dataset for PreferenceDataset {
    fn len(&self) -> usize {
        self.encoded_texts.len()
    }

    /// The packed batch (see [`PreferenceDataset`]).
    ///
    /// # Shapes
    /// inputs and masks `[2 * indices.len(), num_tokens]`, int64.
    fn batch(&self, indices: &[usize]) -> (Tensor, Tensor) {
        self.collate(indices, Device::Cpu).packed()
    }
}

/// The book's three loaders over the split data: training batches shuffled (seeded) with
/// `drop_last`, validation and test batches in order with the last partial batch kept; padding
/// with `<|endoftext|>`. Returns `(train_loader, val_loader, test_loader)`.
#[allow(clippy::too_many_arguments)]
pub fn create_preference_loaders<T: Tokenizer + ?Sized>(
    train_data: &[PreferenceEntry],
    val_data: &[PreferenceEntry],
    test_data: &[PreferenceEntry],
    tokenizer: &T,
    batch_size: usize,
    allowed_max_length: Option<usize>,
    mask_prompt_tokens: bool,
    seed: u64,
) -> Result<(DataLoader<PreferenceDataset>, DataLoader<PreferenceDataset>, DataLoader<PreferenceDataset>)> {
    let dataset =
        |data: &[PreferenceEntry]| PreferenceDataset::new(data, tokenizer, PAD_TOKEN_ID, allowed_max_length, mask_prompt_tokens);
    Ok((
        DataLoader::new(dataset(train_data)?, batch_size, true, true, seed)?,
        DataLoader::new(dataset(val_data)?, batch_size, false, false, seed)?,
        DataLoader::new(dataset(test_data)?, batch_size, false, false, seed)?,
    ))
}

/// The book's `decode_tokens_from_batch`: the text of a tensor of token ids (flattened), e.g. one
/// row of a batch, or the tokens a mask selects (`chosen.get(0).masked_select(&chosen_mask.get(0))`).
pub fn decode_tokens_from_batch(token_ids: &Tensor, tokenizer: &dyn Tokenizer) -> Result<String> {
    token_ids_to_text(token_ids, tokenizer)
}

// ---------------------------------------------------------------------------------------------
// 4. The DPO loss
// ---------------------------------------------------------------------------------------------

/// The book's `compute_logprobs`: the mean log-probability the model gives each sequence's own
/// next tokens. The labels are the inputs shifted by one (`labels[:, 1:]` read by
/// `logits[:, :-1]`); with a selection mask (shifted alike), the mean is over the selected
/// tokens only (a row with none selected gives NaN, as in the book), else over all.
///
/// `log_softmax(logits).gather(labels)` is computed as `logits.gather(labels) -
/// logsumexp(logits)`, the same numbers without a second `[batch, num_tokens, vocab]` tensor.
///
/// # Shapes
/// `logits: [batch, num_tokens, vocab_size]`, `labels: [batch, num_tokens]` (int64),
/// `selection_mask: [batch, num_tokens]` (bool or numbers) → `[batch]`
pub fn compute_logprobs(logits: &Tensor, labels: &Tensor, selection_mask: Option<&Tensor>) -> Tensor {
    let num_tokens = labels.size()[1];
    let labels = labels.narrow(1, 1, num_tokens - 1).to_device(logits.device()); // [b, n - 1]
    let logits = logits.narrow(1, 0, num_tokens - 1); // [b, n - 1, vocab]
    let selected_logits = logits.gather(-1, &labels.unsqueeze(-1), false).squeeze_dim(-1); // [b, n - 1]
    let selected_log_probs = selected_logits - logits.logsumexp([-1], false); // [b, n - 1]
    match selection_mask {
        Some(selection_mask) => {
            let mask = selection_mask.narrow(1, 1, num_tokens - 1).to_device(logits.device()).to_kind(selected_log_probs.kind()); // [b, n - 1]
            // Average over the selected tokens: shape [b].
            (selected_log_probs * &mask).sum_dim_intlist(-1, false, None::<Kind>) / mask.sum_dim_intlist(-1, false, None::<Kind>)
        }
        None => selected_log_probs.mean_dim(-1, false, None::<Kind>),
    }
}

/// The book's `compute_dpo_loss` (DPO, eq. 7 of Rafailov et al. 2023): with the log-ratios
/// `Δπ = log π(chosen) - log π(rejected)` of the policy and `Δref` of the reference,
/// `loss = mean(-log σ(β (Δπ - Δref)))`. Also the rewards the book tracks, detached:
/// `chosen_rewards = mean(log π(chosen) - log π_ref(chosen))`, `rejected_rewards` likewise (not
/// scaled by β, as in the book). `beta` is typically 0.1 to 0.5; as it goes to 0 the reference
/// matters less.
///
/// When the policy equals the reference, `Δπ = Δref` and the loss is `-log σ(0) = ln 2`.
///
/// # Shapes
/// each log-probability `[batch]` → `(loss, chosen_rewards, rejected_rewards)`, scalars
pub fn compute_dpo_loss(
    model_chosen_logprobs: &Tensor,
    model_rejected_logprobs: &Tensor,
    reference_chosen_logprobs: &Tensor,
    reference_rejected_logprobs: &Tensor,
    beta: f64,
) -> (Tensor, Tensor, Tensor) {
    let model_logratios = model_chosen_logprobs - model_rejected_logprobs;
    let reference_logratios = reference_chosen_logprobs - reference_rejected_logprobs;
    let logits = model_logratios - reference_logratios;
    let losses = -(logits * beta).log_sigmoid(); // [batch]
    let chosen_rewards = (model_chosen_logprobs - reference_chosen_logprobs).detach();
    let rejected_rewards = (model_rejected_logprobs - reference_rejected_logprobs).detach();
    (losses.mean(None::<Kind>), chosen_rewards.mean(None::<Kind>), rejected_rewards.mean(None::<Kind>))
}

/// [`compute_dpo_loss_batch`] of a packed batch (see [`PreferenceDataset`]): one forward pass of
/// the policy over the chosen and rejected rows together (with dropout when `train`), one of the
/// reference without gradients nor dropout, [`compute_logprobs`] of each row, then
/// [`compute_dpo_loss`]. The batch is moved to the policy's device.
///
/// # Shapes
/// `inputs, masks: [2 * batch, num_tokens]` → `(loss, chosen_rewards, rejected_rewards)`, scalars
pub fn compute_dpo_loss_packed(
    inputs: &Tensor,
    masks: &Tensor,
    policy_model: &GptModel,
    reference_model: &GptModel,
    beta: f64,
    train: bool,
) -> (Tensor, Tensor, Tensor) {
    let rows = inputs.size()[0];
    assert!(rows % 2 == 0, "a packed DPO batch has an even number of rows (chosen, then rejected), not {rows}");
    let inputs = inputs.to_device(policy_model.device());
    let masks = masks.to_device(policy_model.device());
    let logprobs = |model: &GptModel, train: bool| {
        let logits = model.forward_t(&inputs, train); // [2b, num_tokens, vocab]
        let logprobs = compute_logprobs(&logits, &inputs, Some(&masks)); // [2b]
        (logprobs.narrow(0, 0, rows / 2), logprobs.narrow(0, rows / 2, rows / 2)) // chosen [b], rejected [b]
    };
    let (policy_chosen_log_probas, policy_rejected_log_probas) = logprobs(policy_model, train);
    let (ref_chosen_log_probas, ref_rejected_log_probas) = tch::no_grad(|| logprobs(reference_model, false));
    compute_dpo_loss(&policy_chosen_log_probas, &policy_rejected_log_probas, &ref_chosen_log_probas, &ref_rejected_log_probas, beta)
}

/// The book's `compute_dpo_loss_batch`: the DPO loss of a collated batch, and its rewards
/// ([`compute_dpo_loss`]), with the policy's gradients (the reference runs without). Both models
/// run without dropout (the book's models have `drop_rate` 0; [`DpoTask`] trains with dropout).
///
/// # Shapes
/// `batch.chosen, batch.rejected: [batch, num_tokens]` → three scalars
pub fn compute_dpo_loss_batch(
    batch: &PreferenceBatch,
    policy_model: &GptModel,
    reference_model: &GptModel,
    beta: f64,
) -> (Tensor, Tensor, Tensor) {
    let (inputs, masks) = batch.packed();
    compute_dpo_loss_packed(&inputs, &masks, policy_model, reference_model, beta, false)
}

/// What [`compute_dpo_loss_loader`] returns: the means over the batches of the loss and of the
/// chosen and rejected rewards.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DpoLosses {
    pub loss: f64,
    pub chosen_reward: f64,
    pub rejected_reward: f64,
}

impl DpoLosses {
    /// The reward margin `chosen_reward - rejected_reward`: how much more the policy (relative
    /// to the reference) prefers the chosen responses than the rejected ones.
    pub fn reward_margin(&self) -> f64 {
        self.chosen_reward - self.rejected_reward
    }
}

/// The book's `compute_dpo_loss_loader`: [`compute_dpo_loss_packed`] averaged over the first
/// `num_batches` batches of `loader` (all when `None`, at most its length), in the loader's
/// epoch-0 order, without gradients nor dropout. An empty loader gives NaN for all three (the
/// book returns a single NaN).
///
/// Any [`Dataset`] whose batches are packed as [`PreferenceDataset`]'s will do.
pub fn compute_dpo_loss_loader<D: Dataset>(
    loader: &DataLoader<D>,
    policy_model: &GptModel,
    reference_model: &GptModel,
    beta: f64,
    num_batches: Option<usize>,
) -> DpoLosses {
    if loader.is_empty() {
        return DpoLosses { loss: f64::NAN, chosen_reward: f64::NAN, rejected_reward: f64::NAN };
    }
    let num_batches = num_batches.map_or(loader.len(), |n| n.min(loader.len()));
    let _no_grad = tch::no_grad_guard();
    let (mut total_loss, mut total_chosen_rewards, mut total_rejected_rewards) = (0.0, 0.0, 0.0);
    for (inputs, masks) in loader.iter_epoch(0).take(num_batches) {
        let (loss, chosen_rewards, rejected_rewards) =
            compute_dpo_loss_packed(&inputs, &masks, policy_model, reference_model, beta, false);
        total_loss += loss.double_value(&[]);
        total_chosen_rewards += chosen_rewards.double_value(&[]);
        total_rejected_rewards += rejected_rewards.double_value(&[]);
    }
    let n = num_batches as f64;
    DpoLosses { loss: total_loss / n, chosen_reward: total_chosen_rewards / n, rejected_reward: total_rejected_rewards / n }
}

/// What [`evaluate_dpo_loss_loader`] returns (the book's dict `res`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DpoEval {
    pub train: DpoLosses,
    pub val: DpoLosses,
}

/// The book's `evaluate_dpo_loss_loader`: [`compute_dpo_loss_loader`] on the first `eval_iter`
/// batches of the training and of the validation loader, without dropout nor gradients.
pub fn evaluate_dpo_loss_loader<D: Dataset, V: Dataset>(
    policy_model: &GptModel,
    reference_model: &GptModel,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    beta: f64,
    eval_iter: usize,
) -> DpoEval {
    DpoEval {
        train: compute_dpo_loss_loader(train_loader, policy_model, reference_model, beta, Some(eval_iter)),
        val: compute_dpo_loss_loader(val_loader, policy_model, reference_model, beta, Some(eval_iter)),
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Training
// ---------------------------------------------------------------------------------------------

/// The book's `reference_model`: a frozen copy of the policy (the book loads the same
/// checkpoint twice and calls `reference_model.eval()`): a new [`nn::VarStore`] on `vs`'s device
/// and with its precision, a [`GptModel`] built in it from `cfg`, every weight copied from `vs`,
/// and none requiring gradients. Keep the returned store alive as long as the model.
///
/// Errors when `vs` lacks one of the model's weights (e.g. a classifier's, or `cfg` differs).
pub fn reference_model(vs: &nn::VarStore, cfg: &GptConfig) -> Result<(nn::VarStore, GptModel)> {
    let mut reference_vs = nn::VarStore::new(vs.device());
    let model = GptModel::new(&reference_vs.root(), cfg);
    if let Some(kind) = vs.variables().values().next().map(Tensor::kind) {
        if kind != Kind::Float {
            reference_vs.set_kind(kind);
        }
    }
    reference_vs.copy(vs)?;
    reference_vs.freeze();
    Ok((reference_vs, model))
}

/// The names of the series that [`DpoTask`] adds to [`TrainHistory::metrics`] at every
/// evaluation (the book's `tracking` keys): the mean rewards over `eval_iter` batches.
pub const TRAIN_CHOSEN_REWARDS: &str = "train_chosen_rewards";
/// See [`TRAIN_CHOSEN_REWARDS`].
pub const TRAIN_REJECTED_REWARDS: &str = "train_rejected_rewards";
/// See [`TRAIN_CHOSEN_REWARDS`].
pub const VAL_CHOSEN_REWARDS: &str = "val_chosen_rewards";
/// See [`TRAIN_CHOSEN_REWARDS`].
pub const VAL_REJECTED_REWARDS: &str = "val_rejected_rewards";

/// The DPO bonus's task for the one training loop ([`train_steps`]), which then brings
/// checkpoints, resuming and Ctrl-C: the loss of a packed batch ([`compute_dpo_loss_packed`],
/// the policy with dropout when training); the chosen tokens counted as the book's
/// `tokens_seen` (`batch["chosen"].numel()`); at each evaluation [`evaluate_dpo_loss_loader`],
/// whose rewards go into [`TrainHistory::metrics`] and the book's log line
/// `Ep 1 (Step 000000): Train loss 0.694, Val loss 0.694, Train reward margins 0.010, Val reward margins 0.003`;
/// after each epoch, with a tokenizer, the greedy sample of `start_context` from the policy.
#[derive(Clone, Copy)]
pub struct DpoTask<'a> {
    /// The model being trained (its optimizer holds its variables only).
    pub policy: &'a GptModel,
    /// The frozen reference ([`reference_model`]).
    pub reference: &'a GptModel,
    /// DPO's β (the book's 0.1).
    pub beta: f64,
    /// For the sample after each epoch; `None`: no sample.
    pub tokenizer: Option<&'a dyn Tokenizer>,
}

impl<'a> DpoTask<'a> {
    /// The task of training `policy` against `reference` with `beta`, without samples.
    pub fn new(policy: &'a GptModel, reference: &'a GptModel, beta: f64) -> Self {
        DpoTask { policy, reference, beta, tokenizer: None }
    }

    /// The same task, printing a sample after each epoch with `tokenizer`.
    pub fn with_tokenizer(self, tokenizer: &'a dyn Tokenizer) -> Self {
        DpoTask { tokenizer: Some(tokenizer), ..self }
    }
}

/// The value of `name` among an evaluation's metrics (NaN when absent).
fn metric(metrics: &[(String, f64)], name: &str) -> f64 {
    metrics.iter().find(|(n, _)| n == name).map_or(f64::NAN, |(_, v)| *v)
}

impl TrainTask for DpoTask<'_> {
    fn batch_loss(&self, input_batch: &Tensor, target_batch: &Tensor, train: bool) -> Tensor {
        compute_dpo_loss_packed(input_batch, target_batch, self.policy, self.reference, self.beta, train).0
    }

    /// The chosen half of the packed batch (the book's `batch["chosen"].numel()`).
    fn count(&self, input_batch: &Tensor) -> i64 {
        input_batch.numel() as i64 / 2
    }

    fn evaluate<D: Dataset, V: Dataset>(&self, train_loader: &DataLoader<D>, val_loader: &DataLoader<V>, eval_iter: usize) -> Evaluation {
        let res = evaluate_dpo_loss_loader(self.policy, self.reference, train_loader, val_loader, self.beta, eval_iter);
        Evaluation {
            train_loss: res.train.loss,
            val_loss: res.val.loss,
            metrics: vec![
                (TRAIN_CHOSEN_REWARDS.into(), res.train.chosen_reward),
                (TRAIN_REJECTED_REWARDS.into(), res.train.rejected_reward),
                (VAL_CHOSEN_REWARDS.into(), res.val.chosen_reward),
                (VAL_REJECTED_REWARDS.into(), res.val.rejected_reward),
            ],
        }
    }

    fn eval_log_line(&self, epoch: usize, global_step: i64, evaluation: &Evaluation) -> String {
        let m = |name| metric(&evaluation.metrics, name);
        let train_reward_margin = m(TRAIN_CHOSEN_REWARDS) - m(TRAIN_REJECTED_REWARDS);
        let val_reward_margin = m(VAL_CHOSEN_REWARDS) - m(VAL_REJECTED_REWARDS);
        // The book's line of chapter 5, then the margins.
        let line = eval_log_line(epoch, global_step, evaluation.train_loss, evaluation.val_loss);
        format!("{line}, Train reward margins {train_reward_margin:.3}, Val reward margins {val_reward_margin:.3}")
    }

    fn after_epoch<D: Dataset, V: Dataset>(
        &self,
        epoch: usize,
        _train_loader: &DataLoader<D>,
        _val_loader: &DataLoader<V>,
        settings: &TrainSettings,
        history: &mut TrainHistory,
    ) -> Result<Option<TrainEvent>> {
        let Some(tokenizer) = self.tokenizer.filter(|_| settings.sample_tokens > 0) else {
            return Ok(None);
        };
        let (device, context_size) = (self.policy.device(), self.policy.cfg.context_length);
        let text = generate_sample(self.policy, tokenizer, device, context_size, &settings.start_context, settings.sample_tokens)?;
        history.samples.push(text.clone());
        Ok(Some(TrainEvent::Sample { epoch, text }))
    }
}

/// What the book's `train_model_dpo_simple` returns (its `tracking` dict), one value per
/// evaluation, with the step and fractional epoch of each, and the samples after each epoch.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DpoHistory {
    pub train_losses: Vec<f64>,
    pub val_losses: Vec<f64>,
    pub train_chosen_rewards: Vec<f64>,
    pub train_rejected_rewards: Vec<f64>,
    pub val_chosen_rewards: Vec<f64>,
    pub val_rejected_rewards: Vec<f64>,
    /// Chosen tokens trained on when each evaluation ran.
    pub tokens_seen: Vec<i64>,
    /// The global step of each evaluation.
    pub steps: Vec<i64>,
    /// The epoch of each evaluation as a fraction (the plots' x axis).
    pub epochs: Vec<f64>,
    /// The greedy sample after each epoch.
    pub samples: Vec<String>,
}

impl DpoHistory {
    /// The DPO series of a loop's history (its [`TrainHistory::metrics`] written by [`DpoTask`]).
    pub fn from_history(history: &TrainHistory) -> Self {
        let series = |name: &str| history.metrics.get(name).cloned().unwrap_or_default();
        DpoHistory {
            train_losses: history.train_losses.clone(),
            val_losses: history.val_losses.clone(),
            train_chosen_rewards: series(TRAIN_CHOSEN_REWARDS),
            train_rejected_rewards: series(TRAIN_REJECTED_REWARDS),
            val_chosen_rewards: series(VAL_CHOSEN_REWARDS),
            val_rejected_rewards: series(VAL_REJECTED_REWARDS),
            tokens_seen: history.tokens_seen.clone(),
            steps: history.steps.clone(),
            epochs: history.epochs.clone(),
            samples: history.samples.clone(),
        }
    }

    /// The training reward margins (chosen minus rejected reward) at each evaluation.
    pub fn train_reward_margins(&self) -> Vec<f64> {
        self.train_chosen_rewards.iter().zip(&self.train_rejected_rewards).map(|(c, r)| c - r).collect()
    }

    /// The validation reward margins at each evaluation.
    pub fn val_reward_margins(&self) -> Vec<f64> {
        self.val_chosen_rewards.iter().zip(&self.val_rejected_rewards).map(|(c, r)| c - r).collect()
    }

    /// The book's first DPO plot (`plot_losses(..., label="loss")`): training and validation
    /// DPO loss against epochs, tokens seen on the top axis.
    pub fn loss_plot(&self) -> LossPlot {
        LossPlot {
            title: "DPO training and validation loss".into(),
            y_label: "Loss".into(),
            epochs: self.epochs.clone(),
            tokens_seen: self.tokens_seen.clone(),
            series: vec![("Training loss".into(), self.train_losses.clone()), ("Validation loss".into(), self.val_losses.clone())],
        }
    }

    /// The book's second DPO plot (`label="reward margins"`): training and validation reward
    /// margins against epochs, tokens seen on the top axis.
    pub fn reward_margin_plot(&self) -> LossPlot {
        LossPlot {
            title: "DPO reward margins".into(),
            y_label: "Reward margins".into(),
            epochs: self.epochs.clone(),
            tokens_seen: self.tokens_seen.clone(),
            series: vec![
                ("Training reward margins".into(), self.train_reward_margins()),
                ("Validation reward margins".into(), self.val_reward_margins()),
            ],
        }
    }
}

/// The book's `train_model_dpo_simple`: DPO for `num_epochs` through the one training loop
/// ([`train_steps`] with [`DpoTask`] and [`TrainSettings::book`]), evaluating every `eval_freq`
/// steps on `eval_iter` batches, printing the book's lines (losses and reward margins) and a
/// 50-token greedy sample of `start_context` from the policy after each epoch. `optimizer`
/// holds the policy's variables; the reference stays as it is.
///
/// For checkpoints and resuming, call [`train_steps`] with a [`DpoTask`] and a [`TrainState`]
/// yourself, and read the result with [`DpoHistory::from_history`].
#[allow(clippy::too_many_arguments)]
pub fn train_model_dpo_simple<D: Dataset, V: Dataset>(
    policy_model: &GptModel,
    reference_model: &GptModel,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    num_epochs: usize,
    beta: f64,
    eval_freq: i64,
    eval_iter: usize,
    start_context: &str,
    tokenizer: &dyn Tokenizer,
) -> Result<DpoHistory> {
    let task = DpoTask::new(policy_model, reference_model, beta).with_tokenizer(tokenizer);
    let settings = TrainSettings::book(num_epochs, eval_freq, eval_iter, start_context);
    let mut state = TrainState::default();
    train_steps(&task, train_loader, val_loader, optimizer, &settings, &mut state, None, &mut print_book_lines)?;
    Ok(DpoHistory::from_history(&state.history))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(t: &Tensor) -> Vec<Vec<i64>> {
        Vec::<Vec<i64>>::try_from(t).unwrap()
    }

    fn bools(t: &Tensor) -> Vec<Vec<bool>> {
        Vec::<Vec<bool>>::try_from(t).unwrap()
    }

    /// Two examples: prompts of 2 and 1 tokens; chosen/rejected of lengths 5/3 and 2/4.
    fn toy() -> Vec<PreferenceExample> {
        vec![
            PreferenceExample { prompt: vec![1, 2], chosen: vec![1, 2, 10, 11, 12], rejected: vec![1, 2, 20] },
            PreferenceExample { prompt: vec![3], chosen: vec![3, 30], rejected: vec![3, 40, 41, 42] },
        ]
    }

    #[test]
    fn collate_pads_to_the_longest_plus_one_and_masks_prompt_plus_two() {
        let data = toy();
        let batch: Vec<&PreferenceExample> = data.iter().collect();
        let b = custom_collate_fn_dpo(&batch, 50256, None, true, Device::Cpu);
        // Longest sequence: 5 tokens, so every row is padded to 6.
        let p = 50256;
        assert_eq!(ids(&b.chosen), [vec![1, 2, 10, 11, 12, p], vec![3, 30, p, p, p, p]], "chosen");
        assert_eq!(ids(&b.rejected), [vec![1, 2, 20, p, p, p], vec![3, 40, 41, 42, p, p]], "rejected");
        // Prompt + 2 masked (first example: 4 positions; second: 3), padding masked.
        let (t, f) = (true, false);
        assert_eq!(bools(&b.chosen_mask), [vec![f, f, f, f, t, f], vec![f, f, f, f, f, f]], "chosen mask");
        assert_eq!(bools(&b.rejected_mask), [vec![f, f, f, f, f, f], vec![f, f, f, t, f, f]], "rejected mask");
        assert_eq!(Vec::<i64>::try_from(&b.prompt[1]).unwrap(), [3]);
        // Without prompt masking only the padding is hidden.
        let b = custom_collate_fn_dpo(&batch, 50256, None, false, Device::Cpu);
        assert_eq!(bools(&b.chosen_mask), [vec![t, t, t, t, t, f], vec![t, t, f, f, f, f]], "padding only");
        // allowed_max_length cuts ids and masks alike, after padding.
        let b = custom_collate_fn_dpo(&batch, 50256, Some(4), true, Device::Cpu);
        assert_eq!(ids(&b.rejected), [vec![1, 2, 20, p], vec![3, 40, 41, 42]], "cut rejected");
        assert_eq!(bools(&b.rejected_mask), [vec![f, f, f, f], vec![f, f, f, t]], "cut mask");
    }

    #[test]
    fn dataset_batches_are_packed_chosen_then_rejected() {
        let d = PreferenceDataset { encoded_texts: toy(), pad_token_id: 0, allowed_max_length: None, mask_prompt_tokens: true };
        let (inputs, masks) = d.batch(&[1, 0]);
        assert_eq!(inputs.size(), [4, 6]);
        assert_eq!(masks.kind(), Kind::Int64);
        assert_eq!(
            ids(&inputs),
            [vec![3, 30, 0, 0, 0, 0], vec![1, 2, 10, 11, 12, 0], vec![3, 40, 41, 42, 0, 0], vec![1, 2, 20, 0, 0, 0]],
            "rows: chosen of examples 1, 0, then rejected of 1, 0"
        );
        assert_eq!(ids(&masks), [vec![0; 6], vec![0, 0, 0, 0, 1, 0], vec![0, 0, 0, 1, 0, 0], vec![0; 6]]);
        let back = PreferenceBatch::unpack(&inputs, &masks);
        assert_eq!(ids(&back.rejected)[0], [3, 40, 41, 42, 0, 0]);
        assert_eq!(back.chosen_mask.kind(), Kind::Bool);
    }

    #[test]
    fn logprobs_are_masked_means_of_the_shifted_labels() {
        // Vocabulary of 2; logits favour token 1 at every position: log p(1) = -ln(1 + e^-2).
        let logits = Tensor::from_slice(&[0.0f32, 2.0]).view([1, 1, 2]).repeat([1, 3, 1]); // [1, 3, 2]
        let labels = Tensor::from_slice(&[0i64, 1, 0]).view([1, 3]);
        let (lp1, lp0) = (-(1.0f64 + (-2.0f64).exp()).ln(), -(1.0f64 + 2.0f64.exp()).ln());
        let all = compute_logprobs(&logits, &labels, None).double_value(&[0]);
        assert!((all - (lp1 + lp0) / 2.0).abs() < 1e-6, "{all}");
        let mask = Tensor::from_slice(&[true, true, false]).view([1, 3]);
        let masked = compute_logprobs(&logits, &labels, Some(&mask)).double_value(&[0]);
        assert!((masked - lp1).abs() < 1e-6, "only label 1 (position 1) is selected: {masked}");
    }

    #[test]
    fn dpo_loss_is_ln2_at_equal_ratios_and_falls_as_the_margin_grows() {
        let lp = |v: &[f32]| Tensor::from_slice(v);
        let (loss, c, r) = compute_dpo_loss(&lp(&[-1.0, -2.0]), &lp(&[-3.0, -1.0]), &lp(&[-1.0, -2.0]), &lp(&[-3.0, -1.0]), 0.1);
        assert!((loss.double_value(&[]) - std::f64::consts::LN_2).abs() < 1e-7);
        assert_eq!((c.double_value(&[]), r.double_value(&[])), (0.0, 0.0));
        // The policy raises the chosen log-prob by 1 on both examples: logits 1, loss -ln σ(0.1).
        let (loss, c, r) = compute_dpo_loss(&lp(&[0.0, -1.0]), &lp(&[-3.0, -1.0]), &lp(&[-1.0, -2.0]), &lp(&[-3.0, -1.0]), 0.1);
        let want = (1.0 + (-0.1f64).exp()).ln();
        assert!((loss.double_value(&[]) - want).abs() < 1e-6, "{loss}");
        assert_eq!((c.double_value(&[]), r.double_value(&[])), (1.0, 0.0));
    }

    #[test]
    fn split_keeps_chapter_7s_sizes_in_train_val_test_order() {
        let data: Vec<PreferenceEntry> =
            (0..1100).map(|i| PreferenceEntry { instruction: i.to_string(), ..Default::default() }).collect();
        let (train, val, test) = split_preference_data(&data);
        assert_eq!((train.len(), val.len(), test.len()), (935, 55, 110));
        assert_eq!((test[0].instruction.as_str(), val[0].instruction.as_str()), ("935", "1045"), "test comes before validation");
    }

    #[test]
    fn malformed_preference_data_names_the_entry_and_field() {
        let path = Path::new("prefs.json");
        let good = r#"{"instruction": "a", "input": "", "output": "b", "chosen": "c", "rejected": "d"}"#;
        assert_eq!(parse_preference_data(&format!("[{good}]"), path).unwrap()[0].rejected, "d");
        let e = parse_preference_data(&format!(r#"[{good}, {{"instruction": "a", "input": "", "output": "b", "chosen": "c"}}]"#), path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("prefs.json") && e.contains("data[1]") && e.contains("missing field 'rejected'"), "{e}");
        let e = parse_preference_data(r#"[{"instruction": "a", "input": "", "output": "b", "chosen": 1, "rejected": "d"}]"#, path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data[0]") && e.contains("'chosen' is not a string"), "{e}");
    }

    /// A DPO run cut into two calls of the loop ends where the uninterrupted run ends: weights,
    /// history and the reward series (what the `llm` CLI's checkpoints and resuming rely on).
    #[test]
    fn a_dpo_run_resumes_exactly() {
        let _rng = crate::util::device::rng_lock();
        let cfg = GptConfig { vocab_size: 64, context_length: 16, emb_dim: 16, n_heads: 2, n_layers: 1, drop_rate: 0.1, qkv_bias: false };
        let examples: Vec<PreferenceExample> = (0..12)
            .map(|i| PreferenceExample { prompt: vec![1, 2], chosen: vec![1, 2, 10 + i % 5, 11, 12], rejected: vec![1, 2, 30 + i % 7, 31, 32, 33] })
            .collect();
        let dataset = PreferenceDataset { encoded_texts: examples, pad_token_id: 0, allowed_max_length: None, mask_prompt_tokens: true };
        let train = DataLoader::new(dataset.clone(), 2, true, true, 7).unwrap();
        let val = DataLoader::new(dataset, 4, false, false, 7).unwrap();
        let settings = TrainSettings { sample_tokens: 0, ..TrainSettings::book(2, 3, 1, "") };
        let run = |pieces: &[Option<usize>]| {
            crate::util::device::set_seed(5);
            let vs = nn::VarStore::new(Device::Cpu);
            let policy = GptModel::new(&vs.root(), &cfg);
            let (_ref_vs, reference) = reference_model(&vs, &cfg).unwrap();
            let mut optimizer = AdamW::new(&vs, 1e-2, 0.0);
            let task = DpoTask::new(&policy, &reference, 0.1);
            let mut state = TrainState::default();
            for &steps in pieces {
                train_steps(&task, &train, &val, &mut optimizer, &settings, &mut state, steps, &mut |_| {}).unwrap();
            }
            (policy.out_head.weight.copy(), state)
        };
        let (whole_weight, whole) = run(&[None]);
        let (cut_weight, cut) = run(&[Some(4), None]);
        assert_eq!(whole.steps_done, 12, "6 batches of 2 pairs, 2 epochs");
        assert!(whole_weight.equal(&cut_weight), "same weights");
        assert_eq!(whole.history, cut.history, "same history, rewards included");
        let h = DpoHistory::from_history(&whole.history);
        assert_eq!((h.steps.as_slice(), h.val_chosen_rewards.len()), (&[0, 3, 6, 9][..], 4));
        assert_eq!(h.tokens_seen[0], 2 * 7, "the chosen half of the first batch: 2 rows of 6 + 1 tokens");
        assert!(h.train_reward_margins()[3] > h.train_reward_margins()[0], "the training margin rises: {:?}", h.train_reward_margins());
    }

    #[test]
    fn same_weights_give_ln2_and_zero_rewards_on_a_toy_batch() {
        let _rng = crate::util::device::rng_lock();
        crate::util::device::set_seed(123);
        let cfg = GptConfig { vocab_size: 64, context_length: 16, emb_dim: 16, n_heads: 2, n_layers: 1, drop_rate: 0.0, qkv_bias: false };
        let vs = nn::VarStore::new(Device::Cpu);
        let policy = GptModel::new(&vs.root(), &cfg);
        let (reference_vs, reference) = reference_model(&vs, &cfg).unwrap();
        assert!(reference_vs.variables().values().all(|v| !v.requires_grad()), "the reference is frozen");
        assert!(policy.out_head.weight.equal(&reference.out_head.weight), "same weights");
        let data = toy();
        let batch: Vec<&PreferenceExample> = data.iter().collect();
        let batch = custom_collate_fn_dpo(&batch, 0, None, false, Device::Cpu);
        let (loss, c, r) = compute_dpo_loss_batch(&batch, &policy, &reference, 0.1);
        assert!((loss.double_value(&[]) - std::f64::consts::LN_2).abs() < 1e-6, "{loss}");
        assert_eq!((c.double_value(&[]), r.double_value(&[])), (0.0, 0.0), "same weights, same log-probs");
        assert!(loss.requires_grad(), "the policy's loss has gradients");
    }
}
