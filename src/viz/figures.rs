//! More figures for the notebooks (see [`crate::viz::plot`] for the [`Figure`] trait): a heat map of
//! a matrix with labelled rows and columns, used by chapter 3 to show attention weights
//! (queries down, keys across).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::viz::i18n::tr;
use crate::viz::plot::{evcxr_figure, font, plot_err, Figure};

/// A heat map of `values` (row-major: `values[row][column]`) with one label per row and column,
/// coloured from dark purple (the smallest value) to yellow (the largest), with the numbers
/// written in the cells when `show_values` is true.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatMap {
    pub title: String,
    /// One label per column, drawn under the map (e.g. the keys).
    pub x_labels: Vec<String>,
    /// One label per row, drawn left of the map, top to bottom (e.g. the queries).
    pub y_labels: Vec<String>,
    /// Axis descriptions, e.g. `"keys"` and `"queries"`.
    pub x_desc: String,
    pub y_desc: String,
    pub values: Vec<Vec<f64>>,
    /// Write each value (2 decimals) in its cell.
    pub show_values: bool,
}

evcxr_figure!(HeatMap);

impl HeatMap {
    /// A heat map of a 2-D tensor (e.g. one head's attention weights `[num_tokens, num_tokens]`)
    /// with the same labels on both axes (the tokens), queries down and keys across.
    pub fn attention(title: &str, weights: &Tensor, tokens: &[&str]) -> Result<Self> {
        let values = tensor_rows(weights)?;
        let labels: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        let map = Self {
            title: title.to_string(),
            x_labels: labels.clone(),
            y_labels: labels,
            x_desc: "keys".into(),
            y_desc: "queries".into(),
            values,
            show_values: tokens.len() <= 12,
        };
        map.check()?;
        Ok(map)
    }

    fn check(&self) -> Result<()> {
        let rows = self.values.len();
        let cols = self.values.first().map_or(0, Vec::len);
        if rows == 0 || cols == 0 || self.values.iter().any(|r| r.len() != cols) {
            return Err(Error::Plot(format!("heat map '{}': values must be a non-empty rectangle", self.title)));
        }
        if self.y_labels.len() != rows || self.x_labels.len() != cols {
            return Err(Error::Plot(format!(
                "heat map '{}': {rows}x{cols} values but {} row and {} column labels",
                self.title,
                self.y_labels.len(),
                self.x_labels.len()
            )));
        }
        Ok(())
    }
}

/// The rows of a 2-D tensor as `f64`s.
fn tensor_rows(t: &Tensor) -> Result<Vec<Vec<f64>>> {
    if t.dim() != 2 {
        return Err(Error::Plot(format!("heat map needs a 2-D tensor, got shape {:?}", t.size())));
    }
    Ok(Vec::<Vec<f64>>::try_from(t.detach().to_kind(Kind::Double).to_device(tch::Device::Cpu))?)
}

/// A viridis-like colour for `t` in `[0, 1]` (five anchors, linearly interpolated).
fn viridis(t: f64) -> RGBColor {
    const ANCHORS: [(f64, f64, f64); 5] =
        [(68., 1., 84.), (59., 82., 139.), (33., 145., 140.), (94., 201., 98.), (253., 231., 37.)];
    let x = t.clamp(0.0, 1.0) * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let mix = |u: f64, v: f64| (u + (v - u) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl Figure for HeatMap {
    fn size(&self) -> (u32, u32) {
        (640, 560)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        self.check()?;
        let (rows, cols) = (self.values.len() as u32, self.values[0].len() as u32);
        let all = self.values.iter().flatten().copied();
        let (lo, hi) = all.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let norm = |v: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };

        let (width, _) = self.size();
        let (map_area, bar_area) = root.split_horizontally(width - 110);
        // Cell (r, c) covers [c, c + 1] x [rows - 1 - r, rows - r]: the first row is at the top.
        let (fr, fc) = (rows as f64, cols as f64);
        let mut chart = ChartBuilder::on(&map_area)
            .caption(tr(&self.title), (font(), 22))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..fc, 0.0..fr)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_desc(tr(&self.x_desc))
            .y_desc(tr(&self.y_desc))
            .axis_desc_style((font(), 14))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(self.values.iter().enumerate().flat_map(|(r, row)| {
                let y = fr - 1.0 - r as f64;
                row.iter()
                    .enumerate()
                    .map(move |(c, v)| Rectangle::new([(c as f64, y), (c as f64 + 1.0, y + 1.0)], viridis(norm(*v)).filled()))
            }))
            .map_err(plot_err)?;
        if self.show_values {
            let centre = Pos::new(HPos::Center, VPos::Center);
            chart
                .draw_series(self.values.iter().enumerate().flat_map(|(r, row)| {
                    let y = fr - 0.5 - r as f64;
                    row.iter().enumerate().map(move |(c, v)| {
                        let colour: &'static RGBColor = if norm(*v) > 0.6 { &BLACK } else { &WHITE };
                        let style = TextStyle::from((font(), 13)).color(colour).pos(centre);
                        Text::new(format!("{v:.2}"), (c as f64 + 0.5, y), style)
                    })
                }))
                .map_err(plot_err)?;
        }
        // Tick labels at the cells' centres, drawn in pixels next to the axes (`map_area` starts
        // at the root's origin, so the chart's pixel coordinates are also the area's).
        let below = TextStyle::from((font(), 14)).pos(Pos::new(HPos::Center, VPos::Top));
        for (c, label) in self.x_labels.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(c as f64 + 0.5, 0.0));
            map_area.draw(&Text::new(label.as_str(), (px, py + 8), below.clone())).map_err(plot_err)?;
        }
        let left = TextStyle::from((font(), 14)).pos(Pos::new(HPos::Right, VPos::Center));
        for (r, label) in self.y_labels.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(0.0, fr - 0.5 - r as f64));
            map_area.draw(&Text::new(label.as_str(), (px - 8, py), left.clone())).map_err(plot_err)?;
        }

        // The colour bar: 50 steps from lo (bottom) to hi (top).
        let mut bar = ChartBuilder::on(&bar_area)
            .margin_top(50)
            .margin_bottom(62)
            .margin_right(10)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, lo..if hi > lo { hi } else { lo + 1.0 })
            .map_err(plot_err)?;
        bar.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(5)
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style((font(), 12))
            .draw()
            .map_err(plot_err)?;
        let span = if hi > lo { hi - lo } else { 1.0 };
        bar.draw_series((0..50).map(|i| {
            let (a, b) = (lo + span * i as f64 / 50.0, lo + span * (i + 1) as f64 / 50.0);
            Rectangle::new([(0.0, a), (1.0, b)], viridis((i as f64 + 0.5) / 50.0).filled())
        }))
        .map_err(plot_err)?;
        Ok(())
    }
}

