//! Token and positional embeddings (book sections 2.7 "Creating token embeddings" and 2.8
//! "Encoding word positions"): an embedding layer is a lookup table, one trainable row of
//! `output_dim` numbers per token id; a second table, one row per position `0..context_length`,
//! is added so the model can tell where each token stands.
//!
//! ```text
//! token ids [8, 4] --tok_emb--> [8, 4, 256]
//! positions [4]    --pos_emb--> [4, 256]      (broadcast over the batch)
//! input embeddings = tok + pos:  [8, 4, 256]
//! ```
//!
//! The layers are [`Embedding`]s, the same `torch.nn.Embedding` the GPT model of chapter 4 uses,
//! drawn from a standard normal as PyTorch draws them, so after `set_seed(123)` a 6x3 layer holds
//! the book's numbers.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::nn::layers::Embedding;

/// A token embedding layer: `vocab_size` rows of `output_dim` (`torch.nn.Embedding(vocab_size, output_dim)`).
pub fn token_embedding(vs: &nn::Path, vocab_size: i64, output_dim: i64) -> Embedding {
    Embedding::new(vs, vocab_size, output_dim)
}

/// A positional embedding layer: one row per position `0..context_length`.
pub fn positional_embedding(vs: &nn::Path, context_length: i64, output_dim: i64) -> Embedding {
    Embedding::new(vs, context_length, output_dim)
}

/// The input embeddings of section 2.8: token embedding plus absolute positional embedding,
/// the first layer of chapter 4's GPT model (with its parameter names `tok_emb.weight`,
/// `pos_emb.weight` under the path it is built on).
#[derive(Debug)]
pub struct InputEmbedding {
    /// Token embedding, `[vocab_size, output_dim]`.
    pub tok_emb: Embedding,
    /// Positional embedding, `[context_length, output_dim]`.
    pub pos_emb: Embedding,
    /// The most positions the layer can embed.
    pub context_length: i64,
}

impl InputEmbedding {
    /// Create both tables under `vs` (`vs / "tok_emb"`, `vs / "pos_emb"`).
    pub fn new(vs: &nn::Path, vocab_size: i64, context_length: i64, output_dim: i64) -> Self {
        InputEmbedding {
            tok_emb: token_embedding(&(vs / "tok_emb"), vocab_size, output_dim),
            pos_emb: positional_embedding(&(vs / "pos_emb"), context_length, output_dim),
            context_length,
        }
    }
}

impl Module for InputEmbedding {
    /// # Shapes
    /// `token_ids: [batch, num_tokens]` (i64, `num_tokens <= context_length`) -> `[batch, num_tokens, output_dim]`.
    fn forward(&self, token_ids: &Tensor) -> Tensor {
        let (_batch, num_tokens) = token_ids.size2().expect("token ids of shape [batch, num_tokens]");
        assert!(
            num_tokens <= self.context_length,
            "{num_tokens} tokens, but the positional embedding has {} positions",
            self.context_length
        );
        let token_embeddings = self.tok_emb.forward(token_ids); // [batch, num_tokens, output_dim]
        let positions = Tensor::arange(num_tokens, (Kind::Int64, token_ids.device()));
        let pos_embeddings = self.pos_emb.forward(&positions); // [num_tokens, output_dim]
        token_embeddings + pos_embeddings // [batch, num_tokens, output_dim]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn embedding_6x3_matches_the_book() {
        // Section 2.7: torch.manual_seed(123); torch.nn.Embedding(6, 3).weight
        let _rng = crate::util::device::rng_lock();
        crate::util::device::set_seed(123);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = token_embedding(&vs.root(), 6, 3);
        let want = [
            [0.3374, -0.1778, -0.1690],
            [0.9178, 1.5810, 1.3010],
            [1.2753, -0.2010, -0.1606],
            [-0.4015, 0.9666, -1.1481],
            [-1.1589, 0.3255, -0.6315],
            [-2.8400, -0.7849, -1.4096],
        ];
        let got = Vec::<Vec<f32>>::try_from(&layer.weight).unwrap();
        for (row, (g, w)) in got.iter().zip(want).enumerate() {
            for (a, b) in g.iter().zip(w) {
                assert!((a - b).abs() < 1e-4, "row {row}: got {g:?}, want {w:?}");
            }
        }
        // Looking up ids [2, 3, 5, 1] returns those rows.
        let out = layer.forward(&Tensor::from_slice(&[2i64, 3, 5, 1]));
        assert!(out.get(0).allclose(&layer.weight.get(2), 0.0, 0.0, false));
        assert_eq!(out.size(), [4, 3]);
    }

    #[test]
    fn input_embedding_shapes_and_names() {
        let _rng = crate::util::device::rng_lock(); // creating the layers draws from the global generator
        let vs = nn::VarStore::new(Device::Cpu);
        let emb = InputEmbedding::new(&vs.root(), 50257, 4, 256);
        let ids = Tensor::from_slice(&[40i64, 367, 2885, 1464, 1807, 3619, 402, 271]).view([2, 4]);
        let out = emb.forward(&ids);
        assert_eq!(out.size(), [2, 4, 256]);
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(names, ["pos_emb.weight", "tok_emb.weight"]);
        // Token rows plus the position rows, broadcast over the batch.
        let manual = emb.tok_emb.forward(&ids) + emb.pos_emb.weight.unsqueeze(0); // [2, 4, 256] + [1, 4, 256]
        assert!(out.allclose(&manual, 1e-6, 1e-6, false));
    }
}
