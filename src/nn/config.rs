//! The GPT model's hyper-parameters (book chapter 4.1, "Coding an LLM architecture":
//! `GPT_CONFIG_124M`; exercise 4.2, "Initializing larger GPT models").
//!
//! [`GptConfig`] has the book's field names, so the book's Python dictionary and this struct
//! read the same, and a config saved as JSON by one loads in the other.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The sizes of a GPT model: the book's `GPT_CONFIG_124M` dictionary as a struct.
///
/// ```
/// use llm_from_scratch::config::GptConfig;
/// let cfg = GptConfig::gpt2_124m();
/// assert_eq!((cfg.emb_dim, cfg.n_layers, cfg.n_heads), (768, 12, 12));
/// assert_eq!(cfg.num_parameters(), 163_009_536);
/// assert_eq!(GptConfig::from_preset_name("355M").unwrap(), GptConfig::gpt2_medium());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GptConfig {
    /// Number of token ids (50,257 for the GPT-2 tokenizer).
    pub vocab_size: i64,
    /// Longest input the positional embedding covers.
    pub context_length: i64,
    /// Embedding dimension `d_model`.
    pub emb_dim: i64,
    /// Attention heads per transformer block (`emb_dim` must be divisible by it).
    pub n_heads: i64,
    /// Number of transformer blocks.
    pub n_layers: i64,
    /// Dropout rate for the embeddings, the attention weights and the shortcuts.
    pub drop_rate: f64,
    /// Whether the query, key and value projections have a bias (GPT-2's weights do).
    pub qkv_bias: bool,
}

/// A preset's constructor.
type Preset = fn() -> GptConfig;

/// The preset names [`GptConfig::from_preset_name`] accepts, with the constructor each maps to.
const PRESETS: &[(&str, Preset)] = &[
    ("gpt2-small", GptConfig::gpt2_124m),
    ("124M", GptConfig::gpt2_124m),
    ("gpt2-medium", GptConfig::gpt2_medium),
    ("355M", GptConfig::gpt2_medium),
    ("gpt2-large", GptConfig::gpt2_large),
    ("774M", GptConfig::gpt2_large),
    ("gpt2-xl", GptConfig::gpt2_xl),
    ("1558M", GptConfig::gpt2_xl),
    ("tiny", GptConfig::tiny),
];

impl GptConfig {
    /// The book's `GPT_CONFIG_124M` (GPT-2 small): 50257 / 1024 / 768 / 12 heads / 12 layers,
    /// dropout 0.1, no qkv bias.
    pub fn gpt2_124m() -> Self {
        Self {
            vocab_size: 50257,
            context_length: 1024,
            emb_dim: 768,
            n_heads: 12,
            n_layers: 12,
            drop_rate: 0.1,
            qkv_bias: false,
        }
    }

    /// GPT-2 medium (355M): emb_dim 1024, 24 layers, 16 heads; otherwise as [`Self::gpt2_124m`].
    pub fn gpt2_medium() -> Self {
        Self { emb_dim: 1024, n_layers: 24, n_heads: 16, ..Self::gpt2_124m() }
    }

    /// GPT-2 large (774M): emb_dim 1280, 36 layers, 20 heads.
    pub fn gpt2_large() -> Self {
        Self { emb_dim: 1280, n_layers: 36, n_heads: 20, ..Self::gpt2_124m() }
    }

    /// GPT-2 XL (1558M): emb_dim 1600, 48 layers, 25 heads.
    pub fn gpt2_xl() -> Self {
        Self { emb_dim: 1600, n_layers: 48, n_heads: 25, ..Self::gpt2_124m() }
    }

    /// A small model for CPU demos and tests (not in the book): the GPT-2 vocabulary, context
    /// 128, emb_dim 128, 4 heads, 2 layers (about 13.3M parameters, most of them in the
    /// token embedding and the output head).
    pub fn tiny() -> Self {
        Self { context_length: 128, emb_dim: 128, n_heads: 4, n_layers: 2, ..Self::gpt2_124m() }
    }

