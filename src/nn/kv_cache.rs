//! The KV cache (the book's bonus material for chapter 4, `ch04/03_kv-cache`): when a model
//! generates one token at a time, the keys and values of the earlier positions do not change, so
//! each attention layer keeps them and the model feeds only the new token, with its position
//! continuing from the number of positions cached.
//!
//! [`KvCache`] is the one cache every decoder of the crate uses (GPT-2's [`crate::nn::model::GptModel`],
//! Llama 3.2 and Qwen3); [`CachedLm`] is what a model implements to generate with it.

use tch::Tensor;

/// The keys and values of every attention layer for the positions seen so far.
///
/// A model's forward pass with the cache calls [`KvCache::update`] once per layer with the new
/// positions' keys and values, and then [`KvCache::advance`] once with the number of new
/// positions. [`KvCache::len`] is the position of the next token (the offset of its positional
/// embedding or rotary angle).
///
/// The book's cache concatenates each step's keys to the earlier ones (`torch.cat`), which
/// allocates and copies the whole cache for every token. This one keeps a buffer per layer with
/// room to spare (doubled when full, kept across [`KvCache::reset`]) and writes the new positions
/// into it, as the book's optimized version pre-allocates; `update` returns views of the filled part.
///
/// # Shapes
/// keys and values `[batch, kv_heads, num_tokens, head_dim]`; positions go along the token axis
/// (dimension 2).
#[derive(Debug)]
pub struct KvCache {
    /// Per layer, the key and value buffers `[batch, kv_heads, capacity, head_dim]`.
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: i64,
    computed: i64,
}

/// The first buffer's room, in positions.
const MIN_CAPACITY: i64 = 64;

impl KvCache {
    /// An empty cache for a model of `n_layers` attention layers.
    pub fn new(n_layers: usize) -> Self {
        Self { layers: (0..n_layers).map(|_| None).collect(), len: 0, computed: 0 }
    }

    /// The number of positions cached: the position index of the next token.
    pub fn len(&self) -> i64 {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of attention layers the cache holds.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// How many positions all forward passes through this cache computed since it was made
    /// (not reset by [`KvCache::reset`]): with a working cache, a prompt of `p` tokens and `n`
    /// generated tokens cost `p + n - 1` positions instead of about `n * (p + n / 2)`.
    pub fn positions_computed(&self) -> i64 {
        self.computed
    }

    /// Forget every cached key and value (before a new prompt). The buffers stay allocated for
    /// the next prompt; [`KvCache::clear`] frees them.
    pub fn reset(&mut self) {
        self.len = 0;
    }

    /// [`KvCache::reset`] and free the buffers' memory.
    pub fn clear(&mut self) {
        for layer in &mut self.layers {
            *layer = None;
        }
        self.len = 0;
    }

    /// The keys and values layer `layer` holds for the positions cached so far (views of its
    /// buffers); `None` before its first update.
    ///
    /// # Shapes
    /// `([batch, kv_heads, len, head_dim], [batch, kv_heads, len, head_dim])`
    pub fn keys_values(&self, layer: usize) -> Option<(Tensor, Tensor)> {
        let (k, v) = self.layers.get(layer)?.as_ref()?;
        Some((k.narrow(2, 0, self.len), v.narrow(2, 0, self.len))) // [batch, kv_heads, len, head_dim] each
    }

    /// The bytes the buffers of every layer hold now (keys and values, filled or not).
    pub fn allocated_bytes(&self) -> i64 {
        let bytes = |t: &Tensor| t.numel() as i64 * t.kind().elt_size_in_bytes() as i64;
        self.layers.iter().flatten().map(|(k, v)| bytes(k) + bytes(v)).sum()
    }

    /// Append the new positions' `keys` and `values` to layer `layer`'s cache and return all of
    /// that layer's keys and values (earlier positions first). The returned tensors are views of
    /// the layer's buffers: use them before the cache is reset and refilled (a model's forward
    /// pass does).
    ///
    /// # Shapes
    /// `keys`, `values`: `[batch, kv_heads, n_new, head_dim]` → `[batch, kv_heads, len + n_new, head_dim]` each
    pub fn update(&mut self, layer: usize, keys: Tensor, values: Tensor) -> (Tensor, Tensor) {
        let (n_layers, len) = (self.layers.len(), self.len);
        let slot = self.layers.get_mut(layer).unwrap_or_else(|| panic!("KvCache: layer {layer} of {n_layers}"));
        let (b, heads, n_new, head_dim) = keys.size4().expect("KvCache: keys must be [batch, kv_heads, n_new, head_dim]");
        let fits = |buf: &Tensor| {
            let size = buf.size();
            size[0] == b && size[1] == heads && size[3] == head_dim && size[2] >= len + n_new && buf.kind() == keys.kind() && buf.device() == keys.device()
        };
        if !slot.as_ref().is_some_and(|(k, _)| fits(k)) {
            // Grow (doubling) or start; the filled part moves into the new buffers.
            let capacity = (len + n_new).max(2 * slot.as_ref().map_or(0, |(k, _)| k.size()[2])).max(MIN_CAPACITY);
            let empty = || Tensor::empty([b, heads, capacity, head_dim], (keys.kind(), keys.device())); // [b, kv_heads, capacity, head_dim]
            let (k_buf, v_buf) = (empty(), empty());
            if let Some((k_old, v_old)) = slot.take().filter(|_| len > 0) {
                k_buf.narrow(2, 0, len).copy_(&k_old.narrow(2, 0, len));
                v_buf.narrow(2, 0, len).copy_(&v_old.narrow(2, 0, len));
            }
            *slot = Some((k_buf, v_buf));
        }
        let (k_buf, v_buf) = slot.as_ref().expect("the buffers were just made");
        k_buf.narrow(2, len, n_new).copy_(&keys); // [b, kv_heads, n_new, head_dim]
        v_buf.narrow(2, len, n_new).copy_(&values);
        (k_buf.narrow(2, 0, len + n_new), v_buf.narrow(2, 0, len + n_new)) // [b, kv_heads, len + n_new, head_dim] each
    }

    /// Record that a forward pass added `n_new` positions (call once per pass, after every layer).
    pub fn advance(&mut self, n_new: i64) {
        self.len += n_new;
        self.computed += n_new;
    }
}

/// A decoder that can run with a [`KvCache`]: the first call feeds the prompt, each later call
/// only the new tokens.
pub trait CachedLm {
    /// Logits of the positions in `ids`, which continue the positions already in `cache`
    /// (the cache is updated and advanced). Runs in eval mode.
    ///
    /// # Shapes
    /// `ids: [batch, n_new]` (int64) → logits `[batch, n_new, vocab_size]`
    fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Tensor;

