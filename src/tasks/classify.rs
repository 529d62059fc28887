//! Chapter 6, "Fine-tuning for classification": a GPT model that tells spam from ham.
//!
//! | book section | here |
//! |---|---|
//! | 6.2 preparing the data set | [`read_sms_spam`], [`parse_sms_spam`] (the book's quote-aware `pd.read_csv`), [`create_balanced_dataset`], [`random_split`], [`write_csv`] / [`read_csv`], [`prepare_spam_splits`] |
//! | 6.3 creating data loaders | [`SpamDataset`] (pads with `<\|endoftext|>` to the longest training text, or truncates) |
//! | 6.4-6.5 initialising from pretrained weights; adding a classification head | [`replace_out_head`], [`set_requires_grad_under`], [`prepare_classifier`] |
//! | 6.6 loss and accuracy | [`classifier_logits`] (the last token's logits; [`last_position_output`]), [`calc_loss_batch`], [`calc_loss_loader`], [`calc_accuracy_loader`] |
//! | 6.7 fine-tuning | [`train_classifier_simple`] (the book's loop and log lines), [`train_classifier`] (the same, reporting [`ClassifierEvent`]s), [`ClassifierHistory`] and its plots |
//! | 6.8 using the classifier | [`classify_review`]; [`save_classifier`] / [`load_classifier`] |
//!
//! What differs from the book, and why:
//! - None in the data: [`RandomState`] is NumPy's Mersenne Twister, so with seed 123 the ham
//!   messages kept and the split are the book's own rows (the longest training text has the
//!   book's 120 tokens). The training loader's shuffle is this crate's
//!   ([`crate::text::dataloader::DataLoader`]), not PyTorch's, so batches hold other texts than the
//!   book's.
//! - Evaluation reads each loader in its epoch-0 order (as chapter 5's [`crate::training::train`] does),
//!   so evaluating never changes which batches training sees.
//! - [`classifier_logits`] runs the embeddings and the leading frozen transformer blocks
//!   without recording gradients, and computes the last block, `final_norm` and `out_head` for
//!   the last position only. The logits are the book's `model(input_batch)[:, -1, :]`, with
//!   less work: the backward pass starts at the first trainable block, and most of the last
//!   block's work (its query, attention row, output projection and feed-forward network) is
//!   done for one position instead of all.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::training::checkpoint::{read_checkpoint, save_checkpoint, CheckpointMeta};
use crate::nn::config::GptConfig;
use crate::text::data::{DataStore, SMS_SPAM_COLLECTION};
use crate::text::dataloader::{DataLoader, Dataset};
use crate::util::device::set_seed;
use crate::error::{Error, Result};
use crate::viz::figures::LossPlot;
use crate::nn::model::{GptModel, TransformerBlock};
pub use crate::nn::model::{block_requires_grad, replace_out_head, set_requires_grad_under};
use crate::training::optim::AdamW;
use crate::text::tokenizer::{Tokenizer, ENDOFTEXT_ID};
pub use crate::util::rng::RandomState;
pub use crate::util::tabular::read_delimited;
use crate::util::tabular::csv_field;
pub use crate::nn::model::set_drop_rate;

/// The label of a ham (not spam) message: the book's `df["Label"].map({"ham": 0, "spam": 1})`.
pub const HAM: i64 = 0;
/// The label of a spam message.
pub const SPAM: i64 = 1;
/// The padding token of [`SpamDataset`]: `<|endoftext|>` (50256).
pub const PAD_TOKEN_ID: i64 = ENDOFTEXT_ID as i64;

/// One labelled text: a row of the book's data frame (`Label`, `Text`), with the label as a
/// class index ([`HAM`] 0, [`SPAM`] 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabeledText {
    pub label: i64,
    pub text: String,
}

/// Parse the SMS Spam Collection (`label<TAB>text` per message) as the book's
/// `pd.read_csv(path, sep="\t", header=None, names=["Label", "Text"])` does, with the labels
/// mapped to [`HAM`] and [`SPAM`]. `source` names the file in errors.
///
/// Errors name the line: a record without a tab or with more than one, a label other than
/// `ham` or `spam`, a quote never closed.
pub fn parse_sms_spam(text: &str, source: &Path) -> Result<Vec<LabeledText>> {
    read_delimited(text, '\t', source)?
        .into_iter()
        .map(|(line, mut fields)| {
            let bad = |reason: String| Error::Format { path: source.into(), reason: format!("line {line}: {reason}") };
            if fields.len() != 2 {
                return Err(bad(format!("expected `label<TAB>text` (2 fields), found {} field(s)", fields.len())));
            }
            let text = fields.pop().expect("2 fields");
            let label = match fields[0].as_str() {
                "ham" => HAM,
                "spam" => SPAM,
                other => return Err(bad(format!("unknown label {other:?} (expected \"ham\" or \"spam\")"))),
            };
            Ok(LabeledText { label, text })
        })
        .collect()
}

