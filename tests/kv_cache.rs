//! The KV cache of chapter 4's bonus material (`ch04/03_kv-cache`) on the GPT model: generation
//! with the cache gives the same ids as without it (greedy and sampled, before and past the context
//! length), computes one position per new token, and starts afresh for each prompt.

use llm_from_scratch::bonus_kv_cache::{
    generate, generate_cached, generate_text_simple, generate_text_simple_cached, next_token_logits, AttentionImpl, CachedLm,
    GptConfig, GptModel,
};
use llm_from_scratch::{rng_lock, set_seed};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

/// A small model with every feature on (qkv bias, several heads and blocks) and a context of 16
/// tokens, so that generation runs past it.
fn small_model(vs: &nn::VarStore) -> GptModel {
    let cfg = GptConfig { vocab_size: 97, context_length: 16, emb_dim: 32, n_heads: 4, n_layers: 2, drop_rate: 0.1, qkv_bias: true };
    GptModel::new(&vs.root(), &cfg)
}

fn ids(t: &Tensor) -> Vec<Vec<i64>> {
    Vec::<Vec<i64>>::try_from(t).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).unwrap()
}

#[test]
fn cached_greedy_generation_gives_the_books_ids_with_one_position_per_token() {
    let cfg = GptConfig::gpt2_124m();
    let _rng = rng_lock();
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = GptModel::new(&vs.root(), &cfg);
    // "Hello, I am"; the book's greedy continuation from the seed-123 GPT-124M (chapter 4.7).
    let encoded = Tensor::from_slice(&[15496i64, 11, 314, 716]).unsqueeze(0); // [1, 4]
    let want = [15496, 11, 314, 716, 27018, 24086, 47843, 30961, 42348, 7267, 49706, 43231, 47062, 34657];
    let mut cache = model.new_cache();
    let out = generate_text_simple_cached(&model, &mut cache, &encoded, 10);
    assert_eq!(ids(&out)[0], want, "cached greedy ids from the seed-123 GPT-124M");
    assert_eq!(cache.positions_computed(), 4 + 10 - 1, "the prompt once, then one position per new token but the last");
    assert_eq!(cache.len(), 4 + 10 - 1, "the cache holds every position fed");
    let out = generate_cached(&model, &mut cache, &encoded, 10, 0.0, None, None);
    assert_eq!(ids(&out)[0], want, "generate_cached at temperature 0");
    assert_eq!(cache.positions_computed(), 2 * 13, "the count goes on across prompts");
    // The uncached loop feeds 4, 5, ..., 13 positions: 85 for the same 10 tokens.
    let uncached: i64 = (4..14).sum();
    assert_eq!(uncached, 85);
}

#[test]
fn cached_and_uncached_generation_agree_past_the_context_length() {
    let _rng = rng_lock();
    set_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = small_model(&vs);
    let prompt = Tensor::from_slice2(&[[5i64, 9, 2], [40, 41, 42]]); // [2, 3]
    for attn_impl in [AttentionImpl::Explicit, AttentionImpl::Sdpa] {
        model.set_attention_impl(attn_impl);
        let uncached = generate_text_simple(&model, &prompt, 40, 16);
        let mut cache = model.new_cache();
        let cached = generate_text_simple_cached(&model, &mut cache, &prompt, 40);
        assert_eq!(ids(&cached), ids(&uncached), "{attn_impl:?}: greedy ids, 3 + 40 tokens with a context of 16");
        // The prompt (3) and 13 single tokens fill the context (16); each of the 26 later steps
        // feeds the last 16 tokens again, the window the uncached loop crops to.
        assert_eq!(cache.positions_computed(), 16 + 26 * 16, "{attn_impl:?}: positions computed");
        // A prompt longer than the context is cropped as the uncached loop crops it.
        let long = Tensor::arange(20, (tch::Kind::Int64, Device::Cpu)).unsqueeze(0); // [1, 20]
        let uncached = generate_text_simple(&model, &long, 5, 16);
        let cached = generate_text_simple_cached(&model, &mut cache, &long, 5);
        assert_eq!(ids(&cached), ids(&uncached), "{attn_impl:?}: a 20-token prompt");
    }
}

