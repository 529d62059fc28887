//! The three `torch.nn` building blocks the book's model uses — `nn.Linear`, `nn.Embedding` and
//! `nn.Dropout` — as plain structs (chapters 2.7–2.8, 3.5 and 4).
//!
//! They hold their tensors in pub fields, registered in a [`tch::nn::VarStore`] under the same
//! names as PyTorch's (`weight`, `bias`), and draw their initial values exactly as PyTorch does
//! ([`crate::nn::init`]). Later chapters rely on them being simple: chapter 6 swaps a model's
//! `out_head` for a new `Linear`, appendix E adds a LoRA update to each `Linear` (its `lora` field).

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use crate::nn::init;

/// `nn.Linear(in_features, out_features, bias)`: `y = x W^T + b`.
///
/// # Shapes
/// - `weight`: `[out_features, in_features]`, `bias`: `[out_features]`
/// - input `[..., in_features]` → output `[..., out_features]`
#[derive(Debug)]
pub struct Linear {
    /// The weight, registered as `<path>.weight`.
    pub weight: Tensor,
    /// The bias, registered as `<path>.bias`, when the layer has one.
    pub bias: Option<Tensor>,
    /// Appendix E: a low-rank update added to the output, when the layer has one
    /// ([`crate::tasks::lora::replace_linear_with_lora`]); `None` for a plain `nn.Linear`.
    pub lora: Option<LoRALayer>,
}

impl Linear {
    /// Create the layer's parameters under `vs` with PyTorch's initialisation and order
    /// (weight first, then bias).
    pub fn new(vs: &nn::Path, in_features: i64, out_features: i64, bias: bool) -> Self {
        let weight = init::linear_weight(vs, "weight", in_features, out_features);
        let bias = bias.then(|| init::linear_bias(vs, "bias", in_features, out_features));
        Self { weight, bias, lora: None }
    }

    /// Number of input features (`in_features`).
    pub fn in_features(&self) -> i64 {
        self.weight.size()[1]
    }

    /// Number of output features (`out_features`).
    pub fn out_features(&self) -> i64 {
        self.weight.size()[0]
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let out = xs.linear(&self.weight, self.bias.as_ref());
        match &self.lora {
            Some(lora) => out + lora.forward(xs), // LinearWithLoRA: linear(x) + lora(x)
            None => out,
        }
    }
}

/// `nn.Embedding(num_embeddings, embedding_dim)`: a lookup table, one row per id.
///
/// # Shapes
/// - `weight`: `[num_embeddings, embedding_dim]`
/// - input ids `[...]` (int64) → output `[..., embedding_dim]`
#[derive(Debug)]
pub struct Embedding {
    /// The table, registered as `<path>.weight`, drawn from N(0, 1).
    pub weight: Tensor,
}

impl Embedding {
    /// Create the table under `vs`, drawn as PyTorch draws it (N(0, 1)).
    pub fn new(vs: &nn::Path, num_embeddings: i64, embedding_dim: i64) -> Self {
        Self { weight: init::standard_normal(vs, "weight", &[num_embeddings, embedding_dim]) }
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.weight, ids, -1, false, false)
    }
}

/// `nn.Dropout(p)`: in training mode, zero each element with probability `p` and scale the
/// others by `1 / (1 - p)`; in evaluation mode, the identity.
///
/// It calls the same libtorch function as PyTorch, so with the same seed it drops the same
/// elements (the book's 6x6 example of section 3.5.2 is a test).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// The probability of dropping an element.
    pub p: f64,
}

impl Dropout {
    /// A dropout layer with rate `p`.
    pub fn new(p: f64) -> Self {
        Self { p }
    }
}

impl ModuleT for Dropout {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.dropout(self.p, train)
    }
}

// Appendix E: the low-rank update a `Linear` can carry.

/// The book's `LoRALayer(in_dim, out_dim, rank, alpha)`: the low-rank update
/// `(alpha / rank) * x @ A @ B` added to a frozen linear layer's output.
///
/// `A` is drawn as `torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5))` draws a `[in_dim, rank]`
/// tensor (its fan-in is `rank`, the size of the second axis), `B` starts at zero.
///
/// # Shapes
/// - `a`: `[in_dim, rank]`, `b`: `[rank, out_dim]`
/// - input `[..., in_dim]` → output `[..., out_dim]`
#[derive(Debug)]
pub struct LoRALayer {
    /// `A`, registered as `<path>.A`.
    pub a: Tensor,
    /// `B`, registered as `<path>.B`.
    pub b: Tensor,
    pub rank: i64,
    pub alpha: f64,
}

