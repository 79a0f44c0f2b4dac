//! What sources send: typed events about one run each, in the order they
//! happened. A leaf module: the follower, the parsers and the session all
//! use it, and it uses none of them.

use crate::metrics::{Record, RunId};

use super::Format;
use super::load::LoadedRun;
use super::run_config::RunConfig;

/// What a follower reports. Records arrive in file order, each exactly once
/// per reading of the file (after `Truncated` the file is read again from
/// its start; after `Rotated`, the new file from its start).
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent {
    Records {
        run: RunId,
        records: Vec<Record>,
    },
    Status {
        run: RunId,
        status: FollowStatus,
        detail: Option<String>,
    },
    /// Running total of bad lines and the latest error.
    BadLines {
        run: RunId,
        total: u64,
        last_error: String,
    },
    /// The format, once known (from the name or the first line).
    Format {
        run: RunId,
        format: Format,
    },
    /// The whole source, read at once to its end (`--no-follow`).
    Loaded {
        run: RunId,
        loaded: Box<LoadedRun>,
    },
    /// Which variant of its format the source is (the trainer that printed
    /// a printed log).
    Dialect {
        run: RunId,
        name: &'static str,
    },
    /// The run's settings as its tracker recorded them.
    Config {
        run: RunId,
        config: RunConfig,
    },
    /// The source cannot be read (it does not exist, is not a log, ...).
    Failed {
        run: RunId,
        error: String,
    },
}

impl SourceEvent {
    /// The run the event is about.
    pub fn run(&self) -> RunId {
        match self {
            SourceEvent::Records { run, .. }
            | SourceEvent::Status { run, .. }
            | SourceEvent::BadLines { run, .. }
            | SourceEvent::Format { run, .. }
            | SourceEvent::Loaded { run, .. }
            | SourceEvent::Config { run, .. }
            | SourceEvent::Dialect { run, .. }
            | SourceEvent::Failed { run, .. } => *run,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowStatus {
    /// The file does not exist yet.
    Waiting,
    /// Initial catch-up: reading what the file holds.
    Reading,
    /// Caught up; new records are sent as they are written.
    Following,
    /// The file shrank or was rewritten: reading it again from its start.
    Truncated,
    /// The file was replaced (rename and create): the old one was read to
    /// its end, the new one is read from its start.
    Rotated,
    /// The file is gone; waiting for it to reappear.
    Deleted,
    /// Stdin reached its end.
    Closed,
}

impl FollowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FollowStatus::Waiting => "waiting",
            FollowStatus::Reading => "reading",
            FollowStatus::Following => "following",
            FollowStatus::Truncated => "truncated",
            FollowStatus::Rotated => "rotated",
            FollowStatus::Deleted => "deleted",
            FollowStatus::Closed => "closed",
        }
    }
}