/// The SMS Spam Collection from `store` (the local data folder, the cache, or a download),
/// parsed as the book parses it: 5572 messages, 4825 ham and 747 spam.
pub fn read_sms_spam(store: &DataStore) -> Result<Vec<LabeledText>> {
    let path = store.fetch(&SMS_SPAM_COLLECTION)?;
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    parse_sms_spam(&text, &path)
}

/// `(ham, spam)`: how many texts have each label.
pub fn label_counts(data: &[LabeledText]) -> (usize, usize) {
    let spam = data.iter().filter(|t| t.label == SPAM).count();
    (data.len() - spam, spam)
}

/// pandas' `df.sample(frac=1, random_state=seed)` order of `n` rows (`sample(k)` takes its
/// first `k`). Seeds above `u32::MAX` (which NumPy rejects) use their low 32 bits.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    RandomState::new(seed as u32).permutation(n)
}

/// Listing 6.2, `create_balanced_dataset`: as many ham messages as there are spam messages,
/// drawn as the book's `df[df["Label"] == "ham"].sample(num_spam, random_state=seed)` draws
/// them, followed by all spam messages: 747 + 747 for the SMS data.
pub fn create_balanced_dataset(data: &[LabeledText], seed: u64) -> Vec<LabeledText> {
    let ham: Vec<&LabeledText> = data.iter().filter(|t| t.label == HAM).collect();
    let spam: Vec<&LabeledText> = data.iter().filter(|t| t.label == SPAM).collect();
    let order = permutation(ham.len(), seed);
    order.iter().take(spam.len()).map(|&i| ham[i]).chain(spam).cloned().collect()
}

/// Listing 6.3, `random_split`: shuffle as `df.sample(frac=1, random_state=seed)` does, then
/// the first `train_frac` of the rows train,
/// the next `validation_frac` validate and the rest test, each size rounded down as the book's
/// `int(len(df) * frac)`: 1045 / 149 / 300 of 1494 with 0.7 and 0.1.
pub fn random_split(
    data: &[LabeledText],
    train_frac: f64,
    validation_frac: f64,
    seed: u64,
) -> (Vec<LabeledText>, Vec<LabeledText>, Vec<LabeledText>) {
    let shuffled: Vec<LabeledText> = permutation(data.len(), seed).into_iter().map(|i| data[i].clone()).collect();
    let train_end = ((data.len() as f64 * train_frac) as usize).min(data.len());
    let validation_end = (train_end + (data.len() as f64 * validation_frac) as usize).min(data.len());
    let test = shuffled[validation_end..].to_vec();
    let validation = shuffled[train_end..validation_end].to_vec();
    let mut train = shuffled;
    train.truncate(train_end);
    (train, validation, test)
}

/// Write `data` as the book's `df.to_csv(path, index=None)` does: a `Label,Text` header, then
/// one `label,text` row per text. Creates the parent folder.
pub fn write_csv(path: impl AsRef<Path>, data: &[LabeledText]) -> Result<()> {
    let path = path.as_ref();
    let mut out = String::from("Label,Text\n");
    for row in data {
        out.push_str(&format!("{},{}\n", row.label, csv_field(&row.text)));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    crate::util::files::write_atomic(path, out.as_bytes())
}

/// Read a CSV file written by [`write_csv`] (or the book's `to_csv`): a `Label,Text` header and
/// `label,text` rows with integer labels. Errors name the file and the line.
pub fn read_csv(path: impl AsRef<Path>) -> Result<Vec<LabeledText>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut records = read_delimited(&text, ',', path)?.into_iter();
    let bad = |line: usize, reason: String| Error::Format { path: path.into(), reason: format!("line {line}: {reason}") };
    match records.next() {
        Some((_, header)) if header == ["Label", "Text"] => {}
        Some((line, header)) => return Err(bad(line, format!("expected the header `Label,Text`, found {header:?}"))),
        None => return Err(bad(1, "empty file: expected the header `Label,Text`".into())),
    }
    records
        .map(|(line, mut fields)| {
            if fields.len() != 2 {
                return Err(bad(line, format!("expected `label,text` (2 fields), found {} field(s)", fields.len())));
            }
            let text = fields.pop().expect("2 fields");
            let label = fields[0].parse().map_err(|_| bad(line, format!("label {:?} is not an integer", fields[0])))?;
            Ok(LabeledText { label, text })
        })
        .collect()
}

