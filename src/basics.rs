//! Appendix A, "Introduction to PyTorch", told with `tch` (libtorch's Rust binding): tensors
//! next to `ndarray` arrays (A.2), the computation graph and autograd on the book's one-input
//! logistic regression (A.3-A.4), the multilayer perceptron `NeuralNetwork` (A.5), the toy data
//! set and its loader (A.6), the training loop with SGD and the accuracy (A.7), and a figure of
//! the trained network's decision boundary. Saving and loading (A.8) is
//! [`crate::nn::model::save_safetensors`] / [`crate::nn::model::load_safetensors`]; choosing the device
//! (A.9) is [`crate::util::device()`].
//!
//! PyTorch's `DataLoader(shuffle=True)` draws its order from libtorch's global generator;
//! [`torch_shuffle_order`] draws it the same way (two seeds, then `randperm` from a fresh
//! Mersenne Twister, [`crate::util::rng`]), so the toy training loop can reproduce the book's run
//! batch for batch.

use plotters::coord::Shift;
use plotters::prelude::*;
use tch::kind::Element;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::text::dataloader::{DataLoader, Dataset};
use crate::error::{Error, Result};
use crate::nn::layers::Linear;
use crate::viz::i18n::tr;
use crate::viz::plot::{evcxr_figure, font, plot_err, Figure};
pub use crate::util::rng::torch_randperm;

// ---------------------------------------------------------------------------------------------
// A.2 Tensors and ndarray

/// A tensor's values as an `ndarray` array of the same shape (`tensor.numpy()`), converted to
/// `T`'s kind (`tensor_to_ndarray::<f32>(&t)`). Works for any device, layout and
/// `requires_grad`: the values are detached and copied to the CPU first.
///
/// # Shapes
/// `t: [d0, d1, ...]` → `ArrayD<T>` with shape `[d0, d1, ...]` (a 0-d tensor gives a 0-d array).
pub fn tensor_to_ndarray<T: Element + Copy>(t: &Tensor) -> Result<ndarray::ArrayD<T>> {
    let t = t.detach().to_device(Device::Cpu).contiguous();
    let array: ndarray::ArrayD<T> = (&t).try_into()?;
    Ok(array)
}

/// An `ndarray` array as a CPU tensor of the same shape and element type
/// (`torch.from_numpy(array)`, but copying). Any layout works: a transposed or sliced view is
/// copied into standard (row-major) order first.
///
/// # Shapes
/// `array` with shape `[d0, d1, ...]` → `[d0, d1, ...]`.
pub fn ndarray_to_tensor<S, D>(array: &ndarray::ArrayBase<S, D>) -> Result<Tensor>
where
    S: ndarray::Data,
    S::Elem: Element + Clone,
    D: ndarray::Dimension,
{
    let standard = array.as_standard_layout();
    Ok(Tensor::try_from(&standard)?)
}

// ---------------------------------------------------------------------------------------------
// A.3-A.4 The computation graph and autograd

/// The book's logistic-regression example (listings A.2-A.3): one input `x1 = 1.1`, weight
/// `w1 = 2.2`, bias `b = 0.0`, true label `y = 1.0`; `z = x1 * w1 + b`, `a = sigmoid(z)`,
/// `loss = binary_cross_entropy(a, y)`. `w1` and `b` require gradients.
///
/// # Shapes
/// Every field is `[1]`, as in the book (`torch.tensor([1.1])`).
#[derive(Debug)]
pub struct LogisticRegressionExample {
    pub x1: Tensor,
    pub y: Tensor,
    pub w1: Tensor,
    pub b: Tensor,
}

impl LogisticRegressionExample {
    /// The book's values: `x1 = 1.1`, `w1 = 2.2`, `b = 0.0`, `y = 1.0`.
    pub fn book() -> Self {
        Self::new(1.1, 2.2, 0.0, 1.0)
    }

