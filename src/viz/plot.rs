//! Figures drawn with `plotters`, shown inline in the notebooks and saved by the CLI.
//!
//! A figure is a plain struct (inspectable, and kept between evcxr cells) that implements
//! [`Figure`]: it knows how to draw itself on any plotters backend. From that one drawing it can
//! be rendered to an [`Svg`] (which evcxr displays inline), or saved as `.svg` or `.png`.
//!
//! Text is drawn with DejaVu Sans, compiled into the library (`assets/fonts/`), so figures look
//! the same on every machine and need no system font library.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};

/// The font every figure uses (registered with plotters on first use).
pub const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER_FONT: Once = Once::new();

fn ensure_font() {
    REGISTER_FONT.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold, FontStyle::Italic, FontStyle::Oblique] {
            // The font is a fixed asset: failing to parse it is a build defect.
            plotters::style::register_font(FONT, style, FONT_BYTES)
                .unwrap_or_else(|_| panic!("assets/fonts/DejaVuSans.ttf is not a valid font"));
        }
    });
}

/// Turn any plotters error into this crate's error.
pub(crate) fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Plot(e.to_string())
}

/// An SVG document. In an evcxr notebook, a cell whose value is an `Svg` shows the picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Svg(pub String);

impl Svg {
    /// The SVG text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Write the SVG to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, &self.0).map_err(|e| Error::io(path, e))
    }

    /// Called by evcxr to show the value: prints the picture as `image/svg+xml`.
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT image/svg+xml\n{}\nEVCXR_END_CONTENT", self.0);
    }
}

/// Something that can draw itself with plotters. Implementors get SVG and PNG output for free.
pub trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32) {
        (720, 400)
    }

    /// Draw the figure on `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;

    /// Render to an SVG document.
    fn to_svg(&self) -> Result<Svg> {
        ensure_font();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size()).into_drawing_area();
            root.fill(&WHITE).map_err(plot_err)?;
            self.draw(&root)?;
            root.present().map_err(plot_err)?;
        }
        Ok(Svg(out))
    }

    /// Save as SVG or PNG, chosen by the extension of `path` (`.svg` or `.png`).
    fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("svg") => self.to_svg()?.save(path),
            Some("png") => {
                ensure_font();
                let root = BitMapBackend::new(path, self.size()).into_drawing_area();
                root.fill(&WHITE).map_err(plot_err)?;
                self.draw(&root)?;
                root.present().map_err(|e| Error::Plot(format!("{}: {e}", path.display())))
            }
            _ => Err(Error::Plot(format!("{}: unknown image type (use .svg or .png)", path.display()))),
        }
    }
}

/// Give a [`Figure`] type an inherent `evcxr_display`, so a notebook cell shows it inline
/// without importing the trait.
macro_rules! evcxr_figure {
    ($ty:ty) => {
        impl $ty {
            /// Called by evcxr to show the figure inline (as SVG).
            pub fn evcxr_display(&self) {
                match $crate::viz::plot::Figure::to_svg(self) {
                    Ok(svg) => svg.evcxr_display(),
                    Err(e) => eprintln!("could not draw the figure: {e}"),
                }
            }
        }
    };
}
#[allow(unused_imports)] // used by the chapter modules
pub(crate) use evcxr_figure;

/// Draw the legend of a chart's labelled series: top right, on a white box with a black border.
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)
}

/// A bar chart with one labelled bar per value, optionally on a logarithmic y axis.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    /// `(label, value)` per bar, drawn left to right.
    pub bars: Vec<(String, f64)>,
    /// Use a base-10 logarithmic y axis (values must be positive).
    pub log_y: bool,
}

evcxr_figure!(BarChart);

