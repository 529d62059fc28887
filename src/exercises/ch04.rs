//! Checks of chapter 4's exercises ("Implementing a GPT model from scratch to generate text"):
//! the book's 4.1 to 4.3 and the project's 4.4 (layer normalization by hand) and 4.5 (GELU by
//! hand). Notebook: `notebooks/exercises/source/ch04/ch04-exercises.ipynb`.

use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use super::{check, check_close, fail, max_diff, pass};
use crate::nn::config::GptConfig;
use crate::nn::model::{num_parameters_under, Gelu, GptModel, LayerNorm, TransformerBlock};
use crate::util::device::set_seed;

/// Exercise 4.1, the parameters of the feed-forward and the attention module of one transformer
/// block of GPT-124M, as counted by the learner.
pub fn check_4_1(ff_params: i64, att_params: i64) {
    let vs = nn::VarStore::new(Device::Cpu);
    let _block = TransformerBlock::new(&vs.root(), &GptConfig::gpt2_124m());
    let (ff, att) = (num_parameters_under(&vs, "ff"), num_parameters_under(&vs, "att"));
    check(
        "4.1",
        ff_params == ff,
        format!("the feed-forward module has {ff} parameters"),
        format!("count again: 768 -> 3072 -> 768, each `Linear` with its bias; {ff_params} is not it"),
    );
    check(
        "4.1",
        att_params == att,
        format!("the attention module has {att} parameters; the feed-forward module {:.2} times as many", ff as f64 / att as f64),
        format!("count again: query, key and value 768 x 768 without bias, `out_proj` with bias; {att_params} is not it"),
    );
}

/// Exercise 4.2, initializing larger GPT models: `total(cfg)` is the number of parameters of
/// `GptModel` with config `cfg` (separate output head, as in chapter 4), worked out from the
/// config without building the model. Checked for GPT-2 small, medium, large and XL.
pub fn check_4_2(total: impl Fn(&GptConfig) -> i64) {
    for (name, cfg) in [
        ("small (124M)", GptConfig::gpt2_124m()),
        ("medium", GptConfig::gpt2_medium()),
        ("large", GptConfig::gpt2_large()),
        ("XL", GptConfig::gpt2_xl()),
    ] {
        let (got, want) = (total(&cfg), cfg.num_parameters());
        if got != want {
            fail(
                "4.2",
                format!(
                    "GPT-2 {name} (emb_dim {}, {} layers) has {want} parameters, not {got}: token and position embeddings, \
                     n_layers blocks (attention, feed-forward, 2 layer norms), the final norm and the output head",
                    cfg.emb_dim, cfg.n_layers
                ),
            );
        }
    }
    pass("4.2", "parameter counts of GPT-2 small, medium, large and XL are right");
}

/// Exercise 4.3, using separate dropout parameters: `set_dropout_rates(model, emb, attn,
/// shortcut)` sets the dropout rate after the embeddings, of the attention weights, and of the
/// shortcut connections. Checked on a small model: each rate must land in its place and act.
pub fn check_4_3(set_dropout_rates: impl Fn(&mut GptModel, f64, f64, f64)) {
    let cfg = GptConfig { vocab_size: 101, context_length: 16, emb_dim: 32, n_heads: 4, n_layers: 2, drop_rate: 0.1, qkv_bias: false };
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut model = GptModel::new(&vs.root(), &cfg);
    let ids = Tensor::from_slice2(&[[3i64, 14, 15, 92, 65, 35]]);
    let eval = model.forward_t(&ids, false);
    set_dropout_rates(&mut model, 0.1, 0.2, 0.3);
    let rates = |m: &GptModel| -> Vec<(f64, f64, f64)> {
        m.trf_blocks.iter().map(|b| (m.drop_emb.p, b.att.dropout.p, b.drop_shortcut.p)).collect()
    };
    let got = rates(&model);
    if got.iter().any(|&r| r != (0.1, 0.2, 0.3)) {
        fail("4.3", format!("(embedding, attention, shortcut) rates per block are {got:?}, want (0.1, 0.2, 0.3) in every block"));
    }
    for (emb, attn, shortcut) in [(0.5, 0.0, 0.0), (0.0, 0.5, 0.0), (0.0, 0.0, 0.5)] {
        set_dropout_rates(&mut model, emb, attn, shortcut);
        if max_diff(&model.forward_t(&ids, true), &eval) < 1e-3 {
            fail("4.3", format!("with rates ({emb}, {attn}, {shortcut}) training mode computes what evaluation mode does: that rate does not act"));
        }
    }
    set_dropout_rates(&mut model, 0.0, 0.0, 0.0);
    check(
        "4.3",
        max_diff(&model.forward_t(&ids, true), &eval) < 1e-5,
        "each rate lands in its place and acts on its own",
        "with all three rates 0 training mode must compute what evaluation mode does: is a rate left over?",
    );
}

