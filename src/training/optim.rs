//! AdamW, written out (chapter 5.2 trains with `torch.optim.AdamW`; appendix D adjusts its
//! learning rate every step and clips gradients).
//!
//! tch's own optimizer keeps its state inside libtorch where it cannot be saved, so a run could
//! not be resumed exactly. This one keeps every moment estimate as a named tensor: a checkpoint
//! stores them next to the weights, and a resumed run continues bit for bit. The update is
//! PyTorch's single-tensor AdamW (the default on the CPU), term for term:
//!
//! ```text
//! step += 1
//! p      <- p * (1 - lr * weight_decay)                 (decoupled weight decay)
//! m      <- beta1 * m + (1 - beta1) * g                 (exp_avg)
//! v      <- beta2 * v + (1 - beta2) * g * g             (exp_avg_sq)
//! p      <- p - lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
//! ```
//!
//! As in PyTorch, a parameter without a gradient (frozen, or unused by the loss) is skipped
//! entirely: no decay, no step count.
//!
//! The arithmetic is arranged for memory traffic, which bounds the step on a CPU: PyTorch's loop
//! makes 8 passes over each parameter-sized tensor and allocates two new ones (`sqrt(v)` and the
//! quotient); this one makes 7 passes and allocates nothing per parameter: `g * g` and the
//! denominator go into one scratch buffer the size of the largest parameter, allocated once per
//! step (a fresh large allocation costs page faults). The second moment is updated as
//! `v.lerp_(g * g, 1 - beta2)` and the step as `p + m / (c2 + sqrt(v) * c1)` with
//! `c1 = -1 / (step_size * sqrt(bias_correction2))`, `c2 = -eps / step_size`: the same formula
//! rounded in another order, so the parameters agree with `torch.optim.AdamW` to about 1e-7
//! relative (tested against it to 1e-6 over 20 steps).

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// The moment estimates of one parameter.
#[derive(Debug)]
pub struct AdamWState {
    /// Number of updates this parameter has received.
    pub step: i64,
    /// First moment (PyTorch's `exp_avg`).
    pub exp_avg: Tensor,
    /// Second moment (PyTorch's `exp_avg_sq`).
    pub exp_avg_sq: Tensor,
}

/// AdamW over the variables of a [`VarStore`], with state that can be saved and restored.
#[derive(Debug)]
pub struct AdamW {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// The parameters, by their VarStore names (sorted, so the order is stable).
    pub params: Vec<(String, Tensor)>,
    /// State per parameter name, created at its first update.
    pub state: BTreeMap<String, AdamWState>,
    /// The gradients computed by [`AdamW::backward`] (index-aligned with `params`; an undefined
    /// tensor for a parameter without one), used instead of the parameters' `.grad` fields until
    /// the next [`AdamW::zero_grad`]; `None` when `loss.backward()` filled the `.grad` fields.
    grads: Option<Vec<Tensor>>,
}

impl AdamW {
    /// `torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)`: betas
    /// (0.9, 0.999), eps 1e-8. Every variable of `vs` is included; those whose gradient is
    /// undefined at a step (frozen ones) are skipped at that step.
    pub fn new(vs: &VarStore, lr: f64, weight_decay: f64) -> Self {
        let mut params: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        AdamW { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, params, state: BTreeMap::new(), grads: None }
    }