impl Figure for BarChart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        if self.bars.is_empty() {
            return Err(Error::Plot(format!("bar chart '{}' has no bars", self.title)));
        }
        if self.log_y {
            if let Some(b) = self.bars.iter().find(|b| b.1 <= 0.0) {
                return Err(Error::Plot(format!("log axis needs positive values; '{}' is {}", b.0, b.1)));
            }
        }
        let last = self.bars.len() as u32 - 1;
        let labels: Vec<String> = self.bars.iter().map(|b| b.0.clone()).collect();
        let x_fmt = |x: &SegmentValue<u32>| match x {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let max = self.bars.iter().map(|b| b.1).fold(f64::MIN, f64::max);
        let min = self.bars.iter().map(|b| b.1).fold(f64::MAX, f64::min);
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, (FONT, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80);
        // One segment per bar (`0..=last`); each bar leaves a margin on both sides.
        macro_rules! draw_bars {
            ($chart:expr, $baseline:expr, $y_fmt:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_label_formatter(&x_fmt)
                    .y_desc(&self.y_label)
                    .y_labels(Y_TICKS)
                    .y_label_formatter($y_fmt)
                    .label_style((FONT, 14))
                    .draw()
                    .map_err(plot_err)?;
                chart
                    .draw_series(
                        Histogram::vertical(&chart)
                            .margin(16)
                            .baseline($baseline)
                            .style_func(|x, _| match x {
                                SegmentValue::Exact(i) | SegmentValue::CenterOf(i) => Palette99::pick(*i as usize).filled(),
                                SegmentValue::Last => BLACK.filled(),
                            })
                            .data(self.bars.iter().enumerate().map(|(i, b)| (i as u32, b.1))),
                    )
                    .map_err(plot_err)?;
            }};
        }
        if self.log_y {
            // One decade below the smallest bar, so that it shows as a bar and not a line.
            let (lo, hi) = (10f64.powf(min.log10().floor() - 1.0), 10f64.powf(max.log10().ceil()));
            let chart = builder
                .build_cartesian_2d((0..last).into_segmented(), (lo..hi).log_scale())
                .map_err(plot_err)?;
            draw_bars!(chart, lo, &|v: &f64| si_format(*v));
        } else {
            let top = max * 1.1;
            let chart = builder
                .build_cartesian_2d((0..last).into_segmented(), 0.0..top)
                .map_err(plot_err)?;
            // Large values (parameter counts) read best as `117M`; small ones (probabilities)
            // need as many decimals as the tick step has, or 0.05 and 0.1 both print as `0.1`.
            let decimals = tick_decimals(0.0, top, Y_TICKS);
            let y_fmt = |v: &f64| if top >= 1e3 { si_format(*v) } else { format!("{v:.decimals$}") };
            draw_bars!(chart, 0.0, &y_fmt);
        }
        Ok(())
    }
}

/// How many labelled ticks the y axis of a [`BarChart`] has at most (plotters' default).
const Y_TICKS: usize = 11;

/// The number of decimals that writes every tick of a linear axis from `lo` to `hi` (at most
/// `max_ticks` ticks, placed by plotters at multiples of 1, 2 or 5 times a power of ten)
/// exactly: 1 for ticks 0, 0.2, 0.4; 2 for 0, 0.05, 0.1. The same for every tick, so the labels
/// line up (`0.00, 0.05, 0.10`) and no two read alike.
pub fn tick_decimals(lo: f64, hi: f64, max_ticks: usize) -> usize {
    use plotters::coord::ranged1d::{KeyPointHint, Ranged};
    use plotters::coord::types::RangedCoordf64;
    let ticks = RangedCoordf64::from(lo..hi).key_points(max_ticks.bold_points());
    let span = (hi - lo).abs().max(f64::MIN_POSITIVE);
    (0..=12)
        .find(|&d| {
            ticks.iter().all(|t| {
                let written: f64 = format!("{t:.d$}").parse().unwrap_or(f64::NAN);
                (written - t).abs() <= span * 1e-9
            })
        })
        .unwrap_or(12)
}