/// The three CSV files of section 6.2 in a folder: `train.csv`, `validation.csv`, `test.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamSplits {
    pub train: PathBuf,
    pub validation: PathBuf,
    pub test: PathBuf,
}

impl SpamSplits {
    /// The three file paths in `dir` (the files need not exist).
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        SpamSplits { train: dir.join("train.csv"), validation: dir.join("validation.csv"), test: dir.join("test.csv") }
    }
}

/// Section 6.2 end to end: read the SMS Spam Collection from `store`, balance it, split it
/// 70/10/20 with `seed`, and write `train.csv`, `validation.csv` and `test.csv` into `dir`.
pub fn prepare_spam_splits(store: &DataStore, dir: impl AsRef<Path>, seed: u64) -> Result<SpamSplits> {
    let balanced = create_balanced_dataset(&read_sms_spam(store)?, seed);
    let (train, validation, test) = random_split(&balanced, 0.7, 0.1, seed);
    let splits = SpamSplits::in_dir(dir);
    write_csv(&splits.train, &train)?;
    write_csv(&splits.validation, &validation)?;
    write_csv(&splits.test, &test)?;
    Ok(splits)
}

/// Listing 6.4, `SpamDataset`: the texts encoded with a tokenizer, truncated to `max_length`
/// tokens or, without one, as long as the longest text; shorter ones right-padded with
/// `pad_token_id`. The longest text of the book's training split has 120 GPT-2 tokens.
///
/// # Shapes
/// a batch ([`Dataset::batch`]): inputs `[batch, max_length]` (int64), labels `[batch]` (int64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamDataset {
    /// The padded token ids of each text, all `max_length` long.
    pub encoded_texts: Vec<Vec<i64>>,
    /// The class of each text.
    pub labels: Vec<i64>,
    /// Tokens per text after truncating and padding.
    pub max_length: usize,
    pub pad_token_id: i64,
}

impl SpamDataset {
    /// Encode `data` with `tokenizer`, then truncate and pad as the book does.
    pub fn new<T: Tokenizer + ?Sized>(
        data: &[LabeledText],
        tokenizer: &T,
        max_length: Option<usize>,
        pad_token_id: i64,
    ) -> Result<Self> {
        let mut encoded_texts = data
            .iter()
            .map(|row| Ok(tokenizer.encode_text(&row.text)?.into_iter().map(i64::from).collect::<Vec<i64>>()))
            .collect::<Result<Vec<_>>>()?;
        let max_length = match max_length {
            Some(0) => return Err(Error::InvalidArgument { name: "max_length", reason: "must be at least 1".into() }),
            Some(n) => n,
            None => encoded_texts.iter().map(Vec::len).max().unwrap_or(0),
        };
        for ids in &mut encoded_texts {
            ids.truncate(max_length);
            ids.resize(max_length, pad_token_id);
        }
        Ok(SpamDataset { encoded_texts, labels: data.iter().map(|row| row.label).collect(), max_length, pad_token_id })
    }

    /// [`SpamDataset::new`] over a CSV file written by [`write_csv`] (the book's
    /// `SpamDataset(csv_file, tokenizer, max_length)`).
    pub fn from_csv<T: Tokenizer + ?Sized>(
        csv_file: impl AsRef<Path>,
        tokenizer: &T,
        max_length: Option<usize>,
        pad_token_id: i64,
    ) -> Result<Self> {
        Self::new(&read_csv(csv_file)?, tokenizer, max_length, pad_token_id)
    }

    /// Number of texts.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Text `index` as tensors `(input ids [max_length], label [])` (`dataset[index]`).
    pub fn get(&self, index: usize) -> (Tensor, Tensor) {
        (Tensor::from_slice(&self.encoded_texts[index]), Tensor::from(self.labels[index]))
    }
}

impl Dataset for SpamDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    /// # Shapes
    /// inputs `[indices.len(), max_length]`, labels `[indices.len()]`, both int64.
    fn batch(&self, indices: &[usize]) -> (Tensor, Tensor) {
        let ids: Vec<i64> = indices.iter().flat_map(|&i| self.encoded_texts[i].iter().copied()).collect();
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i]).collect();
        let inputs = Tensor::from_slice(&ids).view([indices.len() as i64, self.max_length as i64]); // [batch, max_length]
        (inputs, Tensor::from_slice(&labels))
    }
}

/// Sections 6.5's three steps in the book's order: freeze every parameter, replace `out_head`
/// with a trainable `num_classes` head ([`replace_out_head`]), and unfreeze the last
/// transformer block and `final_norm`. Returns the number of trainable parameters: one block,
/// `2 emb_dim` for the norm and `(emb_dim + 1) num_classes` for the head.
pub fn prepare_classifier(model: &mut GptModel, vs: &nn::VarStore, num_classes: i64) -> i64 {
    set_requires_grad_under(vs, "", false);
    replace_out_head(model, vs, num_classes);
    let last = model.trf_blocks.len().checked_sub(1).expect("a GPT model with at least one block");
    set_requires_grad_under(vs, &format!("trf_blocks.{last}"), true);
    set_requires_grad_under(vs, "final_norm", true);
    crate::nn::model::num_trainable_parameters(vs)
}