    /// The preset names accepted by [`Self::from_preset_name`].
    pub fn preset_names() -> Vec<&'static str> {
        PRESETS.iter().map(|(name, _)| *name).collect()
    }

    /// A preset by name: `gpt2-small` / `124M`, `gpt2-medium` / `355M`, `gpt2-large` / `774M`,
    /// `gpt2-xl` / `1558M`, or `tiny`. An unknown name is an error that lists the known ones.
    pub fn from_preset_name(name: &str) -> Result<Self> {
        PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, make)| make())
            .ok_or_else(|| Error::UnknownPreset { name: name.to_string(), known: Self::preset_names().join(", ") })
    }

    /// Read a config from a JSON file with the book's keys (`{"vocab_size": 50257, ...}`), then
    /// [`validate`](Self::validate) it.
    pub fn from_json_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: Self = serde_json::from_str(&text)
            .map_err(|e| Error::Config { what: path.display().to_string(), reason: e.to_string() })?;
        cfg.validate().map_err(|e| match e {
            Error::Config { reason, .. } => Error::Config { what: path.display().to_string(), reason },
            other => other,
        })?;
        Ok(cfg)
    }

    /// Check that the sizes can build a model: all positive, `emb_dim` divisible by `n_heads`,
    /// `drop_rate` in `[0, 1)`.
    pub fn validate(&self) -> Result<()> {
        let err = |reason: String| Err(Error::Config { what: "GptConfig".into(), reason });
        for (field, v) in [
            ("vocab_size", self.vocab_size),
            ("context_length", self.context_length),
            ("emb_dim", self.emb_dim),
            ("n_heads", self.n_heads),
            ("n_layers", self.n_layers),
        ] {
            if v <= 0 {
                return err(format!("{field} must be positive, got {v}"));
            }
        }
        if self.emb_dim % self.n_heads != 0 {
            return err(format!("emb_dim {} is not divisible by n_heads {}", self.emb_dim, self.n_heads));
        }
        if !(0.0..1.0).contains(&self.drop_rate) {
            return err(format!("drop_rate must be in [0, 1), got {}", self.drop_rate));
        }
        Ok(())
    }

    /// Parameters of one `MultiHeadAttention` (`W_query`, `W_key`, `W_value`, `out_proj`):
    /// 2,360,064 for GPT-2 small (exercise 4.1).
    pub fn attention_parameters(&self) -> i64 {
        let d = self.emb_dim;
        let qkv_bias = if self.qkv_bias { 3 * d } else { 0 };
        3 * d * d + qkv_bias + d * d + d
    }

    /// Parameters of one `FeedForward` (`Linear(d, 4d)`, `Linear(4d, d)`): 4,722,432 for GPT-2
    /// small (exercise 4.1).
    pub fn feed_forward_parameters(&self) -> i64 {
        let d = self.emb_dim;
        (d * 4 * d + 4 * d) + (4 * d * d + d)
    }

    /// Parameters of one `TransformerBlock`: attention, feed-forward and two `LayerNorm`s.
    pub fn block_parameters(&self) -> i64 {
        self.attention_parameters() + self.feed_forward_parameters() + 2 * 2 * self.emb_dim
    }

    /// All parameters of `GptModel` with a separate `out_head` (the book's count: 163,009,536
    /// for GPT-2 small). The model built by `GptModel::new` has exactly this many (tested).
    pub fn num_parameters(&self) -> i64 {
        let d = self.emb_dim;
        let embeddings = self.vocab_size * d + self.context_length * d;
        embeddings + self.n_layers * self.block_parameters() + 2 * d + d * self.vocab_size
    }

    /// Parameters when `out_head` shares `tok_emb`'s weight (weight tying, as GPT-2 does):
    /// 124,412,160 for GPT-2 small.
    pub fn num_parameters_tied(&self) -> i64 {
        self.num_parameters() - self.vocab_size * self.emb_dim
    }
}

