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

/// One step of listing 5.4 after the model: keep the `top_k` largest logits (if given), then
/// sample from `softmax(logits / temperature)` when `temperature > 0` or take the argmax. `None`
/// when every sequence of the batch drew `eos_id`.
///
/// # Shapes
/// `logits: [batch, vocab]` → `[batch, 1]`
fn next_token(logits: &Tensor, temperature: f64, top_k: Option<i64>, eos_id: Option<i64>) -> Option<Tensor> {
    let logits = match top_k {
        Some(k) => top_k_logits(logits, k),
        None => logits.shallow_clone(),
    };
    let idx_next = if temperature > 0.0 {
        softmax_with_temperature(&logits, temperature).multinomial(1, false) // [batch, 1]
    } else {
        logits.argmax(-1, true) // [batch, 1]
    };
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
