//! Checks of appendix A's exercises ("Introduction to PyTorch", here tch): the book's A.1 and A.2
//! (the set-up: here the device libtorch sees and a first computation on it), A.3 and A.4, and the
//! project's A.5 (softmax in `ndarray`) and A.6 (training with the crate's own shuffle).
//! Notebook: `notebooks/exercises/source/appendix-a/appendix-a-exercises.ipynb`.

use ndarray::Array2;
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

use super::{check, check_close, fail, reference};
use crate::basics::{compute_accuracy, tensor_to_ndarray, train_neural_network, EpochOrder, NeuralNetwork, ToyDataset, ToyTrainStep};
use crate::nn::model::num_trainable_parameters;
use crate::text::dataloader::DataLoader;
use crate::util::device::{device_report, set_seed};

/// Exercise A.1, the set-up: `cuda_devices` is the number of CUDA devices libtorch sees in this
/// kernel (0 on a machine without a GPU or with a CPU-only libtorch).
pub fn check_a_1(cuda_devices: usize) {
    let report = device_report();
    check(
        "A.1",
        cuda_devices == report.cuda_devices,
        format!("libtorch sees {} CUDA device(s): {report}", report.cuda_devices),
        format!("ask libtorch (load its CUDA library first: `device_report()` or `device()` do); {cuda_devices} is not it"),
    );
}

/// Exercise A.2, checking the installation: `dev` is the device a tensor made with
/// `Tensor::arange(1, 11)` on the project's device lives on, and `sum` its sum computed there.
pub fn check_a_2(dev: Device, sum: f64) {
    let want = device_report().device;
    check(
        "A.2",
        dev == want,
        format!("tensors live on {want:?}"),
        format!("make the tensor on the project's device, `device()` ({want:?}), not {dev:?}"),
    );
    check("A.2", sum == 55.0, "1 + 2 + ... + 10 = 55: libtorch computes", format!("the sum of 1..=10 is 55, not {sum}"));
}

/// Exercise A.3, the parameters of the toy network `NeuralNetwork(2, 2)` (listing A.9),
/// worked out by hand.
pub fn check_a_3(n_params: i64) {
    let vs = VarStore::new(Device::Cpu);
    let _model = NeuralNetwork::new(&vs.root(), 2, 2);
    let counted = num_trainable_parameters(&vs);
    check(
        "A.3",
        n_params == counted,
        format!("{counted} trainable parameters"),
        format!("three `Linear` layers 2 -> 30 -> 20 -> 2, each with a weight and a bias; {n_params} is not it"),
    );
}

/// Exercise A.4, matrix multiplication on the CPU and the GPU: `product(a, b, dev)` multiplies
/// `a` by `b` on `dev` and returns the result on the CPU. Checked with a 100x200 by 200x300
/// product on the CPU and on `device`.
///
/// # Shapes
/// `a: [100, 200]`, `b: [200, 300]` → `[100, 300]`
pub fn check_a_4(product: impl Fn(&Tensor, &Tensor, Device) -> Tensor, device: Device) {
    set_seed(123);
    let (a, b) = (Tensor::rand([100, 200], (Kind::Float, Device::Cpu)), Tensor::rand([200, 300], (Kind::Float, Device::Cpu)));
    let want = a.matmul(&b);
    for dev in [Device::Cpu, device] {
        let got = product(&a, &b, dev);
        if got.device() != Device::Cpu {
            fail("A.4", format!("return the product on the CPU (`.to_device(Device::Cpu)`), not on {:?}", got.device()));
        }
        check_close("A.4", &got, &want, 1e-3, format!("the product on {dev:?} is right"), "move both matrices to the device, then `a.matmul(&b)`");
    }
}

/// Exercise A.5 (this project's), softmax in `ndarray`: `softmax_rows(z)` is the softmax of each
/// row of `z`. Compared with `NeuralNetwork(50, 3)::predict_proba` (seed 123, the book's
/// `[[0.3113, 0.3934, 0.2952]]`) and on large logits, where a naive `exp` overflows.
///
/// # Shapes
/// `z: [rows, classes]` → `[rows, classes]`
pub fn check_a_5(softmax_rows: impl Fn(&Array2<f32>) -> Array2<f32>) {
    set_seed(123);
    let vs = VarStore::new(Device::Cpu);
    let model = NeuralNetwork::new(&vs.root(), 50, 3);
    set_seed(123);
    let x = Tensor::rand([1, 50], (Kind::Float, Device::Cpu));
    let to_2d = |t: &Tensor| -> Array2<f32> {
        let array = reference("A.5", tensor_to_ndarray::<f32>(t));
        reference("A.5", array.into_dimensionality())
    };
    let logits = to_2d(&tch::no_grad(|| model.forward(&x)));
    let want = to_2d(&model.predict_proba(&x));
    let close = |got: &Array2<f32>, want: &Array2<f32>| {
        got.shape() == want.shape() && got.iter().zip(want.iter()).all(|(g, w)| (g - w).abs() < 1e-6)
    };
    let got = softmax_rows(&logits);
    check(
        "A.5",
        close(&got, &want),
        format!("the toy network's class probabilities {want:.4}"),
        format!("exponentiate and divide by each row's sum; you have {got:.4}, predict_proba gives {want:.4}"),
    );
    let big = Array2::from_shape_vec((2, 3), vec![1000.0f32, 1001.0, 1002.0, -5.0, 0.0, 5.0]).expect("2 x 3 values");
    let t = reference("A.5", Tensor::f_from_slice(big.as_slice().expect("contiguous")));
    let want = to_2d(&t.reshape([2, 3]).softmax(1, Kind::Float)); // [2, 3]
    let got = softmax_rows(&big);
    check(
        "A.5",
        close(&got, &want),
        "and stays finite for logits near 1000",
        format!("subtract each row's maximum before `exp` (exp(1000) overflows f32); you have {got}"),
    );
}