    /// Any values (float32, as the book's `torch.tensor([...])`).
    pub fn new(x1: f32, w1: f32, b: f32, y: f32) -> Self {
        let t = |v: f32| Tensor::from_slice(&[v]);
        LogisticRegressionExample { x1: t(x1), y: t(y), w1: t(w1).set_requires_grad(true), b: t(b).set_requires_grad(true) }
    }

    /// The forward pass, building the computation graph: `(z, a, loss)`.
    pub fn forward(&self) -> (Tensor, Tensor, Tensor) {
        let z = &self.x1 * &self.w1 + &self.b; // net input
        let a = z.sigmoid(); // activation and output
        let loss = a.binary_cross_entropy::<Tensor>(&self.y, None, tch::Reduction::Mean);
        (z, a, loss)
    }

    /// `grad(loss, w1, retain_graph=True)` and `grad(loss, b, retain_graph=True)`: the
    /// gradients autograd computes, `(dL/dw1, dL/db)`.
    pub fn autograd_grads(&self) -> (f64, f64) {
        let (_, _, loss) = self.forward();
        let grad_w1 = Tensor::run_backward(&[&loss], &[&self.w1], true, false).remove(0);
        let grad_b = Tensor::run_backward(&[&loss], &[&self.b], true, false).remove(0);
        (grad_w1.double_value(&[0]), grad_b.double_value(&[0]))
    }

    /// The same gradients by the chain rule: for a sigmoid followed by binary cross-entropy,
    /// `dL/dz = a - y`, so `dL/dw1 = (a - y) * x1` and `dL/db = a - y`.
    pub fn analytic_grads(&self) -> (f64, f64) {
        let (x1, w1, b, y) = (self.x1.double_value(&[0]), self.w1.double_value(&[0]), self.b.double_value(&[0]), self.y.double_value(&[0]));
        let a = 1.0 / (1.0 + (-(x1 * w1 + b)).exp());
        ((a - y) * x1, a - y)
    }
}

// ---------------------------------------------------------------------------------------------
// A.5 Multilayer neural networks

/// Listing A.4, `NeuralNetwork(num_inputs, num_outputs)`: a multilayer perceptron with two
/// hidden layers, `Linear(num_inputs, 30)`, ReLU, `Linear(30, 20)`, ReLU, `Linear(20,
/// num_outputs)`. The outputs are logits (no softmax).
///
/// The three `Linear` layers are registered as the book's `torch.nn.Sequential` names them,
/// `layers.0`, `layers.2`, `layers.4` (the ReLUs, 1 and 3, have no parameters): `layers[0]` here
/// is the book's `model.layers[0]`, `layers[1]` its `model.layers[2]`, `layers[2]` its
/// `model.layers[4]`. With `(50, 3)` it has 2213 trainable parameters.
///
/// # Shapes
/// `x: [batch, num_inputs]` → logits `[batch, num_outputs]`.
#[derive(Debug)]
pub struct NeuralNetwork {
    pub layers: Vec<Linear>,
}

impl NeuralNetwork {
    /// Create the layers under `vs` in the book's order (PyTorch's initialisation: with
    /// `set_seed(123)` first, the weights equal the book's).
    pub fn new(vs: &nn::Path, num_inputs: i64, num_outputs: i64) -> Self {
        let seq = vs / "layers";
        let layers = vec![
            Linear::new(&(&seq / 0), num_inputs, 30, true), // 1st hidden layer
            Linear::new(&(&seq / 2), 30, 20, true),         // 2nd hidden layer
            Linear::new(&(&seq / 4), 20, num_outputs, true), // output layer
        ];
        NeuralNetwork { layers }
    }