/// The logits of the last token (section 6.6, the book's `model(input_batch)[:, -1, :]`).
///
/// The embeddings and the transformer blocks before the first one with a trainable parameter
/// run without recording gradients (under `no_grad`, where the layers also work in place); the
/// last block computes its last position only ([`last_position_output`]), and `final_norm` and
/// `out_head` see that position only. Everything after the last block's keys and values works
/// per position, so the logits are those of the full forward pass's last row.
///
/// # Shapes
/// `in_idx: [batch, num_tokens]` (int64, `num_tokens <= context_length`) → `[batch, num_classes]`
pub fn classifier_logits(model: &GptModel, in_idx: &Tensor, train: bool) -> Tensor {
    let (_batch, num_tokens) = in_idx.size2().expect("classifier input must be [batch, num_tokens] token ids");
    assert!(
        num_tokens <= model.cfg.context_length,
        "classifier: {num_tokens} tokens exceed the context length {}",
        model.cfg.context_length
    );
    let embeddings_frozen = !model.tok_emb.weight.requires_grad() && !model.pos_emb.weight.requires_grad();
    let num_blocks = model.trf_blocks.len();
    // The blocks that run whole: all but the last, which computes its last position only.
    let whole = num_blocks.saturating_sub(1);
    // The leading frozen ones (none when the embeddings train).
    let frozen = if embeddings_frozen { model.trf_blocks.iter().position(block_requires_grad).unwrap_or(num_blocks) } else { 0 };
    let mut x = {
        let _no_grad = embeddings_frozen.then(tch::no_grad_guard);
        let mut x = model.embed(in_idx, train); // [batch, num_tokens, emb_dim]
        for block in &model.trf_blocks[..frozen.min(whole)] {
            x = block.forward_t(&x, train);
        }
        x
    };
    for block in &model.trf_blocks[frozen.min(whole)..whole] {
        x = block.forward_t(&x, train);
    }
    let last = match model.trf_blocks.last() {
        None => x.select(1, -1),
        Some(last_block) => {
            let _no_grad = (frozen == num_blocks).then(tch::no_grad_guard);
            last_position_output(last_block, &x, train)
        }
    }; // [batch, emb_dim]
    model.out_head.forward(&model.final_norm.forward(&last)) // [batch, num_classes]
}

/// What `block.forward_t(x, train)` computes at the last position, computing only that: keys
/// and values need every position, but the query, the attention of one row, `out_proj`, the
/// second norm and the feed-forward network need only the last one. The last row of the causal
/// mask hides nothing, so no mask is applied. (With dropout on, the masks are drawn for these
/// shapes, so they differ from a full pass's; the book's chapter 6 model has no dropout.)
///
/// # Shapes
/// `x: [batch, num_tokens, emb_dim]` → `[batch, emb_dim]`
pub fn last_position_output(block: &TransformerBlock, x: &Tensor, train: bool) -> Tensor {
    let att = &block.att;
    let (b, num_tokens, _emb_dim) = x.size3().expect("block input must be [batch, num_tokens, emb_dim]");
    let heads = |t: Tensor, n: i64| {
        t.view([b, n, att.num_heads, att.head_dim]) // [b, n, num_heads, head_dim]
            .transpose(1, 2) // [b, num_heads, n, head_dim]
    };
    let h = block.norm1.forward(x); // [b, num_tokens, emb_dim]
    let h_last = h.narrow(1, num_tokens - 1, 1); // [b, 1, emb_dim]
    let keys = heads(att.w_key.forward(&h), num_tokens); // [b, num_heads, num_tokens, head_dim]
    let values = heads(att.w_value.forward(&h), num_tokens); // [b, num_heads, num_tokens, head_dim]
    let queries = heads(att.w_query.forward(&h_last), 1); // [b, num_heads, 1, head_dim]
    let mut attn_scores = queries.matmul(&keys.transpose(-2, -1)); // [b, num_heads, 1, num_tokens]
    attn_scores /= (att.head_dim as f64).sqrt();
    let attn_weights = att.dropout.forward_t(&attn_scores.softmax(-1, None::<Kind>), train);
    let context_vec = attn_weights
        .matmul(&values) // [b, num_heads, 1, head_dim]
        .transpose(1, 2) // [b, 1, num_heads, head_dim]
        .contiguous()
        .view([b, 1, att.d_out]); // [b, 1, d_out]
    let x_last = x.narrow(1, num_tokens - 1, 1); // [b, 1, emb_dim]
    let x_last = x_last + block.drop_shortcut.forward_t(&att.out_proj.forward(&context_vec), train);
    let ff = block.ff.forward(&block.norm2.forward(&x_last)); // [b, 1, emb_dim]
    (x_last + block.drop_shortcut.forward_t(&ff, train)).squeeze_dim(1) // [b, emb_dim]
}