    /// Set the learning rate used by the next steps (appendix D's schedules).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Reset all gradients (`optimizer.zero_grad()`): drop those of [`AdamW::backward`] (as
    /// PyTorch's default `set_to_none=True` does) and zero the parameters' `.grad` fields that
    /// `loss.backward()` filled (libtorch offers no way to unset them from here).
    pub fn zero_grad(&mut self) {
        self.grads = None;
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// `loss.backward()` for this optimizer's parameters, keeping the gradients in the optimizer
    /// instead of the parameters' `.grad` fields: the book's
    /// `optimizer.zero_grad(); loss.backward(); optimizer.step()` becomes
    /// `optimizer.zero_grad(); optimizer.backward(&loss); optimizer.step()`.
    ///
    /// Why: gradients accumulated into `.grad` must exist (zero-filled) before the backward pass
    /// and are added into, while these are created by the backward pass itself, as with
    /// PyTorch's default `zero_grad(set_to_none=True)`. That saves a pass over all gradients
    /// twice per step, and the memory of all gradients during the forward pass (the size of the
    /// model: 622 MB for GPT-2 small). Called again without `zero_grad`, it adds to the kept
    /// gradients, as PyTorch accumulates. Frozen parameters (no `requires_grad`) get none.
    pub fn backward(&mut self, loss: &Tensor) {
        let trainable: Vec<usize> = (0..self.params.len()).filter(|&i| self.params[i].1.requires_grad()).collect();
        let inputs: Vec<&Tensor> = trainable.iter().map(|&i| &self.params[i].1).collect();
        let new = if inputs.is_empty() { Vec::new() } else { Tensor::run_backward(&[loss], &inputs, false, false) };
        let mut grads: Vec<Tensor> = match self.grads.take() {
            Some(grads) => grads,
            None => (0..self.params.len()).map(|_| Tensor::new()).collect(),
        };
        let _no_grad = tch::no_grad_guard();
        for (&i, g) in trainable.iter().zip(new) {
            if !g.defined() {
                continue; // the loss does not depend on this parameter
            }
            if grads[i].defined() {
                let _ = grads[i].g_add_(&g);
            } else {
                grads[i] = g;
            }
        }
        self.grads = Some(grads);
    }

    /// The gradient of parameter `i` (of [`AdamW::backward`], else its `.grad` field); an
    /// undefined tensor when it has none.
    fn grad_at(&self, i: usize) -> Tensor {
        match &self.grads {
            Some(grads) => grads[i].shallow_clone(),
            None => self.params[i].1.grad(),
        }
    }

    /// The gradient of the parameter `name` after a backward pass (of [`AdamW::backward`], or
    /// of `loss.backward()`), or `None` when it has none.
    pub fn grad(&self, name: &str) -> Option<Tensor> {
        let i = self.params.iter().position(|(n, _)| n == name)?;
        Some(self.grad_at(i)).filter(|g| g.defined())
    }

    /// Update every parameter that has a gradient (`optimizer.step()`).
    pub fn step(&mut self) {
        let (lr, b1, b2, eps, wd) = (self.lr, self.beta1, self.beta2, self.eps, self.weight_decay);
        let grads: Vec<Tensor> = (0..self.params.len()).map(|i| self.grad_at(i)).collect();
        let AdamW { params, state, .. } = self;
        let _no_grad = tch::no_grad_guard();
        // One buffer for the temporaries of every parameter (see the module documentation).
        let mut scratch = Tensor::new();
        let largest = params.iter().map(|(_, p)| p.numel()).max().unwrap_or(0) as i64;
        for ((name, p), grad) in params.iter_mut().zip(grads) {
            if !grad.defined() {
                continue;
            }
            let st = state.entry(name.clone()).or_insert_with(|| AdamWState {
                step: 0,
                exp_avg: p.zeros_like(),
                exp_avg_sq: p.zeros_like(),
            });
            st.step += 1;
            let numel = p.numel() as i64;
            if !scratch.defined() || scratch.kind() != p.kind() || scratch.device() != p.device() || scratch.numel() < numel as usize {
                scratch = Tensor::empty([largest.max(numel)], (p.kind(), p.device()));
            }
            let tmp = scratch.narrow(0, 0, numel).view(p.size().as_slice()); // [p's shape], shares scratch

            if wd != 0.0 {
                let _ = p.g_mul_scalar_(1.0 - lr * wd);
            }
            let _ = st.exp_avg.lerp_(&grad, 1.0 - b1); // m = b1 m + (1 - b1) g
            let _ = grad.mul_out(&tmp, &grad); // tmp = g * g
            let _ = st.exp_avg_sq.lerp_(&tmp, 1.0 - b2); // v = b2 v + (1 - b2) g g
            let bias_correction1 = 1.0 - b1.powi(st.step as i32);
            let bias_correction2_sqrt = (1.0 - b2.powi(st.step as i32)).sqrt();
            let step_size = lr / bias_correction1;
            if step_size == 0.0 {
                // A learning rate of 0 (a schedule that decays to 0, or a run that only evaluates)
                // moves nothing; the moments above are updated as PyTorch updates them. The
                // division below would be by zero.
                continue;
            }
            // tmp = -(sqrt(v) / bias_correction2_sqrt + eps) / step_size, so that
            // p + m / tmp = p - step_size * m / (sqrt(v) / bias_correction2_sqrt + eps). The
            // affine part is one addcmul (c2 + tmp * c1) into tmp instead of a multiply and an add.
            let _ = st.exp_avg_sq.sqrt_out(&tmp);
            let c1 = Tensor::from(-1.0 / (step_size * bias_correction2_sqrt)).to_kind(p.kind()).to_device(p.device());
            let c2 = Tensor::from(-eps / step_size).to_kind(p.kind()).to_device(p.device());
            let _ = c2.addcmul_out(&tmp, &tmp, &c1);
            let _ = p.addcdiv_(&st.exp_avg, &tmp);
        }
    }

    /// [`AdamW::zero_grad`], [`AdamW::backward`], [`AdamW::step`]: one training step's update.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        self.backward(loss);
        self.step();
    }