    /// Class probabilities, `torch.softmax(model(x), dim=1)`.
    ///
    /// # Shapes
    /// `x: [batch, num_inputs]` → `[batch, num_outputs]`, each row summing to 1.
    pub fn predict_proba(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| self.forward(x).softmax(1, Kind::Float))
    }

    /// Predicted class of each row, `torch.argmax(logits, dim=1)`.
    ///
    /// # Shapes
    /// `x: [batch, num_inputs]` → `[batch]` (int64).
    pub fn predict(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| self.forward(x).argmax(1, false))
    }
}

impl Module for NeuralNetwork {
    fn forward(&self, x: &Tensor) -> Tensor {
        let x = self.layers[0].forward(x).relu();
        let x = self.layers[1].forward(&x).relu();
        self.layers[2].forward(&x)
    }
}

// ---------------------------------------------------------------------------------------------
// A.6 Efficient data loaders

/// Listing A.5's toy training set: five points in the plane, the first three of class 0.
pub const TOY_X_TRAIN: [[f32; 2]; 5] = [[-1.2, 3.1], [-0.9, 2.9], [-0.5, 2.6], [2.3, -1.1], [2.7, -1.5]];
/// Labels of [`TOY_X_TRAIN`].
pub const TOY_Y_TRAIN: [i64; 5] = [0, 0, 0, 1, 1];
/// Listing A.5's toy test set: one point of each class.
pub const TOY_X_TEST: [[f32; 2]; 2] = [[-0.8, 2.8], [2.6, -1.6]];
/// Labels of [`TOY_X_TEST`].
pub const TOY_Y_TEST: [i64; 2] = [0, 1];

/// Listing A.6, `ToyDataset(X, y)`: examples are rows of `features` with their `labels`; a batch
/// stacks the rows at the given indices (what `DataLoader`'s default collate does with
/// `__getitem__`'s `(one_x, one_y)` pairs).
///
/// # Shapes
/// `features: [n, num_features]` (float32), `labels: [n]` (int64); a batch of `k` indices is
/// `([k, num_features], [k])`.
#[derive(Debug)]
pub struct ToyDataset {
    pub features: Tensor,
    pub labels: Tensor,
}

impl ToyDataset {
    /// A data set of `features` and `labels`, which must have one label per row.
    pub fn new(features: Tensor, labels: Tensor) -> Result<Self> {
        let (f, l) = (features.size(), labels.size());
        if f.len() != 2 || l.len() != 1 || f[0] != l[0] {
            return Err(Error::InvalidArgument {
                name: "ToyDataset",
                reason: format!("features must be [n, num_features] and labels [n]; got {f:?} and {l:?}"),
            });
        }
        Ok(ToyDataset { features: features.to_kind(Kind::Float), labels: labels.to_kind(Kind::Int64) })
    }

    /// The book's five training points ([`TOY_X_TRAIN`], [`TOY_Y_TRAIN`]).
    pub fn toy_train() -> Self {
        Self::from_rows(&TOY_X_TRAIN, &TOY_Y_TRAIN)
    }

    /// The book's two test points ([`TOY_X_TEST`], [`TOY_Y_TEST`]).
    pub fn toy_test() -> Self {
        Self::from_rows(&TOY_X_TEST, &TOY_Y_TEST)
    }

    fn from_rows(x: &[[f32; 2]], y: &[i64]) -> Self {
        let flat: Vec<f32> = x.iter().flatten().copied().collect();
        let features = Tensor::from_slice(&flat).view([x.len() as i64, 2]); // [n, 2]
        ToyDataset { features, labels: Tensor::from_slice(y) }
    }

    /// `__getitem__(index)`: one example's features and label.
    pub fn get(&self, index: usize) -> (Tensor, i64) {
        (self.features.get(index as i64), self.labels.int64_value(&[index as i64]))
    }
}

impl Clone for ToyDataset {
    fn clone(&self) -> Self {
        ToyDataset { features: self.features.shallow_clone(), labels: self.labels.shallow_clone() }
    }
}

