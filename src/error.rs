//! The library's error type. Every I/O, parsing, tokenizer, config and weight-loading boundary
//! returns `Result<_, Error>`, and each variant names what went wrong where: the file, the key,
//! the line. Tensor arithmetic (`forward`) returns plain tensors and asserts its shapes.

use std::path::PathBuf;

/// Errors raised by `llm_from_scratch`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing `path` failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A dynamic library could not be loaded.
    #[error("could not load {library}: {reason}")]
    Library { library: String, reason: String },
    /// An error from libtorch (through tch).
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Drawing a plot failed.
    #[error("plot: {0}")]
    Plot(String),
    /// A file's contents are not in the expected format (`reason` names the line or key).
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    /// A data file's sha256 is not the one expected (a corrupt download, another version of the
    /// file, or a wrong file in `LLM_DATA_DIR`).
    #[error("checksum mismatch for {path}: expected sha256 {expected}, found {found}")]
    Checksum { path: PathBuf, expected: String, found: String },
    /// A data file without a known checksum has another size than expected (a partial download?).
    #[error("size mismatch for {path}: expected {expected} bytes, found {found}")]
    SizeMismatch { path: PathBuf, expected: u64, found: u64 },
    /// A data file is neither in the local data folder nor in the cache, and downloading it failed.
    #[error("{0}")]
    Download(String),
    /// The text holds a special token (`<|endoftext|>`) that the caller did not allow.
    #[error("the text contains the special token {token:?}, which is not allowed here (allow it, or encode it as ordinary text)")]
    DisallowedSpecialToken { token: String },
    /// A token id outside the tokenizer's vocabulary.
    #[error("token id {id} is not in the vocabulary (ids run from 0 to {})", .vocab_size.saturating_sub(1))]
    UnknownTokenId { id: u32, vocab_size: usize },
    /// A word that a vocabulary without `<|unk|>` (SimpleTokenizerV1) does not hold.
    #[error("the word {word:?} is not in the vocabulary (SimpleTokenizerV1 has no <|unk|> token; use SimpleTokenizerV2)")]
    UnknownWord { word: String },
    /// A text too short for one training window.
    #[error("the text has {tokens} tokens; one window of max_length {max_length} needs at least {} (input plus the next token as target)", .max_length + 1)]
    TextTooShort { tokens: usize, max_length: usize },
    /// An argument outside its valid range (`name` says which).
    #[error("invalid {name}: {reason}")]
    InvalidArgument { name: &'static str, reason: String },
    /// A model preset name that [`crate::nn::config::GptConfig::from_preset_name`] does not know.
    #[error("unknown model preset '{name}' (known: {known})")]
    UnknownPreset { name: String, known: String },
    /// A configuration file or value that cannot be used (`what` says which file or field).
    #[error("config {what}: {reason}")]
    Config { what: String, reason: String },
    /// A weight file's tensor has another shape than the model's parameter of the same name.
    #[error("tensor '{name}': the model expects shape {expected:?}, the file has {found:?}")]
    ShapeMismatch { name: String, expected: Vec<i64>, found: Vec<i64> },
    /// A parameter of the model is not in the weight file.
    #[error("{path}: no tensor named '{name}' (the model needs it)")]
    MissingTensor { name: String, path: PathBuf },
    /// The weight file holds a tensor that the model has no parameter for.
    #[error("{path}: tensor '{name}' is not a parameter of the model")]
    UnexpectedTensor { name: String, path: PathBuf },
    /// Training diverged at a step: its loss or the global norm of its gradients (appendix D's
    /// clipping) is NaN or infinite (the loop stopped before updating the weights, which are
    /// those after the last finite step), or the training loss evaluated after it is (the
    /// step's update was applied: do not save those weights).
    #[error(
        "training diverged at step {step}: {what} is {value} (last finite loss: {}); lower the learning rate or clip the gradients",
        .last_finite.map_or("none".to_string(), |(s, l)| format!("{l:.4} at step {s}"))
    )]
    NonFiniteLoss { step: i64, what: &'static str, value: f64, last_finite: Option<(i64, f64)> },
    /// A judge model's chat server (chapter 7.8) could not be reached or answered badly.
    #[error("judge at {url}: {reason}")]
    Judge { url: String, reason: String },
    /// A collective of a process group (`util::dist`, feature `dist`) failed: `op` names it
    /// (init, all_reduce, broadcast, barrier), `reason` is c10d's message (a timeout, a peer that
    /// closed its connection ...).
    #[error("distributed {op}: {reason}")]
    Distributed { op: &'static str, reason: String },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
