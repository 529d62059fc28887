//! The parts of a modern decoder (the book's bonus material for chapter 5,
//! `ch05/07_gpt_to_llama` and `ch05/11_qwen3`): what Llama 3.2 and Qwen3 changed in GPT-2's
//! transformer block, one part at a time.
//!
//! | GPT-2 (chapter 4) | Llama 3.2 / Qwen3 | here |
//! |---|---|---|
//! | `LayerNorm` (mean and variance, scale and shift) | RMSNorm: divide by the root mean square, scale only | [`RmsNorm`] |
//! | learned positional embedding added to the tokens | rotary position embedding: rotate queries and keys by a position-dependent angle | [`Rope`], [`RopeFreqConfig`] (Llama 3's frequency scaling) |
//! | `Linear → GELU → Linear` (4x wider) | SwiGLU: `fc3(silu(fc1(x)) * fc2(x))` | [`SwiGluFeedForward`] |
//! | multi-head attention, one key/value head per query head | grouped-query attention: `n_kv_groups` key/value heads, each shared by `n_heads / n_kv_groups` query heads | [`GroupedQueryAttention`], [`repeat_kv`] |
//! | — | Qwen3: RMSNorm of each query and key head before the rotation | [`GroupedQueryAttention::q_norm`] |
//! | biases in every linear layer, dropout | no biases, no dropout | |
//!
//! [`crate::nn::decoder::TransformerBlock`] puts them together as GPT-2's block did (normalise,
//! attend, add; normalise, feed forward, add), and [`crate::nn::decoder`] holds the whole models.
//!
//! Every part follows Hugging Face `transformers`' arithmetic (`LlamaRMSNorm`,
//! `LlamaRotaryEmbedding`, `apply_rotary_pos_emb`, `LlamaMLP`, `eager_attention_forward`), so
//! that a model loaded from their files gives their logits; `tests/llama_qwen.rs` checks each
//! part and the whole models against them.

use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::nn::kv_cache::KvCache;
use crate::nn::layers::Linear;

/// RMSNorm (Zhang and Sennrich, 2019): `x / sqrt(mean(x²) + eps) * weight`.
///
/// Unlike GPT-2's LayerNorm it neither subtracts the mean nor adds a shift: one reduction
/// instead of two and half the parameters, and in practice it trains as well. The statistics are
/// computed in float32 whatever the input's kind (bfloat16 squares overflow their precision),
/// and the normalised values are cast back before the scale, as `LlamaRMSNorm` does.
///
/// The book's Llama code uses `torch.nn.RMSNorm` (parameter `weight`), its Qwen3 code its own
/// `RMSNorm` (parameter `scale`): [`RmsNorm::new`] takes the name.
///
/// # Shapes
/// `weight: [dim]`; input `[..., dim]` → output `[..., dim]`
#[derive(Debug)]
pub struct RmsNorm {
    /// The per-feature scale (initialised to ones).
    pub weight: Tensor,
    pub eps: f64,
}

impl RmsNorm {
    /// An RMSNorm over the last axis of size `dim`, its scale registered as `<vs>.<param>`.
    pub fn new(vs: &nn::Path, dim: i64, eps: f64, param: &str) -> Self {
        Self { weight: vs.ones(param, &[dim]), eps }
    }
}

impl Module for RmsNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let input_kind = x.kind();
        let x = x.to_kind(Kind::Float);
        let variance = x.pow_tensor_scalar(2).mean_dim(-1, true, Kind::Float); // [..., 1]
        let normed = &x * (variance + self.eps).rsqrt();
        &self.weight * normed.to_kind(input_kind)
    }
}

/// Llama 3's rotary frequency scaling (`rope_type: "llama3"`; the book's `rope_freq`): the
/// model was pretrained with 8,192 positions, then extended to 131,072 by slowing down the
/// rotations whose wavelength is long compared with the original context.
///
/// For each frequency `f` with wavelength `λ = 2π / f`:
/// - `λ < original_context_length / high_freq_factor` (fast rotations): unchanged;
/// - `λ > original_context_length / low_freq_factor` (slow ones): `f / factor`;
/// - in between: a linear blend, `(1 - s) f / factor + s f` with
///   `s = (original_context_length / λ - low_freq_factor) / (high_freq_factor - low_freq_factor)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeFreqConfig {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_context_length: i64,
}

