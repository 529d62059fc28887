//! Checks of chapter 3's exercises ("Coding attention mechanisms"): the book's 3.1 to 3.3 and the
//! project's 3.4 (the causal mask) and 3.5 (scaled dot-product attention by hand). Notebook:
//! `notebooks/exercises/source/ch03/ch03-exercises.ipynb`.

use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

use super::{check, check_close, fail, max_diff};
use crate::nn::attention::{causal_mask, your_journey_inputs, MultiHeadAttention, MultiHeadAttentionWrapper, SelfAttentionV1, SelfAttentionV2};
use crate::nn::model::num_parameters;
use crate::util::device::set_seed;

/// Exercise 3.1, comparing `SelfAttention_v1` and `SelfAttention_v2`: `copy_weights(v1, v2)`
/// sets v1's weights so that it computes what v2 computes. Checked on two modules of
/// `d_in = 3, d_out = 2` (seed 789) and the chapter's "Your journey starts with one step" inputs.
pub fn check_3_1(copy_weights: impl Fn(&SelfAttentionV1, &SelfAttentionV2)) {
    set_seed(789);
    let vs = nn::VarStore::new(Device::Cpu);
    let sa_v2 = SelfAttentionV2::new(&(vs.root() / "v2"), 3, 2, false);
    let sa_v1 = SelfAttentionV1::new(&(vs.root() / "v1"), 3, 2);
    let inputs = your_journey_inputs();
    copy_weights(&sa_v1, &sa_v2);
    let want = sa_v2.forward(&inputs);
    check_close(
        "3.1",
        &sa_v1.forward(&inputs),
        &want,
        1e-6,
        "v1 with v2's weights gives v2's context vectors",
        "`Linear` stores its weight as [d_out, d_in] and computes x W^T, while v1 computes x W: copy the transposed \
         weights (`w.tr()`), inside `tch::no_grad`",
    );
}

/// Exercise 3.2, returning two-dimensional embedding vectors: `build(vs)` makes a
/// `MultiHeadAttentionWrapper` for the chapter's inputs (`d_in = 3`, context 6, no dropout, no
/// bias) whose context vectors have 2 dimensions, by changing only its `d_out`.
pub fn check_3_2(build: impl Fn(&nn::Path) -> MultiHeadAttentionWrapper) {
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let mha = build(&vs.root());
    let inputs = your_journey_inputs();
    let batch = Tensor::stack(&[&inputs, &inputs], 0); // [2, 6, 3]
    let out = mha.forward_t(&batch, false);
    check(
        "3.2",
        out.size() == [2, 6, 2],
        "a batch [2, 6, 3] becomes context vectors [2, 6, 2]",
        format!("the output is {:?}, it should be [2, 6, 2]: the heads' outputs are concatenated, so 2 heads of d_out 1 give 2 dimensions", out.size()),
    );
    check("3.2", mha.heads.len() == 2, "with 2 heads, as before", format!("keep the 2 heads and change d_out; you have {} heads", mha.heads.len()));
}

/// Exercise 3.3, initializing GPT-2 size attention modules: `build(vs)` makes a
/// `MultiHeadAttention` with GPT-2's sizes (768 in and out, 12 heads, context 1024, no bias), and
/// `n_params` is its number of parameters worked out by hand.
pub fn check_3_3(build: impl Fn(&nn::Path) -> MultiHeadAttention, n_params: i64) {
    let vs = nn::VarStore::new(Device::Cpu);
    let mha = build(&vs.root());
    let sizes = (mha.d_out, mha.num_heads, mha.head_dim, mha.mask.size());
    check(
        "3.3",
        sizes == (768, 12, 64, vec![1024, 1024]),
        "768 dimensions in 12 heads of 64, context 1024",
        format!("(d_out, num_heads, head_dim, mask) is {sizes:?}; GPT-2 uses 768, 12 heads (64 each) and a context of 1024"),
    );
    let counted = num_parameters(&vs);
    check(
        "3.3",
        n_params == counted,
        format!("{counted} parameters"),
        format!(
            "the module has {counted} parameters, not {n_params}: three projections of 768 x 768 without bias, and \
             `out_proj` with its bias"
        ),
    );
}

/// Exercise 3.4 (this project's), the causal mask: `causal_weights(scores)` turns attention
/// scores into causal attention weights, each row a softmax over the positions up to its own.
///
/// # Shapes
/// `scores: [..., n, n]` → `[..., n, n]`
pub fn check_3_4(causal_weights: impl Fn(&Tensor) -> Tensor) {
    set_seed(123);
    for shape in [vec![6, 6], vec![2, 4, 4]] {
        let n = shape[shape.len() - 1];
        let scores = Tensor::randn(&shape, (Kind::Float, Device::Cpu)) * 3.0;
        let want = scores.masked_fill(&causal_mask(n, Device::Cpu), f64::NEG_INFINITY).softmax(-1, Kind::Float);
        let got = causal_weights(&scores);
        if got.size() != want.size() {
            fail("3.4", format!("scores {shape:?} give weights of the same shape, not {:?}", got.size()));
        }
        if max_diff(&got.triu(1), &Tensor::zeros_like(&want)) > 0.0 {
            fail("3.4", "a position sees the future: every weight above the diagonal must be exactly 0");
        }
        check_close(
            "3.4",
            &got,
            &want,
            1e-6,
            format!("causal weights of scores {shape:?} are right"),
            "each row must sum to 1 over the positions up to its own: set the future's scores to -inf before the \
             softmax (zeroing scores instead still gives them weight)",
        );
    }
}

