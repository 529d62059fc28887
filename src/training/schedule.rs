//! Appendix D, "Adding bells and whistles to the training loop": linear learning-rate warmup
//! (D.1), cosine decay (D.2) and gradient clipping (D.3). A run's settings carry them
//! ([`TrainSettings::extras`](crate::training::trainer::TrainSettings::extras)), and the one
//! training loop ([`crate::training::trainer`]) applies them at every step, in every chapter; the
//! book's `train_model` that combines them (D.4) is [`crate::training::train::train_model`].
//!
//! The schedule is a pure function of the 0-based global step, so a resumed run sets the same
//! learning rates without storing them:
//!
//! ```text
//! step <  warmup_steps:  lr = initial_lr + step * (peak_lr - initial_lr) / warmup_steps
//! step >= warmup_steps:  progress = (step - warmup_steps) / (total_steps - warmup_steps)
//!                        lr = min_lr + (peak_lr - min_lr) * 0.5 * (1 + cos(pi * progress))
//! ```
//!
//! As in the book, the warmup never quite reaches `peak_lr` (its last step is one increment
//! short); the first step after it is exactly `peak_lr`; the decay's last step is slightly above
//! `min_lr` (progress `(total - 1 - warmup) / (total - warmup)` < 1).
//!
//! Clipping: from the end of warmup on (`global_step >= warmup_steps`), the global L2 norm of
//! all gradients is clipped to `max_norm` (1.0) before the update. The book's printed listing
//! clipped only when `global_step > warmup_steps`, skipping the first step after warmup; its
//! companion code corrected this to `>=`, which is what this module does.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::training::optim::AdamW;
use crate::viz::i18n::tr;
use crate::viz::plot::{evcxr_figure, font, plot_err, Figure};

/// The book's number of warmup steps: `int(fraction * total_steps)` (appendix D uses 0.2).
pub fn warmup_steps_for(total_steps: i64, fraction: f64) -> i64 {
    (fraction * total_steps as f64) as i64
}

/// Linear warmup from `initial_lr` to `peak_lr`, then cosine decay to `min_lr`, over
/// `total_steps` optimisation steps (see the module documentation for the formulas).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrSchedule {
    pub initial_lr: f64,
    pub peak_lr: f64,
    pub min_lr: f64,
    pub warmup_steps: i64,
    pub total_steps: i64,
}

impl LrSchedule {
    /// A schedule; `total_steps` must be positive and `warmup_steps` between 0 and `total_steps`.
    pub fn new(initial_lr: f64, peak_lr: f64, min_lr: f64, warmup_steps: i64, total_steps: i64) -> Result<Self> {
        if total_steps < 1 {
            return Err(Error::InvalidArgument { name: "total_steps", reason: format!("must be at least 1, got {total_steps}") });
        }
        if !(0..=total_steps).contains(&warmup_steps) {
            return Err(Error::InvalidArgument {
                name: "warmup_steps",
                reason: format!("must be between 0 and total_steps ({total_steps}), got {warmup_steps}"),
            });
        }
        if [initial_lr, peak_lr, min_lr].iter().any(|lr| !lr.is_finite() || *lr < 0.0) {
            return Err(Error::InvalidArgument {
                name: "learning rate",
                reason: format!("initial {initial_lr}, peak {peak_lr}, min {min_lr}: each must be finite and >= 0"),
            });
        }
        Ok(LrSchedule { initial_lr, peak_lr, min_lr, warmup_steps, total_steps })
    }

    /// The book's final run (D.4): peak 1e-3, initial = min = 1e-5, warmup 20% of `total_steps`
    /// (`len(train_loader) * n_epochs`: 9 * 15 = 135 steps, 27 of warmup, on the-verdict).
    pub fn book(total_steps: i64) -> Result<Self> {
        Self::new(1e-5, 1e-3, 1e-5, warmup_steps_for(total_steps, 0.2), total_steps)
    }

