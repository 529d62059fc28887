//! A line chart of several named series, as the book draws with `plt.plot`: chapter 4 uses it
//! for figure 4.8 (GELU and ReLU over x in [-3, 3]); any chapter can plot curves with it.
//! See [`crate::viz::plot`] for the [`Figure`] trait.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::viz::i18n::tr;
use crate::viz::plot::{evcxr_figure, font, plot_err, tick_decimals, Figure};

/// A line chart: a title, axis labels and one or more named series of `(x, y)` points, each
/// drawn as a line in its own colour and named in the legend.
///
/// ```
/// use llm_from_scratch::ch04::LinePlot;
/// let xs: Vec<f64> = (-30..=30).map(|i| i as f64 / 10.0).collect();
/// let relu: Vec<f64> = xs.iter().map(|x| x.max(0.0)).collect();
/// let plot = LinePlot::new("ReLU", "x", "ReLU(x)").with_series("ReLU", &xs, &relu).unwrap();
/// assert_eq!(plot.series[0].1.len(), 61);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The curves: `(name, points)`, drawn in this order.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

evcxr_figure!(LinePlot);

impl LinePlot {
    /// An empty chart with a title and axis labels; add curves with [`Self::with_series`].
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Self { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), series: Vec::new() }
    }

    /// Add the curve `name` through the points `(xs[i], ys[i])`. An error if the two slices
    /// differ in length or are empty.
    pub fn with_series(mut self, name: &str, xs: &[f64], ys: &[f64]) -> Result<Self> {
        if xs.len() != ys.len() || xs.is_empty() {
            return Err(Error::Plot(format!(
                "'{}': series '{name}' has {} x values and {} y values (need the same number, at least one)",
                self.title,
                xs.len(),
                ys.len()
            )));
        }
        self.series.push((name.into(), xs.iter().copied().zip(ys.iter().copied()).collect()));
        Ok(self)
    }

    /// The range of the finite x and y values over every series.
    fn bounds(&self) -> Result<((f64, f64), (f64, f64))> {
        let points = || self.series.iter().flat_map(|(_, p)| p.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite());
        if points().next().is_none() {
            return Err(Error::Plot(format!("'{}': no finite points to plot", self.title)));
        }
        let fold = |f: fn(&(f64, f64)) -> f64| {
            points().map(|p| f(&p)).fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        Ok((fold(|p| p.0), fold(|p| p.1)))
    }
}

/// The most labelled ticks on each axis.
const X_TICKS: usize = 11;
const Y_TICKS: usize = 9;

impl Figure for LinePlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let ((x_lo, x_hi), (y_lo, y_hi)) = self.bounds()?;
        let x_span = if x_hi > x_lo { x_hi - x_lo } else { 1.0 };
        let y_pad = if y_hi > y_lo { (y_hi - y_lo) * 0.05 } else { 0.5 };
        let (y_lo, y_hi) = (y_lo - y_pad, y_hi + y_pad);
        // As many decimals as the ticks plotters places need, the same for every tick.
        let (x_decimals, y_decimals) = (tick_decimals(x_lo, x_lo + x_span, X_TICKS), tick_decimals(y_lo, y_hi, Y_TICKS));
        let mut chart = ChartBuilder::on(root)
            .caption(tr(&self.title), (font(), 20))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(x_lo..x_lo + x_span, y_lo..y_hi)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(tr(&self.x_label))
            .y_desc(tr(&self.y_label))
            .x_label_formatter(&|v| format!("{v:.x_decimals$}"))
            .y_label_formatter(&|v| format!("{v:.y_decimals$}"))
            .x_labels(X_TICKS)
            .y_labels(Y_TICKS)
            .label_style((font(), 13))
            .axis_desc_style((font(), 14))
            .draw()
            .map_err(plot_err)?;
        for (i, (name, points)) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let style = ShapeStyle { color, filled: false, stroke_width: 2 };
            let finite: Vec<(f64, f64)> = points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(finite, style))
                .map_err(plot_err)?
                .label(tr(name))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        // Upper left: curves that rise to the right (activations, losses falling late) leave it free.
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((font(), 13))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gelu_relu() -> LinePlot {
        let xs: Vec<f64> = (0..=60).map(|i| -3.0 + i as f64 * 0.1).collect();
        let relu: Vec<f64> = xs.iter().map(|x| x.max(0.0)).collect();
        let gelu: Vec<f64> = xs
            .iter()
            .map(|x| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh()))
            .collect();
        LinePlot::new("GELU and ReLU", "input x", "activation")
            .with_series("GELU", &xs, &gelu)
            .unwrap()
            .with_series("ReLU", &xs, &relu)
            .unwrap()
    }

    #[test]
    fn renders_an_svg_with_the_series_names_and_labels() {
        let svg = gelu_relu().to_svg().unwrap();
        assert!(svg.as_str().starts_with("<svg"), "not an SVG document");
        for text in ["GELU and ReLU", "GELU", "ReLU", "activation", "input x"] {
            assert!(svg.as_str().contains(text), "SVG lacks '{text}'");
        }
        // Two curves (polylines) plus their two legend samples.
        assert!(svg.as_str().matches("<polyline").count() >= 4, "curves missing");
    }

    #[test]
    fn tick_labels_are_distinct_numbers() {
        let svg = gelu_relu().to_svg().unwrap();
        let ticks = crate::viz::plot::tests::numeric_labels(&svg);
        // y from 0 to 3 every 0.5 (one decimal each), then x from -3 to 3 every 1 (none).
        let expected = ["0.0", "0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "-3", "-2", "-1", "0", "1", "2", "3"];
        assert_eq!(ticks, expected);
    }

    #[test]
    fn rejects_mismatched_or_empty_series() {
        let err = LinePlot::new("t", "x", "y").with_series("a", &[1.0, 2.0], &[1.0]).unwrap_err().to_string();
        assert!(err.contains("'a'") && err.contains("2 x values and 1 y values"), "{err}");
        let err = LinePlot::new("empty", "x", "y").to_svg().unwrap_err().to_string();
        assert!(err.contains("'empty'"), "{err}");
    }
}
