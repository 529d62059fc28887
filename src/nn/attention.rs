//! Chapter 3, "Coding attention mechanisms".
//!
//! Section by section, as the book builds it up:
//!
//! | book section | here |
//! |---|---|
//! | 3.3 attention without trainable weights | [`your_journey_inputs`], [`attention_scores_for_query`], [`softmax_naive`], [`attention_scores_simple`], [`attention_weights_simple`], [`context_vectors_simple`] |
//! | 3.4.1 trainable weights, step by step; 3.4.2 compact class | [`SelfAttentionV1`] (`nn.Parameter(torch.rand(...))`) |
//! | 3.4.2 with `nn.Linear` | [`SelfAttentionV2`] |
//! | 3.5 causal mask and dropout on the attention weights | [`causal_mask`], [`CausalAttention`] |
//! | 3.6.1 stacking single heads | [`MultiHeadAttentionWrapper`] |
//! | 3.6.2 weight splits | [`MultiHeadAttention`], with [`AttentionImpl`] choosing the explicit path or libtorch's fused `scaled_dot_product_attention` |
//!
//! Parameter names are the book's (`W_query`, `W_key`, `W_value`, `out_proj`, `heads.0`), so a
//! module's `state_dict` keys in PyTorch and its [`tch::nn::VarStore`] names here are the same.

use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::nn::config::GptConfig;
use crate::nn::init;
use crate::nn::kv_cache::KvCache;
use crate::nn::layers::{Dropout, Linear};

/// The six words of the book's running example, "Your journey starts with one step".
pub const YOUR_JOURNEY_WORDS: [&str; 6] = ["Your", "journey", "starts", "with", "one", "step"];

/// The book's 3-dimensional embeddings of "Your journey starts with one step" (section 3.3.1).
///
/// # Shapes
/// `[6, 3]`: one row per word of [`YOUR_JOURNEY_WORDS`].
pub fn your_journey_inputs() -> Tensor {
    let rows: [[f32; 3]; 6] = [
        [0.43, 0.15, 0.89], // Your     (x^1)
        [0.55, 0.87, 0.66], // journey  (x^2)
        [0.57, 0.85, 0.64], // starts   (x^3)
        [0.22, 0.58, 0.33], // with     (x^4)
        [0.77, 0.25, 0.10], // one      (x^5)
        [0.05, 0.80, 0.55], // step     (x^6)
    ];
    Tensor::from_slice(rows.as_flattened()).view([6, 3]) // [6, 3]
}

/// Attention scores of one query (section 3.3.1): the dot product `ω_2i = x^(i) · q` of every
/// input with the query.
///
/// # Shapes
/// `inputs: [num_tokens, d_in]`, `query: [d_in]` → `[num_tokens]`
pub fn attention_scores_for_query(inputs: &Tensor, query: &Tensor) -> Tensor {
    inputs.matmul(query)
}

/// The softmax written out (section 3.3.1): `exp(x) / sum(exp(x))` over the last dimension.
/// It overflows for large inputs; [`Tensor::softmax`] subtracts the maximum first.
pub fn softmax_naive(x: &Tensor) -> Tensor {
    let e = x.exp();
    &e / e.sum_dim_intlist(-1, true, None)
}

/// All attention scores at once (section 3.3.2): `inputs @ inputs.T`.
///
/// # Shapes
/// `inputs: [num_tokens, d_in]` → `[num_tokens, num_tokens]` (row = query, column = key)
pub fn attention_scores_simple(inputs: &Tensor) -> Tensor {
    inputs.matmul(&inputs.tr())
}

/// The attention weights of section 3.3.2: each row of [`attention_scores_simple`] normalised
/// with a softmax, so it sums to 1.
///
/// # Shapes
/// `inputs: [num_tokens, d_in]` → `[num_tokens, num_tokens]`
pub fn attention_weights_simple(inputs: &Tensor) -> Tensor {
    attention_scores_simple(inputs).softmax(-1, None::<Kind>)
}

/// The context vectors of section 3.3.2: `attn_weights @ inputs`, each a weighted sum of all
/// inputs.
///
/// # Shapes
/// `inputs: [num_tokens, d_in]` → `[num_tokens, d_in]`
pub fn context_vectors_simple(inputs: &Tensor) -> Tensor {
    attention_weights_simple(inputs).matmul(inputs)
}

/// The causal mask of section 3.5: `true` above the diagonal (the future positions a query must
/// not see), as the book's `torch.triu(torch.ones(n, n), diagonal=1).bool()`.
///
/// # Shapes
/// `[context_length, context_length]`, kind `Bool`
pub fn causal_mask(context_length: i64, device: Device) -> Tensor {
    Tensor::ones([context_length, context_length], (Kind::Bool, device)).triu(1)
}

