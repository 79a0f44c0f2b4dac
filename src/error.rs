//! Errors every layer shares: a usage error is one the user's input caused
//! (exit code 2), as opposed to one the environment caused (exit code 1).

/// An error caused by what the user asked for (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A usage error as an `anyhow::Error`, for handlers at the edges.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// A check that ran and failed: what was seen is reported, and the exit
/// code says which kind of failure (documented in the README).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CheckFailed {
    pub code: u8,
    pub message: String,
}

/// Exit code: an alert at the `--fail-on` level or worse was raised.
pub const EXIT_ALERT: u8 = 3;
/// Exit code: the training run diverged (and was stopped).
pub const EXIT_DIVERGED: u8 = 4;
