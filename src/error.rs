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
    /// A model preset name that [`crate::config::GptConfig::from_preset_name`] does not know.
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
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
