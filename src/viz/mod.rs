//! The figures: charts drawn inline in notebooks (evcxr) and saved as SVG/PNG by the CLI. Imports
//! only utilities, so any layer can draw.
//!
//! | module | what |
//! |---|---|
//! | [`plot`] | the `Figure` trait, bar charts, the font, inline display in notebooks |
//! | [`diagrams`] | the chapters' diagrams (the GPT architecture, attention, ...): SVG files in `assets/figures/`, compiled in |
//! | [`lines`] | line charts of several named series, e.g. GELU and ReLU (chapter 4, figure 4.8) |
//! | [`figures`] | the attention heat map (chapter 3), loss curves (chapters 5-7, appendix A) |
//! | [`i18n`] | the language of the words on figures (English or Chinese) and their translations |

pub mod diagrams;
pub mod figures;
pub mod i18n;
pub mod lines;
pub mod plot;

pub use i18n::{set_lang, with_lang, Lang};
