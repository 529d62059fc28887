//! Checks for chapter 5's exercises ("Pretraining on unlabeled data"): the book's 5.1-5.6 and
//! the project's 5.7 (cross-entropy and perplexity by hand) and 5.8 (top-p sampling). The
//! notebook is `notebooks/exercises/source/ch05/ch05-exercises.ipynb`.
//!
//! Each check runs the learner's answer and the library's own computation on the same inputs,
//! on the CPU, and compares them.

use std::path::Path;

use tch::nn::{ModuleT, VarStore};
use tch::{Device, Kind, Tensor};

use super::{check, fail, pass};
use crate::error::Result;
use crate::nn::config::{size_mb, GptConfig};
use crate::nn::model::{generate_text_simple, GptModel};
use crate::text::data::the_verdict;
use crate::text::dataloader::create_dataloader_v1;
use crate::text::tokenizer::BpeTokenizer;
use crate::training::checkpoint::{read_checkpoint, save_checkpoint, CheckpointMeta};
use crate::training::generate::{generate, sample_counts, softmax_with_temperature, top_k_logits, toy_next_token_logits, TOY_VOCAB};
use crate::training::optim::AdamW;
use crate::training::train::{calc_loss_batch, calc_loss_loader, cross_entropy, perplexity};
use crate::util::device::set_seed;

/// The id of "pizza" in the toy vocabulary of section 5.3.1.
const PIZZA: usize = 6;

/// Exercise 5.1: `pizza_count(temperature)` is how many of 1000 tokens drawn from the toy
/// distribution at `temperature` (after `set_seed(123)`) are "pizza". Checked at temperatures
/// 1, 0.1 and 5 against `sample_counts`.
pub fn check_5_1(pizza_count: impl Fn(f64) -> i64) {
    assert_eq!(TOY_VOCAB[PIZZA], "pizza");
    let logits = toy_next_token_logits(Device::Cpu);
    let mut lines = Vec::new();
    for temperature in [1.0, 0.1, 5.0] {
        let probas = softmax_with_temperature(&logits, temperature);
        set_seed(123);
        let want = sample_counts(&probas, 1000)[PIZZA];
        let got = pizza_count(temperature);
        if got != want {
            fail(
                "5.1",
                format!(
                    "at temperature {temperature} you count {got} pizzas in 1000 draws. Call set_seed(123) right before \
                     drawing, scale the toy logits with softmax_with_temperature(&logits, temperature), draw 1000 tokens \
                     (sample_counts(&probas, 1000) counts them for you) and count id {PIZZA}."
                ),
            );
        }
        let p = probas.double_value(&[PIZZA as i64]);
        lines.push(format!("T = {temperature}: {got} of 1000 (probability {p:.2e})"));
    }
    pass("5.1", format!("pizza is drawn {}", lines.join("; ")));
}

/// The entropy `-Σ p ln p` of a distribution, in nats (0 for a one-hot distribution).
fn entropy(probas: &Tensor) -> f64 {
    let p = probas.to_kind(Kind::Double);
    -(&p * p.clamp_min(1e-300).log()).sum(Kind::Double).double_value(&[])
}

/// The distribution `generate` samples the next token from: the `top_k` largest logits (all
/// when `None`), then `softmax(logits / temperature)`.
fn sampling_distribution(logits: &Tensor, temperature: f64, top_k: Option<i64>) -> Tensor {
    let logits = match top_k {
        Some(k) => top_k_logits(logits, k),
        None => logits.shallow_clone(),
    };
    softmax_with_temperature(&logits, temperature)
}