/// Scaled dot-product attention weights: `softmax(q k^T / sqrt(d_k))` with the future masked to
/// `-inf` when `mask` is given (the part shared by the chapter's classes). The queries are the
/// last `num_queries` of the `num_tokens` positions: all of them in a plain pass, the new ones
/// after a KV cache's earlier positions ([`MultiHeadAttention::forward_cached`]), whose mask rows
/// start at `num_tokens - num_queries`.
///
/// # Shapes
/// `queries: [..., num_queries, d_k]`, `keys: [..., num_tokens, d_k]`,
/// `mask: [>= num_tokens, >= num_tokens]` → `[..., num_queries, num_tokens]`
fn scaled_attention_weights(queries: &Tensor, keys: &Tensor, mask: Option<&Tensor>) -> Tensor {
    let mut attn_scores = queries.matmul(&keys.transpose(-2, -1)); // [..., num_queries, num_tokens]
    if let Some(mask) = mask {
        let num_tokens = keys.size()[keys.dim() - 2];
        let num_queries = queries.size()[queries.dim() - 2];
        // The mask is not in the VarStore, so `VarStore::set_device` does not move it: follow the scores.
        let rows = mask.narrow(0, num_tokens - num_queries, num_queries); // [num_queries, context_length]
        let mask_bool = rows.narrow(1, 0, num_tokens).to_device(attn_scores.device()); // [num_queries, num_tokens]
        let _ = attn_scores.masked_fill_(&mask_bool, f64::NEG_INFINITY);
    }
    let d_k = keys.size()[keys.dim() - 1] as f64;
    // In place: the same numbers as `attn_scores / sqrt(d_k)` without a second
    // [.., num_tokens, num_tokens] tensor (autograd allows it: dividing by a constant needs
    // neither its input nor its output for the backward pass).
    attn_scores /= d_k.sqrt();
    attn_scores.softmax(-1, None::<Kind>)
}

/// Self-attention with trainable weights as raw matrices (book's `SelfAttention_v1`, 3.4.2):
/// `W_query`, `W_key`, `W_value` drawn from U(0, 1) (`torch.rand`) in that order.
///
/// # Shapes
/// - `w_query`, `w_key`, `w_value`: `[d_in, d_out]`
/// - input `[num_tokens, d_in]` → output `[num_tokens, d_out]`
#[derive(Debug)]
pub struct SelfAttentionV1 {
    pub w_query: Tensor,
    pub w_key: Tensor,
    pub w_value: Tensor,
}

impl SelfAttentionV1 {
    /// Create `W_query`, `W_key`, `W_value` under `vs`.
    pub fn new(vs: &nn::Path, d_in: i64, d_out: i64) -> Self {
        let w_query = init::uniform_0_1(vs, "W_query", &[d_in, d_out]);
        let w_key = init::uniform_0_1(vs, "W_key", &[d_in, d_out]);
        let w_value = init::uniform_0_1(vs, "W_value", &[d_in, d_out]);
        Self { w_query, w_key, w_value }
    }
}

impl Module for SelfAttentionV1 {
    fn forward(&self, x: &Tensor) -> Tensor {
        let keys = x.matmul(&self.w_key); // [num_tokens, d_out]
        let queries = x.matmul(&self.w_query); // [num_tokens, d_out]
        let values = x.matmul(&self.w_value); // [num_tokens, d_out]
        let attn_weights = scaled_attention_weights(&queries, &keys, None);
        attn_weights.matmul(&values)
    }
}

/// Self-attention with `nn.Linear` projections (book's `SelfAttention_v2`, 3.4.2): better
/// initialisation, optional bias.
///
/// # Shapes
/// input `[num_tokens, d_in]` (or `[batch, num_tokens, d_in]`) → output `[..., d_out]`
#[derive(Debug)]
pub struct SelfAttentionV2 {
    pub w_query: Linear,
    pub w_key: Linear,
    pub w_value: Linear,
}

impl SelfAttentionV2 {
    /// Create `W_query`, `W_key`, `W_value` (in that order) under `vs`.
    pub fn new(vs: &nn::Path, d_in: i64, d_out: i64, qkv_bias: bool) -> Self {
        Self {
            w_query: Linear::new(&(vs / "W_query"), d_in, d_out, qkv_bias),
            w_key: Linear::new(&(vs / "W_key"), d_in, d_out, qkv_bias),
            w_value: Linear::new(&(vs / "W_value"), d_in, d_out, qkv_bias),
        }
    }

    /// The attention weights `softmax(q k^T / sqrt(d_out))` (section 3.5.1 starts from them).
    ///
    /// # Shapes
    /// `x: [..., num_tokens, d_in]` → `[..., num_tokens, num_tokens]`
    pub fn attention_weights(&self, x: &Tensor) -> Tensor {
        scaled_attention_weights(&self.w_query.forward(x), &self.w_key.forward(x), None)
    }
}

impl Module for SelfAttentionV2 {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.attention_weights(x).matmul(&self.w_value.forward(x))
    }
}

/// Causal self-attention (book's `CausalAttention`, 3.5.3): [`SelfAttentionV2`] with the
/// future masked out and dropout on the attention weights.
///
/// # Shapes
/// input `[batch, num_tokens, d_in]` with `num_tokens <= context_length` →
/// output `[batch, num_tokens, d_out]`
#[derive(Debug)]
pub struct CausalAttention {
    pub d_out: i64,
    pub w_query: Linear,
    pub w_key: Linear,
    pub w_value: Linear,
    pub dropout: Dropout,
    /// [`causal_mask`] of `context_length` (a buffer, not a parameter).
    pub mask: Tensor,
}