impl LoRALayer {
    /// Create `A` then `B` under `vs` (trainable).
    pub fn new(vs: &nn::Path, in_dim: i64, out_dim: i64, rank: i64, alpha: f64) -> Self {
        assert!(rank >= 1, "LoRA rank must be at least 1, not {rank}");
        let bound = init::kaiming_uniform_bound(rank);
        let a = vs.var("A", &[in_dim, rank], nn::Init::Uniform { lo: -bound, up: bound });
        let b = vs.var("B", &[rank, out_dim], nn::Init::Const(0.0));
        LoRALayer { a, b, rank, alpha }
    }

    /// Whether `A` or `B` requires a gradient (trains).
    pub fn requires_grad(&self) -> bool {
        self.a.requires_grad() || self.b.requires_grad()
    }

    /// Number of parameters: `rank * (in_dim + out_dim)`.
    pub fn num_parameters(&self) -> i64 {
        (self.a.numel() + self.b.numel()) as i64
    }
}

impl Module for LoRALayer {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.matmul(&self.a).matmul(&self.b) * (self.alpha / self.rank as f64) // [..., out_dim]
    }
}

/// The book's `LinearWithLoRA(linear, rank, alpha)`: `linear(x) + lora(x)`, for a linear layer
/// on its own. (Inside a `GptModel`, [`crate::tasks::lora::replace_linear_with_lora`] puts the update in each
/// `Linear`'s `lora` field instead, which computes the same.)
///
/// # Shapes
/// input `[..., in_features]` → output `[..., out_features]`
#[derive(Debug)]
pub struct LinearWithLoRA {
    pub linear: Linear,
    pub lora: LoRALayer,
}

impl LinearWithLoRA {
    /// Wrap `linear` with a new [`LoRALayer`] created under `vs` (its `A` and `B`).
    pub fn new(vs: &nn::Path, linear: Linear, rank: i64, alpha: f64) -> Self {
        let lora = LoRALayer::new(vs, linear.in_features(), linear.out_features(), rank, alpha);
        LinearWithLoRA { linear, lora }
    }
}

impl Module for LinearWithLoRA {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.linear.forward(x) + self.lora.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::device::{rng_lock, set_seed};
    use tch::{Device, Kind};

    #[test]
    fn linear_registers_pytorch_names_and_computes_xw_t_plus_b() {
        let _rng = rng_lock(); // creating parameters draws random numbers
        let vs = nn::VarStore::new(Device::Cpu);
        let lin = Linear::new(&(vs.root() / "W_query"), 3, 2, true);
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(names, ["W_query.bias", "W_query.weight"]);
        assert_eq!((lin.in_features(), lin.out_features()), (3, 2));
        let x = Tensor::from_slice(&[1f32, 2., 3.]).view([1, 3]); // [1, 3]
        let want = x.matmul(&lin.weight.tr()) + lin.bias.as_ref().unwrap();
        let diff = f64::try_from((lin.forward(&x) - want).abs().max()).unwrap();
        assert!(diff < 1e-6, "Linear forward differs from x W^T + b by {diff}");
        let no_bias = Linear::new(&(vs.root() / "out_head"), 3, 5, false);
        assert!(no_bias.bias.is_none() && vs.variables().len() == 3, "out_head has no bias");
    }

    #[test]
    fn dropout_matches_the_books_example_and_is_off_in_eval_mode() {
        // Book section 3.5.2: torch.manual_seed(123); nn.Dropout(0.5)(torch.ones(6, 6))
        let want: [[f32; 6]; 6] = [
            [2., 2., 0., 2., 2., 0.],
            [0., 0., 0., 2., 0., 2.],
            [2., 2., 2., 2., 0., 2.],
            [0., 2., 2., 0., 0., 2.],
            [0., 2., 0., 2., 0., 2.],
            [0., 2., 2., 2., 2., 0.],
        ];
        let _rng = rng_lock();
        set_seed(123);
        let ones = Tensor::ones([6, 6], (Kind::Float, Device::Cpu));
        let dropped = Dropout::new(0.5).forward_t(&ones, true);
        let got = Vec::<Vec<f32>>::try_from(dropped).unwrap();
        assert_eq!(got, want.map(|r| r.to_vec()).to_vec(), "dropout pattern after seed 123");
        let eval = Dropout::new(0.5).forward_t(&ones, false);
        assert!(eval.equal(&ones), "dropout must be the identity in eval mode");
    }
}
