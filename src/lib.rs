//! lrtop: top for learning rates.
//!
//! Data flows one way: a source (the trainer thread or a log follower) emits
//! records, the store keeps them as per-run columns, the monitor raises
//! alerts, and the UI renders from the store.

pub mod child_env;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod error;
pub mod format;
pub mod ingest;
pub mod metrics;
pub mod monitor;
pub mod oom;
pub mod policy;
pub mod session;
pub mod signals;
pub mod train;
pub mod tui;
pub mod tune;
pub mod viz;
pub mod write_file;

/// Reproducible pseudo-random numbers for unit tests (xorshift64).
#[cfg(test)]
pub(crate) fn test_rng(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