    /// Scale all gradients so that their global L2 norm is at most `max_norm`
    /// (`torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        tch::no_grad(|| {
            let grads: Vec<Tensor> = (0..self.params.len()).map(|i| self.grad_at(i)).filter(|g| g.defined()).collect();
            if grads.is_empty() {
                return 0.0;
            }
            let norms: Vec<Tensor> = grads.iter().map(|g| g.norm().to_kind(Kind::Float)).collect();
            let total = Tensor::stack(&norms, 0).norm().double_value(&[]);
            let clip_coef = max_norm / (total + 1e-6);
            if clip_coef < 1.0 {
                for mut g in grads {
                    let _ = g.g_mul_scalar_(clip_coef);
                }
            }
            total
        })
    }

    /// The state as named tensors, for a checkpoint: `exp_avg.{name}`, `exp_avg_sq.{name}` and
    /// `step.{name}` (a 0-d int64 tensor), plus the hyper-parameters as JSON.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(self.state.len() * 3);
        for (name, st) in &self.state {
            out.push((format!("exp_avg.{name}"), st.exp_avg.shallow_clone()));
            out.push((format!("exp_avg_sq.{name}"), st.exp_avg_sq.shallow_clone()));
            out.push((format!("step.{name}"), Tensor::from(st.step)));
        }
        out
    }

    /// The hyper-parameters, for a checkpoint's metadata.
    pub fn hyper_parameters(&self) -> AdamWHyper {
        AdamWHyper { lr: self.lr, beta1: self.beta1, beta2: self.beta2, eps: self.eps, weight_decay: self.weight_decay }
    }

    /// Restore the state saved by [`AdamW::state_tensors`]. Every tensor must belong to a
    /// parameter of this optimizer with the parameter's shape; `source` names the file in errors.
    pub fn load_state(&mut self, tensors: &[(String, Tensor)], hyper: &AdamWHyper, source: &str) -> Result<()> {
        let shapes: BTreeMap<&str, Vec<i64>> = self.params.iter().map(|(n, p)| (n.as_str(), p.size())).collect();
        let device = self.params.first().map(|(_, p)| p.device()).unwrap_or(tch::Device::Cpu);
        let mut state: BTreeMap<String, AdamWState> = BTreeMap::new();
        for (key, t) in tensors {
            let (kind, name) = key.split_once('.').ok_or_else(|| Error::Format {
                path: source.into(),
                reason: format!("optimizer tensor '{key}' has no 'exp_avg.', 'exp_avg_sq.' or 'step.' prefix"),
            })?;
            let want = shapes.get(name).ok_or_else(|| Error::Format {
                path: source.into(),
                reason: format!("optimizer state '{key}' is for '{name}', which the model does not have"),
            })?;
            let entry = state.entry(name.to_string()).or_insert_with(|| AdamWState {
                step: 0,
                exp_avg: Tensor::new(),
                exp_avg_sq: Tensor::new(),
            });
            match kind {
                "step" => entry.step = t.int64_value(&[]),
                "exp_avg" | "exp_avg_sq" => {
                    if &t.size() != want {
                        return Err(Error::ShapeMismatch {
                            name: format!("{source}: {key}"),
                            expected: want.clone(),
                            found: t.size(),
                        });
                    }
                    let t = t.to_device(device).to_kind(Kind::Float);
                    if kind == "exp_avg" {
                        entry.exp_avg = t;
                    } else {
                        entry.exp_avg_sq = t;
                    }
                }
                other => {
                    return Err(Error::Format {
                        path: source.into(),
                        reason: format!("unknown optimizer tensor kind '{other}' in '{key}'"),
                    })
                }
            }
        }
        if let Some((name, _)) = state.iter().find(|(_, s)| !s.exp_avg.defined() || !s.exp_avg_sq.defined()) {
            return Err(Error::Format {
                path: source.into(),
                reason: format!("optimizer state of '{name}' is incomplete (needs exp_avg, exp_avg_sq and step)"),
            });
        }
        self.state = state;
        self.lr = hyper.lr;
        self.beta1 = hyper.beta1;
        self.beta2 = hyper.beta2;
        self.eps = hyper.eps;
        self.weight_decay = hyper.weight_decay;
        Ok(())
    }
}

