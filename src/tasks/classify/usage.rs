//! Chapter 6.8, "Using the LLM as a spam classifier": [`classify_review`], and saving and
//! loading a classifier as a checkpoint folder (what `llm finetune-spam` writes and `llm classify`
//! reads).

use std::path::Path;

use tch::nn;
use tch::{Device, Tensor};

use crate::error::{Error, Result};
use crate::nn::config::GptConfig;
use crate::nn::model::{replace_out_head, set_requires_grad_under, GptModel};
use crate::tasks::classify::data::SPAM;
use crate::tasks::classify::loss::{classifier_logits_at, TokenPosition};
use crate::text::tokenizer::Tokenizer;
use crate::training::checkpoint::{read_checkpoint, save_checkpoint, Checkpoint, CheckpointMeta};

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
    classify_review_at(text, model, tokenizer, device, max_length, pad_token_id, TokenPosition::Last)
}

/// [`classify_review`] with the argmax of the token at `position` (a classifier trained on the
/// first token, exercise 6.3, must be asked with the first: see [`ClassifierInfo::position`]).
pub fn classify_review_at<T: Tokenizer + ?Sized>(
    text: &str,
    model: &GptModel,
    tokenizer: &T,
    device: Device,
    max_length: Option<usize>,
    pad_token_id: i64,
    position: TokenPosition,
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
    let logits = classifier_logits_at(model, &input_tensor, false, position); // [1, num_classes]
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
    /// Which token's output feeds the head (exercise 6.3); the last in the book, and in
    /// classifiers saved before this field existed.
    #[serde(default)]
    pub position: TokenPosition,
}

const CLASSIFIER_KEY: &str = "classifier";

/// The metadata of a classifier checkpoint: its config, and `info` under `classifier` in the
/// metadata's `extra` (a fine-tuning run adds its own keys, see `ClassifierRun::save`).
pub(crate) fn classifier_meta(cfg: &GptConfig, info: &ClassifierInfo) -> CheckpointMeta {
    CheckpointMeta { extra: serde_json::json!({ CLASSIFIER_KEY: info }), ..CheckpointMeta::model_only(cfg) }
}

/// Save a classifier (its config, all its parameters and `info`) as a checkpoint folder
/// ([`crate::training::checkpoint`]): `checkpoint.safetensors` and `checkpoint.json`.
pub fn save_classifier(dir: impl AsRef<Path>, vs: &nn::VarStore, cfg: &GptConfig, info: &ClassifierInfo) -> Result<()> {
    save_checkpoint(dir, vs, None, &classifier_meta(cfg, info))
}

/// Load a classifier saved by [`save_classifier`] (or by a fine-tuning run,
/// `ClassifierRun::save`) onto `device`: the GPT model of its config with a `num_classes` head
/// (and its LoRA updates, appendix E), every parameter frozen. Building the model draws random
/// numbers before the saved values replace them (hold [`crate::rng_lock`] if other threads seed
/// and draw). Errors name the file: not a checkpoint, not a classifier, a parameter missing or
/// of another shape.
pub fn load_classifier(dir: impl AsRef<Path>, device: Device) -> Result<(nn::VarStore, GptModel, ClassifierInfo)> {
    classifier_from_checkpoint(&read_checkpoint(dir)?, device)
}

/// [`load_classifier`] from a checkpoint already read.
pub(crate) fn classifier_from_checkpoint(ckpt: &Checkpoint, device: Device) -> Result<(nn::VarStore, GptModel, ClassifierInfo)> {
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