/// Listing 6.8's `calc_loss_batch`: the cross-entropy of the last token's logits against the
/// class labels.
///
/// # Shapes
/// `input_batch: [batch, num_tokens]`, `target_batch: [batch]` (int64) → a scalar.
pub fn calc_loss_batch(input_batch: &Tensor, target_batch: &Tensor, model: &GptModel, device: Device, train: bool) -> Tensor {
    let logits = classifier_logits(model, &input_batch.to_device(device), train); // [batch, num_classes]
    logits.cross_entropy_for_logits(&target_batch.to_device(device))
}

/// Listing 6.8's `calc_loss_loader`: the mean batch loss over the first `num_batches` batches
/// (all when `None`) in the loader's epoch-0 order, in evaluation mode without gradients; NaN
/// for an empty loader.
pub fn calc_loss_loader<D: Dataset>(loader: &DataLoader<D>, model: &GptModel, device: Device, num_batches: Option<usize>) -> f64 {
    if loader.is_empty() {
        return f64::NAN;
    }
    let n = num_batches.map_or(loader.len(), |n| n.min(loader.len()));
    let _no_grad = tch::no_grad_guard();
    let total: f64 = loader
        .iter_epoch(0)
        .take(n)
        .map(|(input, target)| calc_loss_batch(&input, &target, model, device, false).double_value(&[]))
        .sum();
    total / n as f64
}

/// Listing 6.7, `calc_accuracy_loader`: the fraction of examples whose last-token argmax is
/// their label, over the first `num_batches` batches (all when `None`) in the loader's epoch-0
/// order, in evaluation mode without gradients; NaN for an empty loader.
pub fn calc_accuracy_loader<D: Dataset>(loader: &DataLoader<D>, model: &GptModel, device: Device, num_batches: Option<usize>) -> f64 {
    let n = num_batches.map_or(loader.len(), |n| n.min(loader.len()));
    let _no_grad = tch::no_grad_guard();
    let (mut correct, mut examples) = (0i64, 0i64);
    for (input, target) in loader.iter_epoch(0).take(n) {
        let predicted = classifier_logits(model, &input.to_device(device), false).argmax(-1, false); // [batch]
        examples += predicted.size()[0];
        correct += predicted.eq_tensor(&target.to_device(device)).sum(Kind::Int64).int64_value(&[]);
    }
    if examples == 0 {
        f64::NAN
    } else {
        correct as f64 / examples as f64
    }
}

/// Listing 6.10's `evaluate_model`: `(train loss, validation loss)` over `eval_iter` batches each.
pub fn evaluate_model<D: Dataset, V: Dataset>(
    model: &GptModel,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    device: Device,
    eval_iter: usize,
) -> (f64, f64) {
    (calc_loss_loader(train_loader, model, device, Some(eval_iter)), calc_loss_loader(val_loader, model, device, Some(eval_iter)))
}

/// The settings of the fine-tuning loop: the book's `num_epochs=5, eval_freq=50, eval_iter=5`
/// ([`ClassifierSettings::book`]), and the seed of the per-step dropout randomness.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassifierSettings {
    pub num_epochs: usize,
    pub eval_freq: i64,
    pub eval_iter: usize,
    /// Before step `k`, the global generator is seeded with `seed + k` (dropout), as in
    /// [`crate::training::train::train_steps`].
    pub seed: u64,
}

impl ClassifierSettings {
    /// The book's settings: 5 epochs, evaluation every 50 steps on 5 batches, seed 123.
    pub fn book() -> Self {
        ClassifierSettings { num_epochs: 5, eval_freq: 50, eval_iter: 5, seed: 123 }
    }
}

