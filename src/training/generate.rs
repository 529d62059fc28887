//! Chapter 5.3, "Decoding strategies to control randomness": temperature scaling, top-k
//! sampling, and the `generate` function that combines them (listing 5.4), with the book's toy
//! vocabulary to demonstrate both; [`generate_cached`] is `generate` with the KV cache of the
//! book's bonus for chapter 4.
//!
//! Sampling draws from libtorch's global generator (`torch.multinomial`): after
//! `set_seed(seed)`, the same calls give the same tokens, and the same tokens as PyTorch.

use tch::nn::ModuleT;
use tch::{Device, Kind, Tensor};

use crate::nn::kv_cache::{next_token_logits, CachedLm, KvCache};

/// The toy vocabulary of section 5.3.1, in id order.
pub const TOY_VOCAB: [&str; 9] = ["closer", "every", "effort", "forward", "inches", "moves", "pizza", "toward", "you"];

/// The toy next-token logits of section 5.3.1 (after "every effort moves you").
#[allow(clippy::approx_constant)] // 6.28 is the book's logit for "toward", not 2*pi
pub const TOY_NEXT_TOKEN_LOGITS: [f32; 9] = [4.51, 0.89, -1.90, 6.75, 1.63, -1.62, -1.89, 6.28, 1.79];

/// `softmax(logits / temperature)` (section 5.3.1): a temperature above 1 flattens the
/// distribution, below 1 sharpens it.
pub fn softmax_with_temperature(logits: &Tensor, temperature: f64) -> Tensor {
    (logits / temperature).softmax(-1, Kind::Float)
}

/// Keep the `top_k` largest logits of each row and set the others to -inf (section 5.3.2).
/// Ties with the k-th largest are kept, as in the book (`logits < min_val` is masked).
///
/// # Shapes
/// `logits: [..., vocab]` → the same shape.
pub fn top_k_logits(logits: &Tensor, top_k: i64) -> Tensor {
    let vocab = *logits.size().last().expect("logits have a vocabulary axis");
    let k = top_k.clamp(1, vocab);
    let (top_logits, _) = logits.topk(k, -1, true, true); // [..., k]
    let min_val = top_logits.narrow(-1, k - 1, 1); // [..., 1] (keeps rows apart for batches > 1)
    logits.masked_fill(&logits.lt_tensor(&min_val), f64::NEG_INFINITY)
}

/// Listing 5.4, `generate`: extend `idx` by up to `max_new_tokens` tokens. Each step crops the
/// context to the last `context_size` tokens, takes the last position's logits, keeps the
/// `top_k` largest (if given), then samples from `softmax(logits / temperature)` when
/// `temperature > 0`, or takes the argmax otherwise. Stops early when every sequence of the
/// batch produced `eos_id` (the book's `if idx_next == eos_id: break`; the eos token is not
/// appended).
///
/// # Shapes
/// `idx: [batch, num_tokens]` (int64) → `[batch, num_tokens + generated]`
pub fn generate<M: ModuleT + ?Sized>(
    model: &M,
    idx: &Tensor,
    max_new_tokens: i64,
    context_size: i64,
    temperature: f64,
    top_k: Option<i64>,
    eos_id: Option<i64>,
) -> Tensor {
    let _no_grad = tch::no_grad_guard();
    let mut idx = idx.shallow_clone();
    for _ in 0..max_new_tokens {
        let num_tokens = idx.size()[1];
        let start = (num_tokens - context_size).max(0);
        let idx_cond = idx.narrow(1, start, num_tokens - start); // [batch, <= context_size]
        let logits = model.forward_t(&idx_cond, false).select(1, -1); // [batch, vocab]
        match next_token(&logits, temperature, top_k, eos_id) {
            Some(idx_next) => idx = Tensor::cat(&[&idx, &idx_next], 1), // [batch, num_tokens + 1]
            None => break,
        }
    }
    idx
}

/// [`generate`] with a KV cache (the book's bonus for chapter 4): the prompt is fed once, then
/// only each new token ([`next_token_logits`]); the context is the model's
/// ([`CachedLm::context_length`]). The draws are made in the same order as [`generate`]'s, so
/// after the same seed it gives the same ids as `generate(model, idx, max_new_tokens,
/// context_length, ...)`, past the context length too. `cache` is reset first, so one cache
/// serves prompt after prompt; its [`KvCache::positions_computed`] then shows the work done.
///
/// # Shapes
/// `idx: [batch, num_tokens]` (int64) → `[batch, num_tokens + generated]`
pub fn generate_cached<M: CachedLm + ?Sized>(
    model: &M,
    cache: &mut KvCache,
    idx: &Tensor,
    max_new_tokens: i64,
    temperature: f64,
    top_k: Option<i64>,
    eos_id: Option<i64>,
) -> Tensor {
    let _no_grad = tch::no_grad_guard();
    cache.reset();
    let mut idx = idx.shallow_clone();
    for _ in 0..max_new_tokens {
        let logits = next_token_logits(model, cache, &idx); // [batch, vocab]
        match next_token(&logits, temperature, top_k, eos_id) {
            Some(idx_next) => idx = Tensor::cat(&[&idx, &idx_next], 1), // [batch, num_tokens + 1]
            None => break,
        }
    }
    idx
}

