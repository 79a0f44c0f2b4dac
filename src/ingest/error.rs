//! Errors of discovery, loading and field mapping. Bad lines are not errors:
//! they are counted and skipped.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: {why}", path.display())]
    NotALog { path: PathBuf, why: String },
    #[error("no file matches '{pattern}'")]
    GlobNoMatch { pattern: String },
    #[error("invalid pattern '{pattern}': {message}")]
    BadGlob { pattern: String, message: String },
    #[error("no log files (*.jsonl, trainer_state.json, *.csv) in {}", dir.display())]
    NoLogsInDir { dir: PathBuf },
    #[error("invalid field map '{spec}': {message}")]
    FieldMap { spec: String, message: String },
    #[error("{} is not a valid trainer_state.json: {message}", path.display())]
    TrainerState { path: PathBuf, message: String },
    #[error("{} is not a valid {format} log: {message}", path.display())]
    Invalid {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
}

impl IngestError {
    /// A read that failed for want of memory (a thread's stack refused).
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, IngestError::Io { source, .. } if source.kind() == io::ErrorKind::OutOfMemory)
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            IngestError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            IngestError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}
