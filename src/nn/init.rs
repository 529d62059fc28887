//! PyTorch's default initialisation, drawn in PyTorch's order (book chapters 3 and 4: every
//! number the book prints after `torch.manual_seed(123)` depends on it).
//!
//! With the same seed, the same creation order and the same distributions, libtorch's CPU
//! generator gives the same bits as PyTorch (tested against torch in `tests/pytorch_parity.rs`).
//! The distributions are:
//!
//! - `nn.Embedding`: weight ~ N(0, 1) (`init.normal_`).
//! - `nn.Linear(in, out)`: weight ~ kaiming-uniform with `a = sqrt(5)`, which is
//!   U(-1/sqrt(in), 1/sqrt(in)); *then* the bias ~ U(-1/sqrt(in), 1/sqrt(in)).
//! - `torch.rand` (chapter 3's `SelfAttention_v1`): U(0, 1).
//!
//! tch's own `nn::linear` draws the bias before the weight (and with other bounds), so the
//! crate's layers use these functions instead.

use tch::nn::{self, Init};
use tch::Tensor;

/// The bound of `init.kaiming_uniform_(w, a=math.sqrt(5))` for a weight with `fan_in` inputs,
/// computed with PyTorch's own float64 steps (`gain = sqrt(2 / (1 + a^2))`,
/// `std = gain / sqrt(fan_in)`, `bound = sqrt(3) * std`), so the bound has the same bits as
/// PyTorch's. Mathematically this is `1 / sqrt(fan_in)`.
pub fn kaiming_uniform_bound(fan_in: i64) -> f64 {
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a.powi(2))).sqrt();
    let std = gain / (fan_in as f64).sqrt();
    3f64.sqrt() * std
}

/// The bound of `nn.Linear`'s bias: `1 / math.sqrt(fan_in)` (0 when `fan_in` is 0).
pub fn linear_bias_bound(fan_in: i64) -> f64 {
    if fan_in > 0 {
        1.0 / (fan_in as f64).sqrt()
    } else {
        0.0
    }
}

/// Create the trainable weight `name` of shape `[out_features, in_features]` under `vs`,
/// drawn as `nn.Linear` draws it (kaiming-uniform, `a = sqrt(5)`).
pub fn linear_weight(vs: &nn::Path, name: &str, in_features: i64, out_features: i64) -> Tensor {
    let bound = kaiming_uniform_bound(in_features);
    vs.var(name, &[out_features, in_features], Init::Uniform { lo: -bound, up: bound })
}

/// Create the trainable bias `name` of shape `[out_features]`, drawn as `nn.Linear` draws it
/// (after its weight): U(-1/sqrt(in_features), 1/sqrt(in_features)).
pub fn linear_bias(vs: &nn::Path, name: &str, in_features: i64, out_features: i64) -> Tensor {
    let bound = linear_bias_bound(in_features);
    vs.var(name, &[out_features], Init::Uniform { lo: -bound, up: bound })
}

/// Create a trainable tensor drawn from N(0, 1), as `nn.Embedding` (`init.normal_`) and
/// `torch.randn` draw it.
pub fn standard_normal(vs: &nn::Path, name: &str, dims: &[i64]) -> Tensor {
    vs.var(name, dims, Init::Randn { mean: 0.0, stdev: 1.0 })
}

/// Create a trainable tensor drawn from U(0, 1), as `torch.rand` draws it.
pub fn uniform_0_1(vs: &nn::Path, name: &str, dims: &[i64]) -> Tensor {
    vs.var(name, dims, Init::Uniform { lo: 0.0, up: 1.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::device::{rng_lock, set_seed};
    use tch::Device;

    fn first(t: &Tensor, n: i64) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1).narrow(0, 0, n)).unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{what}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn bound_is_one_over_sqrt_fan_in() {
        for fan_in in [3, 768, 3072] {
            let b = kaiming_uniform_bound(fan_in);
            assert!((b - 1.0 / (fan_in as f64).sqrt()).abs() < 1e-15, "fan_in {fan_in}: {b}");
        }
        assert_eq!(linear_bias_bound(0), 0.0);
    }

    #[test]
    fn linear_draws_weight_then_bias_like_pytorch() {
        // torch.manual_seed(123); l = nn.Linear(768, 768)
        // l.weight[0, :4] -> [-0.0147, 0.0012, -0.0179, 0.0136]; l.bias[:4] -> [0.0151, -0.0160, 0.0274, 0.0168]
        let _rng = rng_lock();
        set_seed(123);
        let vs = nn::VarStore::new(Device::Cpu);
        let w = linear_weight(&vs.root(), "weight", 768, 768);
        let b = linear_bias(&vs.root(), "bias", 768, 768);
        assert_eq!(w.size(), [768, 768]);
        assert_close(&first(&w, 4), &[-0.0147, 0.0012, -0.0179, 0.0136], "Linear weight");
        assert_close(&first(&b, 4), &[0.0151, -0.0160, 0.0274, 0.0168], "Linear bias");
    }

    #[test]
    fn embedding_draws_standard_normal_like_pytorch() {
        // torch.manual_seed(123); nn.Embedding(50257, 768).weight[0, :4] -> [0.3374, -0.1778, -0.3035, -0.5880]
        // and the last row ends with [0.7015, -0.3244, 0.2606, 0.5889].
        let _rng = rng_lock();
        set_seed(123);
        let vs = nn::VarStore::new(Device::Cpu);
        let w = standard_normal(&vs.root(), "weight", &[50257, 768]);
        assert_close(&first(&w, 4), &[0.3374, -0.1778, -0.3035, -0.5880], "Embedding weight");
        let last = Vec::<f32>::try_from(w.get(50256).narrow(0, 764, 4)).unwrap();
        assert_close(&last, &[0.7015, -0.3244, 0.2606, 0.5889], "Embedding last row");
    }
}