/// Nucleus (top-p) sampling's filter (not in the book; Holtzman et al. 2019, the `top_p` of
/// OpenAI's API and of Hugging Face's `generate`): keep the most probable tokens whose
/// probabilities, `softmax(logits)`, add up to at least `top_p`, and set the others to -inf.
/// A token is kept when the tokens more probable than it hold less than `top_p` in all, so the
/// most probable token always stays; `top_p >= 1` keeps every token.
///
/// # Shapes
/// `logits: [..., vocab]` → the same shape.
pub fn top_p_logits(logits: &Tensor, top_p: f64) -> Tensor {
    if top_p >= 1.0 {
        return logits.shallow_clone();
    }
    let (sorted, order) = logits.sort(-1, true); // [..., vocab] each, most probable first
    let probas = sorted.softmax(-1, Kind::Float); // [..., vocab]
    let before = probas.cumsum(-1, Kind::Float) - &probas; // [..., vocab]: the mass of the tokens ahead
    let drop_sorted = before.ge(top_p); // [..., vocab]
    let drop = drop_sorted.zeros_like().scatter(-1, &order, &drop_sorted); // [..., vocab], back in id order
    logits.masked_fill(&drop, f64::NEG_INFINITY)
}

/// How the next token is chosen: the book's temperature and top-k (section 5.3), and top-p
/// ([`top_p_logits`]). `temperature == 0` is greedy decoding (the argmax; top-k and top-p then
/// change nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f64,
    pub top_k: Option<i64>,
    pub top_p: Option<f64>,
}

impl Sampling {
    /// Greedy decoding: always the most probable token.
    pub fn greedy() -> Self {
        Sampling { temperature: 0.0, top_k: None, top_p: None }
    }

    /// The next token of each row: keep the `top_k` largest logits (if given), divide by the
    /// temperature, keep the top-p nucleus (if given), then draw from the softmax with the global
    /// generator; the argmax when the temperature is 0. The same draws as listing 5.4's
    /// `generate` when `top_p` is `None`.
    ///
    /// # Shapes
    /// `logits: [batch, vocab]` → `[batch, 1]` (int64)
    pub fn next_token(&self, logits: &Tensor) -> Tensor {
        let logits = match self.top_k {
            Some(k) => top_k_logits(logits, k),
            None => logits.shallow_clone(),
        };
        if self.temperature <= 0.0 {
            return logits.argmax(-1, true); // [batch, 1]
        }
        let scaled = &logits / self.temperature; // [batch, vocab]
        let scaled = match self.top_p {
            Some(p) => top_p_logits(&scaled, p),
            None => scaled,
        };
        scaled.softmax(-1, Kind::Float).multinomial(1, false) // [batch, 1]
    }
}

/// Where generated text must stop for the stop sequences `stops` (OpenAI's `stop`), and how much
/// of it can be shown while generation goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopScan {
    /// A stop sequence starts at this byte: the text ends there (the stop sequence is not part
    /// of it).
    Stop(usize),
    /// No stop sequence yet; the first this many bytes are final. The rest could be the start
    /// of a stop sequence (or an unfinished character, U+FFFD from a partial UTF-8 sequence),
    /// so it is held back until more tokens decide.
    Emit(usize),
}

/// Scan `text`, the whole text generated so far, for the earliest of the `stops` (empty stop
/// sequences are ignored).
pub fn scan_stop_sequences(text: &str, stops: &[String]) -> StopScan {
    let stops: Vec<&str> = stops.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    if let Some(at) = stops.iter().filter_map(|s| text.find(s)).min() {
        return StopScan::Stop(at);
    }
    // The longest end of the text that begins a stop sequence is held back.
    let mut keep = text.len();
    for stop in &stops {
        for (i, _) in text.char_indices().filter(|&(i, _)| text.len() - i < stop.len()) {
            if stop.starts_with(&text[i..]) {
                keep = keep.min(i);
                break;
            }
        }
    }
    // A trailing replacement character may be half of a character that the next token completes.
    let text = &text[..keep];
    StopScan::Emit(text.trim_end_matches('\u{FFFD}').len())
}