/// Exercise 5.2: `distribution(logits, temperature, top_k)` is the distribution `generate`
/// samples from (top-k first, then the temperature); `factual` and `creative` are `(temperature,
/// top_k)` settings for a factual answer and for creative writing. The distribution is compared
/// with the library's on the toy logits; the factual setting must give a more predictable
/// (lower-entropy) distribution than plain sampling at temperature 1, the creative one a more
/// varied (higher-entropy) one.
pub fn check_5_2(
    distribution: impl Fn(&Tensor, f64, Option<i64>) -> Tensor,
    factual: (f64, Option<i64>),
    creative: (f64, Option<i64>),
) {
    let logits = toy_next_token_logits(Device::Cpu);
    for temperature in [0.5, 1.0, 2.0, 5.0] {
        for top_k in [None, Some(1), Some(3), Some(9)] {
            let want = sampling_distribution(&logits, temperature, top_k);
            let got = distribution(&logits, temperature, top_k);
            if got.size() != want.size() || !got.to_kind(Kind::Float).allclose(&want, 1e-5, 1e-6, false) {
                fail(
                    "5.2",
                    format!(
                        "at temperature {temperature} and top_k {top_k:?} your distribution differs from generate's. Keep \
                         the top_k largest logits (top_k_logits sets the others to -inf), then apply \
                         softmax_with_temperature; with top_k None keep every logit."
                    ),
                );
            }
        }
    }
    let h = |(temperature, top_k): (f64, Option<i64>)| {
        assert!(temperature > 0.0, "a sampling temperature is above 0 (0 means argmax)");
        entropy(&sampling_distribution(&logits, temperature, top_k))
    };
    let plain = h((1.0, None));
    let (h_factual, h_creative) = (h(factual), h(creative));
    check(
        "5.2",
        h_factual < plain && h_creative > plain,
        format!(
            "the distribution matches generate's. Entropy of the next token (nats; ln 9 = {:.2} is uniform): \
             factual {factual:?} {h_factual:.3}, plain (1.0, None) {plain:.3}, creative {creative:?} {h_creative:.3}",
            9f64.ln()
        ),
        format!(
            "the distribution is right, but the settings: factual {factual:?} has entropy {h_factual:.3}, creative \
             {creative:?} {h_creative:.3}, plain sampling (1.0, None) {plain:.3}. A factual answer wants fewer, surer \
             candidates (a lower temperature, a small top_k); creative text wants more of them."
        ),
    );
}

/// Whether the book's `generate` is deterministic with these settings (`temperature` 0 takes
/// the argmax; top-k with k = 1 leaves one candidate).
fn deterministic(temperature: f64, top_k: Option<i64>) -> bool {
    temperature == 0.0 || top_k == Some(1)
}

/// A small GPT for the checks: GPT-2's vocabulary, 32-dimensional embeddings, 2 layers.
fn small_gpt(context_length: i64, seed: u64) -> (VarStore, GptModel, GptConfig) {
    let cfg = GptConfig { context_length, emb_dim: 32, n_heads: 2, n_layers: 2, ..GptConfig::gpt2_124m() };
    set_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let model = GptModel::new(&vs.root(), &cfg);
    (vs, model, cfg)
}

/// Exercise 5.3: `is_deterministic(temperature, top_k)` says whether `generate` gives the same
/// tokens for every seed with these settings. Compared on a grid of settings; then the
/// deterministic ones are shown to reproduce `generate_text_simple`'s greedy tokens.
pub fn check_5_3(is_deterministic: impl Fn(f64, Option<i64>) -> bool) {
    let settings = [(0.0, None), (0.0, Some(25)), (1.0, None), (1.4, Some(1)), (0.1, Some(1)), (1.4, Some(25)), (0.1, Some(3)), (2.0, None)];
    for (temperature, top_k) in settings {
        let want = deterministic(temperature, top_k);
        if is_deterministic(temperature, top_k) != want {
            let why = if want {
                "it is: think about how many tokens are left to choose from, or what temperature 0 means in generate"
            } else {
                "it is not: with a temperature above 0 and more than one candidate, generate draws at random"
            };
            fail("5.3", format!("you say temperature {temperature}, top_k {top_k:?} is{} deterministic, but {why}.", if want { " not" } else { "" }));
        }
    }
    let (_vs, model, cfg) = small_gpt(32, 123);
    let prompt = Tensor::from_slice(&[6109i64, 3626, 6100, 345]).unsqueeze(0); // "Every effort moves you": [1, 4]
    let greedy = generate_text_simple(&model, &prompt, 10, cfg.context_length);
    let runs = |temperature: f64, top_k: Option<i64>| -> usize {
        (1..=3)
            .filter(|&seed| {
                set_seed(seed);
                generate(&model, &prompt, 10, cfg.context_length, temperature, top_k, None).equal(&greedy)
            })
            .count()
    };
    pass(
        "5.3",
        format!(
            "on a small random GPT, seeds 1-3 give the greedy tokens {}/3 times at (0.0, None), {}/3 at (1.4, Some(1)), {}/3 \
             at (1.4, Some(25))",
            runs(0.0, None),
            runs(1.4, Some(1)),
            runs(1.4, Some(25))
        ),
    );
}

