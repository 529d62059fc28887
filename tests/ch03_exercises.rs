//! Solutions to the exercises of chapter 3 (see `chapters/ch03/README.md`).

use llm_from_scratch::ch03::*;
use llm_from_scratch::ch04::num_parameters;
use llm_from_scratch::{rng_lock, set_seed};
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Tensor};

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    f64::try_from((a - b).abs().max()).unwrap()
}

/// Exercise 3.1: `SelfAttention_v1` computes `x @ W`, `nn.Linear` computes `x @ W.T`; copying
/// `SelfAttention_v2`'s transposed weights into v1 makes both give the same output.
#[test]
fn exercise_3_1_v1_with_v2_weights_equals_v2() {
    let _rng = rng_lock();
    set_seed(789);
    let vs = nn::VarStore::new(Device::Cpu);
    let sa_v2 = SelfAttentionV2::new(&(vs.root() / "v2"), 3, 2, false);
    let sa_v1 = SelfAttentionV1::new(&(vs.root() / "v1"), 3, 2);
    let inputs = your_journey_inputs();
    assert!(max_diff(&sa_v1.forward(&inputs), &sa_v2.forward(&inputs)) > 1e-2, "different weights at first");
    tch::no_grad(|| {
        sa_v1.w_query.shallow_clone().copy_(&sa_v2.w_query.weight.tr());
        sa_v1.w_key.shallow_clone().copy_(&sa_v2.w_key.weight.tr());
        sa_v1.w_value.shallow_clone().copy_(&sa_v2.w_value.weight.tr());
    });
    let diff = max_diff(&sa_v1.forward(&inputs), &sa_v2.forward(&inputs));
    assert!(diff < 1e-6, "v1 with v2's transposed weights differs by {diff}");
}

/// Exercise 3.2: two heads of output size 1 each give 2-dimensional context vectors.
#[test]
fn exercise_3_2_two_dimensional_context_vectors() {
    let _rng = rng_lock();
    set_seed(123);
    let vs = nn::VarStore::new(Device::Cpu);
    let inputs = your_journey_inputs();
    let batch = Tensor::stack(&[&inputs, &inputs], 0); // [2, 6, 3]
    let mha = MultiHeadAttentionWrapper::new(&vs.root(), 3, 1, 6, 0.0, 2, false);
    assert_eq!(mha.forward_t(&batch, false).size(), [2, 6, 2]);
}

/// Exercise 3.3: a GPT-2-sized attention module (768 in and out, 12 heads, context 1024) has
/// 2,360,064 parameters.
#[test]
fn exercise_3_3_gpt2_sized_attention() {
    let _rng = rng_lock();
    let vs = nn::VarStore::new(Device::Cpu);
    let mha = MultiHeadAttention::new(&vs.root(), 768, 768, 1024, 0.0, 12, false);
    assert_eq!(mha.head_dim, 64);
    assert_eq!(num_parameters(&vs), 2_360_064);
}
