//! Chapter 4, section 4.1 "Coding an LLM architecture": listing 4.1's placeholder GPT model.
//!
//! The book first writes the model's skeleton, [`DummyGptModel`], with stand-ins for the parts
//! the rest of the chapter builds: [`DummyTransformerBlock`] and [`DummyLayerNorm`] return their
//! input unchanged. The embeddings, the dropout and the output head are real, so the skeleton
//! already maps token ids `[batch, num_tokens]` to logits `[batch, num_tokens, vocab_size]`; the
//! real [`crate::nn::model::GptModel`] (4.6) keeps this shape and fills in the blocks.
//!
//! Parameters are registered under the book's names (`tok_emb.weight`, `pos_emb.weight`,
//! `out_head.weight`) and drawn in its order, so after `set_seed(123)` the logits are the
//! book's: the placeholders have no parameters, as in listing 4.1.

use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

use crate::nn::config::GptConfig;
use crate::nn::layers::{Dropout, Embedding, Linear};

/// The placeholder transformer block of listing 4.1 (book's `DummyTransformerBlock`): it has no
/// parameters and returns its input; section 4.5's [`crate::nn::model::TransformerBlock`]
/// replaces it.
///
/// # Shapes
/// input `[batch, num_tokens, emb_dim]` → the same tensor
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DummyTransformerBlock;

impl DummyTransformerBlock {
    /// A placeholder block; `vs` and `cfg` are taken (and ignored) as the real block takes them.
    pub fn new(_vs: &nn::Path, _cfg: &GptConfig) -> Self {
        Self
    }
}

impl ModuleT for DummyTransformerBlock {
    fn forward_t(&self, x: &Tensor, _train: bool) -> Tensor {
        x.shallow_clone()
    }
}

/// The placeholder layer normalization of listing 4.1 (book's `DummyLayerNorm`): it has no
/// parameters and returns its input; section 4.2's [`crate::nn::model::LayerNorm`] replaces it.
///
/// # Shapes
/// input `[..., emb_dim]` → the same tensor
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DummyLayerNorm {
    /// The normalised dimension (kept only to mirror the real layer's signature).
    pub normalized_shape: i64,
    pub eps: f64,
}

impl DummyLayerNorm {
    /// A placeholder for `LayerNorm(normalized_shape)`, `eps` 1e-5 as in the book.
    pub fn new(normalized_shape: i64) -> Self {
        Self { normalized_shape, eps: 1e-5 }
    }
}

impl Module for DummyLayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.shallow_clone()
    }
}

/// Listing 4.1's skeleton of the GPT model (book's `DummyGPTModel`): token and positional
/// embeddings, dropout, `n_layers` [`DummyTransformerBlock`]s, a [`DummyLayerNorm`] and a linear
/// output head without bias that gives one logit per vocabulary entry.
///
/// # Shapes
/// input ids `[batch, num_tokens]` (int64, `num_tokens <= context_length`) →
/// logits `[batch, num_tokens, vocab_size]`
#[derive(Debug)]
pub struct DummyGptModel {
    /// The sizes the model was built with.
    pub cfg: GptConfig,
    pub tok_emb: Embedding,
    pub pos_emb: Embedding,
    pub drop_emb: Dropout,
    pub trf_blocks: Vec<DummyTransformerBlock>,
    pub final_norm: DummyLayerNorm,
    /// `Linear(emb_dim, vocab_size, bias=False)`.
    pub out_head: Linear,
}

impl DummyGptModel {
    /// Create `tok_emb`, `pos_emb` and `out_head` under `vs`, in the book's order (the
    /// placeholders in between have no parameters).
    ///
    /// Panics if `cfg` is invalid (see [`GptConfig::validate`]).
    pub fn new(vs: &nn::Path, cfg: &GptConfig) -> Self {
        if let Err(e) = cfg.validate() {
            panic!("DummyGptModel::new: {e}");
        }
        let tok_emb = Embedding::new(&(vs / "tok_emb"), cfg.vocab_size, cfg.emb_dim);
        let pos_emb = Embedding::new(&(vs / "pos_emb"), cfg.context_length, cfg.emb_dim);
        let blocks = vs / "trf_blocks";
        let trf_blocks = (0..cfg.n_layers).map(|i| DummyTransformerBlock::new(&(&blocks / i), cfg)).collect();
        let final_norm = DummyLayerNorm::new(cfg.emb_dim);
        let out_head = Linear::new(&(vs / "out_head"), cfg.emb_dim, cfg.vocab_size, false);
        Self { cfg: cfg.clone(), tok_emb, pos_emb, drop_emb: Dropout::new(cfg.drop_rate), trf_blocks, final_norm, out_head }
    }
}