/// One step of listing 5.4 after the model: keep the `top_k` largest logits (if given), then
/// sample from `softmax(logits / temperature)` when `temperature > 0` or take the argmax. `None`
/// when every sequence of the batch drew `eos_id`.
///
/// # Shapes
/// `logits: [batch, vocab]` → `[batch, 1]`
fn next_token(logits: &Tensor, temperature: f64, top_k: Option<i64>, eos_id: Option<i64>) -> Option<Tensor> {
    let idx_next = Sampling { temperature, top_k, top_p: None }.next_token(logits); // [batch, 1]
    match eos_id {
        Some(eos) if idx_next.eq(eos).all().int64_value(&[]) != 0 => None,
        _ => Some(idx_next),
    }
}

/// Draw `n` tokens from `probas` (one distribution) and count how often each id came up: the
/// book's `print_sampled_tokens` experiment (section 5.3.1). Uses the global generator.
pub fn sample_counts(probas: &Tensor, n: usize) -> Vec<i64> {
    let vocab = probas.size()[0];
    let mut counts = vec![0i64; vocab as usize];
    for _ in 0..n {
        // One draw at a time, as the book does, so that the seeded draws match PyTorch's.
        let id = probas.multinomial(1, false).int64_value(&[0]);
        counts[id as usize] += 1;
    }
    counts
}