impl RopeFreqConfig {
    /// Llama 3.2's values: factor 32, low 1, high 4, original context 8,192.
    pub fn llama32() -> Self {
        Self { factor: 32.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context_length: 8192 }
    }
}

/// Rotary position embedding (RoPE; Su et al., 2021): instead of adding a position vector to
/// the token embedding, each query and key head is rotated by angles proportional to its
/// position, pair by pair of features, so that the score `q·k` depends only on the distance
/// between the two positions.
///
/// Features `i` and `i + head_dim/2` form a pair (the "rotate half" layout of Hugging Face and
/// the book, not adjacent pairs) rotated by `position * inv_freq[i]`, with
/// `inv_freq[i] = base^(-2i / head_dim)`, optionally rescaled by [`RopeFreqConfig`].
///
/// The angles are computed in float32 for the positions a forward pass needs, as
/// `LlamaRotaryEmbedding` does, instead of a table for the whole context (131,072 positions
/// for Llama 3.2).
///
/// # Shapes
/// `inv_freq: [head_dim / 2]`; [`Rope::cos_sin`] → `[num_tokens, head_dim]` each;
/// [`Rope::apply`]: `[b, heads, num_tokens, head_dim]` → same
#[derive(Debug)]
pub struct Rope {
    /// The rotation speed of each feature pair (float32, not a parameter).
    pub inv_freq: Tensor,
    pub head_dim: i64,
}

impl Rope {
    /// The frequencies for heads of `head_dim` features, base `theta_base`, with Llama 3's
    /// scaling when `freq_config` is given.
    pub fn new(head_dim: i64, theta_base: f64, freq_config: Option<&RopeFreqConfig>, device: Device) -> Self {
        assert!(head_dim % 2 == 0, "RoPE needs an even head dimension, not {head_dim}");
        let exponents = Tensor::arange_start_step(0, head_dim, 2, (Kind::Int64, device)).to_kind(Kind::Float) / head_dim as f64;
        let inv_freq = Tensor::from(theta_base as f32).to_device(device).pow(&exponents).reciprocal(); // [head_dim / 2]
        let inv_freq = match freq_config {
            None => inv_freq,
            Some(c) => {
                let old = c.original_context_length as f64;
                let low_freq_wavelen = old / c.low_freq_factor;
                let high_freq_wavelen = old / c.high_freq_factor;
                let wavelen = inv_freq.reciprocal() * (2.0 * std::f64::consts::PI);
                let scaled = inv_freq.where_self(&wavelen.le(low_freq_wavelen), &(&inv_freq / c.factor));
                let smooth = (wavelen.reciprocal() * old - c.low_freq_factor) / (c.high_freq_factor - c.low_freq_factor);
                let smoothed: Tensor = (-&smooth + 1.0) * &scaled / c.factor + &smooth * &scaled;
                let medium = wavelen.ge(high_freq_wavelen).logical_and(&wavelen.le(low_freq_wavelen));
                smoothed.where_self(&medium, &scaled)
            }
        };
        Self { inv_freq, head_dim }
    }

    /// The cosines and sines of positions `offset .. offset + num_tokens`, each angle written
    /// twice (`cat([angles, angles])`) to match the rotate-half layout.
    pub fn cos_sin(&self, offset: i64, num_tokens: i64) -> (Tensor, Tensor) {
        let device = self.inv_freq.device();
        let positions = Tensor::arange_start(offset, offset + num_tokens, (Kind::Int64, device)).to_kind(Kind::Float);
        let freqs = positions.unsqueeze(1) * self.inv_freq.unsqueeze(0); // [num_tokens, head_dim / 2]
        let angles = Tensor::cat(&[&freqs, &freqs], -1); // [num_tokens, head_dim]
        (angles.cos(), angles.sin())
    }

    /// Rotate `x` by the angles of `cos`/`sin` ([`Rope::cos_sin`]): `x cos + rotate_half(x) sin`
    /// with `rotate_half([x1, x2]) = [-x2, x1]`.
    pub fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
        let head_dim = *x.size().last().expect("a head axis");
        let half = head_dim / 2;
        let (x1, x2) = (x.narrow(-1, 0, half), x.narrow(-1, half, half)); // [b, heads, n, head_dim / 2] each
        let rotated = Tensor::cat(&[&x2.neg(), &x1], -1); // [b, heads, n, head_dim]
        let (cos, sin) = (cos.to_kind(x.kind()), sin.to_kind(x.kind()));
        x * cos + rotated * sin
    }
}