    /// The learning rate of the 0-based `global_step`. Steps past the end stay at the last
    /// step's cosine value continued (progress > 1 climbs back up, as the formula does in the
    /// book); the training functions never ask for them.
    pub fn lr_at(&self, global_step: i64) -> f64 {
        if global_step < self.warmup_steps {
            let lr_increment = (self.peak_lr - self.initial_lr) / self.warmup_steps as f64;
            self.initial_lr + global_step as f64 * lr_increment
        } else {
            let decay_steps = (self.total_steps - self.warmup_steps).max(1) as f64;
            let progress = (global_step - self.warmup_steps) as f64 / decay_steps;
            self.min_lr + (self.peak_lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }

    /// The learning rate of every step, `0..total_steps` (the book's `track_lrs`).
    pub fn lrs(&self) -> Vec<f64> {
        (0..self.total_steps).map(|s| self.lr_at(s)).collect()
    }
}

/// What appendix D adds to each step of the training loop: the scheduled learning rate, and
/// clipping of the gradients' global norm after warmup (`None`: no clipping).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainExtras {
    pub schedule: LrSchedule,
    pub clip_max_norm: Option<f64>,
}

/// What [`TrainExtras::apply`] did at one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepExtras {
    /// The learning rate set for this step's update.
    pub lr: f64,
    /// The global gradient norm before clipping, when this step clipped.
    pub grad_norm: Option<f64>,
}

impl TrainExtras {
    /// The book's: `schedule` and `max_norm = 1.0`.
    pub fn book(schedule: LrSchedule) -> Self {
        TrainExtras { schedule, clip_max_norm: Some(1.0) }
    }

    /// Whether `global_step` clips its gradients (`global_step >= warmup_steps`, see the module docs).
    pub fn clips_at(&self, global_step: i64) -> bool {
        self.clip_max_norm.is_some() && global_step >= self.schedule.warmup_steps
    }

    /// Between the backward pass and the update of `global_step`: set the optimizer's learning
    /// rate and clip the gradients (`torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)`).
    ///
    /// The training loop calls it at every step of a run whose settings carry these extras
    /// ([`crate::training::trainer::TrainSettings::extras`]); the learning rate depends only on
    /// the global step, so a resumed run needs nothing more than its settings to continue it.
    pub fn apply(&self, global_step: i64, optimizer: &mut AdamW) -> StepExtras {
        let lr = self.schedule.lr_at(global_step);
        optimizer.set_lr(lr);
        let grad_norm = match self.clip_max_norm {
            Some(max_norm) if self.clips_at(global_step) => Some(optimizer.clip_grad_norm(max_norm)),
            _ => None,
        };
        StepExtras { lr, grad_norm }
    }
}

/// Figures D.1-D.2: the learning rate against the training step, with the end of warmup marked.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedulePlot {
    pub title: String,
    /// The learning rate of each step (`track_lrs`).
    pub lrs: Vec<f64>,
    /// Where warmup ends (a dashed vertical line), when known.
    pub warmup_steps: Option<i64>,
}

evcxr_figure!(LrSchedulePlot);

impl LrSchedulePlot {
    /// The plot of a schedule's `lrs()`.
    pub fn from_schedule(schedule: &LrSchedule) -> Self {
        LrSchedulePlot { title: "Learning rate schedule".into(), lrs: schedule.lrs(), warmup_steps: Some(schedule.warmup_steps) }
    }
}

