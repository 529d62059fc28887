//! Appendix A against the book's PyTorch code (`tests/fixtures/appendix_a.py`, run with `python`
//! when its outputs are missing): autograd's gradients, `NeuralNetwork`'s weights and output
//! under seed 123, PyTorch's shuffle order, and the toy training run loss for loss.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llm_from_scratch::appendix_a::*;
use llm_from_scratch::plot::Figure;
use llm_from_scratch::rng_lock;
use tch::nn::{Module, VarStore};
use tch::{Device, Kind, Tensor};

fn reference_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::fixture("appendix_a.py", &[], "appendix_a", "reference.json"))
}

fn reference() -> serde_json::Value {
    let path = reference_dir().join("reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read(name: &str) -> HashMap<String, Tensor> {
    let path = reference_dir().join(name);
    Tensor::read_safetensors(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "shapes differ");
    (a - b).abs().max().double_value(&[])
}

/// The book's toy run: seed 123, `NeuralNetwork(2, 2)`, batch 2 with drop_last, PyTorch's
/// shuffle, SGD lr 0.5, 3 epochs.
fn toy_run() -> (VarStore, NeuralNetwork, Vec<ToyTrainStep>) {
    let _rng = rng_lock();
    set_seed(123);
    let train_loader = DataLoader::new(ToyDataset::toy_train(), 2, true, true, 123).unwrap();
    set_seed(123);
    let vs = VarStore::new(Device::Cpu);
    let model = NeuralNetwork::new(&vs.root(), 2, 2);
    let steps = train_neural_network(&model, &vs, &train_loader, 0.5, 3, EpochOrder::PyTorch).unwrap();
    (vs, model, steps)
}

#[test]
fn logistic_regression_gradients_match_pytorch_and_the_chain_rule() {
    let want = &reference()["logistic"];
    let example = LogisticRegressionExample::book();
    let (_, _, loss) = example.forward();
    assert!((loss.double_value(&[]) - want["loss"].as_f64().unwrap()).abs() < 1e-6, "loss {loss}");
    let (grad_w1, grad_b) = example.autograd_grads();
    let (by_hand_w1, by_hand_b) = example.analytic_grads();
    for (what, got, want) in [("dL/dw1", grad_w1, &want["grad_w1"]), ("dL/db", grad_b, &want["grad_b"])] {
        let want = want.as_f64().unwrap();
        assert!((got - want).abs() < 1e-7, "{what}: autograd gives {got}, PyTorch {want}");
    }
    assert!((grad_w1 - by_hand_w1).abs() < 1e-6 && (grad_b - by_hand_b).abs() < 1e-6, "chain rule: {by_hand_w1}, {by_hand_b}");
    // The book prints (tensor([-0.0898]),) and (tensor([-0.0817]),).
    assert_eq!((format!("{grad_w1:.4}"), format!("{grad_b:.4}")), ("-0.0898".into(), "-0.0817".into()));
    // loss.backward() fills the .grad fields with the same values.
    loss.backward();
    assert!((example.w1.grad().double_value(&[0]) - grad_w1).abs() < 1e-7);
    assert!((example.b.grad().double_value(&[0]) - grad_b).abs() < 1e-7);
}

#[test]
fn neural_network_50_3_has_2213_parameters_and_pytorchs_weights_and_output() {
    let want = read("mlp_50_3.safetensors");
    let _rng = rng_lock();
    set_seed(123);
    let vs = VarStore::new(Device::Cpu);
    let model = NeuralNetwork::new(&vs.root(), 50, 3);
    assert_eq!(num_trainable_parameters(&vs), 2213, "the book's count");
    assert_eq!(reference()["mlp_num_params"].as_i64(), Some(2213));
    assert_eq!(model.layers[0].weight.size(), [30, 50], "model.layers[0].weight");
    let vars = vs.variables();
    assert_eq!(vars.len(), 6);
    for (name, var) in &vars {
        assert!(var.equal(&want[name]), "{name}: not PyTorch's seed-123 value");
    }
    set_seed(123);
    let x = Tensor::rand([1, 50], (Kind::Float, Device::Cpu));
    assert!(x.equal(&want["X"]), "torch.manual_seed(123); torch.rand((1, 50))");
    let out = tch::no_grad(|| model.forward(&x));
    assert!(max_diff(&out, &want["out"]) < 1e-6, "output {out} vs PyTorch's {}", want["out"]);
    // The book prints tensor([[-0.1262, 0.1080, -0.1792]]) and softmax [[0.3113, 0.3934, 0.2952]].
    let printed: Vec<String> = Vec::<f32>::try_from(out.flatten(0, -1)).unwrap().iter().map(|v| format!("{v:.4}")).collect();
    assert_eq!(printed, ["-0.1262", "0.1080", "-0.1792"]);
    assert!(max_diff(&model.predict_proba(&x), &want["softmax"]) < 1e-6);
}

#[test]
fn torch_shuffle_order_is_pytorchs_dataloader_order() {
    let want: Vec<Vec<usize>> = serde_json::from_value(reference()["orders_after_seed_123"].clone()).unwrap();
    let _rng = rng_lock();
    set_seed(123);
    let got: Vec<Vec<usize>> = (0..3).map(|_| torch_shuffle_order(5)).collect();
    assert_eq!(got, want, "three epochs of DataLoader(range(5), shuffle=True) after torch.manual_seed(123)");
}

#[test]
fn toy_training_reproduces_the_books_run() {
    let want = reference();
    let (vs, model, steps) = toy_run();
    let lines: Vec<String> = steps.iter().map(ToyTrainStep::line).collect();
    let want_lines: Vec<String> = serde_json::from_value(want["toy_lines"].clone()).unwrap();
    assert_eq!(lines, want_lines, "the book's log: 0.75, 0.65, 0.44, 0.13, 0.03, 0.00");
    let want_losses: Vec<f64> = serde_json::from_value(want["toy_losses"].clone()).unwrap();
    for (i, (s, w)) in steps.iter().zip(&want_losses).enumerate() {
        assert!((s.loss - w).abs() < 1e-5, "step {i}: loss {} vs PyTorch's {w}", s.loss);
    }
    let final_weights = read("toy_model.safetensors");
    for (name, var) in vs.variables() {
        let diff = max_diff(&var, &final_weights[&name]);
        assert!(diff < 1e-5, "{name}: {diff} from PyTorch's trained weights");
    }
    let train = DataLoader::new(ToyDataset::toy_train(), 2, false, false, 0).unwrap();
    let test = DataLoader::new(ToyDataset::toy_test(), 2, false, false, 0).unwrap();
    assert_eq!(compute_accuracy(&model, &train, Device::Cpu), want["train_accuracy"].as_f64().unwrap());
    assert_eq!(compute_accuracy(&model, &test, Device::Cpu), 1.0, "both test points right");
    let probas: Vec<Vec<f32>> = serde_json::from_value(want["toy_probas"].clone()).unwrap();
    let flat: Vec<f32> = probas.concat();
    let want_probas = Tensor::from_slice(&flat).view([5, 2]); // [5, 2]
    assert!(max_diff(&model.predict_proba(&ToyDataset::toy_train().features), &want_probas) < 1e-5);
}

#[test]
fn saved_model_loads_into_a_new_network() {
    let (vs, model, _) = toy_run();
    let dir = std::env::temp_dir().join(format!("appendix_a_{}", std::process::id()));
    let path = dir.join("model.safetensors");
    save_safetensors(&vs, &path).unwrap();
    let vs2 = VarStore::new(Device::Cpu);
    let model2 = {
        let _rng = rng_lock();
        NeuralNetwork::new(&vs2.root(), 2, 2)
    };
    let x = ToyDataset::toy_test().features;
    assert!(max_diff(&model.forward(&x), &model2.forward(&x)) > 1e-3, "a fresh network differs");
    load_safetensors(&vs2, &path).unwrap();
    assert!(model.forward(&x).equal(&model2.forward(&x)), "the loaded network computes the same logits");
    // A file of another architecture is refused, naming the tensor.
    let vs3 = VarStore::new(Device::Cpu);
    let _other = {
        let _rng = rng_lock();
        NeuralNetwork::new(&vs3.root(), 2, 3)
    };
    let err = load_safetensors(&vs3, &path).unwrap_err().to_string();
    assert!(err.contains("layers.4.bias") && err.contains("[3]") && err.contains("[2]"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn decision_boundary_separates_the_toy_classes() {
    let (_, model, _) = toy_run();
    let (train, test) = (ToyDataset::toy_train(), ToyDataset::toy_test());
    let figure = DecisionBoundary::new(&model, &[&train, &test], 41).unwrap();
    assert_eq!((figure.grid.len(), figure.grid[0].len()), (41, 41));
    assert_eq!(figure.points.len(), 7);
    // Each data point's nearest grid cell is predicted as the point's label.
    let (dx, dy) = ((figure.x_range.1 - figure.x_range.0) / 40.0, (figure.y_range.1 - figure.y_range.0) / 40.0);
    for &(x, y, label) in &figure.points {
        let (col, row) = (((x - figure.x_range.0) / dx).round() as usize, ((y - figure.y_range.0) / dy).round() as usize);
        assert_eq!(figure.grid[row][col], label, "point ({x}, {y})");
    }
    let cells: Vec<i64> = figure.grid.concat();
    assert!(cells.contains(&0) && cells.contains(&1), "both classes have a region");
    let svg = figure.to_svg().unwrap();
    for text in ["Decision boundary", "class 0", "class 1", "x1", "x2"] {
        assert!(svg.as_str().contains(text), "SVG lacks '{text}'");
    }
    let plot = toy_loss_plot(&toy_run().2);
    assert_eq!(plot.epochs, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);
    assert!(plot.to_svg().unwrap().as_str().contains("Training loss"));
}

#[test]
fn ndarray_and_tensor_agree_on_the_books_matrix_product() {
    // A.2: tensor2d = [[1, 2, 3], [4, 5, 6]]; tensor2d.matmul(tensor2d.T) = [[14, 32], [32, 77]].
    let tensor2d = Tensor::from_slice2(&[[1i64, 2, 3], [4, 5, 6]]);
    let array = tensor_to_ndarray::<i64>(&tensor2d).unwrap().into_dimensionality::<ndarray::Ix2>().unwrap();
    let product = array.dot(&array.t());
    assert_eq!(product, ndarray::arr2(&[[14, 32], [32, 77]]));
    let back = ndarray_to_tensor(&product).unwrap();
    assert!(back.equal(&tensor2d.matmul(&tensor2d.tr())), "ndarray's product = tch's");
    assert_eq!(back.kind(), Kind::Int64);
    // float32 ndarray -> float32 tensor; a tensor on any device or with requires_grad converts.
    let w = Tensor::from_slice(&[0.5f32, -1.5]).set_requires_grad(true);
    assert_eq!(tensor_to_ndarray::<f32>(&w).unwrap().as_slice().unwrap(), &[0.5, -1.5]);
}
