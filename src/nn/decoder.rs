//! Llama 3.2 and Qwen3 from scratch (the book's bonus material for chapter 5,
//! `ch05/07_gpt_to_llama` and `ch05/11_qwen3`): the two models built from the parts of
//! [`crate::nn::modern`], their configurations, their parameter counts, and greedy generation
//! with and without the KV cache.
//!
//! The two families share every part and differ only in settings, so one struct serves both
//! ([`DecoderModel`], also named [`Llama32Model`] and [`Qwen3Model`]):
//!
//! | setting | Llama 3.2 | Qwen3 |
//! |---|---|---|
//! | RMSNorm epsilon | 1e-5 | 1e-6 |
//! | RoPE base | 500,000, with Llama 3's frequency scaling | 1,000,000 |
//! | head size | `emb_dim / n_heads` | its own (`head_dim` 128, so `n_heads * head_dim` may differ from `emb_dim`) |
//! | query/key RMSNorm | no | yes |
//! | output head | tied to the token embedding | tied up to 4B, its own matrix for 8B |
//! | book's RMSNorm parameter | `weight` (`torch.nn.RMSNorm`) | `scale` |
//!
//! Parameter names are the book's (`tok_emb.weight`, `trf_blocks.0.att.W_query.weight`,
//! `trf_blocks.0.ff.fc1.weight`, `trf_blocks.0.norm1.weight`, `final_norm.weight`,
//! `out_head.weight`); [`crate::nn::hf`] maps Hugging Face's names onto them.

use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::nn::kv_cache::{CachedLm, KvCache};
use crate::nn::layers::{Embedding, Linear};
use crate::nn::modern::{GroupedQueryAttention, RmsNorm, Rope, RopeFreqConfig, SwiGluFeedForward};

/// Which model family a [`DecoderConfig`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Meta's Llama 3.2 (Hugging Face `model_type` `llama`).
    Llama32,
    /// Alibaba's Qwen3, dense models (`model_type` `qwen3`).
    Qwen3,
}

impl Family {
    /// Hugging Face's `model_type` of the family.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama32 => "llama",
            Family::Qwen3 => "qwen3",
        }
    }

    /// The name of the book's RMSNorm parameter in this family's code (`weight` or `scale`).
    pub fn norm_param(self) -> &'static str {
        match self {
            Family::Llama32 => "weight",
            Family::Qwen3 => "scale",
        }
    }
}

/// The sizes and settings of a Llama 3.2 or Qwen3 model, with the book's key names
/// (`LLAMA32_CONFIG_1B`, `QWEN_CONFIG_06_B`).
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    pub family: Family,
    pub vocab_size: i64,
    /// The longest sequence the model was trained for (it only bounds generation here: the
    /// rotary angles are computed per position).
    pub context_length: i64,
    pub emb_dim: i64,
    pub n_heads: i64,
    pub n_layers: i64,
    /// The SwiGLU feed-forward's inner size.
    pub hidden_dim: i64,
    /// The size of each attention head (`emb_dim / n_heads` for Llama; Qwen3 sets it).
    pub head_dim: i64,
    /// The number of key/value heads (grouped-query attention).
    pub n_kv_groups: i64,
    /// Qwen3's RMSNorm of queries and keys.
    pub qk_norm: bool,
    pub rope_base: f64,
    /// Llama 3's RoPE frequency scaling (`None`: plain RoPE).
    pub rope_freq: Option<RopeFreqConfig>,
    pub rms_norm_eps: f64,
    /// Whether the output head is the token embedding's matrix (no `out_head.weight` of its own).
    pub tie_word_embeddings: bool,
}