impl CausalAttention {
    /// Create `W_query`, `W_key`, `W_value` under `vs` and the `[context_length, context_length]`
    /// mask.
    pub fn new(vs: &nn::Path, d_in: i64, d_out: i64, context_length: i64, dropout: f64, qkv_bias: bool) -> Self {
        Self {
            d_out,
            w_query: Linear::new(&(vs / "W_query"), d_in, d_out, qkv_bias),
            w_key: Linear::new(&(vs / "W_key"), d_in, d_out, qkv_bias),
            w_value: Linear::new(&(vs / "W_value"), d_in, d_out, qkv_bias),
            dropout: Dropout::new(dropout),
            mask: causal_mask(context_length, vs.device()),
        }
    }

    /// The masked attention weights, after dropout when `train` is true.
    ///
    /// # Shapes
    /// `x: [batch, num_tokens, d_in]` → `[batch, num_tokens, num_tokens]`
    pub fn attention_weights(&self, x: &Tensor, train: bool) -> Tensor {
        check_context(x, &self.mask, "CausalAttention");
        let keys = self.w_key.forward(x); // [b, num_tokens, d_out]
        let queries = self.w_query.forward(x); // [b, num_tokens, d_out]
        let attn_weights = scaled_attention_weights(&queries, &keys, Some(&self.mask));
        self.dropout.forward_t(&attn_weights, train)
    }
}

impl ModuleT for CausalAttention {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let values = self.w_value.forward(x); // [b, num_tokens, d_out]
        self.attention_weights(x, train).matmul(&values)
    }
}

/// Panic with a clear message when `x` is longer than the mask allows.
fn check_context(x: &Tensor, mask: &Tensor, what: &str) {
    let num_tokens = x.size()[x.dim().saturating_sub(2)];
    let context_length = mask.size()[0];
    assert!(
        num_tokens <= context_length,
        "{what}: {num_tokens} tokens exceed the context length {context_length}"
    );
}

/// Multi-head attention by stacking single heads (book's `MultiHeadAttentionWrapper`, 3.6.1):
/// `num_heads` independent [`CausalAttention`] modules whose outputs are concatenated.
///
/// # Shapes
/// input `[batch, num_tokens, d_in]` → output `[batch, num_tokens, num_heads * d_out]`
#[derive(Debug)]
pub struct MultiHeadAttentionWrapper {
    /// The heads, registered as `heads.0`, `heads.1`, ...
    pub heads: Vec<CausalAttention>,
}

impl MultiHeadAttentionWrapper {
    /// Create `num_heads` heads of output size `d_out` each, in order, under `vs / "heads"`.
    pub fn new(
        vs: &nn::Path,
        d_in: i64,
        d_out: i64,
        context_length: i64,
        dropout: f64,
        num_heads: i64,
        qkv_bias: bool,
    ) -> Self {
        let heads_path = vs / "heads";
        let heads = (0..num_heads)
            .map(|i| CausalAttention::new(&(&heads_path / i), d_in, d_out, context_length, dropout, qkv_bias))
            .collect();
        Self { heads }
    }
}

impl ModuleT for MultiHeadAttentionWrapper {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let outs: Vec<Tensor> = self.heads.iter().map(|head| head.forward_t(x, train)).collect();
        Tensor::cat(&outs, -1) // [b, num_tokens, num_heads * d_out]
    }
}

/// How [`MultiHeadAttention`] computes `softmax(mask(q k^T) / sqrt(head_dim)) v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttentionImpl {
    /// The book's explicit steps: scores, mask with `-inf`, softmax, dropout, times values.
    #[default]
    Explicit,
    /// libtorch's fused `scaled_dot_product_attention` with `is_causal = true` (PyTorch's
    /// `F.scaled_dot_product_attention`). Same numbers within 1e-5 in eval mode; in training
    /// its dropout draws other random numbers than the explicit path.
    Sdpa,
}

/// Multi-head attention with weight splits (book's `MultiHeadAttention`, 3.6.2): one
/// `W_query`/`W_key`/`W_value` projection of size `d_out`, split into `num_heads` heads of
/// `head_dim = d_out / num_heads`, attended causally, recombined and projected by `out_proj`.
///
/// # Shapes
/// input `[batch, num_tokens, d_in]` with `num_tokens <= context_length` →
/// output `[batch, num_tokens, d_out]`
#[derive(Debug)]
pub struct MultiHeadAttention {
    pub d_out: i64,
    pub num_heads: i64,
    pub head_dim: i64,
    pub w_query: Linear,
    pub w_key: Linear,
    pub w_value: Linear,
    /// The output projection (with bias) that combines the heads.
    pub out_proj: Linear,
    pub dropout: Dropout,
    /// [`causal_mask`] of `context_length` (a buffer, not a parameter; the book registers it
    /// as `mask`, which loading ignores).
    pub mask: Tensor,
    /// Explicit steps or the fused kernel; [`AttentionImpl::Explicit`] by default.
    pub attn_impl: AttentionImpl,
}