/// Exercise 3.5 (this project's), scaled dot-product attention by hand: `attention(q, k, v)` is
/// causal attention, `softmax(q k^T / sqrt(d_k))` with the future masked, times `v`. Compared with
/// libtorch's fused `scaled_dot_product_attention`.
///
/// # Shapes
/// `q, k, v: [b, num_heads, n, d_k]` → `[b, num_heads, n, d_k]`
pub fn check_3_5(attention: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor) {
    set_seed(123);
    let opts = (Kind::Float, Device::Cpu);
    let (q, k, v) = (Tensor::randn([2, 3, 5, 8], opts), Tensor::randn([2, 3, 5, 8], opts), Tensor::randn([2, 3, 5, 8], opts));
    let want = Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, true, None, false);
    check_close(
        "3.5",
        &attention(&q, &k, &v),
        &want,
        1e-5,
        "your attention equals libtorch's scaled_dot_product_attention (causal)",
        "scores q k^T (transpose the last two dimensions of k), divided by sqrt(d_k) = sqrt(8), future masked with \
         -inf, softmax over the last dimension, then times v",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercises::tests::fails;
    use crate::util::device::rng_lock;

    #[test]
    fn check_3_1_takes_the_transposed_weights_and_rejects_untransposed_ones() {
        let _rng = rng_lock();
        let copy = |transpose: bool| {
            move |v1: &SelfAttentionV1, v2: &SelfAttentionV2| {
                tch::no_grad(|| {
                    for (w1, w2) in [(&v1.w_query, &v2.w_query), (&v1.w_key, &v2.w_key), (&v1.w_value, &v2.w_value)] {
                        let w = if transpose { w2.weight.tr() } else { w2.weight.reshape([3, 2]) }; // [d_in, d_out]
                        w1.shallow_clone().copy_(&w);
                    }
                })
            }
        };
        check_3_1(copy(true));
        fails("3.1", || check_3_1(copy(false)));
        fails("3.1", || check_3_1(|_, _| ()));
    }

    #[test]
    fn check_3_2_takes_two_heads_of_one_dimension_and_rejects_two_of_two() {
        let _rng = rng_lock();
        check_3_2(|vs| MultiHeadAttentionWrapper::new(vs, 3, 1, 6, 0.0, 2, false));
        fails("3.2", || check_3_2(|vs| MultiHeadAttentionWrapper::new(vs, 3, 2, 6, 0.0, 2, false)));
        fails("3.2", || check_3_2(|vs| MultiHeadAttentionWrapper::new(vs, 3, 2, 6, 0.0, 1, false)));
    }

    #[test]
    fn check_3_3_takes_gpt2_sizes_and_the_count_and_rejects_a_count_without_bias() {
        let _rng = rng_lock();
        let gpt2 = |vs: &nn::Path| MultiHeadAttention::new(vs, 768, 768, 1024, 0.0, 12, false);
        check_3_3(gpt2, 4 * 768 * 768 + 768);
        fails("3.3", || check_3_3(gpt2, 4 * 768 * 768));
        fails("3.3", || check_3_3(|vs| MultiHeadAttention::new(vs, 768, 768, 256, 0.0, 12, false), 4 * 768 * 768 + 768));
    }

    #[test]
    fn check_3_4_takes_masking_before_softmax_and_rejects_zeroing_the_scores() {
        let _rng = rng_lock();
        let mask = |s: &Tensor| causal_mask(s.size()[s.dim() - 1], Device::Cpu);
        check_3_4(|s| s.masked_fill(&mask(s), f64::NEG_INFINITY).softmax(-1, Kind::Float));
        fails("3.4", || check_3_4(|s| s.masked_fill(&mask(s), 0.0).softmax(-1, Kind::Float)));
        fails("3.4", || check_3_4(|s| s.softmax(-1, Kind::Float)));
    }

    #[test]
    fn check_3_5_takes_scaled_causal_attention_and_rejects_a_missing_scale() {
        let _rng = rng_lock();
        let attention = |scale: f64| {
            move |q: &Tensor, k: &Tensor, v: &Tensor| {
                let n = q.size()[2];
                let scores = q.matmul(&k.transpose(-2, -1)) / scale; // [b, h, n, n]
                scores.masked_fill(&causal_mask(n, Device::Cpu), f64::NEG_INFINITY).softmax(-1, Kind::Float).matmul(v)
            }
        };
        check_3_5(attention(8f64.sqrt()));
        fails("3.5", || check_3_5(attention(1.0)));
    }
}