/// Size in megabytes (2^20 bytes) of `num_parameters` values of `bytes_per_parameter` bytes
/// each: 621.83 MB for GPT-2 small in fp32 (4 bytes), as the book prints.
pub fn size_mb(num_parameters: i64, bytes_per_parameter: i64) -> f64 {
    (num_parameters * bytes_per_parameter) as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_the_books_sizes() {
        let small = GptConfig::gpt2_124m();
        assert_eq!(
            (small.vocab_size, small.context_length, small.emb_dim, small.n_heads, small.n_layers),
            (50257, 1024, 768, 12, 12)
        );
        assert_eq!((small.drop_rate, small.qkv_bias), (0.1, false));
        for (cfg, dims) in [
            (GptConfig::gpt2_medium(), (1024, 24, 16)),
            (GptConfig::gpt2_large(), (1280, 36, 20)),
            (GptConfig::gpt2_xl(), (1600, 48, 25)),
        ] {
            assert_eq!((cfg.emb_dim, cfg.n_layers, cfg.n_heads), dims);
            cfg.validate().unwrap();
        }
        GptConfig::tiny().validate().unwrap();
    }

    #[test]
    fn parameter_counts_match_the_book() {
        let small = GptConfig::gpt2_124m();
        assert_eq!(small.num_parameters(), 163_009_536, "GPT-124M total");
        assert_eq!(small.num_parameters_tied(), 124_412_160, "GPT-124M with weight tying");
        assert_eq!(small.feed_forward_parameters(), 4_722_432, "one feed-forward module");
        assert_eq!(small.attention_parameters(), 2_360_064, "one attention module");
        assert_eq!(format!("{:.2}", size_mb(small.num_parameters(), 4)), "621.83");
        assert_eq!(GptConfig::gpt2_medium().num_parameters(), 406_212_608, "medium");
        assert_eq!(GptConfig::gpt2_large().num_parameters(), 838_220_800, "large");
        assert_eq!(GptConfig::gpt2_xl().num_parameters(), 1_637_792_000, "xl");
    }

    #[test]
    fn preset_names_resolve_and_unknown_names_are_reported() {
        assert_eq!(GptConfig::from_preset_name("gpt2-small").unwrap(), GptConfig::gpt2_124m());
        assert_eq!(GptConfig::from_preset_name("124M").unwrap(), GptConfig::gpt2_124m());
        assert_eq!(GptConfig::from_preset_name("1558M").unwrap(), GptConfig::gpt2_xl());
        assert_eq!(GptConfig::from_preset_name("tiny").unwrap(), GptConfig::tiny());
        let err = GptConfig::from_preset_name("gpt5").unwrap_err().to_string();
        assert!(err.contains("'gpt5'") && err.contains("gpt2-small"), "{err}");
    }

    #[test]
    fn json_uses_the_books_keys_and_round_trips() {
        let cfg = GptConfig::gpt2_124m();
        let json = serde_json::to_string(&cfg).unwrap();
        for key in ["vocab_size", "context_length", "emb_dim", "n_heads", "n_layers", "drop_rate", "qkv_bias"] {
            assert!(json.contains(&format!("\"{key}\"")), "{json} lacks {key}");
        }
        let back: GptConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn json_file_errors_name_the_file_and_the_problem() {
        let dir = std::env::temp_dir().join(format!("llm-fs-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.json");
        let bad = GptConfig { n_heads: 5, ..GptConfig::gpt2_124m() };
        std::fs::write(&path, serde_json::to_string(&bad).unwrap()).unwrap();
        let err = GptConfig::from_json_file(&path).unwrap_err().to_string();
        assert!(err.contains("bad.json") && err.contains("not divisible"), "{err}");
        std::fs::write(&path, "{\"vocab_size\": 3}").unwrap();
        let err = GptConfig::from_json_file(&path).unwrap_err().to_string();
        assert!(err.contains("bad.json") && err.contains("context_length"), "{err}");
        let good = dir.join("good.json");
        std::fs::write(&good, serde_json::to_string(&GptConfig::tiny()).unwrap()).unwrap();
        assert_eq!(GptConfig::from_json_file(&good).unwrap(), GptConfig::tiny());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
