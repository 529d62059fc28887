//! Chapter 1, "Understanding large language models": the facts the chapter's notebook shows.
//!
//! Chapter 1 has no code in the book; the notebook explains what an LLM is and draws one figure:
//! how the GPT models grew (section 1.6, "A closer look at the GPT architecture"). The numbers
//! are the published ones; the book quotes GPT-3's 96 layers, 175 billion parameters and
//! 300 billion training tokens, at an estimated $4.6 million of compute (section 1.5).

use crate::viz::plot::BarChart;

/// One generation of OpenAI's GPT models, as published.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GptGeneration {
    pub name: &'static str,
    pub year: u16,
    /// Number of parameters of the largest model of the generation.
    pub parameters: f64,
    /// Transformer blocks of that model.
    pub layers: u32,
    /// Tokens seen in pretraining, where the paper states it.
    pub training_tokens: Option<f64>,
}

/// GPT-1 (2018), GPT-2 (2019, largest "XL" model) and GPT-3 (2020, the 175B model).
pub fn gpt_generations() -> Vec<GptGeneration> {
    vec![
        GptGeneration { name: "GPT-1", year: 2018, parameters: 117e6, layers: 12, training_tokens: None },
        GptGeneration { name: "GPT-2", year: 2019, parameters: 1.5e9, layers: 48, training_tokens: None },
        GptGeneration { name: "GPT-3", year: 2020, parameters: 175e9, layers: 96, training_tokens: Some(300e9) },
    ]
}

/// A bar chart of the parameter counts of [`gpt_generations`], on a log axis (each generation
/// is 10-100x the one before).
pub fn model_size_chart() -> BarChart {
    BarChart {
        title: "GPT model sizes (parameters, log scale)".into(),
        y_label: "parameters".into(),
        bars: gpt_generations()
            .iter()
            .map(|g| (format!("{} ({})", g.name, g.year), g.parameters))
            .collect(),
        log_y: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::plot::Figure;

    #[test]
    fn gpt3_is_the_books_model() {
        let g = gpt_generations();
        let gpt3 = g.iter().find(|g| g.name == "GPT-3").expect("GPT-3 listed");
        assert_eq!(gpt3.layers, 96, "GPT-3 has 96 transformer blocks");
        assert_eq!(gpt3.parameters, 175e9, "GPT-3 has 175 billion parameters");
        assert_eq!(gpt3.training_tokens, Some(300e9), "trained on 300 billion tokens");
        assert!(g.windows(2).all(|w| w[0].parameters < w[1].parameters), "each generation is bigger");
    }

    #[test]
    fn size_chart_shows_every_generation() {
        let svg = model_size_chart().to_svg().unwrap();
        for g in gpt_generations() {
            assert!(svg.as_str().contains(g.name), "chart lacks {}", g.name);
        }
    }
}
