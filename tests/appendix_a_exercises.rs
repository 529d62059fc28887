//! Solutions to the exercises of appendix A (see `chapters/appendix-a/README.md`).

use std::time::Instant;

use llm_from_scratch::appendix_a::*;
use llm_from_scratch::{ndarray, rng_lock};
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

/// Exercise A.3: the parameters of the toy network `NeuralNetwork(2, 2)` of listing A.9.
#[test]
fn exercise_a_3_toy_network_parameters() {
    let _rng = rng_lock();
    let vs = VarStore::new(Device::Cpu);
    let _model = NeuralNetwork::new(&vs.root(), 2, 2);
    // (2 * 30 + 30) + (30 * 20 + 20) + (20 * 2 + 2) = 90 + 620 + 42
    assert_eq!(num_trainable_parameters(&vs), 752);
    assert_eq!(90 + 620 + 42, 752);
}

/// Exercise A.4: a 100x200 by 200x300 matrix product on the CPU and on `device()` (the CPU
/// again on a machine without a GPU): same result; the timings are printed, not asserted.
#[test]
fn exercise_a_4_matrix_product_on_cpu_and_device() {
    let (a, b) = {
        let _rng = rng_lock();
        set_seed(123);
        (Tensor::rand([100, 200], (Kind::Float, Device::Cpu)), Tensor::rand([200, 300], (Kind::Float, Device::Cpu)))
    };
    let time = |device: Device| {
        let (a, b) = (a.to_device(device), b.to_device(device));
        let _ = a.matmul(&b); // warm-up
        let start = Instant::now();
        let mut out = Tensor::new();
        for _ in 0..100 {
            out = a.matmul(&b);
        }
        let _ = out.sum(Kind::Float).double_value(&[]); // wait for the device
        (out.to_device(Device::Cpu), start.elapsed().as_secs_f64() / 100.0)
    };
    let dev = device();
    let (on_cpu, cpu_s) = time(Device::Cpu);
    let (on_dev, dev_s) = time(dev);
    println!("a @ b: CPU {:.1} us, {dev:?} {:.1} us", cpu_s * 1e6, dev_s * 1e6);
    assert_eq!(on_cpu.size(), [100, 300]);
    let diff = (&on_cpu - &on_dev).abs().max().double_value(&[]);
    assert!(diff < 1e-3, "CPU and {dev:?} products differ by {diff}");
}

/// This crate's exercise: the softmax of `NeuralNetwork(50, 3)`'s output (section A.5), computed
/// in `ndarray` from the tensor's values, equals `predict_proba`.
#[test]
fn exercise_softmax_in_ndarray() {
    let _rng = rng_lock();
    set_seed(123);
    let vs = VarStore::new(Device::Cpu);
    let model = NeuralNetwork::new(&vs.root(), 50, 3);
    set_seed(123);
    let x = Tensor::rand([1, 50], (Kind::Float, Device::Cpu));
    let logits = tensor_to_ndarray::<f32>(&model.forward(&x)).unwrap();
    // softmax(z)_i = exp(z_i - max z) / sum_j exp(z_j - max z), along the last axis.
    let max = logits.fold(f32::MIN, |m, &v| m.max(v));
    let exp = logits.mapv(|v| (v - max).exp());
    let probas = &exp / exp.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1));
    let want = tensor_to_ndarray::<f32>(&model.predict_proba(&x)).unwrap();
    assert_eq!(probas.shape(), &[1, 3]);
    for (p, w) in probas.iter().zip(want.iter()) {
        assert!((p - w).abs() < 1e-6, "ndarray softmax {probas} vs tch {want}");
    }
    // The book's tensor([[0.3113, 0.3934, 0.2952]]).
    let printed: Vec<String> = probas.iter().map(|v| format!("{v:.4}")).collect();
    assert_eq!(printed, ["0.3113", "0.3934", "0.2952"]);
}

/// This crate's exercise: train the toy network with the crate's own shuffle
/// (`EpochOrder::Loader`) instead of PyTorch's. Other batches, other losses, the same result:
/// every training and test point classified correctly.
#[test]
fn exercise_own_shuffle_still_separates_the_classes() {
    let _rng = rng_lock();
    set_seed(123);
    let vs = VarStore::new(Device::Cpu);
    let model = NeuralNetwork::new(&vs.root(), 2, 2);
    let train_loader = DataLoader::new(ToyDataset::toy_train(), 2, true, true, 123).unwrap();
    let steps = train_neural_network(&model, &vs, &train_loader, 0.5, 3, EpochOrder::Loader).unwrap();
    assert_eq!(steps.len(), 6, "3 epochs of 2 batches");
    assert!(steps[5].loss < steps[0].loss / 5.0, "the loss falls: {steps:?}");
    let train = DataLoader::new(ToyDataset::toy_train(), 2, false, false, 0).unwrap();
    let test = DataLoader::new(ToyDataset::toy_test(), 2, false, false, 0).unwrap();
    assert_eq!(compute_accuracy(&model, &train, Device::Cpu), 1.0);
    assert_eq!(compute_accuracy(&model, &test, Device::Cpu), 1.0);
}