/// The names [`DecoderConfig::from_preset_name`] knows.
pub const PRESETS: [&str; 8] =
    ["llama3.2-1b", "llama3.2-3b", "llama-tiny", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwen3-tiny"];

impl DecoderConfig {
    fn llama32(emb_dim: i64, n_heads: i64, n_layers: i64, hidden_dim: i64) -> Self {
        DecoderConfig {
            family: Family::Llama32,
            vocab_size: 128_256,
            context_length: 131_072,
            emb_dim,
            n_heads,
            n_layers,
            hidden_dim,
            head_dim: emb_dim / n_heads,
            n_kv_groups: 8,
            qk_norm: false,
            rope_base: 500_000.0,
            rope_freq: Some(RopeFreqConfig::llama32()),
            rms_norm_eps: 1e-5,
            tie_word_embeddings: true,
        }
    }

    fn qwen3(emb_dim: i64, n_heads: i64, n_layers: i64, hidden_dim: i64, tied: bool) -> Self {
        DecoderConfig {
            family: Family::Qwen3,
            vocab_size: 151_936,
            context_length: 40_960,
            emb_dim,
            n_heads,
            n_layers,
            hidden_dim,
            head_dim: 128,
            n_kv_groups: 8,
            qk_norm: true,
            rope_base: 1_000_000.0,
            rope_freq: None,
            rms_norm_eps: 1e-6,
            tie_word_embeddings: tied,
        }
    }

    /// Llama 3.2 1B (`LLAMA32_CONFIG_1B`): emb 2,048, 32 heads, 16 layers, hidden 8,192, 8 KV heads.
    pub fn llama32_1b() -> Self {
        Self::llama32(2048, 32, 16, 8192)
    }

    /// Llama 3.2 3B (`LLAMA32_CONFIG_3B`): emb 3,072, 24 heads, 28 layers, hidden 8,192, 8 KV heads.
    pub fn llama32_3b() -> Self {
        Self::llama32(3072, 24, 28, 8192)
    }

    /// A tiny Llama 3.2 for CPU demonstrations and tests: 300 tokens, emb 64, 4 heads sharing 2
    /// key/value heads, 2 layers, hidden 128, 256 positions (the same RoPE and scaling).
    pub fn llama32_tiny() -> Self {
        DecoderConfig { vocab_size: 300, context_length: 256, n_kv_groups: 2, ..Self::llama32(64, 4, 2, 128) }
    }

    /// Qwen3 0.6B (`QWEN_CONFIG_06_B`): emb 1,024, 16 heads of 128, 28 layers, hidden 3,072.
    pub fn qwen3_0_6b() -> Self {
        Self::qwen3(1024, 16, 28, 3072, true)
    }

    /// Qwen3 1.7B: emb 2,048, 16 heads of 128, 28 layers, hidden 6,144.
    pub fn qwen3_1_7b() -> Self {
        Self::qwen3(2048, 16, 28, 6144, true)
    }

    /// Qwen3 4B: emb 2,560, 32 heads of 128, 36 layers, hidden 9,728.
    pub fn qwen3_4b() -> Self {
        Self::qwen3(2560, 32, 36, 9728, true)
    }

    /// Qwen3 8B: emb 4,096, 32 heads of 128, 36 layers, hidden 12,288, untied output head.
    pub fn qwen3_8b() -> Self {
        Self::qwen3(4096, 32, 36, 12_288, false)
    }

    /// A tiny Qwen3: 300 tokens, emb 64, 4 heads of 32 (so `n_heads * head_dim` = 128 differs
    /// from emb) sharing 2 key/value heads, 2 layers, hidden 128, 256 positions.
    pub fn qwen3_tiny() -> Self {
        DecoderConfig { vocab_size: 300, context_length: 256, head_dim: 32, n_kv_groups: 2, ..Self::qwen3(64, 4, 2, 128, true) }
    }

    /// A preset by name (see [`PRESETS`]).
    pub fn from_preset_name(name: &str) -> Result<Self> {
        Ok(match name {
            "llama3.2-1b" => Self::llama32_1b(),
            "llama3.2-3b" => Self::llama32_3b(),
            "llama-tiny" => Self::llama32_tiny(),
            "qwen3-0.6b" => Self::qwen3_0_6b(),
            "qwen3-1.7b" => Self::qwen3_1_7b(),
            "qwen3-4b" => Self::qwen3_4b(),
            "qwen3-8b" => Self::qwen3_8b(),
            "qwen3-tiny" => Self::qwen3_tiny(),
            _ => return Err(Error::UnknownPreset { name: name.into(), known: PRESETS.join(", ") }),
        })
    }

    /// Check that the sizes fit together (`what` names the config in the error).
    pub fn validate(&self, what: &str) -> Result<()> {
        let err = |reason: String| Err(Error::Config { what: what.to_string(), reason });
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("context_length", self.context_length),
            ("emb_dim", self.emb_dim),
            ("n_heads", self.n_heads),
            ("n_layers", self.n_layers),
            ("hidden_dim", self.hidden_dim),
            ("head_dim", self.head_dim),
            ("n_kv_groups", self.n_kv_groups),
        ] {
            if v < 1 {
                return err(format!("{name} must be positive, not {v}"));
            }
        }
        if self.n_heads % self.n_kv_groups != 0 {
            return err(format!("n_heads ({}) is not a multiple of n_kv_groups ({})", self.n_heads, self.n_kv_groups));
        }
        if self.head_dim % 2 != 0 {
            return err(format!("head_dim ({}) must be even for the rotary embedding", self.head_dim));
        }
        Ok(())
    }

    /// The parameter counts of a model of this config, from its sizes alone (no weights are
    /// allocated): see [`ParamCounts`].
    pub fn param_counts(&self) -> ParamCounts {
        let (d, h, q, kv) = (self.emb_dim, self.hidden_dim, self.n_heads * self.head_dim, self.n_kv_groups * self.head_dim);
        let attention = d * q + 2 * d * kv + q * d + if self.qk_norm { 2 * self.head_dim } else { 0 };
        let per_block = attention + 3 * d * h + 2 * d;
        let embedding = self.vocab_size * d;
        let unique_head = if self.tie_word_embeddings { 0 } else { embedding };
        let unique = embedding + self.n_layers * per_block + d + unique_head;
        ParamCounts { total: unique + if self.tie_word_embeddings { embedding } else { 0 }, unique, embedding, per_block }
    }

    /// The bytes of the KV cache per token: keys and values of `n_kv_groups * head_dim`
    /// features in each layer, at `bytes_per_value` (4 for float32, 2 for bfloat16).
    pub fn kv_cache_bytes_per_token(&self, bytes_per_value: i64) -> i64 {
        2 * self.n_layers * self.n_kv_groups * self.head_dim * bytes_per_value
    }
}