impl ModuleT for DummyGptModel {
    fn forward_t(&self, in_idx: &Tensor, train: bool) -> Tensor {
        let (_batch, seq_len) = in_idx.size2().expect("DummyGptModel input must be [batch, num_tokens] token ids");
        assert!(
            seq_len <= self.cfg.context_length,
            "DummyGptModel: {seq_len} tokens exceed the context length {}",
            self.cfg.context_length
        );
        let tok_embeds = self.tok_emb.forward(in_idx); // [batch, seq_len, emb_dim]
        let positions = Tensor::arange(seq_len, (Kind::Int64, in_idx.device()));
        let pos_embeds = self.pos_emb.forward(&positions); // [seq_len, emb_dim]
        let mut x = self.drop_emb.forward_t(&(tok_embeds + pos_embeds), train);
        for block in &self.trf_blocks {
            x = block.forward_t(&x, train);
        }
        self.out_head.forward(&self.final_norm.forward(&x)) // [batch, seq_len, vocab_size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn book_batch() -> Tensor {
        // "Every effort moves you", "Every day holds a" in GPT-2 ids (the book's batch).
        Tensor::from_slice2(&[[6109i64, 3626, 6100, 345], [6109, 1110, 6622, 257]]) // [2, 4]
    }

    #[test]
    fn dummy_model_maps_the_book_batch_to_logits_over_the_vocabulary() {
        // Building a model draws from the global generator, which other tests seed and read.
        let _rng = crate::util::device::rng_lock();
        let cfg = GptConfig { emb_dim: 8, n_heads: 2, n_layers: 2, context_length: 16, ..GptConfig::gpt2_124m() };
        let vs = nn::VarStore::new(Device::Cpu);
        let model = DummyGptModel::new(&vs.root(), &cfg);
        let logits = model.forward_t(&book_batch(), false);
        assert_eq!(logits.size(), vec![2, 4, 50257], "logits must be [batch, num_tokens, vocab_size]");
        assert_eq!(model.trf_blocks.len(), 2, "one placeholder block per layer");
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(names, ["out_head.weight", "pos_emb.weight", "tok_emb.weight"], "only the book's three parameter tensors");
    }

    #[test]
    fn placeholders_return_their_input() {
        let x = Tensor::from_slice(&[1.0f32, -2.0, 3.5, 0.25]).view([1, 2, 2]); // [1, 2, 2]
        let cfg = GptConfig::tiny();
        let vs = nn::VarStore::new(Device::Cpu);
        let block = DummyTransformerBlock::new(&vs.root(), &cfg);
        assert!(block.forward_t(&x, true).equal(&x), "DummyTransformerBlock must pass its input through");
        assert!(DummyLayerNorm::new(2).forward(&x).equal(&x), "DummyLayerNorm must pass its input through");
    }

    #[test]
    fn eval_mode_output_is_the_embeddings_through_the_head() {
        // With identity blocks and norm, eval-mode logits are out_head(tok_emb + pos_emb).
        let _rng = crate::util::device::rng_lock();
        let cfg = GptConfig { vocab_size: 11, emb_dim: 4, n_heads: 2, n_layers: 3, context_length: 6, ..GptConfig::gpt2_124m() };
        let vs = nn::VarStore::new(Device::Cpu);
        let model = DummyGptModel::new(&vs.root(), &cfg);
        let ids = Tensor::from_slice2(&[[3i64, 1, 4], [1, 5, 9]]); // [2, 3]
        let expected = (model.tok_emb.weight.index_select(0, &ids.view([-1])).view([2, 3, 4]) + model.pos_emb.weight.narrow(0, 0, 3))
            .matmul(&model.out_head.weight.tr()); // [2, 3, 11]
        let got = model.forward_t(&ids, false);
        let diff = f64::try_from((got - expected).abs().max()).unwrap();
        assert!(diff < 1e-6, "logits differ from out_head(tok_emb + pos_emb) by {diff}");
    }
}