impl MultiHeadAttention {
    /// Create `W_query`, `W_key`, `W_value`, `out_proj` (in that order) under `vs`.
    ///
    /// Panics when `d_out` is not divisible by `num_heads` (the book's assertion).
    pub fn new(
        vs: &nn::Path,
        d_in: i64,
        d_out: i64,
        context_length: i64,
        dropout: f64,
        num_heads: i64,
        qkv_bias: bool,
    ) -> Self {
        assert!(num_heads > 0 && d_out % num_heads == 0, "d_out ({d_out}) must be divisible by num_heads ({num_heads})");
        Self {
            d_out,
            num_heads,
            head_dim: d_out / num_heads,
            w_query: Linear::new(&(vs / "W_query"), d_in, d_out, qkv_bias),
            w_key: Linear::new(&(vs / "W_key"), d_in, d_out, qkv_bias),
            w_value: Linear::new(&(vs / "W_value"), d_in, d_out, qkv_bias),
            out_proj: Linear::new(&(vs / "out_proj"), d_out, d_out, true),
            dropout: Dropout::new(dropout),
            mask: causal_mask(context_length, vs.device()),
            attn_impl: AttentionImpl::Explicit,
        }
    }

    /// The attention module of a GPT block (chapter 4): `d_in = d_out = emb_dim`, `n_heads`
    /// heads, `drop_rate`, `qkv_bias` from `cfg`.
    pub fn from_config(vs: &nn::Path, cfg: &GptConfig) -> Self {
        Self::new(vs, cfg.emb_dim, cfg.emb_dim, cfg.context_length, cfg.drop_rate, cfg.n_heads, cfg.qkv_bias)
    }

    /// Project `x` and split into heads.
    ///
    /// # Shapes
    /// `x: [b, num_tokens, d_in]` → `[b, num_heads, num_tokens, head_dim]`
    fn split_heads(&self, proj: &Linear, x: &Tensor) -> Tensor {
        let (b, num_tokens, _d_in) = x.size3().expect("MultiHeadAttention input must be [batch, num_tokens, d_in]");
        proj.forward(x) // [b, num_tokens, d_out]
            .view([b, num_tokens, self.num_heads, self.head_dim]) // [b, num_tokens, num_heads, head_dim]
            .transpose(1, 2) // [b, num_heads, num_tokens, head_dim]
    }

    /// The heads side by side again: the inverse of [`Self::split_heads`].
    ///
    /// # Shapes
    /// `context_vec: [b, num_heads, num_tokens, head_dim]` → `[b, num_tokens, d_out]`
    fn combine_heads(&self, context_vec: &Tensor) -> Tensor {
        let (b, _num_heads, num_tokens, _head_dim) = context_vec.size4().expect("context vectors must be [b, num_heads, num_tokens, head_dim]");
        context_vec
            .transpose(1, 2) // [b, num_tokens, num_heads, head_dim]
            .contiguous()
            .view([b, num_tokens, self.d_out]) // [b, num_tokens, d_out]
    }

    /// `softmax(q k^T / sqrt(head_dim)) v` for every head, the way `attn_impl` says: the book's
    /// explicit steps (scores, the causal mask when `causal`, softmax, dropout when `train`, times
    /// the values) or libtorch's fused kernel.
    ///
    /// # Shapes
    /// `queries: [b, num_heads, num_queries, head_dim]`, `keys`, `values: [b, num_heads,
    /// num_tokens, head_dim]` → `[b, num_heads, num_queries, head_dim]`
    fn attend(&self, queries: &Tensor, keys: &Tensor, values: &Tensor, causal: bool, train: bool) -> Tensor {
        match self.attn_impl {
            AttentionImpl::Explicit => {
                let attn_weights = scaled_attention_weights(queries, keys, causal.then_some(&self.mask));
                self.dropout.forward_t(&attn_weights, train).matmul(values)
            }
            AttentionImpl::Sdpa => {
                let dropout_p = if train { self.dropout.p } else { 0.0 };
                Tensor::scaled_dot_product_attention(queries, keys, values, None::<Tensor>, dropout_p, causal, None, false)
            }
        }
    }

    /// The output at the last position only: the last row of `forward_t(x, train)`, computing
    /// only what that row needs. Keys and values need every position, but the query, its row of
    /// attention weights and `out_proj` need only the last one; the last row of the causal mask
    /// hides nothing, so no mask is applied. Both `attn_impl` paths. (With dropout on, its mask
    /// is drawn for this shape, so it differs from a full pass's; chapter 6 fine-tunes without.)
    ///
    /// # Shapes
    /// `x: [b, num_tokens, d_in]` → `[b, d_out]`
    pub fn forward_last(&self, x: &Tensor, train: bool) -> Tensor {
        check_context(x, &self.mask, "MultiHeadAttention");
        let (_b, num_tokens, _d_in) = x.size3().expect("MultiHeadAttention input must be [batch, num_tokens, d_in]");
        let keys = self.split_heads(&self.w_key, x); // [b, num_heads, num_tokens, head_dim]
        let values = self.split_heads(&self.w_value, x); // [b, num_heads, num_tokens, head_dim]
        let queries = self.split_heads(&self.w_query, &x.narrow(1, num_tokens - 1, 1)); // [b, num_heads, 1, head_dim]
        let context_vec = self.attend(&queries, &keys, &values, false, train); // [b, num_heads, 1, head_dim]
        self.out_proj.forward(&self.combine_heads(&context_vec)).squeeze_dim(1) // [b, d_out]
    }