/// Parameter counts computed from a config ([`DecoderConfig::param_counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCounts {
    /// Every weight matrix counted, the output head as its own matrix even when it is tied
    /// (what the book prints first: 1,498,482,688 for Llama 3.2 1B).
    pub total: i64,
    /// Each distinct tensor once: a tied head is not counted again (1,235,814,400 for Llama 3.2 1B).
    pub unique: i64,
    /// The token embedding's share (`vocab_size * emb_dim`).
    pub embedding: i64,
    /// One transformer block's parameters.
    pub per_block: i64,
}

/// The decoder block of Llama 3.2 and Qwen3: `x + att(norm1(x))`, then `x + ff(norm2(x))`,
/// as GPT-2's block but with RMSNorm, grouped-query attention with RoPE, SwiGLU, and no dropout.
///
/// # Shapes
/// `[b, num_tokens, emb_dim]` → `[b, num_tokens, emb_dim]`
#[derive(Debug)]
pub struct TransformerBlock {
    pub att: GroupedQueryAttention,
    pub ff: SwiGluFeedForward,
    pub norm1: RmsNorm,
    pub norm2: RmsNorm,
}

impl TransformerBlock {
    /// The block's parts under `vs` (`att`, `ff`, `norm1`, `norm2`) for the sizes of `cfg`.
    pub fn new(vs: &nn::Path, cfg: &DecoderConfig) -> Self {
        let (eps, norm_param) = (cfg.rms_norm_eps, cfg.family.norm_param());
        let qk_norm = cfg.qk_norm.then_some((eps, norm_param));
        Self {
            att: GroupedQueryAttention::new(&(vs / "att"), cfg.emb_dim, cfg.n_heads, cfg.n_kv_groups, cfg.head_dim, qk_norm),
            ff: SwiGluFeedForward::new(&(vs / "ff"), cfg.emb_dim, cfg.hidden_dim),
            norm1: RmsNorm::new(&(vs / "norm1"), cfg.emb_dim, eps, norm_param),
            norm2: RmsNorm::new(&(vs / "norm2"), cfg.emb_dim, eps, norm_param),
        }
    }

    /// One block over `x` at the positions of `cos`/`sin`, with layer `layer`'s cache if any.
    pub fn forward(&self, x: &Tensor, cos: &Tensor, sin: &Tensor, cache: Option<(&mut KvCache, usize)>) -> Tensor {
        let x = x + self.att.forward(&self.norm1.forward(x), cos, sin, cache);
        &x + self.ff.forward(&self.norm2.forward(&x))
    }
}

/// Llama 3.2 or Qwen3 ([`Family`]): token embedding, `n_layers` [`TransformerBlock`]s, a final
/// RMSNorm and the output head (no positional embedding: positions enter through RoPE in each
/// attention layer).
///
/// # Shapes
/// ids `[batch, num_tokens]` (int64) → logits `[batch, num_tokens, vocab_size]`
#[derive(Debug)]
pub struct DecoderModel {
    pub tok_emb: Embedding,
    pub trf_blocks: Vec<TransformerBlock>,
    pub final_norm: RmsNorm,
    /// The output head; `None` when it is tied to `tok_emb` (the logits use `tok_emb.weight`).
    pub out_head: Option<Linear>,
    /// The rotary frequencies shared by every layer.
    pub rope: Rope,
    pub cfg: DecoderConfig,
}

/// Llama 3.2 (the book's `Llama3Model`): a [`DecoderModel`] of [`Family::Llama32`].
pub type Llama32Model = DecoderModel;
/// Qwen3 (the book's `Qwen3Model`): a [`DecoderModel`] of [`Family::Qwen3`].
pub type Qwen3Model = DecoderModel;

