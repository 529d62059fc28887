//! Figures drawn with `plotters`, shown inline in the notebooks and saved by the CLI.
//!
//! A figure is a plain struct (inspectable, and kept between evcxr cells) that implements
//! [`Figure`]: it knows how to draw itself on any plotters backend. From that one drawing it can
//! be rendered to an [`Svg`] (which evcxr displays inline), or saved as `.svg` or `.png`.
//!
//! Text is drawn with DejaVu Sans, compiled into the library (`assets/fonts/`), so figures look
//! the same on every machine and need no system font library. Figures in Chinese
//! ([`crate::viz::i18n`]) are drawn with a subset of Noto Sans CJK SC, compiled in as well.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::viz::i18n::{tr, with_lang, Lang};

/// The font of figures in English (registered with plotters on first use): DejaVu Sans, which
/// an SVG names only as `sans-serif`.
pub const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The font of figures in Chinese: its name is the `font-family` that an SVG gives the browser
/// (CJK fonts of Linux, macOS and Windows, then any sans-serif), and in PNG files it draws with
/// `assets/fonts/NotoSansCJKsc-Regular-subset.otf` (3755 common hanzi, Latin letters and
/// punctuation; see `assets/fonts/README.md`).
pub const CJK_FONT: &str = "Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, PingFang SC, Microsoft YaHei, sans-serif";
pub(crate) static CJK_FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/NotoSansCJKsc-Regular-subset.otf");
static REGISTER_FONT: Once = Once::new();

fn ensure_font() {
    REGISTER_FONT.call_once(|| {
        for (name, bytes, file) in [(FONT, FONT_BYTES, "DejaVuSans.ttf"), (CJK_FONT, CJK_FONT_BYTES, "NotoSansCJKsc-Regular-subset.otf")] {
            for style in [FontStyle::Normal, FontStyle::Bold, FontStyle::Italic, FontStyle::Oblique] {
                // The fonts are fixed assets: failing to parse one is a build defect.
                plotters::style::register_font(name, style, bytes)
                    .unwrap_or_else(|_| panic!("assets/fonts/{file} is not a valid font"));
            }
        }
    });
}