/// Figure 5.12: training and validation loss against epochs, with the tokens seen as a second
/// x axis on top, as the book's `plot_losses` draws it. Optionally a second pair of curves
/// (chapter 6 adds accuracy with the same shape).
#[derive(Debug, Clone, PartialEq)]
pub struct LossPlot {
    pub title: String,
    /// The y axis' name ("Loss", "Accuracy").
    pub y_label: String,
    /// x values: the (fractional) epoch of each point.
    pub epochs: Vec<f64>,
    /// Tokens (or examples) seen at each point; the top axis. Empty to leave it out.
    pub tokens_seen: Vec<i64>,
    /// The curves: `(label, values)`, one value per epoch point.
    pub series: Vec<(String, Vec<f64>)>,
}

evcxr_figure!(LossPlot);

impl Figure for LossPlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let n = self.epochs.len();
        if n == 0 {
            return Err(Error::Plot(format!("'{}': no points to plot", self.title)));
        }
        if let Some((label, v)) = self.series.iter().find(|(_, v)| v.len() != n) {
            return Err(Error::Plot(format!("'{}': series '{label}' has {} points for {n} epochs", self.title, v.len())));
        }
        let finite = || self.series.iter().flat_map(|(_, v)| v.iter().copied()).filter(|v| v.is_finite());
        let (lo, hi) = (finite().fold(f64::MAX, f64::min), finite().fold(f64::MIN, f64::max));
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.05).max(1e-3);
        let x_max = self.epochs.iter().copied().fold(0.0f64, f64::max).max(1e-9);
        let tokens_max = self.tokens_seen.iter().copied().max().unwrap_or(0).max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(tr(&self.title), (font(), 20))
            .margin(12)
            .x_label_area_size(40)
            .top_x_label_area_size(if self.tokens_seen.is_empty() { 0 } else { 40 })
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, (lo - pad)..(hi + pad))
            .map_err(plot_err)?
            .set_secondary_coord(0.0..tokens_max, (lo - pad)..(hi + pad));
        chart
            .configure_mesh()
            .x_desc(tr("Epochs"))
            .y_desc(tr(&self.y_label))
            .label_style((font(), 13))
            .draw()
            .map_err(plot_err)?;
        if !self.tokens_seen.is_empty() {
            chart
                .configure_secondary_axes()
                .x_desc(tr("Tokens seen"))
                .x_label_formatter(&|v| crate::viz::plot::si_format(*v))
                .y_labels(0)
                .label_style((font(), 13))
                .draw()
                .map_err(plot_err)?;
        }
        for (i, (label, values)) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let style = ShapeStyle { color, filled: false, stroke_width: 2 };
            let points: Vec<(f64, f64)> = self.epochs.iter().copied().zip(values.iter().copied()).filter(|p| p.1.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(points, style).point_size(if n < 40 { 2 } else { 0 }))
                .map_err(plot_err)?
                .label(tr(label))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        crate::viz::plot::draw_legend(&mut chart)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_heat_map_renders_labels_and_cells() {
        let w = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.4, 0.6, 0.0, 0.2, 0.3, 0.5]).view([3, 3]); // [3, 3]
        let map = HeatMap::attention("Attention weights", &w, &["Your", "journey", "starts"]).unwrap();
        assert_eq!(map.values[1], vec![0.4000000059604645, 0.6000000238418579, 0.0]);
        let svg = map.to_svg().unwrap();
        for text in ["Attention weights", "journey", "starts", "keys", "queries", "0.60", "1.00"] {
            assert!(svg.as_str().contains(text), "SVG lacks '{text}'");
        }
        // 9 cells + 50 colour-bar steps + background.
        assert!(svg.as_str().matches("<rect").count() >= 60, "cells missing");
    }

    #[test]
    fn heat_map_rejects_wrong_shapes_and_labels() {
        let w = Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu));
        let err = HeatMap::attention("w", &w, &["a", "b"]).unwrap_err().to_string();
        assert!(err.contains("2x3") && err.contains("2 row and 2 column"), "{err}");
        let err = HeatMap::attention("w", &Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)), &["a"]).unwrap_err().to_string();
        assert!(err.contains("2-D"), "{err}");
    }

    #[test]
    fn colours_run_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(0.5), RGBColor(33, 145, 140));
    }
}