/// The settings of exercise A.6 (and of the book's run): the toy network, batch size 2,
/// shuffled, `drop_last`, SGD with learning rate 0.5, 3 epochs, seed 123.
fn own_shuffle_run() -> (Vec<ToyTrainStep>, f64, f64) {
    set_seed(123);
    let vs = VarStore::new(Device::Cpu);
    let model = NeuralNetwork::new(&vs.root(), 2, 2);
    let train_loader = reference("A.6", DataLoader::new(ToyDataset::toy_train(), 2, true, true, 123));
    let steps = reference("A.6", train_neural_network(&model, &vs, &train_loader, 0.5, 3, EpochOrder::Loader));
    let train = reference("A.6", DataLoader::new(ToyDataset::toy_train(), 2, false, false, 0));
    let test = reference("A.6", DataLoader::new(ToyDataset::toy_test(), 2, false, false, 0));
    (steps, compute_accuracy(&model, &train, Device::Cpu), compute_accuracy(&model, &test, Device::Cpu))
}

/// Exercise A.6 (this project's), another shuffle: `steps` are the training steps of the book's
/// run (seed 123, batch 2, SGD lr 0.5, 3 epochs) with the crate's seeded shuffle
/// (`EpochOrder::Loader`, loader seed 123) instead of PyTorch's order, and `train_acc`,
/// `test_acc` the accuracies of the trained network on the training and the test points.
pub fn check_a_6(steps: &[ToyTrainStep], train_acc: f64, test_acc: f64) {
    let (want, want_train, want_test) = own_shuffle_run();
    let losses = |s: &[ToyTrainStep]| s.iter().map(|s| s.loss).collect::<Vec<_>>();
    if steps.len() != want.len() {
        fail("A.6", format!("3 epochs of {} batches make {} steps, not {}", want[0].num_batches, want.len(), steps.len()));
    }
    let same = losses(steps).iter().zip(losses(&want)).all(|(a, b)| (a - b).abs() < 1e-6);
    check(
        "A.6",
        same,
        "the losses of the run with the crate's shuffle are right",
        "train with `EpochOrder::Loader` and a loader shuffled with seed 123, after `set_seed(123)` and building the network",
    );
    check(
        "A.6",
        (train_acc, test_acc) == (want_train, want_test),
        format!("other batches, the same result: accuracy {:.0}% on the training and {:.0}% on the test points", want_train * 100.0, want_test * 100.0),
        format!("the accuracies are {want_train} and {want_test}, not {train_acc} and {test_acc}: `compute_accuracy` over each data set"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercises::tests::fails;
    use crate::util::device::rng_lock;

    #[test]
    fn check_a_1_and_a_2_take_the_device_and_reject_another() {
        let report = device_report();
        check_a_1(report.cuda_devices);
        fails("A.1", || check_a_1(report.cuda_devices + 1));
        check_a_2(report.device, 55.0);
        fails("A.2", || check_a_2(report.device, 45.0));
        fails("A.2", || check_a_2(Device::Cuda(7), 55.0));
    }

    #[test]
    fn check_a_3_takes_752_and_rejects_the_weights_alone() {
        let _rng = rng_lock();
        check_a_3(752);
        fails("A.3", || check_a_3(2 * 30 + 30 * 20 + 20 * 2));
    }

    #[test]
    fn check_a_4_takes_the_product_and_rejects_a_transposed_one() {
        let _rng = rng_lock();
        let dev = device_report().device;
        check_a_4(|a, b, d| a.to_device(d).matmul(&b.to_device(d)).to_device(Device::Cpu), dev);
        fails("A.4", || check_a_4(|a, b, _| b.tr().matmul(&a.tr()), dev));
    }

    #[test]
    fn check_a_5_takes_a_stable_softmax_and_rejects_a_naive_one() {
        let _rng = rng_lock();
        let softmax = |stable: bool| {
            move |z: &Array2<f32>| {
                let mut out = z.clone();
                for mut row in out.rows_mut() {
                    let max = if stable { row.fold(f32::MIN, |m, &v| m.max(v)) } else { 0.0 };
                    row.mapv_inplace(|v| (v - max).exp());
                    let sum = row.sum();
                    row /= sum;
                }
                out
            }
        };
        check_a_5(softmax(true));
        fails("A.5", || check_a_5(softmax(false)));
        fails("A.5", || check_a_5(|z| z.mapv(|v| v.exp())));
    }

    #[test]
    fn check_a_6_takes_the_loader_order_and_rejects_pytorchs() {
        let _rng = rng_lock();
        let (steps, train, test) = own_shuffle_run();
        check_a_6(&steps, train, test);
        set_seed(123);
        let vs = VarStore::new(Device::Cpu);
        let model = NeuralNetwork::new(&vs.root(), 2, 2);
        let loader = DataLoader::new(ToyDataset::toy_train(), 2, true, true, 123).unwrap();
        let pytorch = train_neural_network(&model, &vs, &loader, 0.5, 3, EpochOrder::PyTorch).unwrap();
        fails("A.6", || check_a_6(&pytorch, train, test));
        fails("A.6", || check_a_6(&steps, 0.5, test));
    }
}