    /// Attention over the cached positions and the new ones (the book's bonus KV cache for
    /// chapter 4): project the new positions of `x`, append their keys and values to layer
    /// `layer` of `cache` ([`KvCache::update`]) and let each new query attend to every cached
    /// position and to the new ones up to itself. Eval mode (no dropout). The caller advances the
    /// cache after the last layer.
    ///
    /// # Shapes
    /// `x: [b, n_new, d_in]` with `cache.len() + n_new <= context_length` → `[b, n_new, d_out]`
    pub fn forward_cached(&self, x: &Tensor, cache: &mut KvCache, layer: usize) -> Tensor {
        let (_b, n_new, _d_in) = x.size3().expect("MultiHeadAttention input must be [batch, num_tokens, d_in]");
        let start = cache.len();
        let context_length = self.mask.size()[0];
        assert!(
            start + n_new <= context_length,
            "MultiHeadAttention: {start} cached + {n_new} new positions exceed the context length {context_length}"
        );
        let keys_new = self.split_heads(&self.w_key, x); // [b, num_heads, n_new, head_dim]
        let values_new = self.split_heads(&self.w_value, x); // [b, num_heads, n_new, head_dim]
        let queries = self.split_heads(&self.w_query, x); // [b, num_heads, n_new, head_dim]
        let (keys, values) = cache.update(layer, keys_new, values_new); // [b, num_heads, start + n_new, head_dim] each
        // One query sees every position (the last row of the causal mask hides nothing); several
        // need their rows of the mask, which the explicit steps cut themselves and the fused
        // kernel's `is_causal` gets right only from position 0 (it aligns the mask to the first key).
        let causal = n_new > 1;
        let context_vec = if !causal || start == 0 || self.attn_impl == AttentionImpl::Explicit {
            self.attend(&queries, &keys, &values, causal, false)
        } else {
            let visible = self.mask.narrow(0, start, n_new).narrow(1, 0, start + n_new).logical_not(); // [n_new, start + n_new]
            let visible = visible.to_device(queries.device());
            Tensor::scaled_dot_product_attention(&queries, &keys, &values, Some(visible), 0.0, false, None, false)
        }; // [b, num_heads, n_new, head_dim]
        self.out_proj.forward(&self.combine_heads(&context_vec)) // [b, n_new, d_out]
    }

    /// The per-head attention weights of the explicit path, after dropout when `train` is true
    /// (what the chapter 3 notebook draws as a heat map).
    ///
    /// # Shapes
    /// `x: [b, num_tokens, d_in]` → `[b, num_heads, num_tokens, num_tokens]`
    pub fn attention_weights(&self, x: &Tensor, train: bool) -> Tensor {
        check_context(x, &self.mask, "MultiHeadAttention");
        let keys = self.split_heads(&self.w_key, x); // [b, num_heads, num_tokens, head_dim]
        let queries = self.split_heads(&self.w_query, x); // [b, num_heads, num_tokens, head_dim]
        let attn_weights = scaled_attention_weights(&queries, &keys, Some(&self.mask));
        self.dropout.forward_t(&attn_weights, train)
    }
}