/// A number with a metric suffix, as axis labels of parameter counts read best: `117M`, `1.5B`.
pub fn si_format(v: f64) -> String {
    let (scaled, suffix) = match v.abs() {
        a if a >= 1e12 => (v / 1e12, "T"),
        a if a >= 1e9 => (v / 1e9, "B"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let text = format!("{scaled:.1}");
    format!("{}{suffix}", text.strip_suffix(".0").unwrap_or(&text))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn chart(log_y: bool) -> BarChart {
        BarChart {
            title: "GPT sizes".into(),
            y_label: "parameters".into(),
            bars: vec![("GPT-1".into(), 1.17e8), ("GPT-2".into(), 1.5e9), ("GPT-3".into(), 1.75e11)],
            log_y,
        }
    }

    #[test]
    fn bar_chart_renders_svg_with_labels() {
        for log_y in [false, true] {
            let svg = chart(log_y).to_svg().unwrap();
            assert!(svg.as_str().starts_with("<svg"), "not an SVG document");
            for label in ["GPT-1", "GPT-2", "GPT-3", "GPT sizes", "parameters"] {
                assert!(svg.as_str().contains(label), "SVG (log_y={log_y}) lacks '{label}'");
            }
            // Three bars plus the background: at least 4 <rect> elements.
            assert!(svg.as_str().matches("<rect").count() >= 4, "bars missing (log_y={log_y})");
        }
    }

    #[test]
    fn saves_png_and_svg_and_rejects_other_types() {
        let dir = std::env::temp_dir().join(format!("llm-fs-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join("c.png");
        chart(true).save(&png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "PNG signature");
        chart(true).save(dir.join("c.svg")).unwrap();
        let err = chart(true).save(dir.join("c.gif")).unwrap_err().to_string();
        assert!(err.contains("c.gif"), "error should name the file: {err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn si_format_reads_like_parameter_counts() {
        assert_eq!(si_format(117e6), "117M");
        assert_eq!(si_format(1.5e9), "1.5B");
        assert_eq!(si_format(175e9), "175B");
        assert_eq!(si_format(1e12), "1T");
        assert_eq!(si_format(0.25), "0.2");
    }

    /// The y tick labels of a linear bar chart of probabilities: numbers, all different.
    /// The texts of an SVG chart that are numbers (its tick labels), in drawing order.
    pub(crate) fn numeric_labels(svg: &Svg) -> Vec<String> {
        svg.as_str()
            .split("</text>")
            .filter_map(|part| part.rsplit('>').next())
            .map(|text| text.trim().to_string())
            .filter(|text| text.parse::<f64>().is_ok())
            .collect()
    }

    #[test]
    fn linear_axis_ticks_are_distinct_numbers() {
        // Figure 5.14's probabilities at temperature 5: the axis runs to 0.27, ticks every 0.05.
        let probas = [0.1546, 0.0750, 0.0429, 0.2421, 0.0869, 0.0454, 0.0430, 0.2203, 0.0898];
        let c = BarChart {
            title: "T = 5".into(),
            y_label: "Probability".into(),
            bars: probas.iter().enumerate().map(|(i, p)| (format!("w{i}"), *p)).collect(),
            log_y: false,
        };
        let svg = c.to_svg().unwrap();
        let ticks = numeric_labels(&svg);
        assert!(ticks.len() >= 4, "too few y ticks: {ticks:?}");
        let mut unique = ticks.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ticks.len(), "repeated y tick labels: {ticks:?}");
        assert!(ticks.contains(&"0.05".to_string()) && ticks.contains(&"0.10".to_string()), "{ticks:?}");
        assert_eq!(tick_decimals(0.0, 1.1, Y_TICKS), 1);
        assert_eq!(tick_decimals(0.0, 0.27, Y_TICKS), 2);
        assert_eq!(tick_decimals(0.0, 55.0, Y_TICKS), 0);
    }

    #[test]
    fn log_axis_rejects_non_positive_values() {
        let mut c = chart(true);
        c.bars.push(("zero".into(), 0.0));
        let err = c.to_svg().unwrap_err().to_string();
        assert!(err.contains("'zero'"), "{err}");
    }
}