/// The SwiGLU feed-forward layer: `fc3(silu(fc1(x)) * fc2(x))`, no biases.
///
/// `fc1` (Hugging Face's `gate_proj`) goes through SiLU (`x * sigmoid(x)`) and gates `fc2`
/// (`up_proj`) element by element; `fc3` (`down_proj`) projects back. Three matrices instead of
/// GPT-2's two, so the hidden size is smaller than 4x for the same parameter budget (8,192 =
/// 4 x 2,048 for Llama 3.2 1B, 3,072 = 3 x 1,024 for Qwen3 0.6B).
///
/// # Shapes
/// `[..., emb_dim]` → `[..., hidden_dim]` → `[..., emb_dim]`
#[derive(Debug)]
pub struct SwiGluFeedForward {
    pub fc1: Linear,
    pub fc2: Linear,
    pub fc3: Linear,
}

impl SwiGluFeedForward {
    /// The three projections under `vs` (`fc1`, `fc2`, `fc3`).
    pub fn new(vs: &nn::Path, emb_dim: i64, hidden_dim: i64) -> Self {
        Self {
            fc1: Linear::new(&(vs / "fc1"), emb_dim, hidden_dim, false),
            fc2: Linear::new(&(vs / "fc2"), emb_dim, hidden_dim, false),
            fc3: Linear::new(&(vs / "fc3"), hidden_dim, emb_dim, false),
        }
    }
}

impl Module for SwiGluFeedForward {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.fc3.forward(&(self.fc1.forward(x).silu() * self.fc2.forward(x)))
    }
}

/// Repeat each of `kv_heads` key or value heads `group_size` times, so that query head `h` meets
/// key/value head `h / group_size` (`torch.repeat_interleave(x, group_size, dim=1)`, written as
/// `transformers`' `repeat_kv` does it, with an expand and one copy).
///
/// # Shapes
/// `[b, kv_heads, num_tokens, head_dim]` → `[b, kv_heads * group_size, num_tokens, head_dim]`
pub fn repeat_kv(x: &Tensor, group_size: i64) -> Tensor {
    if group_size == 1 {
        return x.shallow_clone();
    }
    let (b, kv_heads, n, head_dim) = x.size4().expect("keys/values are [b, kv_heads, num_tokens, head_dim]");
    x.unsqueeze(2) // [b, kv_heads, 1, n, head_dim]
        .expand([b, kv_heads, group_size, n, head_dim], false) // [b, kv_heads, group_size, n, head_dim]
        .reshape([b, kv_heads * group_size, n, head_dim]) // [b, n_heads, n, head_dim]
}

/// Causal scaled dot-product attention of `queries` over `keys`/`values` that may hold
/// `offset` earlier (cached) positions first: query `i` (position `offset + i`) sees keys
/// `0 ..= offset + i`. Scores are scaled by `1 / sqrt(head_dim)`; the softmax runs in float32.
///
/// # Shapes
/// `queries: [b, n_heads, n, head_dim]`, `keys`, `values: [b, n_heads, offset + n, head_dim]`
/// → `[b, n_heads, n, head_dim]`
pub fn causal_attention(queries: &Tensor, keys: &Tensor, values: &Tensor) -> Tensor {
    let n = queries.size()[2];
    let total = keys.size()[2];
    let offset = total - n;
    let head_dim = *queries.size().last().expect("a head axis");
    let attn_scores = queries.matmul(&keys.transpose(2, 3)) * (head_dim as f64).powf(-0.5); // [b, n_heads, n, total]
    let mask = Tensor::ones([n, total], (Kind::Bool, queries.device())).triu(offset + 1); // [n, total]
    let attn_scores = attn_scores.masked_fill(&mask, f64::NEG_INFINITY);
    let attn_weights = attn_scores.softmax(-1, Kind::Float).to_kind(queries.kind());
    attn_weights.matmul(values) // [b, n_heads, n, head_dim]
}