impl ModuleT for MultiHeadAttention {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        check_context(x, &self.mask, "MultiHeadAttention");
        let keys = self.split_heads(&self.w_key, x); // [b, num_heads, num_tokens, head_dim]
        let queries = self.split_heads(&self.w_query, x); // [b, num_heads, num_tokens, head_dim]
        let values = self.split_heads(&self.w_value, x); // [b, num_heads, num_tokens, head_dim]
        let context_vec = self.attend(&queries, &keys, &values, true, train); // [b, num_heads, num_tokens, head_dim]
        self.out_proj.forward(&self.combine_heads(&context_vec)) // [b, num_tokens, d_out]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::device::{rng_lock, set_seed};

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    fn assert_close(got: &Tensor, want: &[f32], tol: f32, what: &str) {
        let got = values(got);
        assert_eq!(got.len(), want.len(), "{what}: number of values");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tol, "{what}: got {got:?}, want {want:?}");
        }
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        f64::try_from((a - b).abs().max()).unwrap()
    }

    #[test]
    fn simple_attention_reproduces_the_books_numbers() {
        let inputs = your_journey_inputs();
        let query = inputs.get(1); // "journey"
        let scores = attention_scores_for_query(&inputs, &query);
        assert_close(&scores, &[0.9544, 1.4950, 1.4754, 0.8434, 0.7070, 1.0865], 5e-5, "scores of query 2");
        let naive = softmax_naive(&scores);
        assert_close(&naive, &[0.1385, 0.2379, 0.2333, 0.1240, 0.1082, 0.1581], 5e-5, "weights of query 2");
        let context = naive.matmul(&inputs);
        assert_close(&context, &[0.4419, 0.6515, 0.5683], 5e-5, "context vector 2");

        let all_scores = attention_scores_simple(&inputs);
        assert!(max_diff(&all_scores.get(1), &scores) < 1e-6, "row 2 of the score matrix is query 2's scores");
        let weights = attention_weights_simple(&inputs);
        let row_sums = weights.sum_dim_intlist(-1, false, None);
        assert!(max_diff(&row_sums, &Tensor::ones([6], (Kind::Float, Device::Cpu))) < 1e-6, "rows sum to 1");
        assert_close(&context_vectors_simple(&inputs).get(1), &[0.4419, 0.6515, 0.5683], 5e-5, "context row 2");
        assert_close(&context_vectors_simple(&inputs).get(0), &[0.4421, 0.5931, 0.5790], 5e-5, "context row 1");
    }

    #[test]
    fn self_attention_v1_and_v2_reproduce_the_books_outputs() {
        let _rng = rng_lock();
        let inputs = your_journey_inputs();
        set_seed(123);
        let vs = nn::VarStore::new(Device::Cpu);
        let sa_v1 = SelfAttentionV1::new(&vs.root(), 3, 2);
        let want_v1 = [0.2996, 0.8053, 0.3061, 0.8210, 0.3058, 0.8203, 0.2948, 0.7939, 0.2927, 0.7891, 0.2990, 0.8040];
        assert_close(&sa_v1.forward(&inputs), &want_v1, 5e-5, "SelfAttention_v1 after seed 123");

        set_seed(789);
        let vs = nn::VarStore::new(Device::Cpu);
        let sa_v2 = SelfAttentionV2::new(&vs.root(), 3, 2, false);
        let want_v2 = [-0.0739, 0.0713, -0.0748, 0.0703, -0.0749, 0.0702, -0.0760, 0.0685, -0.0763, 0.0679, -0.0754, 0.0693];
        assert_close(&sa_v2.forward(&inputs), &want_v2, 5e-5, "SelfAttention_v2 after seed 789");
        let first_row = [0.1921, 0.1646, 0.1652, 0.1550, 0.1721, 0.1510];
        assert_close(&sa_v2.attention_weights(&inputs).get(0), &first_row, 5e-5, "v2 attention weights row 1");
    }

    #[test]
    fn names_are_the_books_state_dict_keys() {
        let _rng = rng_lock(); // creating parameters draws random numbers
        let vs = nn::VarStore::new(Device::Cpu);
        let _mha = MultiHeadAttention::new(&(vs.root() / "att"), 4, 4, 8, 0.0, 2, false);
        let _wrap = MultiHeadAttentionWrapper::new(&(vs.root() / "wrap"), 4, 2, 8, 0.0, 2, true);
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        let want = [
            "att.W_key.weight",
            "att.W_query.weight",
            "att.W_value.weight",
            "att.out_proj.bias",
            "att.out_proj.weight",
            "wrap.heads.0.W_key.bias",
            "wrap.heads.0.W_key.weight",
            "wrap.heads.0.W_query.bias",
            "wrap.heads.0.W_query.weight",
            "wrap.heads.0.W_value.bias",
            "wrap.heads.0.W_value.weight",
            "wrap.heads.1.W_key.bias",
            "wrap.heads.1.W_key.weight",
            "wrap.heads.1.W_query.bias",
            "wrap.heads.1.W_query.weight",
            "wrap.heads.1.W_value.bias",
            "wrap.heads.1.W_value.weight",
        ];
        assert_eq!(names, want);
    }

    #[test]
    fn causal_attention_masks_the_future_and_reproduces_the_book() {
        let _rng = rng_lock();
        let inputs = your_journey_inputs();
        let batch = Tensor::stack(&[&inputs, &inputs], 0); // [2, 6, 3]
        set_seed(123);
        let vs = nn::VarStore::new(Device::Cpu);
        let ca = CausalAttention::new(&vs.root(), 3, 2, 6, 0.0, false);
        let out = ca.forward_t(&batch, false);
        assert_eq!(out.size(), [2, 6, 2]);
        // Book section 3.5.3 (torch.manual_seed(123); CausalAttention(3, 2, 6, 0.0)).
        let want = [-0.4519, 0.2216, -0.5874, 0.0058, -0.6300, -0.0632, -0.5675, -0.0843, -0.5526, -0.0981, -0.5299, -0.1081];
        assert_close(&out.get(0), &want, 5e-5, "CausalAttention after seed 123");
        let weights = ca.attention_weights(&batch, false).get(0);
        let upper = weights.triu(1);
        assert_eq!(f64::try_from(upper.abs().sum(Kind::Float)).unwrap(), 0.0, "weights above the diagonal are zero");
        let sums = weights.sum_dim_intlist(-1, false, None);
        assert!(max_diff(&sums, &Tensor::ones([6], (Kind::Float, Device::Cpu))) < 1e-6, "rows sum to 1");
    }

    #[test]
    fn multi_head_modules_reproduce_the_book() {
        let _rng = rng_lock();
        let inputs = your_journey_inputs();
        let batch = Tensor::stack(&[&inputs, &inputs], 0); // [2, 6, 3]
        set_seed(123);
        let vs = nn::VarStore::new(Device::Cpu);
        let wrapper = MultiHeadAttentionWrapper::new(&vs.root(), 3, 2, 6, 0.0, 2, false);
        let out = wrapper.forward_t(&batch, false);
        assert_eq!(out.size(), [2, 6, 4]);
        // Book section 3.6.1, first two rows of the first batch element.
        assert_close(&out.get(0).narrow(0, 0, 2), &[-0.4519, 0.2216, 0.4772, 0.1063, -0.5874, 0.0058, 0.5891, 0.3257], 5e-5, "wrapper");

        set_seed(123);
        let vs = nn::VarStore::new(Device::Cpu);
        let mha = MultiHeadAttention::new(&vs.root(), 3, 2, 6, 0.0, 2, false);
        let out = mha.forward_t(&batch, false);
        assert_eq!(out.size(), [2, 6, 2]);
        // Book section 3.6.2.
        let want = [0.3190, 0.4858, 0.2943, 0.3897, 0.2856, 0.3593, 0.2693, 0.3873, 0.2639, 0.3928, 0.2575, 0.4028];
        assert_close(&out.get(0), &want, 5e-5, "MultiHeadAttention after seed 123");
    }

    /// A random `[batch, num_tokens, d_in]` input (draws: call with the RNG lock held).
    fn random_input(batch: i64, num_tokens: i64, d_in: i64) -> Tensor {
        Tensor::randn([batch, num_tokens, d_in], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn wrapper_equals_weight_split_attention_with_the_same_weights() {
        let _rng = rng_lock();
        set_seed(11);
        let (d_in, head_dim, num_heads) = (5, 2, 3);
        let vs = nn::VarStore::new(Device::Cpu);
        let wrapper = MultiHeadAttentionWrapper::new(&(vs.root() / "w"), d_in, head_dim, 8, 0.0, num_heads, true);
        let mha = MultiHeadAttention::new(&(vs.root() / "m"), d_in, head_dim * num_heads, 8, 0.0, num_heads, true);
        tch::no_grad(|| {
            // Stack the heads' projections: rows [h * head_dim, (h + 1) * head_dim) belong to head h.
            for (ours, pick) in [
                (&mha.w_query, (|h: &CausalAttention| &h.w_query) as fn(&CausalAttention) -> &Linear),
                (&mha.w_key, |h| &h.w_key),
                (&mha.w_value, |h| &h.w_value),
            ] {
                let weights: Vec<&Tensor> = wrapper.heads.iter().map(|h| &pick(h).weight).collect();
                let biases: Vec<&Tensor> = wrapper.heads.iter().map(|h| pick(h).bias.as_ref().unwrap()).collect();
                ours.weight.shallow_clone().copy_(&Tensor::cat(&weights, 0)); // [num_heads * head_dim, d_in]
                ours.bias.as_ref().unwrap().shallow_clone().copy_(&Tensor::cat(&biases, 0));
            }
            // An identity out_proj, so the heads' outputs are only concatenated.
            mha.out_proj.weight.shallow_clone().copy_(&Tensor::eye(6, (Kind::Float, Device::Cpu)));
            let _ = mha.out_proj.bias.as_ref().unwrap().shallow_clone().zero_();
        });
        let x = random_input(2, 7, d_in);
        let (a, b) = (wrapper.forward_t(&x, false), mha.forward_t(&x, false));
        assert_eq!(a.size(), [2, 7, 6]);
        assert!(max_diff(&a, &b) < 1e-6, "wrapper and weight-split attention differ by {}", max_diff(&a, &b));
    }

    #[test]
    fn sdpa_equals_the_explicit_path_in_eval_mode() {
        let _rng = rng_lock();
        set_seed(12);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut mha = MultiHeadAttention::new(&vs.root(), 64, 64, 32, 0.1, 8, true);
        let x = random_input(3, 20, 64);
        let explicit = mha.forward_t(&x, false);
        mha.attn_impl = AttentionImpl::Sdpa;
        let sdpa = mha.forward_t(&x, false);
        assert_eq!(sdpa.size(), [3, 20, 64]);
        assert!(max_diff(&explicit, &sdpa) < 1e-5, "SDPA differs from the explicit path by {}", max_diff(&explicit, &sdpa));
    }

    #[test]
    fn forward_last_is_the_last_row_of_the_full_pass() {
        let _rng = rng_lock();
        set_seed(15);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut mha = MultiHeadAttention::new(&vs.root(), 16, 16, 12, 0.0, 4, true);
        let x = random_input(3, 9, 16).set_requires_grad(true);
        for attn_impl in [AttentionImpl::Explicit, AttentionImpl::Sdpa] {
            mha.attn_impl = attn_impl;
            let full = mha.forward_t(&x, false).select(1, -1); // [3, 16]
            let last = mha.forward_last(&x, false);
            assert_eq!(last.size(), [3, 16]);
            assert!(max_diff(&full, &last) < 1e-6, "{attn_impl:?}: forward_last differs by {}", max_diff(&full, &last));
            let inputs = [&x, &mha.w_key.weight, &mha.w_query.weight];
            let want = Tensor::run_backward(&[full.sum(Kind::Float)], &inputs, false, false);
            let got = Tensor::run_backward(&[last.sum(Kind::Float)], &inputs, false, false);
            for (name, (g, w)) in ["x", "W_key", "W_query"].iter().zip(got.iter().zip(&want)) {
                assert!(max_diff(g, w) < 1e-6, "{attn_impl:?}: gradient of {name} differs by {}", max_diff(g, w));
            }
        }
    }

    #[test]
    fn changing_later_tokens_leaves_earlier_outputs_unchanged() {
        let _rng = rng_lock();
        set_seed(13);
        let vs = nn::VarStore::new(Device::Cpu);
        let ca = CausalAttention::new(&(vs.root() / "ca"), 8, 8, 16, 0.0, false);
        let mut mha = MultiHeadAttention::new(&(vs.root() / "mha"), 8, 8, 16, 0.0, 2, false);
        let x = random_input(2, 10, 8);
        let t = 5; // positions 0..=t are kept, the rest replaced
        let y = Tensor::cat(&[x.narrow(1, 0, t + 1), random_input(2, 10 - t - 1, 8)], 1); // [2, 10, 8]
        let head = |o: Tensor| o.narrow(1, 0, t + 1);
        assert!(max_diff(&head(ca.forward_t(&x, false)), &head(ca.forward_t(&y, false))) < 1e-6, "CausalAttention");
        for attn_impl in [AttentionImpl::Explicit, AttentionImpl::Sdpa] {
            mha.attn_impl = attn_impl;
            let (a, b) = (mha.forward_t(&x, false), mha.forward_t(&y, false));
            assert!(max_diff(&head(a.shallow_clone()), &head(b.shallow_clone())) < 1e-6, "{attn_impl:?}: earlier outputs changed");
            assert!(max_diff(&a.narrow(1, t + 1, 1), &b.narrow(1, t + 1, 1)) > 1e-4, "{attn_impl:?}: position t+1 must change");
        }
    }

    #[test]
    fn attention_dropout_acts_only_in_training_mode() {
        let _rng = rng_lock();
        set_seed(14);
        let vs = nn::VarStore::new(Device::Cpu);
        let mha = MultiHeadAttention::new(&vs.root(), 8, 8, 16, 0.5, 2, false);
        let x = random_input(1, 6, 8);
        let eval = mha.attention_weights(&x, false);
        assert!(eval.equal(&mha.attention_weights(&x, false)), "eval weights are deterministic");
        let train = mha.attention_weights(&x, true);
        let zeros_eval = i64::try_from(eval.eq(0.0).sum(Kind::Int64)).unwrap();
        let zeros_train = i64::try_from(train.eq(0.0).sum(Kind::Int64)).unwrap();
        // Eval: only the 15 masked entries per head are zero; train: about half of the rest too.
        assert_eq!(zeros_eval, 2 * 15, "eval weights: only the causal mask's zeros");
        assert!(zeros_train > zeros_eval + 10, "train mode must drop weights ({zeros_train} zeros)");
        // Kept weights are scaled by 1 / (1 - p) = 2.
        let kept = train.ne(0.0);
        let ratio = train.masked_select(&kept) / eval.masked_select(&kept);
        assert!(max_diff(&ratio, &Tensor::full_like(&ratio, 2.0)) < 1e-5, "kept weights are doubled");
        assert!(mha.forward_t(&x, false).equal(&mha.forward_t(&x, false)), "eval forward is deterministic");
        assert!(max_diff(&mha.forward_t(&x, true), &mha.forward_t(&x, false)) > 1e-4, "train forward differs");
    }

    #[test]
    fn outputs_have_the_documented_shapes() {
        let _rng = rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let x2 = Tensor::randn([6, 3], (Kind::Float, Device::Cpu));
        let x3 = random_input(4, 6, 3);
        assert_eq!(SelfAttentionV1::new(&(vs.root() / "v1"), 3, 2).forward(&x2).size(), [6, 2]);
        assert_eq!(SelfAttentionV2::new(&(vs.root() / "v2"), 3, 2, false).forward(&x2).size(), [6, 2]);
        assert_eq!(CausalAttention::new(&(vs.root() / "ca"), 3, 2, 6, 0.0, false).forward_t(&x3, true).size(), [4, 6, 2]);
        let wrapper = MultiHeadAttentionWrapper::new(&(vs.root() / "w"), 3, 2, 6, 0.0, 3, false);
        assert_eq!(wrapper.forward_t(&x3, false).size(), [4, 6, 6]);
        let mha = MultiHeadAttention::new(&(vs.root() / "m"), 3, 4, 6, 0.0, 2, false);
        assert_eq!(mha.forward_t(&x3, false).size(), [4, 6, 4]);
        assert_eq!(mha.attention_weights(&x3, false).size(), [4, 2, 6, 6]);
        assert_eq!(mha.head_dim, 2);
    }

    #[test]
    #[should_panic(expected = "exceed the context length")]
    fn inputs_longer_than_the_context_are_refused() {
        let _rng = rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let mha = MultiHeadAttention::new(&vs.root(), 4, 4, 3, 0.0, 2, false);
        let _ = mha.forward_t(&Tensor::zeros([1, 4, 4], (Kind::Float, Device::Cpu)), false);
    }
}