/// Exercise 5.4: `resume(dir)` builds a model and an AdamW optimizer from the checkpoint saved
/// in `dir` (by `save_checkpoint` with the optimizer). The check trains a small GPT for two
/// steps, saves it, and takes a third step; the resumed model and optimizer must take the same
/// third step.
pub fn check_5_4(resume: impl Fn(&Path) -> Result<(VarStore, GptModel, AdamW)>) {
    let dir = std::env::temp_dir().join(format!("llm-exercise-5-4-{}", std::process::id()));
    set_seed(7);
    let batches: Vec<(Tensor, Tensor)> =
        (0..3).map(|_| (Tensor::randint(50257, [2, 32], (Kind::Int64, Device::Cpu)), Tensor::randint(50257, [2, 32], (Kind::Int64, Device::Cpu)))).collect();
    let step = |model: &GptModel, optimizer: &mut AdamW, (x, y): &(Tensor, Tensor), seed: u64| {
        set_seed(seed); // the same dropout masks in both runs
        optimizer.backward_step(&calc_loss_batch(x, y, model, Device::Cpu, true));
    };
    let (vs, model, cfg) = small_gpt(32, 123);
    let mut optimizer = AdamW::new(&vs, 4e-4, 0.1);
    step(&model, &mut optimizer, &batches[0], 10);
    step(&model, &mut optimizer, &batches[1], 11);
    save_checkpoint(&dir, &vs, Some(&optimizer), &CheckpointMeta::model_only(&cfg)).unwrap_or_else(|e| panic!("{e}"));
    let saved = read_checkpoint(&dir).unwrap_or_else(|e| panic!("{e}"));
    step(&model, &mut optimizer, &batches[2], 12);

    let resumed = resume(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let (vs2, model2, mut optimizer2) = match resumed {
        Ok(parts) => parts,
        Err(e) => fail("5.4", format!("resume returned an error: {e}")),
    };
    let loaded = vs2.variables();
    let same_weights =
        loaded.len() == saved.model.len() && saved.model.iter().all(|(name, t)| loaded.get(name).is_some_and(|v| v.size() == t.size() && v.equal(t)));
    if !same_weights {
        fail("5.4", "the returned model does not hold the saved weights: build it with the checkpoint's config (checkpoint.meta.config) and load them with checkpoint.load_model(&vs).");
    }
    step(&model2, &mut optimizer2, &batches[2], 12);
    let out = |m: &GptModel| m.forward_t(&batches[0].0, false);
    check(
        "5.4",
        out(&model).equal(&out(&model2)),
        "the resumed model and optimizer take exactly the step the uninterrupted run took",
        "the weights are right but the next step differs: a fresh AdamW has no moments and no step count. Restore them \
         with checkpoint.load_optimizer(&mut optimizer), after building AdamW over the loaded model.",
    );
}

/// Exercise 5.5: `losses(model, text, tokenizer)` is `(train loss, validation loss)` of `model`
/// on `text` with the book's split and loaders (90% / 10% of the characters, batch 2,
/// `max_length = stride = context_length`, no shuffling, the last incomplete batch dropped in
/// training only). OpenAI's weights cannot be downloaded on every machine, so the check runs a
/// small random GPT with GPT-2's vocabulary and 256 positions on "The Verdict".
pub fn check_5_5(losses: impl Fn(&GptModel, &str, &BpeTokenizer) -> Result<(f64, f64)>, tokenizer: &BpeTokenizer) {
    let text = the_verdict().unwrap_or_else(|e| panic!("{e}"));
    let (_vs, model, cfg) = small_gpt(256, 123);
    let split_idx = (0.9 * text.len() as f64) as usize;
    let (train_text, val_text) = text.split_at(split_idx);
    let ctx = cfg.context_length as usize;
    let loader = |t: &str, drop_last: bool| create_dataloader_v1(t, tokenizer, 2, ctx, ctx, false, drop_last, 0).unwrap_or_else(|e| panic!("{e}"));
    let want_train = calc_loss_loader(&loader(train_text, true), &model, Device::Cpu, None);
    let want_val = calc_loss_loader(&loader(val_text, false), &model, Device::Cpu, None);
    let (train, val) = match losses(&model, &text, tokenizer) {
        Ok(pair) => pair,
        Err(e) => fail("5.5", format!("your function returned an error: {e}")),
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-5;
    if close(train, want_val) && close(val, want_train) && !close(train, want_train) {
        fail("5.5", "your two losses are swapped: return (train loss, validation loss).");
    }
    check(
        "5.5",
        close(train, want_train) && close(val, want_val),
        format!(
            "train loss {train:.4}, validation loss {val:.4} on a random GPT (ln 50257 = {:.2}); with OpenAI's GPT-2 \
             124M the book gets 3.755 and 3.559",
            50257f64.ln()
        ),
        format!(
            "expected train loss {want_train:.4} and validation loss {want_val:.4}, got {train:.4} and {val:.4}. Split \
             at 90% of the characters, text.split_at((0.9 * text.len() as f64) as usize); both loaders: batch 2, \
             max_length = stride = model.cfg.context_length, no shuffling; drop_last for training only; then \
             calc_loss_loader over all batches (num_batches None)."
        ),
    );
}

/// The configs of OpenAI's four GPT-2 checkpoints: the book's sizes with 1024 positions and
/// biases in the query, key and value projections.
fn openai_gpt2_configs() -> Vec<(&'static str, GptConfig)> {
    ["gpt2-small", "gpt2-medium", "gpt2-large", "gpt2-xl"]
        .into_iter()
        .map(|name| {
            let cfg = GptConfig::from_preset_name(name).expect("a preset");
            (name, GptConfig { qkv_bias: true, context_length: 1024, ..cfg })
        })
        .collect()
}

/// Exercise 5.6: `tied_parameters(cfg)` counts a GPT's parameters when `out_head` shares the
/// token embedding's weights (as OpenAI's GPT-2 does). Compared with the library's count on the
/// four GPT-2 sizes and on two small configs (with and without qkv biases).
pub fn check_5_6(tied_parameters: impl Fn(&GptConfig) -> i64) {
    let mut configs = openai_gpt2_configs();
    configs.push(("tiny", GptConfig::tiny()));
    configs.push(("tiny with qkv biases", GptConfig { qkv_bias: true, n_layers: 3, ..GptConfig::tiny() }));
    let mut rows = Vec::new();
    for (name, cfg) in &configs {
        let want = cfg.num_parameters_tied();
        let got = tied_parameters(cfg);
        if got != want {
            let hint = if got == cfg.num_parameters() {
                "that is the count without weight tying: out_head's vocab_size x emb_dim weights are the token embedding's, count them once".to_string()
            } else if cfg.qkv_bias && (want - got) == 3 * cfg.emb_dim * cfg.n_layers {
                "count the query, key and value biases (emb_dim each, per layer) when cfg.qkv_bias is true".to_string()
            } else {
                "add up the embeddings (tokens and positions), per block: W_query, W_key, W_value (+ biases if qkv_bias), \
                 out_proj, the feed-forward network (emb_dim -> 4 emb_dim -> emb_dim, with biases), two layer norms \
                 (scale and shift); then final_norm; out_head shares tok_emb's weights"
                    .to_string()
            };
            fail("5.6", format!("{name}: you count {got}, expected {want}; {hint}."));
        }
        if name.starts_with("gpt2") {
            rows.push(format!("{name} {got} ({:.0} MB in fp32)", size_mb(got, 4)));
        }
    }
    pass("5.6", format!("parameters with weight tying: {}", rows.join(", ")));
}

/// Exercise 5.7: `loss_and_perplexity(logits, targets)` is the mean cross-entropy of
/// `logits: [batch, num_tokens, vocab]` against `targets: [batch, num_tokens]` and its
/// perplexity. Compared with the library's `cross_entropy` and `perplexity` on random logits
/// and on uniform logits over GPT-2's vocabulary (whose perplexity is the vocabulary size).
pub fn check_5_7(loss_and_perplexity: impl Fn(&Tensor, &Tensor) -> (f64, f64)) {
    set_seed(123);
    let cases = [
        (Tensor::randn([2, 3, 7], (Kind::Float, Device::Cpu)) * 3.0, Tensor::randint(7, [2, 3], (Kind::Int64, Device::Cpu))),
        (Tensor::randn([1, 5, 50257], (Kind::Float, Device::Cpu)), Tensor::randint(50257, [1, 5], (Kind::Int64, Device::Cpu))),
        (Tensor::zeros([2, 4, 50257], (Kind::Float, Device::Cpu)), Tensor::randint(50257, [2, 4], (Kind::Int64, Device::Cpu))),
    ];
    let mut last = (0.0, 0.0);
    for (logits, targets) in &cases {
        let want = cross_entropy(logits, targets).double_value(&[]);
        let (loss, ppl) = loss_and_perplexity(logits, targets);
        if (loss - want).abs() > 1e-4 * want.max(1.0) {
            let hint = if (loss + want).abs() < 1e-4 * want.max(1.0) {
                "your loss has the wrong sign: the cross-entropy is the *negative* mean log-probability".to_string()
            } else {
                "take log_softmax over the last axis (the vocabulary), pick each target's log-probability (gather on the \
                 last axis), average over all positions and negate"
                    .to_string()
            };
            fail("5.7", format!("for logits {:?} the loss is {want:.5}, you have {loss:.5}: {hint}.", logits.size()));
        }
        if (ppl - perplexity(want)).abs() > 1e-3 * perplexity(want) {
            fail("5.7", format!("the loss {loss:.5} is right but the perplexity {ppl:.5} is not: it is exp(loss)."));
        }
        last = (loss, ppl);
    }
    pass(
        "5.7",
        format!(
            "uniform logits over 50257 tokens: loss {:.4} = ln 50257, perplexity {:.0}: a model that knows nothing \
             hesitates between every token",
            last.0, last.1
        ),
    );
}

/// Top-p (nucleus) filtering of `logits: [vocab]`: keep the most probable tokens, in order,
/// until their probabilities add up to at least `p` (the token that reaches `p` is kept), and
/// set the other logits to -inf.
fn top_p_logits(logits: &Tensor, p: f64) -> Tensor {
    let (sorted, order) = logits.sort(-1, true); // [vocab] each
    let cumulative = sorted.softmax(-1, Kind::Double).cumsum(-1, Kind::Double); // [vocab]
    let probas = sorted.softmax(-1, Kind::Double);
    // A token is kept when the mass before it is still below p.
    let drop_sorted = (cumulative - probas).ge(p); // [vocab]
    let drop = drop_sorted.scatter(-1, &order, &drop_sorted);
    logits.masked_fill(&drop, f64::NEG_INFINITY)
}

/// Exercise 5.8: `top_p(logits, p)` keeps the smallest set of most probable tokens whose
/// probabilities add up to at least `p` and sets the other logits to -inf (nucleus sampling,
/// used by many LLM APIs instead of, or with, top-k). Compared on the toy logits and on random
/// logits.
pub fn check_5_8(top_p: impl Fn(&Tensor, f64) -> Tensor) {
    set_seed(123);
    let toy = toy_next_token_logits(Device::Cpu);
    let random = Tensor::randn([50], (Kind::Float, Device::Cpu)) * 2.0;
    let mut kept = Vec::new();
    for (name, logits) in [("toy", &toy), ("random", &random)] {
        for p in [0.5, 0.9, 0.95, 0.99, 1.0] {
            let want = top_p_logits(logits, p);
            let got = top_p(logits, p);
            let agree = got.size() == want.size()
                && got.isfinite().equal(&want.isfinite())
                && got.masked_select(&want.isfinite()).allclose(&want.masked_select(&want.isfinite()), 1e-6, 1e-6, false);
            if !agree {
                let n_want = want.isfinite().sum(Kind::Int64).int64_value(&[]);
                let n_got = if got.size() == want.size() { got.isfinite().sum(Kind::Int64).int64_value(&[]).to_string() } else { format!("shape {:?}", got.size()) };
                fail(
                    "5.8",
                    format!(
                        "{name} logits, p = {p}: keep {n_want} tokens, you keep {n_got}. Sort the probabilities in \
                         descending order and keep tokens while the mass *before* each one is below p (the token that \
                         crosses p is kept); leave the kept logits unchanged and set the others to -inf."
                    ),
                );
            }
            if name == "toy" {
                kept.push(format!("p {p}: {}", want.isfinite().sum(Kind::Int64).int64_value(&[])));
            }
        }
    }
    pass("5.8", format!("tokens kept from the toy logits: {}", kept.join(", ")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercises::tests::failure;
    use crate::util::device::rng_lock;

    fn pizza_count(temperature: f64) -> i64 {
        let probas = softmax_with_temperature(&toy_next_token_logits(Device::Cpu), temperature);
        set_seed(123);
        sample_counts(&probas, 1000)[PIZZA]
    }

    #[test]
    fn check_5_1_counts_pizzas() {
        let _rng = rng_lock();
        check_5_1(pizza_count);
        let msg = failure(|| check_5_1(|t| if t == 5.0 { 43 } else { 0 }));
        assert!(msg.starts_with("✘ Exercise 5.1: at temperature 5"), "{msg}");
    }

    #[test]
    fn check_5_2_wants_top_k_before_the_temperature() {
        check_5_2(sampling_distribution, (0.5, Some(3)), (2.0, None));
        // The temperature on the raw logits, ignoring top-k: wrong whenever top_k is given.
        let msg = failure(|| check_5_2(|l, t, _| softmax_with_temperature(l, t), (0.5, Some(3)), (2.0, None)));
        assert!(msg.contains("top_k Some(1)"), "{msg}");
        let msg = failure(|| check_5_2(sampling_distribution, (2.0, None), (0.5, Some(3))));
        assert!(msg.contains("the settings"), "{msg}");
    }

    #[test]
    fn check_5_3_knows_the_deterministic_settings() {
        let _rng = rng_lock();
        check_5_3(deterministic);
        let msg = failure(|| check_5_3(|t, _| t == 0.0));
        assert!(msg.contains("top_k Some(1) is not deterministic"), "{msg}");
    }

    fn resume(dir: &Path) -> Result<(VarStore, GptModel, AdamW)> {
        let checkpoint = read_checkpoint(dir)?;
        let vs = VarStore::new(Device::Cpu);
        let model = GptModel::new(&vs.root(), &checkpoint.meta.config);
        checkpoint.load_model(&vs)?;
        let mut optimizer = AdamW::new(&vs, 4e-4, 0.1);
        checkpoint.load_optimizer(&mut optimizer)?;
        Ok((vs, model, optimizer))
    }

    #[test]
    fn check_5_4_wants_the_optimizer_state() {
        let _rng = rng_lock();
        check_5_4(resume);
        let msg = failure(|| {
            check_5_4(|dir| {
                let (vs, model, _) = resume(dir)?;
                let optimizer = AdamW::new(&vs, 4e-4, 0.1);
                Ok((vs, model, optimizer))
            })
        });
        assert!(msg.contains("load_optimizer"), "{msg}");
        let msg = failure(|| {
            check_5_4(|dir| {
                let checkpoint = read_checkpoint(dir)?;
                let vs = VarStore::new(Device::Cpu);
                let model = GptModel::new(&vs.root(), &checkpoint.meta.config);
                let optimizer = AdamW::new(&vs, 4e-4, 0.1);
                Ok((vs, model, optimizer))
            })
        });
        assert!(msg.contains("load_model"), "{msg}");
    }

    fn verdict_losses(model: &GptModel, text: &str, tokenizer: &BpeTokenizer) -> Result<(f64, f64)> {
        let (train_text, val_text) = text.split_at((0.9 * text.len() as f64) as usize);
        let ctx = model.cfg.context_length as usize;
        let train_loader = create_dataloader_v1(train_text, tokenizer, 2, ctx, ctx, false, true, 0)?;
        let val_loader = create_dataloader_v1(val_text, tokenizer, 2, ctx, ctx, false, false, 0)?;
        Ok((calc_loss_loader(&train_loader, model, Device::Cpu, None), calc_loss_loader(&val_loader, model, Device::Cpu, None)))
    }

    #[test]
    fn check_5_5_compares_the_losses_on_the_verdict() {
        let _rng = rng_lock();
        let tokenizer = BpeTokenizer::gpt2().unwrap();
        check_5_5(verdict_losses, &tokenizer);
        let msg = failure(|| check_5_5(|m, t, tok| verdict_losses(m, t, tok).map(|(a, b)| (b, a)), &tokenizer));
        assert!(msg.contains("swapped"), "{msg}");
    }

    #[test]
    fn check_5_6_counts_tied_parameters() {
        check_5_6(GptConfig::num_parameters_tied);
        let msg = failure(|| check_5_6(GptConfig::num_parameters));
        assert!(msg.contains("without weight tying"), "{msg}");
        assert_eq!(openai_gpt2_configs()[3].1.num_parameters_tied(), 1_557_611_200, "OpenAI's GPT-2 XL");
    }

    #[test]
    fn check_5_7_wants_the_mean_negative_log_probability() {
        let _rng = rng_lock();
        let right = |l: &Tensor, t: &Tensor| {
            let loss = -l.log_softmax(-1, Kind::Float).gather(-1, &t.unsqueeze(-1), false).mean(Kind::Float).double_value(&[]);
            (loss, loss.exp())
        };
        check_5_7(right);
        let msg = failure(|| check_5_7(|l, t| { let (loss, ppl) = right(l, t); (-loss, ppl) }));
        assert!(msg.contains("wrong sign"), "{msg}");
        let msg = failure(|| check_5_7(|l, t| { let (loss, _) = right(l, t); (loss, loss) }));
        assert!(msg.contains("exp(loss)"), "{msg}");
    }

    #[test]
    fn top_p_keeps_the_tokens_that_reach_p() {
        // The toy probabilities: forward 0.572, toward 0.358, closer 0.061, the rest below 0.01.
        let logits = toy_next_token_logits(Device::Cpu);
        let kept = |p: f64| Vec::<bool>::try_from(top_p_logits(&logits, p).isfinite()).unwrap();
        assert_eq!(kept(0.5), [false, false, false, true, false, false, false, false, false], "forward alone reaches 0.5");
        assert_eq!(kept(0.9), [false, false, false, true, false, false, false, true, false], "forward + toward = 0.93");
        assert_eq!(kept(0.95).iter().filter(|&&k| k).count(), 3, "closer is needed for 0.95");
        assert!(kept(1.0).iter().all(|&k| k), "p = 1 keeps everything");
    }

    #[test]
    fn check_5_8_compares_with_nucleus_filtering() {
        let _rng = rng_lock();
        check_5_8(top_p_logits);
        // Dropping the token that crosses p keeps one too few.
        let too_few = |l: &Tensor, p: f64| {
            let (sorted, order) = l.sort(-1, true);
            let drop_sorted = sorted.softmax(-1, Kind::Double).cumsum(-1, Kind::Double).ge(p);
            l.masked_fill(&drop_sorted.scatter(-1, &order, &drop_sorted), f64::NEG_INFINITY)
        };
        let msg = failure(|| check_5_8(too_few));
        assert!(msg.starts_with("✘ Exercise 5.8: toy logits, p = 0.5: keep 1 tokens, you keep 0"), "{msg}");
    }
}