impl DecoderModel {
    /// The model of `cfg` under `vs`, with PyTorch's default initialisation (embedding N(0, 1),
    /// linear layers Kaiming-uniform, norms ones). Panics on a config that fails
    /// [`DecoderConfig::validate`].
    pub fn new(vs: &nn::Path, cfg: &DecoderConfig) -> Self {
        cfg.validate("DecoderConfig").unwrap_or_else(|e| panic!("{e}"));
        let norm_param = cfg.family.norm_param();
        let tok_emb = Embedding::new(&(vs / "tok_emb"), cfg.vocab_size, cfg.emb_dim);
        let blocks = vs / "trf_blocks";
        let trf_blocks = (0..cfg.n_layers).map(|i| TransformerBlock::new(&(&blocks / i), cfg)).collect();
        let final_norm = RmsNorm::new(&(vs / "final_norm"), cfg.emb_dim, cfg.rms_norm_eps, norm_param);
        let out_head = (!cfg.tie_word_embeddings).then(|| Linear::new(&(vs / "out_head"), cfg.emb_dim, cfg.vocab_size, false));
        let rope = Rope::new(cfg.head_dim, cfg.rope_base, cfg.rope_freq.as_ref(), vs.device());
        Self { tok_emb, trf_blocks, final_norm, out_head, rope, cfg: cfg.clone() }
    }

    /// The output head's matrix: `out_head.weight`, or `tok_emb.weight` when tied.
    pub fn head_weight(&self) -> &Tensor {
        self.out_head.as_ref().map_or(&self.tok_emb.weight, |h| &h.weight)
    }

    /// The forward pass over positions `offset ..` (the cache's length, or 0 without one).
    fn forward_from(&self, in_idx: &Tensor, mut cache: Option<&mut KvCache>) -> Tensor {
        let (_batch, num_tokens) = in_idx.size2().expect("the model's input is [batch, num_tokens] token ids");
        let offset = cache.as_ref().map_or(0, |c| c.len());
        assert!(
            offset + num_tokens <= self.cfg.context_length,
            "{} positions exceed the context length {}",
            offset + num_tokens,
            self.cfg.context_length
        );
        let (cos, sin) = self.rope.cos_sin(offset, num_tokens); // [num_tokens, head_dim] each
        let mut x = self.tok_emb.forward(in_idx); // [batch, num_tokens, emb_dim]
        for (i, block) in self.trf_blocks.iter().enumerate() {
            x = block.forward(&x, &cos, &sin, cache.as_deref_mut().map(|c| (c, i)));
        }
        if let Some(cache) = cache {
            cache.advance(num_tokens);
        }
        self.final_norm.forward(&x).matmul(&self.head_weight().tr()) // [batch, num_tokens, vocab_size]
    }
}

impl ModuleT for DecoderModel {
    /// The logits of every position (no dropout: `train` changes nothing).
    fn forward_t(&self, in_idx: &Tensor, _train: bool) -> Tensor {
        self.forward_from(in_idx, None)
    }
}

impl CachedLm for DecoderModel {
    fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Tensor {
        assert_eq!(cache.num_layers() as i64, self.cfg.n_layers, "a cache made for another model");
        self.forward_from(ids, Some(cache))
    }

    fn new_cache(&self) -> KvCache {
        KvCache::new(self.cfg.n_layers as usize)
    }

    fn context_length(&self) -> i64 {
        self.cfg.context_length
    }
}

/// The bytes of `n` values of `kind` (for the memory tables: 4 for float32, 2 for bfloat16).
pub fn bytes_of(n: i64, kind: Kind) -> i64 {
    n * kind.elt_size_in_bytes() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn computed_counts_equal_the_parameters_of_built_models() {
        let _rng = crate::util::device::rng_lock();
        for cfg in [
            DecoderConfig::llama32_tiny(),
            DecoderConfig::qwen3_tiny(),
            DecoderConfig { tie_word_embeddings: false, ..DecoderConfig::qwen3_tiny() },
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let _model = DecoderModel::new(&vs.root(), &cfg);
            let built: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
            let counts = cfg.param_counts();
            assert_eq!(built, counts.unique, "{:?} tied={}: unique count", cfg.family, cfg.tie_word_embeddings);
            let names = vs.variables();
            assert_eq!(names.contains_key("out_head.weight"), !cfg.tie_word_embeddings, "a tied head has no matrix of its own");
            let norm = format!("trf_blocks.0.norm1.{}", cfg.family.norm_param());
            assert!(names.contains_key(&norm), "{norm} among {:?}", names.keys());
        }
    }
}