/// The toy logits as a tensor on `device`.
pub fn toy_next_token_logits(device: Device) -> Tensor {
    Tensor::from_slice(&TOY_NEXT_TOKEN_LOGITS).to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::device::{rng_lock, set_seed};

    fn vec(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t).unwrap()
    }

    #[test]
    fn temperatures_reshape_the_toy_distribution() {
        let logits = toy_next_token_logits(Device::Cpu);
        // Book 5.3.1: softmax of the toy logits.
        let p = vec(&softmax_with_temperature(&logits, 1.0));
        let want = [0.0609f32, 0.0016, 0.0001, 0.5721, 0.0034, 0.0001, 0.0001, 0.3576, 0.0040];
        for (g, w) in p.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "softmax {p:?}");
        }
        let cold = vec(&softmax_with_temperature(&logits, 0.1));
        let hot = vec(&softmax_with_temperature(&logits, 5.0));
        assert!(cold[3] > 0.99, "T=0.1 is nearly greedy: {cold:?}");
        assert!(hot[3] < 0.3 && hot[2] > 0.03, "T=5 is nearly uniform: {hot:?}");
    }

    #[test]
    fn seeded_sampling_matches_pytorch_counts() {
        // torch.manual_seed(123); 1000 x torch.multinomial(softmax(toy logits), 1):
        // 73 x closer, 0 x every, 0 x effort, 582 x forward, 2 x inches, 0 x moves, 0 x pizza,
        // 343 x toward, 0 x you (the book's print_sampled_tokens).
        let _rng = rng_lock();
        set_seed(123);
        let probas = softmax_with_temperature(&toy_next_token_logits(Device::Cpu), 1.0);
        let counts = sample_counts(&probas, 1000);
        assert_eq!(counts, vec![73, 0, 0, 582, 2, 0, 0, 343, 0], "counts per {TOY_VOCAB:?}");
    }

    #[test]
    fn top_k_keeps_the_three_largest() {
        let logits = toy_next_token_logits(Device::Cpu);
        let masked = vec(&top_k_logits(&logits, 3));
        let kept: Vec<usize> = (0..9).filter(|&i| masked[i].is_finite()).collect();
        assert_eq!(kept, vec![0, 3, 7], "book: top-3 positions tensor([3, 7, 0])");
        let p = vec(&Tensor::from_slice(&masked).softmax(-1, Kind::Float));
        let want = [0.0615f32, 0.0, 0.0, 0.5775, 0.0, 0.0, 0.0, 0.3610, 0.0];
        for (g, w) in p.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "top-k softmax {p:?}");
        }
        // Per row in a batch: each row keeps its own k largest.
        let batch = Tensor::from_slice(&[1.0f32, 5.0, 3.0, 9.0, 0.0, 4.0]).view([2, 3]); // [2, 3]
        let m = top_k_logits(&batch, 1);
        let finite: Vec<bool> = Vec::<f32>::try_from(m.flatten(0, -1)).unwrap().iter().map(|v| v.is_finite()).collect();
        assert_eq!(finite, vec![false, true, false, true, false, false]);
    }

    #[test]
    fn top_p_keeps_the_smallest_nucleus_of_the_toy_distribution() {
        // Book 5.3.1's probabilities: forward 0.5721, toward 0.3576, closer 0.0609, then < 0.005.
        let logits = toy_next_token_logits(Device::Cpu);
        let kept = |p: f64| -> Vec<usize> {
            let masked = vec(&top_p_logits(&logits, p));
            (0..9).filter(|&i| masked[i].is_finite()).collect()
        };
        assert_eq!(kept(0.5), vec![3], "0.5721 >= 0.5: forward alone");
        assert_eq!(kept(0.9), vec![3, 7], "0.5721 + 0.3576 = 0.9297 >= 0.9: forward and toward");
        assert_eq!(kept(0.95), vec![0, 3, 7], "0.9297 < 0.95, + closer 0.0609 = 0.9906");
        assert_eq!(kept(1.0), (0..9).collect::<Vec<_>>(), "top_p 1 keeps everything");
        let p = vec(&top_p_logits(&logits, 0.9).softmax(-1, Kind::Float));
        assert!((p[3] - 0.5721 / 0.9297).abs() < 1e-3 && (p[7] - 0.3576 / 0.9297).abs() < 1e-3, "renormalised 0.6154, 0.3846: {p:?}");
        // Per row in a batch.
        let batch = Tensor::from_slice(&[0.0f32, 10.0, 0.0, 1.0, 1.2, 0.0]).view([2, 3]); // [2, 3]
        let finite: Vec<bool> = Vec::<f32>::try_from(top_p_logits(&batch, 0.5).flatten(0, -1)).unwrap().iter().map(|v| v.is_finite()).collect();
        assert_eq!(finite, vec![false, true, false, true, true, false], "row 1: one token holds ~1; row 2: 0.472 < 0.5, + 0.386");
    }

    #[test]
    fn sampling_with_top_p_draws_only_from_the_nucleus() {
        let _rng = rng_lock();
        set_seed(123);
        let logits = toy_next_token_logits(Device::Cpu).view([1, 9]); // [1, 9]
        let mut counts = [0; 9];
        for _ in 0..300 {
            counts[Sampling { temperature: 1.0, top_k: None, top_p: Some(0.9) }.next_token(&logits).int64_value(&[0, 0]) as usize] += 1;
        }
        assert_eq!(counts[3] + counts[7], 300, "only forward and toward: {counts:?}");
        assert!(counts[3] > 120 && counts[7] > 60, "both drawn, about 61.5% / 38.5%: {counts:?}");
        assert_eq!(Sampling::greedy().next_token(&logits).int64_value(&[0, 0]), 3, "greedy: the argmax");
    }

    #[test]
    fn stop_sequences_cut_the_text_and_hold_back_what_may_start_one() {
        let stops = vec!["###".to_string(), "\n\nUser".to_string()];
        assert_eq!(scan_stop_sequences("Paris.### Instruction", &stops), StopScan::Stop(6));
        assert_eq!(scan_stop_sequences("Paris.\n\nUser: hi ###", &stops), StopScan::Stop(6), "the earliest stop");
        assert_eq!(scan_stop_sequences("Paris.#", &stops), StopScan::Emit(6), "'#' may begin '###'");
        assert_eq!(scan_stop_sequences("Paris.\n\nUs", &stops), StopScan::Emit(6));
        assert_eq!(scan_stop_sequences("Paris. #x", &stops), StopScan::Emit(9), "'#x' begins no stop");
        assert_eq!(scan_stop_sequences("caf\u{FFFD}", &[]), StopScan::Emit(3), "an unfinished character waits");
        assert_eq!(scan_stop_sequences("abc", &[String::new()]), StopScan::Emit(3), "an empty stop is ignored");
    }

    /// A "model" whose next-token logits are fixed: favours token `(last + 1) % vocab`.
    #[derive(Debug)]
    struct Counter {
        vocab: i64,
    }
    impl ModuleT for Counter {
        fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
            let next = (xs + 1).remainder(self.vocab); // [b, n]
            next.one_hot(self.vocab).to_kind(Kind::Float) * 10.0 // [b, n, vocab]
        }
    }

    #[test]
    fn greedy_generation_follows_the_argmax_and_stops_at_eos() {
        let model = Counter { vocab: 10 };
        let idx = Tensor::from_slice(&[3i64]).view([1, 1]);
        let out = generate(&model, &idx, 4, 8, 0.0, None, None);
        assert_eq!(Vec::<i64>::try_from(out.view([-1])).unwrap(), vec![3, 4, 5, 6, 7]);
        let out = generate(&model, &idx, 10, 8, 0.0, None, Some(6));
        assert_eq!(Vec::<i64>::try_from(out.view([-1])).unwrap(), vec![3, 4, 5], "stops before the eos id");
    }

    #[test]
    fn seeded_sampling_is_reproducible() {
        let model = Counter { vocab: 10 };
        let idx = Tensor::from_slice(&[3i64]).view([1, 1]);
        let run = |seed| {
            set_seed(seed);
            Vec::<i64>::try_from(generate(&model, &idx, 20, 8, 50.0, Some(5), None).view([-1])).unwrap()
        };
        let _rng = rng_lock();
        let (a, b, c) = (run(7), run(7), run(8));
        assert_eq!(a, b, "same seed, same tokens");
        assert_ne!(a, c, "another seed, other tokens (temperature 50 is nearly uniform over the top 5)");
    }
}
