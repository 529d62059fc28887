//! `llm tokenize`: text to token ids (one JSON array on one line), or ids back to text.
//!
//! ```text
//! llm tokenize --text "Every effort moves you"          # [6109,3626,6100,345]
//! llm tokenize --file notes.txt --allow-special          # <|endoftext|> as the special token 50256
//! llm tokenize --decode --ids 6109,3626,6100,345         # Every effort moves you
//! llm tokenize --tokenizer simple --text "I HAD always"  # SimpleTokenizerV2 over the-verdict's words
//! ```

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use llm_from_scratch::tokenizer::{BpeTokenizer, SimpleTokenizerV2, ENDOFTEXT};

/// Which tokenizer `llm tokenize` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenizerKind {
    /// GPT-2's byte-level BPE (OpenAI's encoder.json + vocab.bpe), section 2.5.
    Gpt2,
    /// SimpleTokenizerV2 with the vocabulary of the-verdict.txt (sections 2.3-2.4).
    Simple,
}

#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// The tokenizer.
    #[arg(long, value_enum, default_value_t = TokenizerKind::Gpt2)]
    pub tokenizer: TokenizerKind,
    /// Text to encode.
    #[arg(long, conflicts_with_all = ["file", "ids"], required_unless_present_any = ["file", "ids"])]
    pub text: Option<String>,
    /// File whose text to encode (UTF-8).
    #[arg(long, conflicts_with = "ids")]
    pub file: Option<PathBuf>,
    /// Recognise <|endoftext|> as the special token (otherwise text containing it is an error).
    #[arg(long)]
    pub allow_special: bool,
    /// Decode --ids to text instead of encoding.
    #[arg(long, requires = "ids")]
    pub decode: bool,
    /// Comma-separated token ids to decode, e.g. 6109,3626,6100,345.
    #[arg(long, value_delimiter = ',', requires = "decode")]
    pub ids: Option<Vec<u32>>,
}

pub fn run(args: TokenizeArgs) -> Result<()> {
    if args.decode {
        let ids = args.ids.unwrap_or_default();
        let text = match args.tokenizer {
            TokenizerKind::Gpt2 => BpeTokenizer::gpt2()?.decode(&ids)?,
            TokenizerKind::Simple => simple()?.decode(&ids)?,
        };
        println!("{text}");
        return Ok(());
    }
    let text = match (args.text, args.file) {
        (Some(text), _) => text,
        (None, Some(path)) => std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
        (None, None) => bail!("give --text TEXT or --file PATH (or --decode --ids ...)"),
    };
    let ids = match args.tokenizer {
        TokenizerKind::Gpt2 => {
            let allowed: &[&str] = if args.allow_special { &[ENDOFTEXT] } else { &[] };
            BpeTokenizer::gpt2()?
                .encode(&text, allowed)
                .context("add --allow-special to encode <|endoftext|> as the special token")?
        }
        TokenizerKind::Simple => simple()?.encode(&text),
    };
    println!("{}", serde_json::to_string(&ids)?);
    Ok(())
}

/// SimpleTokenizerV2 over the-verdict (the book's vocabulary of 1132 tokens).
fn simple() -> Result<SimpleTokenizerV2> {
    Ok(SimpleTokenizerV2::from_text(&llm_from_scratch::data::the_verdict()?))
}