impl Dataset for ToyDataset {
    fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }

    fn batch(&self, indices: &[usize]) -> (Tensor, Tensor) {
        let idx = Tensor::from_slice(&indices.iter().map(|&i| i as i64).collect::<Vec<_>>());
        (self.features.index_select(0, &idx), self.labels.index_select(0, &idx))
    }
}

/// The order in which PyTorch's `DataLoader(dataset, shuffle=True)` (single process, no
/// `generator`) visits `n` examples in the epoch that starts now, drawn from libtorch's global
/// generator exactly as PyTorch draws it: the loader's iterator takes a 64-bit base seed, the
/// `RandomSampler` takes a second one and returns `torch.randperm(n)` from a fresh generator
/// seeded with it. So after the same `set_seed` and the same draws, this is the book's order.
///
/// This crate's [`DataLoader`] shuffles with its own generator instead (one that a checkpoint
/// can resume); this function exists to reproduce the book's appendix A run to the digit.
pub fn torch_shuffle_order(n: usize) -> Vec<usize> {
    let draw = || Tensor::empty([], (Kind::Int64, Device::Cpu)).random_().int64_value(&[]);
    let _base_seed = draw(); // _BaseDataLoaderIter's `_base_seed` (for worker processes)
    let sampler_seed = draw(); // RandomSampler: `torch.Generator().manual_seed(seed)`
    torch_randperm(n, sampler_seed as u64)
}

// ---------------------------------------------------------------------------------------------
// A.7 A typical training loop

/// Where a training loop takes each epoch's order from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochOrder {
    /// The loader's own order ([`DataLoader::order`]: unshuffled, or this crate's seeded shuffle).
    Loader,
    /// PyTorch's order, drawn from the global generator ([`torch_shuffle_order`]), as the
    /// book's `DataLoader(shuffle=True)` does: with the same seed, the book's batches.
    PyTorch,
}

/// One optimisation step of [`train_neural_network`]: 0-based epoch and batch, and the loss.
#[derive(Debug, Clone, PartialEq)]
pub struct ToyTrainStep {
    pub epoch: usize,
    pub batch: usize,
    pub num_epochs: usize,
    pub num_batches: usize,
    pub loss: f64,
}

impl ToyTrainStep {
    /// The book's log line: `Epoch: 001/003 | Batch 000/002 | Train Loss: 0.75`.
    pub fn line(&self) -> String {
        format!(
            "Epoch: {:03}/{:03} | Batch {:03}/{:03} | Train Loss: {:.2}",
            self.epoch + 1,
            self.num_epochs,
            self.batch,
            self.num_batches,
            self.loss
        )
    }
}

/// Listing A.9: train `model` (whose parameters are the trainable variables of `vs`) with
/// `torch.optim.SGD(model.parameters(), lr=lr)` for `num_epochs` over `loader`, minimising the
/// cross-entropy of its logits; per batch: logits, loss, `zero_grad`, `backward`, `step`.
/// Returns every step's loss (print [`ToyTrainStep::line`] for the book's log).
///
/// With `EpochOrder::PyTorch` the batches follow PyTorch's shuffle (the loader's `batch_size`
/// and `drop_last` still apply); the book's run is `set_seed(123)`, `NeuralNetwork::new(2, 2)`,
/// batch 2, `drop_last`, SGD lr 0.5, 3 epochs.
pub fn train_neural_network(
    model: &NeuralNetwork,
    vs: &nn::VarStore,
    loader: &DataLoader<ToyDataset>,
    lr: f64,
    num_epochs: usize,
    order: EpochOrder,
) -> Result<Vec<ToyTrainStep>> {
    let mut optimizer = nn::Sgd::default().build(vs, lr)?;
    let device = vs.device();
    let num_batches = loader.len();
    let mut steps = Vec::with_capacity(num_epochs * num_batches);
    for epoch in 0..num_epochs {
        let indices = match order {
            EpochOrder::Loader => loader.order(epoch as u64),
            EpochOrder::PyTorch => torch_shuffle_order(loader.dataset.len()),
        };
        for (batch, chunk) in indices.chunks(loader.batch_size).take(num_batches).enumerate() {
            let (features, labels) = loader.dataset.batch(chunk);
            let logits = model.forward(&features.to_device(device)); // [batch, num_classes]
            let loss = logits.cross_entropy_for_logits(&labels.to_device(device));
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            steps.push(ToyTrainStep { epoch, batch, num_epochs, num_batches, loss: loss.double_value(&[]) });
        }
    }
    Ok(steps)
}

