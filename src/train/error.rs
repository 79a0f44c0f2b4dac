//! Errors of the training stack: data files, checkpoints, configuration,
//! devices and the tensor library underneath.

use std::path::{Path, PathBuf};

/// Anything that can go wrong while loading data, building a model or training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A data or checkpoint file that is missing, unreadable or malformed.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// An I/O failure while reading or writing a file. (Not a `source`:
    /// the message already says it, and `{:#}` would say it twice.)
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A `--task` value that does not parse.
    #[error("invalid task '{spec}': {message}")]
    TaskSpec { spec: String, message: String },
    /// A model name or model option that does not parse or does not fit the data.
    #[error("invalid model: {0}")]
    Model(String),
    /// A training option out of range (batch size, sequence length, ...).
    #[error("invalid training option: {0}")]
    Config(String),
    /// A device that is not available in this build or on this machine.
    #[error("{0}")]
    Device(String),
    /// Training diverged or produced a value that cannot be used.
    #[error("{0}")]
    Numeric(String),
    /// An error from Candle.
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, TrainError>;

impl TrainError {
    pub(crate) fn file(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        TrainError::File {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.as_ref().to_path_buf(),
            error: source,
        }
    }
}