impl Figure for LrSchedulePlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        if self.lrs.is_empty() {
            return Err(Error::Plot(format!("'{}': no learning rates to plot", self.title)));
        }
        let hi = self.lrs.iter().copied().filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-12) * 1.05;
        let x_max = (self.lrs.len().max(2) - 1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(tr(&self.title), (font(), 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..hi)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(tr("Steps"))
            .y_desc(tr("Learning rate"))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.1e}"))
            .label_style((font(), 13))
            .draw()
            .map_err(plot_err)?;
        let style = ShapeStyle { color: Palette99::pick(0).to_rgba(), filled: false, stroke_width: 2 };
        let points = self.lrs.iter().enumerate().map(|(i, &lr)| (i as f64, lr));
        chart.draw_series(LineSeries::new(points, style)).map_err(plot_err)?.label(tr("lr")).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], style)
        });
        if let Some(w) = self.warmup_steps.filter(|&w| w > 0) {
            let grey = ShapeStyle { color: RGBColor(120, 120, 120).to_rgba(), filled: false, stroke_width: 1 };
            chart
                .draw_series(DashedLineSeries::new(vec![(w as f64, 0.0), (w as f64, hi)], 6, 4, grey))
                .map_err(plot_err)?
                .label(tr(&format!("end of warmup (step {w})")))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
        }
        crate::viz::plot::draw_legend(&mut chart)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn book_schedule_at_its_landmarks() {
        // The book's run: 9 batches x 15 epochs = 135 steps, int(0.2 * 135) = 27 of warmup.
        let s = LrSchedule::book(135).unwrap();
        assert_eq!(s.warmup_steps, 27);
        let close = |got: f64, want: f64, what: &str| assert!((got - want).abs() < 1e-15, "{what}: {got} != {want}");
        close(s.lr_at(0), 1e-5, "first step = initial_lr");
        close(s.lr_at(26), 1e-5 + 26.0 * (1e-3 - 1e-5) / 27.0, "last warmup step, one increment short of the peak");
        close(s.lr_at(27), 1e-3, "first step after warmup = peak_lr");
        close(s.lr_at(27 + 54), 5.05e-4, "half-way through the decay: (peak + min) / 2");
        let last = 1e-5 + (1e-3 - 1e-5) * 0.5 * (1.0 + (std::f64::consts::PI * 107.0 / 108.0).cos());
        close(s.lr_at(134), last, "last step");
        assert!(s.lr_at(134) > 1e-5 && s.lr_at(134) < 1.03e-5, "the last step is just above min_lr: {}", s.lr_at(134));
        let lrs = s.lrs();
        assert_eq!(lrs.len(), 135);
        assert!(lrs[..28].windows(2).all(|w| w[1] > w[0]), "warmup rises");
        assert!(lrs[27..].windows(2).all(|w| w[1] < w[0]), "cosine decay falls");
    }

    #[test]
    fn schedule_rejects_bad_arguments() {
        let err = LrSchedule::new(1e-5, 1e-3, 1e-5, 11, 10).unwrap_err().to_string();
        assert!(err.contains("warmup_steps") && err.contains("10") && err.contains("11"), "{err}");
        assert!(LrSchedule::new(1e-5, 1e-3, 1e-5, 0, 0).is_err(), "no steps");
        assert!(LrSchedule::new(1e-5, f64::NAN, 1e-5, 0, 5).is_err(), "NaN peak");
        // No warmup: the first step is the peak.
        assert_eq!(LrSchedule::new(1e-5, 1e-3, 0.0, 0, 10).unwrap().lr_at(0), 1e-3);
    }

    #[test]
    fn extras_set_the_rate_and_clip_only_after_warmup() {
        use tch::{nn::VarStore, Device, Kind, Tensor};
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[3.0f32, 4.0]));
        let mut opt = AdamW::new(&vs, 0.1, 0.0);
        let extras = TrainExtras::book(LrSchedule::new(0.0, 1.0, 0.0, 2, 4).unwrap());
        for (step, lr, clips) in [(0, 0.0, false), (1, 0.5, false), (2, 1.0, true), (3, 0.5, true)] {
            opt.zero_grad();
            opt.backward(&(&w * &w).sum(Kind::Float)); // gradient 2w = [6, 8], norm 10
            let done = extras.apply(step, &mut opt);
            assert_eq!((opt.lr, done.lr), (lr, lr), "step {step}");
            assert_eq!(done.grad_norm.is_some(), clips, "step {step} clips: {clips}");
            let norm = opt.grad("w").unwrap().norm().double_value(&[]);
            let want = if clips { 1.0 } else { 10.0 };
            assert!((norm - want).abs() < 1e-5, "step {step}: gradient norm after apply {norm}, want {want}");
        }
    }

    #[test]
    fn schedule_plot_draws_axes_and_warmup() {
        let svg = LrSchedulePlot::from_schedule(&LrSchedule::book(135).unwrap()).to_svg().unwrap();
        for text in ["Learning rate schedule", "Steps", "Learning rate", "end of warmup (step 27)"] {
            assert!(svg.as_str().contains(text), "SVG lacks '{text}'");
        }
    }
}
