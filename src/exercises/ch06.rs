//! Checks for chapter 6's exercises ("Fine-tuning for classification"): the book's 6.1-6.3 and
//! the project's 6.4 (a batch's accuracy by hand) and 6.5 (how many parameters the classifier
//! trains). The notebook is `notebooks/exercises/source/ch06/ch06-exercises.ipynb`.
//!
//! The checks use small GPTs with random weights: what they test (padding, which parameters
//! train, what the first position sees, counting) does not depend on the pretrained weights.

use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

use super::{check, fail, pass};
use crate::error::Result;
use crate::nn::config::GptConfig;
use crate::nn::model::{num_parameters, num_trainable_parameters, GptModel};
use crate::tasks::classify::{calc_loss_batch, create_balanced_dataset, prepare_classifier, random_split, read_sms_spam, LabeledText, SpamDataset, PAD_TOKEN_ID};
use crate::text::data::DataStore;
use crate::text::tokenizer::BpeTokenizer;
use crate::training::optim::AdamW;
use crate::util::device::set_seed;

/// The book's training split of the balanced SMS data (1045 texts).
fn spam_train_split() -> Vec<LabeledText> {
    let data = read_sms_spam(&DataStore::from_env()).unwrap_or_else(|e| panic!("{e}"));
    random_split(&create_balanced_dataset(&data, 123), 0.7, 0.1, 123).0
}

/// Exercise 6.1: `pad_to_context(texts, tokenizer, context_length)` is the `SpamDataset` of
/// `texts` with every text padded (or cut) to `context_length` tokens instead of the longest
/// text's length. Compared on the book's training split at context lengths 64 (shorter than the
/// longest text, 120 tokens), 128 and 1024 (GPT-2's).
pub fn check_6_1(pad_to_context: impl Fn(&[LabeledText], &BpeTokenizer, usize) -> Result<SpamDataset>, tokenizer: &BpeTokenizer) {
    let train = spam_train_split();
    let longest = SpamDataset::new(&train, tokenizer, None, PAD_TOKEN_ID).unwrap_or_else(|e| panic!("{e}")).max_length;
    for context_length in [64, 128, 1024] {
        let want = SpamDataset::new(&train, tokenizer, Some(context_length), PAD_TOKEN_ID).unwrap_or_else(|e| panic!("{e}"));
        let got = match pad_to_context(&train, tokenizer, context_length) {
            Ok(dataset) => dataset,
            Err(e) => fail("6.1", format!("your function returned an error at context length {context_length}: {e}")),
        };
        if got == want {
            continue;
        }
        let hint = if got.max_length == longest {
            format!("your texts are padded to the longest text ({longest} tokens); pad them to the context length instead")
        } else if got.encoded_texts.iter().any(|ids| ids.len() > context_length) {
            "a text longer than the context must be cut to context_length tokens (the model reads no more)".to_string()
        } else if got.labels != want.labels {
            "keep each text's label, in the order of the texts".to_string()
        } else {
            "encode each text with the tokenizer, keep its first context_length ids, and pad with PAD_TOKEN_ID \
             (<|endoftext|>, 50256) to context_length; SpamDataset::new does all of this with max_length Some(n)"
                .to_string()
        };
        fail("6.1", format!("at context length {context_length}: {hint}."));
    }
    pass(
        "6.1",
        format!(
            "every text now has the context's length (the longest has {longest} tokens). The book pads to 1024: its test \
             accuracy falls from 95.67% to 78.33%, since the last token, which classifies, sits behind hundreds of pads"
        ),
    );
}

/// A small classifier: a GPT with GPT-2's vocabulary and a `num_classes` head, prepared as
/// chapter 6 prepares GPT-2 (only the last block, `final_norm` and the head train).
fn small_classifier(cfg: &GptConfig, num_classes: i64, seed: u64) -> (VarStore, GptModel, i64) {
    set_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), cfg);
    let trainable = prepare_classifier(&mut model, &vs, num_classes);
    (vs, model, trainable)
}

