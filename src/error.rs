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
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