/// Exercise 4.4 (this project's), layer normalization by hand: `layer_norm(x)` normalizes the
/// last dimension to mean 0 and variance 1 (biased variance, eps 1e-5, no scale or shift).
/// Compared with the library's `LayerNorm` as initialised.
///
/// # Shapes
/// `x: [..., emb_dim]` → `[..., emb_dim]`
pub fn check_4_4(layer_norm: impl Fn(&Tensor) -> Tensor) {
    set_seed(123);
    let x = Tensor::randn([2, 3, 5], (Kind::Float, Device::Cpu)) * 4.0 + 1.5;
    let vs = nn::VarStore::new(Device::Cpu);
    let want = LayerNorm::new(&vs.root(), 5).forward(&x);
    check_close(
        "4.4",
        &layer_norm(&x),
        &want,
        1e-5,
        "your layer norm equals the library's LayerNorm",
        "subtract the mean of the last dimension, divide by sqrt(variance + 1e-5), with the biased variance \
         (`var_dim(-1, false, true)`: divide by n, not n - 1)",
    );
}

/// Exercise 4.5 (this project's), GELU by hand: `gelu(x)` is the tanh approximation GPT-2 uses,
/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`. Compared with the library's `Gelu`.
///
/// # Shapes
/// `x: [...]` → `[...]`
pub fn check_4_5(gelu: impl Fn(&Tensor) -> Tensor) {
    let x = Tensor::linspace(-4.0, 4.0, 101, (Kind::Float, Device::Cpu));
    check_close(
        "4.5",
        &gelu(&x),
        &Gelu.forward(&x),
        1e-5,
        "your GELU equals the library's on [-4, 4]",
        "use the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), not ReLU nor the exact erf form",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercises::tests::fails;
    use crate::util::device::rng_lock;

    #[test]
    fn check_4_1_takes_the_counts_and_rejects_swapped_ones() {
        let _rng = rng_lock();
        check_4_1(4_722_432, 2_360_064);
        fails("4.1", || check_4_1(2_360_064, 4_722_432));
    }

    #[test]
    fn check_4_2_takes_the_formula_and_rejects_one_without_the_output_head() {
        let total = |c: &GptConfig| {
            let (v, n, d) = (c.vocab_size, c.context_length, c.emb_dim);
            let block = 4 * d * d + d + (d * 4 * d + 4 * d) + (4 * d * d + d) + 2 * 2 * d;
            v * d + n * d + c.n_layers * block + 2 * d + d * v
        };
        check_4_2(total);
        fails("4.2", || check_4_2(|c| total(c) - c.vocab_size * c.emb_dim));
    }

    #[test]
    fn check_4_3_takes_the_three_rates_and_rejects_one_rate_for_all() {
        let _rng = rng_lock();
        check_4_3(|m, emb, attn, shortcut| {
            m.drop_emb.p = emb;
            for b in &mut m.trf_blocks {
                b.att.dropout.p = attn;
                b.drop_shortcut.p = shortcut;
            }
        });
        fails("4.3", || {
            check_4_3(|m, emb, _, _| {
                m.drop_emb.p = emb;
                for b in &mut m.trf_blocks {
                    (b.att.dropout.p, b.drop_shortcut.p) = (emb, emb);
                }
            })
        });
    }

    #[test]
    fn check_4_4_takes_the_biased_variance_and_rejects_the_unbiased_one() {
        let _rng = rng_lock();
        let norm = |unbiased: bool| {
            move |x: &Tensor| (x - x.mean_dim(-1, true, None::<Kind>)) / (x.var_dim(-1, unbiased, true) + 1e-5).sqrt()
        };
        check_4_4(norm(false));
        fails("4.4", || check_4_4(norm(true)));
    }

    #[test]
    fn check_4_5_takes_the_tanh_form_and_rejects_the_erf_form_and_relu() {
        let tanh_gelu = |x: &Tensor| {
            let inner = (x + x.pow_tensor_scalar(3) * 0.044715) * (2.0 / std::f64::consts::PI).sqrt();
            x * 0.5 * (inner.tanh() + 1.0)
        };
        check_4_5(tanh_gelu);
        fails("4.5", || check_4_5(|x| x.gelu("none")));
        fails("4.5", || check_4_5(|x| x.relu()));
    }
}