/// Listing A.10, `compute_accuracy(model, dataloader)`: the fraction of examples whose argmax
/// prediction equals the label, over one pass of `loader` (its epoch-0 order).
pub fn compute_accuracy(model: &NeuralNetwork, loader: &DataLoader<ToyDataset>, device: Device) -> f64 {
    let (mut correct, mut total) = (0i64, 0i64);
    for (features, labels) in loader.iter_epoch(0) {
        let predictions = model.predict(&features.to_device(device)).to_device(Device::Cpu);
        correct += predictions.eq_tensor(&labels).sum(Kind::Int64).int64_value(&[]);
        total += labels.size()[0];
    }
    if total == 0 {
        return f64::NAN;
    }
    correct as f64 / total as f64
}

/// The per-step losses of a toy run as a [`crate::viz::figures::LossPlot`], against the fractional
/// epoch (step `k` of epoch `e` is at `e + (k + 1) / num_batches`).
pub fn toy_loss_plot(steps: &[ToyTrainStep]) -> crate::viz::figures::LossPlot {
    crate::viz::figures::LossPlot {
        title: "Training loss (appendix A toy run)".into(),
        y_label: "Loss".into(),
        epochs: steps.iter().map(|s| s.epoch as f64 + (s.batch + 1) as f64 / s.num_batches.max(1) as f64).collect(),
        tokens_seen: Vec::new(),
        series: vec![("Training loss".into(), steps.iter().map(|s| s.loss).collect())],
    }
}

// ---------------------------------------------------------------------------------------------
// The decision boundary

/// The classes a 2-input classifier predicts over a rectangle of the plane, with the data
/// points on top: where the colour changes is the decision boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionBoundary {
    pub title: String,
    /// `(min, max)` of the first input (x axis).
    pub x_range: (f64, f64),
    /// `(min, max)` of the second input (y axis).
    pub y_range: (f64, f64),
    /// Predicted class of each cell: `grid[row][col]`, row 0 at the bottom (`y_range.0`).
    pub grid: Vec<Vec<i64>>,
    /// The data points: `(x, y, label)`.
    pub points: Vec<(f64, f64, i64)>,
}

evcxr_figure!(DecisionBoundary);