#[test]
fn cached_sampling_draws_the_same_tokens_under_the_same_seed() {
    let _rng = rng_lock();
    set_seed(11);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = small_model(&vs);
    let prompt = Tensor::from_slice2(&[[1i64, 2, 3, 4]]); // [1, 4]
    let mut cache = model.new_cache();
    for (temperature, top_k) in [(1.0, None), (1.4, Some(25)), (0.7, Some(5))] {
        set_seed(123);
        let uncached = generate(&model, &prompt, 30, 16, temperature, top_k, None);
        set_seed(123);
        let cached = generate_cached(&model, &mut cache, &prompt, 30, temperature, top_k, None);
        assert_eq!(ids(&cached), ids(&uncached), "temperature {temperature}, top-k {top_k:?}: sampled ids");
        let distinct: std::collections::HashSet<i64> = ids(&cached)[0][4..].iter().copied().collect();
        assert!(distinct.len() > 3, "temperature {temperature}: sampling draws varied tokens, got {distinct:?}");
    }
    // An eos id stops both at the same place.
    set_seed(123);
    let full = generate_cached(&model, &mut cache, &prompt, 30, 1.0, None, None);
    let eos = ids(&full)[0][10];
    set_seed(123);
    let uncached = generate(&model, &prompt, 30, 16, 1.0, None, Some(eos));
    set_seed(123);
    let cached = generate_cached(&model, &mut cache, &prompt, 30, 1.0, None, Some(eos));
    assert_eq!(ids(&cached), ids(&uncached), "stopping at eos {eos}");
    assert!(ids(&cached)[0].len() <= 10, "stops before the eos token at index 10");
}

#[test]
fn forward_cached_in_chunks_gives_the_full_pass_logits() {
    let _rng = rng_lock();
    set_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = small_model(&vs);
    let seq = Tensor::from_slice2(&[[3i64, 1, 4, 1, 5, 9, 2, 6, 5, 3], [2, 7, 1, 8, 2, 8, 1, 8, 2, 8]]); // [2, 10]
    for attn_impl in [AttentionImpl::Explicit, AttentionImpl::Sdpa] {
        model.set_attention_impl(attn_impl);
        let full = tch::no_grad(|| model.forward_t(&seq, false)); // [2, 10, 97]
        let mut cache = model.new_cache();
        let mut start = 0;
        // Chunks of 3, 4 (several new positions after cached ones: the offset mask), 1, 1, 1.
        for n in [3, 4, 1, 1, 1] {
            let logits = model.forward_cached(&seq.narrow(1, start, n), &mut cache);
            let want = full.narrow(1, start, n);
            assert!(max_diff(&logits, &want) < 1e-5, "{attn_impl:?}: positions {start}..{}: {}", start + n, max_diff(&logits, &want));
            start += n;
            assert_eq!(cache.len(), start, "{attn_impl:?}: the cache advances by the chunk");
        }
        cache.reset();
        let again = model.forward_cached(&seq.narrow(1, 0, 2), &mut cache);
        assert!(max_diff(&again, &full.narrow(1, 0, 2)) < 1e-5, "{attn_impl:?}: after reset positions start at 0 again");
    }
}

#[test]
fn one_cache_serves_prompt_after_prompt() {
    let _rng = rng_lock();
    set_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = small_model(&vs);
    let (a, b) = (Tensor::from_slice2(&[[10i64, 20, 30, 40, 50]]), Tensor::from_slice2(&[[60i64, 70]]));
    let mut shared = model.new_cache();
    let _ = generate_text_simple_cached(&model, &mut shared, &a, 6);
    let after_a = generate_text_simple_cached(&model, &mut shared, &b, 6);
    let mut fresh = model.new_cache();
    let alone = generate_text_simple_cached(&model, &mut fresh, &b, 6);
    assert_eq!(ids(&after_a), ids(&alone), "a used cache gives the same ids as a new one");
    assert_eq!(shared.positions_computed(), (5 + 6 - 1) + (2 + 6 - 1), "positions of both prompts");
}

#[test]
#[should_panic(expected = "reset it for a new prompt")]
fn a_stale_cache_is_refused() {
    let _rng = rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = small_model(&vs);
    let mut cache = model.new_cache();
    let _ = next_token_logits(&model, &mut cache, &Tensor::from_slice2(&[[1i64, 2, 3]]));
    // Three positions cached, but this "next" sequence is another prompt of five tokens.
    let _ = next_token_logits(&model, &mut cache, &Tensor::from_slice2(&[[1i64, 2, 3, 4, 5]]));
}