/// Grouped-query attention (Ainslie et al., 2023): `n_heads` query heads but only
/// `n_kv_groups` key and value heads, each shared by `n_heads / n_kv_groups` query heads. The
/// key/value projections shrink by that factor, and so does the KV cache (Llama 3.2 1B: 32
/// query heads, 8 key/value heads, a cache 4x smaller than multi-head attention's).
///
/// With `qk_norm` (Qwen3) each query and key head goes through its own [`RmsNorm`] over
/// `head_dim` before the rotation, which keeps the attention logits in range.
///
/// The cache stores the rotated keys and the values of the `n_kv_groups` heads, before they are
/// repeated for the query heads.
///
/// # Shapes
/// input `[b, num_tokens, emb_dim]` → `[b, num_tokens, emb_dim]`; `W_query: [n_heads * head_dim, emb_dim]`,
/// `W_key`, `W_value: [n_kv_groups * head_dim, emb_dim]`, `out_proj: [emb_dim, n_heads * head_dim]`
#[derive(Debug)]
pub struct GroupedQueryAttention {
    pub w_query: Linear,
    pub w_key: Linear,
    pub w_value: Linear,
    pub out_proj: Linear,
    /// Qwen3's RMSNorm of each query head (`None` for Llama).
    pub q_norm: Option<RmsNorm>,
    /// Qwen3's RMSNorm of each key head.
    pub k_norm: Option<RmsNorm>,
    pub num_heads: i64,
    pub num_kv_groups: i64,
    pub head_dim: i64,
    /// Query heads per key/value head.
    pub group_size: i64,
}

impl GroupedQueryAttention {
    /// The projections under `vs` (`W_query`, `W_key`, `W_value`, `out_proj`, and with
    /// `qk_norm = Some((eps, param))` `q_norm.<param>`, `k_norm.<param>`).
    pub fn new(
        vs: &nn::Path,
        d_in: i64,
        num_heads: i64,
        num_kv_groups: i64,
        head_dim: i64,
        qk_norm: Option<(f64, &str)>,
    ) -> Self {
        assert!(
            num_kv_groups > 0 && num_heads % num_kv_groups == 0,
            "n_heads ({num_heads}) must be a multiple of n_kv_groups ({num_kv_groups})"
        );
        let d_out = num_heads * head_dim;
        let norm = |name: &str| qk_norm.map(|(eps, param)| RmsNorm::new(&(vs / name), head_dim, eps, param));
        Self {
            w_query: Linear::new(&(vs / "W_query"), d_in, d_out, false),
            w_key: Linear::new(&(vs / "W_key"), d_in, num_kv_groups * head_dim, false),
            w_value: Linear::new(&(vs / "W_value"), d_in, num_kv_groups * head_dim, false),
            out_proj: Linear::new(&(vs / "out_proj"), d_out, d_in, false),
            q_norm: norm("q_norm"),
            k_norm: norm("k_norm"),
            num_heads,
            num_kv_groups,
            head_dim,
            group_size: num_heads / num_kv_groups,
        }
    }

    /// Attend over `x` (positions `offset ..` where `offset` is the cache's length, or 0),
    /// rotating queries and keys by `cos`/`sin` of those positions. With a cache, the new keys
    /// and values are appended to layer `layer`'s and attention covers all of them.
    pub fn forward(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, cache: Option<(&mut KvCache, usize)>) -> Tensor {
        let (b, num_tokens, _) = x.size3().expect("attention input is [b, num_tokens, emb_dim]");
        let heads = |t: Tensor, n_heads: i64, norm: &Option<RmsNorm>| {
            let t = t.view([b, num_tokens, n_heads, self.head_dim]); // [b, num_tokens, heads, head_dim]
            let t = match norm {
                Some(norm) => norm.forward(&t),
                None => t,
            };
            t.transpose(1, 2) // [b, heads, num_tokens, head_dim]
        };
        let queries = heads(self.w_query.forward(x), self.num_heads, &self.q_norm);
        let keys = heads(self.w_key.forward(x), self.num_kv_groups, &self.k_norm);
        let values = heads(self.w_value.forward(x), self.num_kv_groups, &None);
        let queries = Rope::apply(&queries, cos, sin);
        let keys = Rope::apply(&keys, cos, sin);
        let (keys, values) = match cache {
            Some((cache, layer)) => cache.update(layer, keys, values), // [b, kv_groups, offset + num_tokens, head_dim]
            None => (keys, values),
        };
        let keys = repeat_kv(&keys, self.group_size); // [b, n_heads, total, head_dim]
        let values = repeat_kv(&values, self.group_size); // [b, n_heads, total, head_dim]
        let context_vec = causal_attention(&queries, &keys, &values) // [b, n_heads, num_tokens, head_dim]
            .transpose(1, 2) // [b, num_tokens, n_heads, head_dim]
            .reshape([b, num_tokens, self.num_heads * self.head_dim]); // [b, num_tokens, n_heads * head_dim]
        self.out_proj.forward(&context_vec)
    }
}