/// AdamW's hyper-parameters as stored in a checkpoint's JSON metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn;

    /// Two parameters, a loss that uses both, three steps.
    fn run(steps: usize) -> (VarStore, AdamW) {
        run_with(steps, false)
    }

    /// `run`, with the book's `zero_grad(); loss.backward(); step()` (gradients in the `.grad`
    /// fields) when `book_loop`, else `backward_step` (gradients kept by the optimizer).
    fn run_with(steps: usize, book_loop: bool) -> (VarStore, AdamW) {
        let vs = VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let w = root.var_copy("w", &Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.25]).reshape([2, 2]));
        let b = root.var_copy("b", &Tensor::from_slice(&[0.1f32, -0.2]));
        let x = Tensor::from_slice(&[1.0f32, 2.0, -1.0, 0.5]).reshape([2, 2]);
        let mut opt = AdamW::new(&vs, 0.1, 0.1);
        for _ in 0..steps {
            let y = x.matmul(&w) + &b;
            let loss = (&y * &y).sum(Kind::Float) + w.sin().sum(Kind::Float);
            if book_loop {
                opt.zero_grad();
                loss.backward();
                opt.step();
            } else {
                opt.backward_step(&loss);
            }
        }
        (vs, opt)
    }

    #[test]
    fn matches_pytorch_adamw() {
        // torch.optim.AdamW([w, b], lr=0.1, weight_decay=0.1), same loss, 3 steps (torch 2.13):
        // w = [[0.18934943, -0.68364704], [1.6450032, 0.47372732]], b = [-0.19848457, -0.4914038]
        let (vs, opt) = run(3);
        let v = vs.variables();
        let w = Vec::<f32>::try_from(v["w"].flatten(0, -1)).unwrap();
        let b = Vec::<f32>::try_from(&v["b"]).unwrap();
        let want_w = [0.18934943f32, -0.68364704, 1.6450032, 0.47372732];
        let want_b = [-0.19848457f32, -0.4914038];
        for (got, want) in w.iter().chain(&b).zip(want_w.iter().chain(&want_b)) {
            assert!((got - want).abs() < 1e-6, "AdamW after 3 steps: w={w:?} b={b:?}, PyTorch w={want_w:?} b={want_b:?}");
        }
        assert!(opt.state.values().all(|s| s.step == 3));
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the values as torch printed them
    fn matches_pytorch_adamw_over_20_steps_with_either_gradient_path() {
        // The same run for 20 steps in torch 2.13: the rounding differences of the rearranged
        // update must not grow, and both ways of computing the gradients give the same numbers.
        let want = [-0.89372003f32, -0.446348, 0.38733268, 0.10877553, -1.1226745, -0.08993486];
        let mut runs = Vec::new();
        for book_loop in [false, true] {
            let (vs, _) = run_with(20, book_loop);
            let v = vs.variables();
            let got: Vec<f32> = Vec::<f32>::try_from(v["w"].flatten(0, -1)).unwrap().into_iter().chain(Vec::<f32>::try_from(&v["b"]).unwrap()).collect();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-6, "AdamW after 20 steps (book loop {book_loop}): {got:?}, PyTorch {want:?}");
            }
            runs.push(got);
        }
        assert_eq!(runs[0], runs[1], "optimizer.backward and loss.backward give the same updates");
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the values as torch printed them
    fn a_zero_learning_rate_moves_nothing_and_keeps_pytorchs_moments() {
        // torch 2.13: the run of `run_with` with lr 0 for the first step, then 0.1 for two steps.
        let vs = VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let w = root.var_copy("w", &Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.25]).reshape([2, 2]));
        let b = root.var_copy("b", &Tensor::from_slice(&[0.1f32, -0.2]));
        let x = Tensor::from_slice(&[1.0f32, 2.0, -1.0, 0.5]).reshape([2, 2]);
        let mut opt = AdamW::new(&vs, 0.0, 0.1);
        for step in 0..3 {
            opt.set_lr(if step == 0 { 0.0 } else { 0.1 });
            let y = x.matmul(&w) + &b;
            opt.backward_step(&((&y * &y).sum(Kind::Float) + w.sin().sum(Kind::Float)));
            if step == 0 {
                assert_eq!(Vec::<f32>::try_from(w.flatten(0, -1)).unwrap(), [0.5, -1.0, 2.0, 0.25], "lr 0 leaves the weights");
            }
        }
        let got: Vec<f32> = Vec::<f32>::try_from(w.flatten(0, -1)).unwrap().into_iter().chain(Vec::<f32>::try_from(&b).unwrap()).collect();
        let want = [0.29143089f32, -0.78351879, 1.761641, 0.43270358, -0.10052747, -0.39528346];
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-6, "after lr 0 then 0.1: {got:?}, PyTorch {want:?}");
        }
    }

    #[test]
    fn backward_keeps_gradients_accumulates_and_zero_grad_drops_them() {
        let vs = VarStore::new(tch::Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[3.0f32, 4.0]));
        let unused = vs.root().var_copy("unused", &Tensor::from_slice(&[1.0f32]));
        let mut opt = AdamW::new(&vs, 0.1, 0.5);
        assert!(opt.grad("w").is_none(), "no gradient before a backward pass");
        opt.backward(&(&w * &w).sum(Kind::Float)); // d/dw = 2w = [6, 8]
        assert_eq!(Vec::<f32>::try_from(opt.grad("w").unwrap()).unwrap(), [6.0, 8.0]);
        assert!(!w.grad().defined(), "the .grad field is left alone");
        opt.backward(&(&w * &w).sum(Kind::Float));
        assert_eq!(Vec::<f32>::try_from(opt.grad("w").unwrap()).unwrap(), [12.0, 16.0], "a second backward adds");
        assert!(opt.grad("unused").is_none(), "the loss does not use it");
        let norm = opt.clip_grad_norm(1.0);
        let g = Vec::<f32>::try_from(opt.grad("w").unwrap()).unwrap();
        assert!((norm - 20.0).abs() < 1e-4 && (g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5, "clipped {norm} {g:?}");
        opt.step();
        assert_eq!(Vec::<f32>::try_from(&unused).unwrap(), [1.0], "no decay without a gradient");
        assert!(!opt.state.contains_key("unused") && opt.state["w"].step == 1);
        opt.zero_grad();
        assert!(opt.grad("w").is_none(), "zero_grad drops the kept gradients");
        let _ = unused;
    }

    #[test]
    fn frozen_parameters_are_not_touched() {
        let vs = VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let w = root.var_copy("w", &Tensor::from_slice(&[1.0f32, 2.0]));
        let mut frozen = root.var_copy("frozen", &Tensor::from_slice(&[3.0f32, 4.0]));
        let _ = frozen.requires_grad_(false);
        let mut opt = AdamW::new(&vs, 0.1, 0.5);
        opt.backward_step(&(&w * &w).sum(Kind::Float));
        assert_eq!(Vec::<f32>::try_from(&frozen).unwrap(), vec![3.0, 4.0], "no decay on a frozen parameter");
        assert!(!opt.state.contains_key("frozen"));
        assert!(opt.state.contains_key("w"));
    }

    #[test]
    fn state_round_trips_and_resumes_identically() {
        // 4 steps straight vs 2 steps, save state, fresh optimizer + load, 2 more steps.
        let (vs_straight, _) = run(4);
        let (vs_half, opt_half) = run(2);
        let saved = opt_half.state_tensors();
        let hyper = opt_half.hyper_parameters();
        let mut opt = AdamW::new(&vs_half, 0.5, 0.0); // wrong hyper-parameters, restored below
        opt.load_state(&saved, &hyper, "test").unwrap();
        assert_eq!(opt.hyper_parameters(), hyper);
        let v = vs_half.variables();
        let (w, b) = (&v["w"], &v["b"]);
        let x = Tensor::from_slice(&[1.0f32, 2.0, -1.0, 0.5]).reshape([2, 2]);
        for _ in 0..2 {
            let y = x.matmul(w) + b;
            opt.backward_step(&((&y * &y).sum(Kind::Float) + w.sin().sum(Kind::Float)));
        }
        let straight = vs_straight.variables();
        for name in ["w", "b"] {
            assert!(straight[name].equal(&v[name]), "{name}: resumed run differs from the straight run");
        }
    }

    #[test]
    fn load_state_names_bad_tensors() {
        let (vs, opt) = run(1);
        let mut fresh = AdamW::new(&vs, 0.1, 0.1);
        let mut bad = opt.state_tensors();
        bad[0].1 = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu));
        let err = fresh.load_state(&bad, &opt.hyper_parameters(), "ckpt.safetensors").unwrap_err().to_string();
        assert!(err.contains("exp_avg.b") && err.contains("[2]") && err.contains("[3]"), "{err}");
        let unknown = vec![("exp_avg.nope".to_string(), Tensor::zeros([2], (Kind::Float, tch::Device::Cpu)))];
        let err = fresh.load_state(&unknown, &opt.hyper_parameters(), "ckpt.safetensors").unwrap_err().to_string();
        assert!(err.contains("'nope'") && err.contains("ckpt.safetensors"), "{err}");
        let _ = nn::VarStore::new(tch::Device::Cpu);
    }

    #[test]
    fn clip_grad_norm_scales_to_the_max_norm() {
        let vs = VarStore::new(tch::Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[3.0f32, 4.0]));
        let mut opt = AdamW::new(&vs, 0.1, 0.0);
        opt.zero_grad();
        // d/dw of sum(w*w) = 2w = [6, 8], norm 10.
        (&w * &w).sum(Kind::Float).backward();
        let before = opt.clip_grad_norm(1.0);
        assert!((before - 10.0).abs() < 1e-5, "norm before clipping: {before}");
        let g = Vec::<f32>::try_from(w.grad()).unwrap();
        assert!((g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5, "clipped gradient {g:?}");
        // Below the maximum: unchanged.
        let again = opt.clip_grad_norm(5.0);
        assert!((again - 1.0).abs() < 1e-4, "{again}");
    }
}