impl DecisionBoundary {
    /// Evaluate `model` on a `resolution` x `resolution` grid over the points of `datasets`
    /// (with a margin of 1 on each side) and keep the points to draw on top.
    pub fn new(model: &NeuralNetwork, datasets: &[&ToyDataset], resolution: usize) -> Result<Self> {
        let mut points = Vec::new();
        for ds in datasets {
            if ds.features.size()[1] != 2 {
                return Err(Error::InvalidArgument {
                    name: "DecisionBoundary",
                    reason: format!("needs 2 input features, the data set has {}", ds.features.size()[1]),
                });
            }
            let xy: Vec<f32> = Vec::try_from(ds.features.flatten(0, -1))?;
            let labels: Vec<i64> = Vec::try_from(&ds.labels)?;
            points.extend(xy.chunks(2).zip(labels).map(|(p, l)| (p[0] as f64, p[1] as f64, l)));
        }
        if points.is_empty() || resolution < 2 {
            return Err(Error::InvalidArgument { name: "DecisionBoundary", reason: "needs points and a resolution of at least 2".into() });
        }
        let range = |f: fn(&(f64, f64, i64)) -> f64| {
            let lo = points.iter().map(f).fold(f64::MAX, f64::min) - 1.0;
            let hi = points.iter().map(f).fold(f64::MIN, f64::max) + 1.0;
            (lo, hi)
        };
        let (x_range, y_range) = (range(|p| p.0), range(|p| p.1));
        let r = resolution as i64;
        let xs = Tensor::linspace(x_range.0, x_range.1, r, (Kind::Float, Device::Cpu));
        let ys = Tensor::linspace(y_range.0, y_range.1, r, (Kind::Float, Device::Cpu));
        let grid_xy = Tensor::stack(&[xs.repeat([r]), ys.repeat_interleave_self_int(r, 0, None)], 1); // [r * r, 2], row-major over y
        let device = model.layers[0].weight.device();
        let classes: Vec<i64> = Vec::try_from(model.predict(&grid_xy.to_device(device)).to_device(Device::Cpu))?;
        let grid = classes.chunks(resolution).map(|row| row.to_vec()).collect();
        Ok(DecisionBoundary { title: "Decision boundary".into(), x_range, y_range, grid, points })
    }
}

impl Figure for DecisionBoundary {
    fn size(&self) -> (u32, u32) {
        (560, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let rows = self.grid.len();
        let cols = self.grid.first().map_or(0, |r| r.len());
        if rows == 0 || cols == 0 {
            return Err(Error::Plot(format!("'{}': empty grid", self.title)));
        }
        let mut chart = ChartBuilder::on(root)
            .caption(tr(&self.title), (font(), 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(self.x_range.0..self.x_range.1, self.y_range.0..self.y_range.1)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("x1")
            .y_desc("x2")
            .label_style((font(), 13))
            .draw()
            .map_err(plot_err)?;
        let (dx, dy) = ((self.x_range.1 - self.x_range.0) / (cols - 1) as f64, (self.y_range.1 - self.y_range.0) / (rows - 1) as f64);
        let cells = self.grid.iter().enumerate().flat_map(|(i, row)| {
            row.iter().enumerate().map(move |(j, &class)| {
                let (x, y) = (self.x_range.0 + j as f64 * dx, self.y_range.0 + i as f64 * dy);
                let color = Palette99::pick(class.max(0) as usize).mix(0.25);
                Rectangle::new([(x - dx / 2.0, y - dy / 2.0), (x + dx / 2.0, y + dy / 2.0)], color.filled())
            })
        });
        chart.draw_series(cells).map_err(plot_err)?;
        let mut labels: Vec<i64> = self.points.iter().map(|p| p.2).collect();
        labels.sort_unstable();
        labels.dedup();
        for label in labels {
            let color = Palette99::pick(label.max(0) as usize).to_rgba();
            chart
                .draw_series(self.points.iter().filter(|p| p.2 == label).map(|p| Circle::new((p.0, p.1), 6, color.filled())))
                .map_err(plot_err)?
                .label(tr(&format!("class {label}")))
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
        }
        crate::viz::plot::draw_legend(&mut chart)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndarray_round_trip_keeps_shape_values_and_kind() {
        let t = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).view([2, 3]); // [2, 3]
        let a = tensor_to_ndarray::<f32>(&t).unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a[[1, 0]], 4.0);
        // A transposed view (not in standard layout) converts by its logical order.
        let back = ndarray_to_tensor(&a.t()).unwrap();
        assert_eq!(back.size(), [3, 2]);
        assert!(back.equal(&t.tr()), "tensor -> ndarray -> transposed tensor");
        assert_eq!(back.kind(), Kind::Float);
        let ints = tensor_to_ndarray::<i64>(&Tensor::from_slice(&[1.7f64, -2.2])).unwrap();
        assert_eq!(ints.as_slice().unwrap(), &[1, -2], "converted to the requested kind");
    }
}