fn small_config() -> GptConfig {
    GptConfig { context_length: 32, emb_dim: 32, n_heads: 2, n_layers: 2, drop_rate: 0.0, ..GptConfig::gpt2_124m() }
}

/// Exercise 6.2: `train_everything(model, vs)`, called after `prepare_classifier`, makes the
/// whole model trainable. Checked by counting the trainable parameters and taking one AdamW
/// step, after which every parameter must have moved.
pub fn check_6_2(train_everything: impl Fn(&mut GptModel, &VarStore)) {
    let (vs, mut model, _) = small_classifier(&small_config(), 2, 123);
    train_everything(&mut model, &vs);
    let (trainable, total) = (num_trainable_parameters(&vs), num_parameters(&vs));
    if trainable != total {
        fail(
            "6.2",
            format!(
                "{trainable} of {total} parameters train. Unfreeze every variable of the var store \
                 (set_requires_grad_under(&vs, \"\", true)), keeping the 2-class head."
            ),
        );
    }
    if model.out_head.weight.size()[0] != 2 {
        fail("6.2", "keep the 2-class head prepare_classifier added: only change which parameters train.");
    }
    set_seed(1);
    let input = Tensor::randint(50257, [4, 16], (Kind::Int64, Device::Cpu));
    let before: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
    let mut optimizer = AdamW::new(&vs, 5e-5, 0.1);
    optimizer.backward_step(&calc_loss_batch(&input, &Tensor::from_slice(&[0i64, 1, 0, 1]), &model, Device::Cpu, true));
    let after = vs.variables();
    let stuck: Vec<&String> = before.iter().filter(|(name, old)| after[name].equal(old)).map(|(name, _)| name).collect();
    check(
        "6.2",
        stuck.is_empty(),
        format!(
            "all {total} parameters train and move in one step (GPT-2 small: 124,441,346; the book's test accuracy rises \
             slightly, 95.67% -> 96.67%, at a much higher cost per step)"
        ),
        format!("these parameters did not move in one training step: {stuck:?}"),
    );
}

/// Exercise 6.3: `first_token_logits(model, input)` is the classifier's output at the *first*
/// position (`[batch, num_classes]`), and `first_token_reads_the_text` says whether that output
/// depends on the tokens after the first. Compared with the full forward pass's first row.
pub fn check_6_3(first_token_logits: impl Fn(&GptModel, &Tensor) -> Tensor, first_token_reads_the_text: bool) {
    let (_vs, model, _) = small_classifier(&small_config(), 2, 123);
    // "I'm a new message." and "I like bananas too", padded: both start with "I" (40).
    let a = Tensor::from_slice2(&[[40i64, 1101, 257, 8464, 13, 50256]]);
    let b = Tensor::from_slice2(&[[40i64, 588, 5215, 1165, 50256, 50256]]);
    let batch = Tensor::cat(&[&a, &b], 0); // [2, 6]
    let full = tch::no_grad(|| model.forward_t(&batch, false)); // [2, 6, 2]
    let got = tch::no_grad(|| first_token_logits(&model, &batch));
    if got.size() != [2, 2] || !got.allclose(&full.select(1, 0), 1e-5, 1e-6, false) {
        let hint = if got.size() == [2, 2] && got.allclose(&full.select(1, -1), 1e-5, 1e-6, false) {
            "that is the last position's output; take the first (index 0 of the token axis)".to_string()
        } else {
            format!("expected the first position's logits, [batch, num_classes] = [2, 2], got {:?}: run the model and select position 0 of axis 1", got.size())
        };
        fail("6.3", hint);
    }
    if first_token_reads_the_text {
        fail(
            "6.3",
            "the logits are right, but does the first position see the rest of the text? Under the causal mask, position 0 \
             attends to position 0 only: look at the two rows of your output, for two texts that both start with \"I\".",
        );
    }
    let first_diff = f64::try_from((got.get(0) - got.get(1)).abs().max()).expect("a scalar");
    let last_diff = f64::try_from((full.get(0).select(0, -1) - full.get(1).select(0, -1)).abs().max()).expect("a scalar");
    pass(
        "6.3",
        format!(
            "two texts starting with \"I\": their first-token logits differ by {first_diff:.1e}, their last-token logits by \
             {last_diff:.3}. The first token sees only itself, so it cannot classify the message (the book: 75% test \
             accuracy)"
        ),
    );
}