    /// An empty cache sized for this model.
    fn new_cache(&self) -> KvCache;

    /// The longest sequence the model supports (its positional table or rotary table).
    fn context_length(&self) -> i64;
}

/// The logits of the token that follows `idx`, feeding `model` only what `cache` lacks: the
/// whole sequence when the cache is empty (a new prompt), then the last token while the context
/// has room. When it is full, the cache is reset and the last `context_length` tokens are fed
/// again: the window the uncached loop crops to (listing 4.8's `idx[:, -context_size:]`), so cached
/// and uncached generation give the same tokens, and past the context each step costs a full pass
/// as without the cache (the book's cached code stops there instead: its positions run out).
///
/// Call it with `idx` one token longer than at the previous call on the same cache, and reset
/// the cache before a new prompt.
///
/// # Shapes
/// `idx: [batch, num_tokens]` (int64) → `[batch, vocab_size]`
pub fn next_token_logits<M: CachedLm + ?Sized>(model: &M, cache: &mut KvCache, idx: &Tensor) -> Tensor {
    let num_tokens = idx.size()[1];
    let context_length = model.context_length();
    let new_ids = if !cache.is_empty() && cache.len() < context_length {
        assert_eq!(
            cache.len(),
            num_tokens - 1,
            "next_token_logits: the cache holds {} positions but the sequence has {num_tokens} tokens (reset it for a new prompt)",
            cache.len()
        );
        idx.narrow(1, num_tokens - 1, 1) // [batch, 1]
    } else {
        cache.reset();
        let start = (num_tokens - context_length).max(0);
        idx.narrow(1, start, num_tokens - start) // [batch, <= context_length]
    };
    model.forward_cached(&new_ids, cache).select(1, -1) // [batch, vocab_size]
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn update_concatenates_along_the_token_axis_and_reset_forgets() {
        let mut cache = KvCache::new(2);
        let kv = |n: i64| Tensor::ones([1, 2, n, 4], (Kind::Float, tch::Device::Cpu));
        let (k, v) = cache.update(0, kv(3), kv(3));
        assert_eq!((k.size(), v.size()), (vec![1, 2, 3, 4], vec![1, 2, 3, 4]));
        let _ = cache.update(1, kv(3), kv(3));
        cache.advance(3);
        let (k, _) = cache.update(0, kv(1), kv(1) * 2);
        assert_eq!(k.size(), vec![1, 2, 4, 4], "one new position appended to three");
        cache.advance(1);
        assert_eq!((cache.len(), cache.positions_computed()), (4, 4));
        cache.reset();
        assert!(cache.is_empty());
        assert_eq!(cache.positions_computed(), 4, "the count survives a reset");
        let (k, _) = cache.update(0, kv(2), kv(2));
        assert_eq!(k.size()[2], 2, "after reset the layer starts empty");
    }

    #[test]
    fn growing_past_the_buffer_keeps_every_position_in_order() {
        let mut cache = KvCache::new(1);
        let at = |p: i64, n: i64| {
            let pos = Tensor::arange_start(p, p + n, (Kind::Float, tch::Device::Cpu)).view([1, 1, n, 1]); // [1, 1, n, 1]
            pos.expand([2, 3, n, 5], false).contiguous() // [2, 3, n, 5]: every entry holds its position
        };
        let mut p = 0;
        for n in [5, 1, 70, 1, 200] {
            let (k, v) = cache.update(0, at(p, n), -at(p, n));
            cache.advance(n);
            p += n;
            let want = at(0, p);
            assert!(k.equal(&want) && v.equal(&-&want), "after {p} positions the keys and values are positions 0..{p}");
        }
        assert_eq!(cache.allocated_bytes(), 2 * (2 * 3 * 5 * 4) * 277, "64 positions, doubled to 128, then the 277 needed (more than double)");
        cache.clear();
        assert_eq!(cache.allocated_bytes(), 0, "clear frees the buffers");
    }
}
