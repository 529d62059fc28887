//! The chapters' diagrams: the stages of building an LLM, the GPT architecture, the sliding
//! window, attention, the training loop, ... drawn by this project as SVG files in
//! `assets/figures/` and compiled into the library (by `build.rs`), so a notebook shows one with
//! `llm_from_scratch::diagram("ch04-gpt-architecture")?` and no path.
//!
//! File names start with the chapter that draws them (`ch02-`, `appendix-e-`, ...). The files
//! follow one style (see `assets/figures/README.md`): DejaVu Sans, the same few colours, a white
//! background, and element ids prefixed by the file's name, because every SVG shown inline in a
//! notebook shares the page's id space.

use crate::error::{Error, Result};
use crate::viz::plot::Svg;

include!(concat!(env!("OUT_DIR"), "/diagrams.rs"));

/// The diagram `name` (its file name in `assets/figures/` without `.svg`), ready to show inline
/// in a notebook (a cell whose value is an [`Svg`] draws it) or to save.
///
/// An unknown name is an error that lists the names there are.
///
/// In evcxr, give the notebook a `?` in an earlier cell (its set-up cell, say): the kernel turns
/// on `?` support by compiling the first cell that uses it a second time, and a value shown by
/// that retried cell is printed with `Debug` (`Svg("<svg ...")`) instead of drawn.
pub fn diagram(name: &str) -> Result<Svg> {
    DIAGRAMS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .map(|i| Svg(DIAGRAMS[i].1.to_string()))
        .map_err(|_| {
            Error::Plot(format!(
                "no diagram '{name}' in assets/figures/ (there are: {})",
                diagram_names().join(", ")
            ))
        })
}

/// The names of all diagrams, sorted.
pub fn diagram_names() -> Vec<&'static str> {
    DIAGRAMS.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_diagram_is_an_svg_with_prefixed_ids() {
        assert!(!DIAGRAMS.is_empty(), "assets/figures/ has no .svg file");
        assert!(DIAGRAMS.windows(2).all(|w| w[0].0 < w[1].0), "the table is sorted (binary search)");
        for (name, svg) in DIAGRAMS {
            let svg = svg.trim_start();
            assert!(
                svg.starts_with("<svg") || svg.starts_with("<?xml"),
                "assets/figures/{name}.svg does not start with <svg or <?xml"
            );
            assert!(svg.contains("viewBox"), "assets/figures/{name}.svg has no viewBox (it would not scale)");
            // Ids must be unique across the notebook page: each starts with the file's name.
            for part in svg.split(" id=\"").skip(1) {
                let id = &part[..part.find('"').unwrap_or(0)];
                assert!(id.starts_with(name), "assets/figures/{name}.svg: id '{id}' does not start with '{name}'");
            }
            assert_eq!(diagram(name).unwrap().as_str(), DIAGRAMS.iter().find(|(n, _)| n == name).unwrap().1);
        }
        let err = diagram("no-such-figure").unwrap_err().to_string();
        assert!(err.contains("no-such-figure") && err.contains(DIAGRAMS[0].0), "{err}");
    }
}