/// What a fine-tuning run recorded: the book's `train_losses, val_losses, train_accs, val_accs,
/// examples_seen`, with the step, epoch and examples seen of each loss evaluation.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassifierHistory {
    pub train_losses: Vec<f64>,
    pub val_losses: Vec<f64>,
    /// Training accuracy after each epoch (over `eval_iter` batches).
    pub train_accs: Vec<f64>,
    /// Validation accuracy after each epoch (over `eval_iter` batches).
    pub val_accs: Vec<f64>,
    /// The 0-based global step of each loss evaluation.
    pub steps: Vec<i64>,
    /// The epoch of each loss evaluation as a fraction (1.5 = half-way through the second).
    pub epochs: Vec<f64>,
    /// Examples seen at each loss evaluation.
    pub eval_examples_seen: Vec<i64>,
    /// Examples trained on in all (the book's `examples_seen`).
    pub examples_seen: i64,
    /// Steps taken.
    pub steps_done: i64,
    /// Wall-clock seconds of each finished epoch (training and its evaluations).
    pub epoch_seconds: Vec<f64>,
}

impl ClassifierHistory {
    /// Figure 6.16: training and validation loss against epochs.
    pub fn loss_plot(&self) -> LossPlot {
        LossPlot {
            title: "Training and validation loss".into(),
            y_label: "Loss".into(),
            epochs: self.epochs.clone(),
            tokens_seen: Vec::new(),
            series: vec![("Training loss".into(), self.train_losses.clone()), ("Validation loss".into(), self.val_losses.clone())],
        }
    }

    /// Figure 6.17: training and validation accuracy after each epoch.
    pub fn accuracy_plot(&self) -> LossPlot {
        LossPlot {
            title: "Training and validation accuracy".into(),
            y_label: "Accuracy".into(),
            epochs: (1..=self.train_accs.len()).map(|e| e as f64).collect(),
            tokens_seen: Vec::new(),
            series: vec![
                ("Training accuracy".into(), self.train_accs.clone()),
                ("Validation accuracy".into(), self.val_accs.clone()),
            ],
        }
    }
}

/// Something that happened during fine-tuning, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassifierEvent {
    /// One optimisation step: its 0-based global step, loss, and examples per second so far.
    Step { epoch: usize, global_step: i64, loss: f64, examples_per_s: f64 },
    /// A loss evaluation, with the book's line `Ep 1 (Step 000000): Train loss 2.153, Val loss 2.392`.
    Eval { epoch: usize, global_step: i64, train_loss: f64, val_loss: f64, line: String },
    /// The accuracies after an epoch, with the book's line
    /// `Training accuracy: 70.00% | Validation accuracy: 72.50%`.
    Accuracy { epoch: usize, train_accuracy: f64, val_accuracy: f64, line: String },
}

/// Listing 6.10's loop: for each epoch and batch, zero the gradients, compute the loss on the
/// last token, back-propagate, step the optimizer, count the examples; every `eval_freq` steps
/// evaluate the losses on `eval_iter` batches; after each epoch, the accuracies on `eval_iter`
/// batches. Stops early after `max_steps` steps when given (a quick run). `on_event` sees
/// every step, evaluation and accuracy.
#[allow(clippy::too_many_arguments)]
pub fn train_classifier<D: Dataset, V: Dataset>(
    model: &GptModel,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    device: Device,
    settings: &ClassifierSettings,
    max_steps: Option<usize>,
    on_event: &mut dyn FnMut(&ClassifierEvent),
) -> ClassifierHistory {
    let mut h = ClassifierHistory::default();
    let started = Instant::now();
    let batches_per_epoch = train_loader.len().max(1);
    let max_steps = max_steps.map_or(i64::MAX, |n| n as i64);
    for epoch in 0..settings.num_epochs {
        let epoch_started = Instant::now();
        for (batch_in_epoch, (input_batch, target_batch)) in train_loader.iter_epoch(epoch as u64).enumerate() {
            if h.steps_done >= max_steps {
                break;
            }
            let global_step = h.steps_done;
            set_seed(settings.seed.wrapping_add(global_step as u64));
            let loss = calc_loss_batch(&input_batch, &target_batch, model, device, true);
            // zero_grad(); loss.backward(); step() (see `AdamW::backward`).
            optimizer.backward_step(&loss);
            h.examples_seen += input_batch.size()[0];
            h.steps_done += 1;
            let examples_per_s = h.examples_seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
            on_event(&ClassifierEvent::Step { epoch, global_step, loss: loss.double_value(&[]), examples_per_s });
            if global_step % settings.eval_freq.max(1) == 0 {
                let (train_loss, val_loss) = evaluate_model(model, train_loader, val_loader, device, settings.eval_iter);
                h.train_losses.push(train_loss);
                h.val_losses.push(val_loss);
                h.steps.push(global_step);
                h.epochs.push(epoch as f64 + (batch_in_epoch + 1) as f64 / batches_per_epoch as f64);
                h.eval_examples_seen.push(h.examples_seen);
                let line = crate::training::train::eval_log_line(epoch, global_step, train_loss, val_loss);
                on_event(&ClassifierEvent::Eval { epoch, global_step, train_loss, val_loss, line });
            }
        }
        let train_accuracy = calc_accuracy_loader(train_loader, model, device, Some(settings.eval_iter));
        let val_accuracy = calc_accuracy_loader(val_loader, model, device, Some(settings.eval_iter));
        h.train_accs.push(train_accuracy);
        h.val_accs.push(val_accuracy);
        h.epoch_seconds.push(epoch_started.elapsed().as_secs_f64());
        let line = format!("Training accuracy: {:.2}% | Validation accuracy: {:.2}%", train_accuracy * 100.0, val_accuracy * 100.0);
        on_event(&ClassifierEvent::Accuracy { epoch, train_accuracy, val_accuracy, line });
        if h.steps_done >= max_steps {
            break;
        }
    }
    h
}

