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