/// The reference accuracy of section 6.6 for one batch: the last position's argmax against the
/// labels.
fn batch_accuracy(logits: &Tensor, labels: &Tensor) -> f64 {
    let predicted = logits.select(1, -1).argmax(-1, false); // [batch]
    predicted.eq_tensor(labels).to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
}

/// Exercise 6.4: `accuracy(logits, labels)` is the fraction of a batch classified right, from
/// the model's full output `logits: [batch, num_tokens, num_classes]` and `labels: [batch]`, as
/// `calc_accuracy_loader` counts it. Compared on random batches with 2 and 3 classes.
pub fn check_6_4(accuracy: impl Fn(&Tensor, &Tensor) -> f64) {
    set_seed(123);
    let cases = [(8, 5, 2), (4, 3, 3), (10, 7, 2)];
    for (batch, num_tokens, num_classes) in cases {
        let logits = Tensor::randn([batch, num_tokens, num_classes], (Kind::Float, Device::Cpu));
        let labels = Tensor::randint(num_classes, [batch], (Kind::Int64, Device::Cpu));
        let want = batch_accuracy(&logits, &labels);
        let got = accuracy(&logits, &labels);
        if (got - want).abs() > 1e-9 {
            let first = batch_accuracy(&logits.narrow(1, 0, 1), &labels);
            let hint = if (got - first).abs() < 1e-9 && (first - want).abs() > 1e-9 {
                "you classify with the first position: the last one (select(1, -1)) has read the whole text".to_string()
            } else if (got - 100.0 * want).abs() < 1e-6 {
                "a fraction between 0 and 1, not a percentage".to_string()
            } else {
                "take the last position's logits, the argmax over the classes is the prediction, and count the \
                 predictions equal to the labels, divided by the batch size"
                    .to_string()
            };
            fail("6.4", format!("batch [{batch}, {num_tokens}, {num_classes}]: expected {want}, got {got}; {hint}."));
        }
    }
    pass("6.4", "your accuracy agrees with calc_accuracy_loader's counting on three random batches");
}

/// Exercise 6.5: `trainable_parameters(cfg, num_classes)` counts, from the config alone, the
/// parameters chapter 6 trains: the last transformer block, `final_norm` and the new
/// `num_classes` head. Compared with `prepare_classifier`'s count on two small models; then the
/// learner's count for GPT-2 small is shown.
pub fn check_6_5(trainable_parameters: impl Fn(&GptConfig, i64) -> i64) {
    let configs = [
        (GptConfig { vocab_size: 1000, ..small_config() }, 2),
        (GptConfig { vocab_size: 1000, context_length: 16, emb_dim: 48, n_heads: 3, n_layers: 3, qkv_bias: true, ..small_config() }, 3),
    ];
    for (cfg, num_classes) in &configs {
        let (_vs, _model, want) = small_classifier(cfg, *num_classes, 123);
        let got = trainable_parameters(cfg, *num_classes);
        if got != want {
            let e = cfg.emb_dim;
            let hint = if got - want == e * cfg.vocab_size + cfg.vocab_size - (e + 1) * num_classes {
                "the new head has num_classes outputs, not vocab_size"
            } else if want - got == *num_classes {
                "the new head (a Linear) has a bias: (emb_dim + 1) x num_classes"
            } else if cfg.qkv_bias && want - got == 3 * e {
                "with qkv_bias the query, key and value projections each have emb_dim biases"
            } else {
                "one block: W_query, W_key, W_value (emb_dim^2 each, + biases with qkv_bias), out_proj (emb_dim^2 + \
                 emb_dim), the feed-forward network (emb_dim -> 4 emb_dim -> emb_dim, with biases), two layer norms (2 \
                 emb_dim each); final_norm (2 emb_dim); the head ((emb_dim + 1) x num_classes)"
            };
            fail(
                "6.5",
                format!("emb_dim {}, qkv_bias {}, {num_classes} classes: {want} parameters train, you count {got}; {hint}.", cfg.emb_dim, cfg.qkv_bias),
            );
        }
    }
    let gpt2 = GptConfig { qkv_bias: true, ..GptConfig::gpt2_124m() };
    let n = trainable_parameters(&gpt2, 2);
    pass(
        "6.5",
        format!(
            "GPT-2 small with OpenAI's qkv biases trains {n} of its {} parameters ({:.1}%) as a spam classifier",
            gpt2.num_parameters_tied(),
            100.0 * n as f64 / gpt2.num_parameters_tied() as f64
        ),
    );
}