/// Listing 6.10, `train_classifier_simple`: [`train_classifier`] with the book's printed lines
/// (`Ep 1 (Step 000050): Train loss 0.617, Val loss 0.637`, then the accuracies per epoch).
#[allow(clippy::too_many_arguments)]
pub fn train_classifier_simple<D: Dataset, V: Dataset>(
    model: &GptModel,
    train_loader: &DataLoader<D>,
    val_loader: &DataLoader<V>,
    optimizer: &mut AdamW,
    device: Device,
    num_epochs: usize,
    eval_freq: i64,
    eval_iter: usize,
) -> ClassifierHistory {
    let settings = ClassifierSettings { num_epochs, eval_freq, eval_iter, ..ClassifierSettings::book() };
    train_classifier(model, train_loader, val_loader, optimizer, device, &settings, None, &mut |event| match event {
        ClassifierEvent::Eval { line, .. } | ClassifierEvent::Accuracy { line, .. } => println!("{line}"),
        ClassifierEvent::Step { .. } => {}
    })
}

/// Listing 6.12, `classify_review`: encode `text`, truncate it to `max_length` (and the model's
/// context length), pad it with `pad_token_id` to `max_length` as the training texts were, and
/// return `"spam"` when the last token's argmax is [`SPAM`], else `"not spam"`. Without
/// `max_length` the text is only cut to the context length.
pub fn classify_review<T: Tokenizer + ?Sized>(
    text: &str,
    model: &GptModel,
    tokenizer: &T,
    device: Device,
    max_length: Option<usize>,
    pad_token_id: i64,
) -> Result<&'static str> {
    let supported_context_length = model.cfg.context_length as usize;
    let mut input_ids: Vec<i64> = tokenizer.encode_text(text)?.into_iter().map(i64::from).collect();
    let length = max_length.unwrap_or(input_ids.len()).min(supported_context_length);
    if length == 0 {
        return Err(Error::InvalidArgument { name: "text", reason: "no tokens to classify (empty text, or max_length 0)".into() });
    }
    input_ids.truncate(length);
    input_ids.resize(length, pad_token_id);
    let input_tensor = Tensor::from_slice(&input_ids).unsqueeze(0).to_device(device); // [1, num_tokens]
    let _no_grad = tch::no_grad_guard();
    let logits = classifier_logits(model, &input_tensor, false); // [1, num_classes]
    let predicted_label = logits.argmax(-1, false).int64_value(&[0]);
    Ok(if predicted_label == SPAM { "spam" } else { "not spam" })
}

/// What a saved classifier needs besides its weights: the number of classes, and the length
/// and padding its inputs were trained with (the `max_length` of [`classify_review`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassifierInfo {
    pub num_classes: i64,
    /// The training texts' padded length (`train_dataset.max_length`).
    pub max_length: usize,
    pub pad_token_id: i64,
    /// Appendix E: `(rank, alpha)` of the LoRA updates on every linear layer, when it has them.
    #[serde(default)]
    pub lora: Option<(i64, f64)>,
}

const CLASSIFIER_KEY: &str = "classifier";

/// Save a classifier (its config, all its parameters and `info`) as a checkpoint folder
/// ([`crate::training::checkpoint`]): `checkpoint.safetensors` and `checkpoint.json`.
pub fn save_classifier(dir: impl AsRef<Path>, vs: &nn::VarStore, cfg: &GptConfig, info: &ClassifierInfo) -> Result<()> {
    let meta = CheckpointMeta {
        extra: serde_json::json!({ CLASSIFIER_KEY: info }),
        ..CheckpointMeta::model_only(cfg)
    };
    save_checkpoint(dir, vs, None, &meta)
}

