//! Chapter 6, "Fine-tuning for classification": a GPT model that tells spam from ham, one file
//! per section of the book.
//!
//! | book section | file | here |
//! |---|---|---|
//! | 6.2 preparing the data set | [`data`] | [`read_sms_spam`], [`parse_sms_spam`] (the book's quote-aware `pd.read_csv`, [`read_delimited`]), [`create_balanced_dataset`] and [`random_split`] (NumPy's [`RandomState`]: the book's rows), [`write_csv`] / [`read_csv`], [`prepare_spam_splits`] |
//! | 6.3 creating data loaders | [`dataset`] | [`SpamDataset`] (pads with `<\|endoftext|>` to the longest training text, or truncates) |
//! | 6.4-6.5 initialising from pretrained weights; adding a classification head | [`head`] | [`prepare_classifier`] ([`prepare_classifier_with`] and [`Trainable`]: exercise 6.2); [`replace_out_head`], [`set_requires_grad_under`] |
//! | 6.6 loss and accuracy | [`loss`] | [`classifier_logits`] (the last token's logits; [`last_position_output`]; [`TokenPosition`] and the `_at` variants: exercise 6.3's first token), [`calc_loss_batch`], [`calc_loss_loader`], [`calc_accuracy_loader`] |
//! | 6.7 fine-tuning | [`finetune`] | [`train_classifier_simple`] (the book's loop and log lines), [`train_classifier`] (the same, reporting [`ClassifierEvent`]s): chapter 5's training loop with [`ClassifierTask`]; [`ClassifierRun`], a run that saves itself and resumes exactly (with appendix D's warmup, cosine decay and clipping when its settings ask) |
//! | 6.8 using the classifier | [`usage`] | [`classify_review`]; [`save_classifier`] / [`load_classifier`] |
//!
//! What differs from the book, and why, is said in each file: nothing in the data (6.2); the
//! loader's shuffle (6.3); a last-token forward pass that does less work for the same logits (6.6);
//! chapter 5's loop, re-seeded at every step so that a run resumes exactly (6.7).

pub mod data;
pub mod dataset;
pub mod finetune;
pub mod head;
pub mod loss;
pub mod usage;

pub use crate::util::rng::RandomState;
pub use crate::util::tabular::read_delimited;
pub use data::{
    create_balanced_dataset, label_counts, parse_sms_spam, prepare_spam_splits, random_split, read_csv, read_sms_spam,
    write_csv, LabeledText, SpamSplits, HAM, SPAM,
};
pub use dataset::{SpamDataset, PAD_TOKEN_ID};
pub use finetune::{
    train_classifier, train_classifier_simple, ClassifierEvent, ClassifierHistory, ClassifierRun, ClassifierSettings, ClassifierTask,
};
pub use head::{
    block_requires_grad, prepare_classifier, prepare_classifier_with, replace_out_head, set_drop_rate, set_requires_grad_under, Trainable,
};
pub use loss::{
    calc_accuracy_loader, calc_accuracy_loader_at, calc_loss_batch, calc_loss_batch_at, calc_loss_loader, classifier_logits,
    classifier_logits_at, evaluate_model, last_position_output, TokenPosition,
};
pub use usage::{classify_review, classify_review_at, load_classifier, save_classifier, ClassifierInfo};
