//! The tasks the pretrained model is fine-tuned for: chapter 6's spam classifier, chapter 7's
//! instruction following (and the judge that scores it), appendix E's LoRA. Imports everything
//! below it: `training`, `nn`, `text`, `viz` and utilities.
//!
//! | module | book |
//! |---|---|
//! | [`classify`] | chapter 6: the SMS spam data, `SpamDataset`, the classification head, accuracy, `train_classifier_simple`, `classify_review` |
//! | [`instruct`], [`judge`] | chapter 7: instruction data, collate, fine-tuning, responses, offline scores; the judge model |
//! | [`dpo`] | chapter 7's bonus: preference data, DPO's collate, loss, reference model and training task |
//! | [`lora`] | appendix E: LoRA on every linear layer of a GPT, the LoRA classifier |

pub mod classify;
pub mod dpo;
pub mod instruct;
pub mod judge;
pub mod lora;