/// Load a classifier saved by [`save_classifier`] onto `device`: the GPT model of its config
/// with a `num_classes` head (and its LoRA updates, appendix E), every parameter frozen. Building
/// the model draws random numbers before the saved values replace them (hold
/// [`crate::rng_lock`] if other threads seed and draw). Errors name the file: not a
/// checkpoint, not a classifier, a parameter missing or of another shape.
pub fn load_classifier(dir: impl AsRef<Path>, device: Device) -> Result<(nn::VarStore, GptModel, ClassifierInfo)> {
    let ckpt = read_checkpoint(dir)?;
    let info: ClassifierInfo = match ckpt.meta.extra.get(CLASSIFIER_KEY) {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| Error::Format { path: ckpt.path.clone(), reason: format!("classifier metadata: {e}") })?,
        None => {
            return Err(Error::Format {
                path: ckpt.path.clone(),
                reason: "no classifier metadata: not a model saved by `llm finetune-spam` / save_classifier".into(),
            })
        }
    };
    let mut vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &ckpt.meta.config);
    replace_out_head(&mut model, &vs, info.num_classes);
    if let Some((rank, alpha)) = info.lora {
        crate::tasks::lora::replace_linear_with_lora(&mut model, &vs, rank, alpha);
    }
    ckpt.load_model(&vs)?;
    set_requires_grad_under(&vs, "", false);
    vs.set_device(device);
    Ok((vs, model, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<LabeledText>> {
        parse_sms_spam(text, Path::new("sms.tsv"))
    }

    #[test]
    fn an_unbalanced_quote_merges_lines_as_pandas_does() {
        let rows = parse("ham\t\"Wait\" she said\nspam\t\"Free entry\nham\tok\" now\nham\tlast\n").unwrap();
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        // A closed quote at the start keeps its text; a quote never closed on its line runs on
        // into the next one up to the quote that closes it.
        assert_eq!(texts, ["Wait she said", "Free entry\nham\tok now", "last"]);
        assert_eq!(rows.iter().map(|r| r.label).collect::<Vec<_>>(), [HAM, SPAM, HAM]);
        let rows = parse("ham\t\"a \"\"b\"\" c\"\nham\tx \"y\"\n\nspam\tz").unwrap();
        assert_eq!(rows[0].text, "a \"b\" c", "doubled quotes inside quotes");
        assert_eq!(rows[1].text, "x \"y\"", "a quote inside an unquoted field is text");
        assert_eq!((rows.len(), rows[2].label), (3, SPAM), "blank line skipped; no final newline");
    }

    #[test]
    fn malformed_lines_are_errors_naming_the_line() {
        let err = parse("ham\tok\nspam no tab here\n").unwrap_err().to_string();
        assert!(err.contains("sms.tsv") && err.contains("line 2") && err.contains("1 field"), "{err}");
        let err = parse("ham\tok\n\nhem\ttypo\n").unwrap_err().to_string();
        assert!(err.contains("line 3") && err.contains("\"hem\""), "{err}");
        let err = parse("ham\tok\nham\t\"never closed\nspam\tx\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("never closed"), "{err}");
        let err = parse("ham\ta\tb\n").unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("3 field"), "{err}");
    }

    #[test]
    fn csv_round_trip_quotes_like_python() {
        let dir = std::env::temp_dir().join(format!("llm-fs-csv-{}", std::process::id()));
        let path = dir.join("x.csv");
        let rows = vec![
            LabeledText { label: 0, text: "plain".into() },
            LabeledText { label: 1, text: "a, \"b\"\nc".into() },
        ];
        write_csv(&path, &rows).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "Label,Text\n0,plain\n1,\"a, \"\"b\"\"\nc\"\n");
        assert_eq!(read_csv(&path).unwrap(), rows);
        std::fs::write(&path, "Label,Text\n0,ok\nx,bad\n").unwrap();
        let err = read_csv(&path).unwrap_err().to_string();
        assert!(err.contains("x.csv") && err.contains("line 3") && err.contains("\"x\""), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn balancing_and_splitting_are_deterministic_per_seed() {
        let data: Vec<LabeledText> =
            (0..100).map(|i| LabeledText { label: i64::from(i % 10 == 0), text: format!("m{i}") }).collect();
        let balanced = create_balanced_dataset(&data, 1);
        assert_eq!(label_counts(&balanced), (10, 10));
        assert_eq!(balanced, create_balanced_dataset(&data, 1), "same seed, same rows");
        assert_ne!(balanced, create_balanced_dataset(&data, 2), "another seed, other ham rows");
        let (train, val, test) = random_split(&balanced, 0.7, 0.1, 1);
        assert_eq!((train.len(), val.len(), test.len()), (14, 2, 4));
        let mut all: Vec<String> = train.iter().chain(&val).chain(&test).map(|r| r.text.clone()).collect();
        all.sort();
        let mut want: Vec<String> = balanced.iter().map(|r| r.text.clone()).collect();
        want.sort();
        assert_eq!(all, want, "the split is a partition");
    }
}