#[cfg(test)]
mod tests {
    use crate::exercises::tests::failure;
    use super::*;
    use crate::tasks::classify::set_requires_grad_under;
    use crate::util::device::rng_lock;

    #[test]
    fn check_6_1_pads_to_the_context() {
        let tokenizer = BpeTokenizer::gpt2().unwrap();
        check_6_1(|texts, tok, n| SpamDataset::new(texts, tok, Some(n), PAD_TOKEN_ID), &tokenizer);
        let msg = failure(|| check_6_1(|texts, tok, _| SpamDataset::new(texts, tok, None, PAD_TOKEN_ID), &tokenizer));
        assert!(msg.contains("padded to the longest text (120 tokens)"), "{msg}");
    }

    #[test]
    fn check_6_2_wants_every_parameter_trained() {
        let _rng = rng_lock();
        check_6_2(|_, vs| {
            set_requires_grad_under(vs, "", true);
        });
        let msg = failure(|| check_6_2(|_, vs| {
            set_requires_grad_under(vs, "trf_blocks", true);
        }));
        assert!(msg.starts_with("✘ Exercise 6.2: ") && msg.contains("parameters train"), "{msg}");
    }

    #[test]
    fn check_6_3_wants_the_first_position_and_its_blindness() {
        let _rng = rng_lock();
        let first = |m: &GptModel, x: &Tensor| m.forward_t(x, false).select(1, 0);
        check_6_3(first, false);
        let msg = failure(|| check_6_3(|m, x| m.forward_t(x, false).select(1, -1), false));
        assert!(msg.contains("last position"), "{msg}");
        let msg = failure(|| check_6_3(first, true));
        assert!(msg.contains("attends to position 0 only"), "{msg}");
    }

    #[test]
    fn check_6_4_counts_the_last_position() {
        let _rng = rng_lock();
        check_6_4(batch_accuracy);
        let msg = failure(|| check_6_4(|l, y| batch_accuracy(&l.narrow(1, 0, 1), y)));
        assert!(msg.contains("first position"), "{msg}");
    }

    /// The trainable parameters of chapter 6's classifier, by formula.
    fn formula(cfg: &GptConfig, num_classes: i64) -> i64 {
        let e = cfg.emb_dim;
        let qkv = 3 * (e * e + if cfg.qkv_bias { e } else { 0 });
        let block = qkv + (e * e + e) + (e * 4 * e + 4 * e) + (4 * e * e + e) + 2 * 2 * e;
        block + 2 * e + (e + 1) * num_classes
    }

    #[test]
    fn check_6_5_counts_the_trainable_parameters() {
        let _rng = rng_lock();
        check_6_5(formula);
        let msg = failure(|| check_6_5(|cfg, k| formula(cfg, k) - k));
        assert!(msg.contains("has a bias"), "{msg}");
        let msg = failure(|| check_6_5(|cfg, k| formula(&GptConfig { qkv_bias: false, ..cfg.clone() }, k)));
        assert!(msg.contains("each have emb_dim biases"), "{msg}");
    }
}