/// The font family for the text of a figure drawn now: [`FONT`] in English, [`CJK_FONT`] in
/// Chinese ([`Lang::current`]).
pub fn font() -> &'static str {
    match Lang::current() {
        Lang::En => FONT,
        Lang::Zh => CJK_FONT,
    }
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

    /// Render to an SVG document, with its words in the [current language](Lang::current).
    fn to_svg(&self) -> Result<Svg> {
        ensure_font();
        let mut out = String::new();
        // The language is looked up once, so that every word of the figure is in the same one.
        with_lang(Lang::current(), || -> Result<()> {
            let root = SVGBackend::with_string(&mut out, self.size()).into_drawing_area();
            root.fill(&WHITE).map_err(plot_err)?;
            self.draw(&root)?;
            root.present().map_err(plot_err)
        })?;
        Ok(Svg(out))
    }

    /// Save as SVG or PNG, chosen by the extension of `path` (`.svg` or `.png`), with its words
    /// in the [current language](Lang::current).
    fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("svg") => self.to_svg()?.save(path),
            Some("png") => {
                ensure_font();
                with_lang(Lang::current(), || {
                    let root = BitMapBackend::new(path, self.size()).into_drawing_area();
                    root.fill(&WHITE).map_err(plot_err)?;
                    self.draw(&root)?;
                    root.present().map_err(|e| Error::Plot(format!("{}: {e}", path.display())))
                })
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
        .label_font((font(), 13))
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
        let labels: Vec<String> = self.bars.iter().map(|b| tr(&b.0).into_owned()).collect();
        let x_fmt = |x: &SegmentValue<u32>| match x {
            SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
            _ => String::new(),
        };
        let max = self.bars.iter().map(|b| b.1).fold(f64::MIN, f64::max);
        let min = self.bars.iter().map(|b| b.1).fold(f64::MAX, f64::min);
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(tr(&self.title), (font(), 22))
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
                    .y_desc(tr(&self.y_label))
                    .y_labels(Y_TICKS)
                    .y_label_formatter($y_fmt)
                    .label_style((font(), 14))
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

    fn verdict_chart() -> BarChart {
        BarChart {
            title: "Tokens needed for The Verdict".into(),
            y_label: "tokens".into(),
            bars: vec![("UTF-8 bytes".into(), 20479.0), ("GPT-2 BPE".into(), 5145.0)],
            log_y: false,
        }
    }

    /// The `font-family` values of an SVG's texts, without repeats.
    fn font_families(svg: &Svg) -> Vec<String> {
        let mut families: Vec<String> = svg.as_str().split("font-family=\"").skip(1).map(|p| p[..p.find('"').unwrap()].to_string()).collect();
        families.sort();
        families.dedup();
        families
    }

    #[test]
    fn chinese_svg_has_translated_words_and_cjk_fonts() {
        let svg = with_lang(Lang::Zh, || verdict_chart().to_svg()).unwrap();
        for text in ["《The Verdict》所需的词元数", "词元数", "UTF-8 字节", "GPT-2 BPE"] {
            assert!(svg.as_str().contains(&format!(">\n{text}\n<")), "Chinese SVG lacks the text '{text}'");
        }
        assert!(!svg.as_str().contains("UTF-8 bytes"), "an English bar label is left");
        assert_eq!(font_families(&svg), [CJK_FONT], "every text names the CJK fonts, ending in sans-serif");
        assert!(CJK_FONT.starts_with("Noto Sans CJK SC,") && CJK_FONT.ends_with(", sans-serif"), "{CJK_FONT}");

        let svg = with_lang(Lang::En, || verdict_chart().to_svg()).unwrap();
        assert_eq!(font_families(&svg), [FONT], "English figures name only sans-serif");
        assert!(svg.as_str().is_ascii() && svg.as_str().contains("Tokens needed for The Verdict"), "English words, no Chinese");
    }

    /// What a figure in Chinese needs: the compiled-in CJK font has every glyph the translations
    /// use (and the 3755 common hanzi of GB2312 level 1: a sample here), DejaVu Sans has none.
    #[test]
    fn the_cjk_font_has_the_glyphs_that_dejavu_lacks() {
        use ab_glyph::{Font, FontRef};
        let cjk = FontRef::try_from_slice(CJK_FONT_BYTES).expect("the CJK font parses");
        let dejavu = FontRef::try_from_slice(FONT_BYTES).expect("DejaVu Sans parses");
        let table = crate::viz::i18n::ZH.iter().flat_map(|(en, zh)| [*en, *zh]).chain(crate::viz::i18n::SAME_IN_ZH.iter().copied());
        let common = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严龙飞";
        for c in table.flat_map(str::chars).chain(common.chars()).chain('!'..='~') {
            let id = cjk.glyph_id(c);
            assert_ne!(id.0, 0, "the CJK font has no glyph for '{c}' (U+{:04X}): rebuild it (assets/fonts/README.md)", c as u32);
        }
        for c in "训练损失轮次".chars() {
            assert_eq!(dejavu.glyph_id(c).0, 0, "DejaVu Sans has no '{c}', so Chinese needs the CJK font");
            let outline = cjk.outline_glyph(cjk.glyph_id(c).with_scale(20.0)).expect("an outline");
            assert!(outline.px_bounds().width() > 8.0, "'{c}' is drawn at 20 px");
        }
    }

    /// A PNG in Chinese shows the words: each character of "训练损失" drawn in a bitmap with the
    /// CJK font is its own picture, where DejaVu Sans draws the same missing-glyph box four times.
    #[test]
    fn chinese_text_rasterises_with_the_cjk_font() {
        ensure_font();
        let draw = |family: &str, c: char| {
            let (w, h) = (48u32, 48u32);
            let mut buf = vec![255u8; (w * h * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
                root.draw(&Text::new(c.to_string(), (4, 8), (family, 40))).unwrap();
                root.present().unwrap();
            }
            buf
        };
        let dark = |buf: &[u8]| buf.chunks(3).filter(|p| p[0] < 128).count();
        let chars: Vec<char> = "训练损失".chars().collect();
        let cjk: Vec<Vec<u8>> = chars.iter().map(|&c| draw(CJK_FONT, c)).collect();
        let dejavu: Vec<Vec<u8>> = chars.iter().map(|&c| draw(FONT, c)).collect();
        for (c, img) in chars.iter().zip(&cjk) {
            assert!(dark(img) > 100, "'{c}' darkens only {} pixels with the CJK font", dark(img));
        }
        for i in 0..chars.len() {
            for j in i + 1..chars.len() {
                assert_ne!(cjk[i], cjk[j], "'{}' and '{}' look the same with the CJK font", chars[i], chars[j]);
                assert_eq!(dejavu[i], dejavu[j], "DejaVu Sans draws '{}' and '{}' as the same missing glyph", chars[i], chars[j]);
            }
        }
    }

    #[test]
    fn log_axis_rejects_non_positive_values() {
        let mut c = chart(true);
        c.bars.push(("zero".into(), 0.0));
        let err = c.to_svg().unwrap_err().to_string();
        assert!(err.contains("'zero'"), "{err}");
    }
}
