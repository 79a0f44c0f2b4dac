//! Reading training logs: the formats (one file each under `formats/`,
//! behind the `LogFormat` trait), discovery, the cold load and the follower.
//!
//! `discover` turns command-line arguments into sources, `load` reads a
//! source once (`--no-follow`), `follow` tails it and sends `SourceEvent`s.
//! Every format goes through the same field aliasing (`FieldMap`) into
//! `crate::metrics::Record`s. Bad lines are counted and skipped, never fatal.

mod batch;
mod discover;
mod error;
mod event;
mod fields;
mod file_id;
mod flat;
mod follow;
pub(crate) mod formats;
mod json;
mod lines;
mod load;
mod out;
mod pool;
#[doc(hidden)]
pub mod raw;
mod run_config;
pub mod scan;
pub(crate) mod special;
mod tail;
mod tally;

use std::path::{Path, PathBuf};

pub use discover::discover;
pub use error::IngestError;
pub use event::{FollowStatus, SourceEvent};
pub use fields::{Field, FieldMap};
pub use follow::{Follower, follow};
pub use formats::Format;
pub use formats::{LoadOptions, Observer};
pub use load::{LoadedRun, load, load_bytes, load_with};
pub use run_config::{ConfigValue, RunConfig};

/// One run's log: a file (which may not exist yet) or stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// None for stdin.
    pub path: Option<PathBuf>,
    /// Short name for display, unique among the sources of one `discover`.
    pub label: String,
    /// None until known (by name, or by content once there is some).
    pub format: Option<Format>,
    /// The run is every file of `format` in the directory `path`, in name
    /// order (TensorBoard writes one event file per process or restart),
    /// or the run directory `path` (MLflow's file store).
    pub group: bool,
    /// The run's key in a file that holds several (a tracker's database).
    pub part: Option<String>,
}

impl Source {
    pub fn stdin() -> Source {
        Source {
            path: None,
            label: "stdin".to_string(),
            format: None,
            group: false,
            part: None,
        }
    }

    /// A file, labelled with its path; the format as far as the name tells.
    pub fn file(path: impl Into<PathBuf>) -> Source {
        let path = path.into();
        Source {
            label: path.display().to_string(),
            format: formats::format_by_name(&path),
            path: Some(path),
            group: false,
            part: None,
        }
    }

    /// The files of `format` in directory `dir`, as one run.
    pub fn group(dir: impl Into<PathBuf>, format: Format) -> Source {
        let dir = dir.into();
        Source {
            label: dir.display().to_string(),
            format: Some(format),
            path: Some(dir),
            group: true,
            part: None,
        }
    }

    /// The member files of a group source, in name order (none yet is fine).
    pub fn members(&self) -> Vec<PathBuf> {
        match (&self.path, self.format) {
            (Some(dir), Some(format)) if self.group => formats::group_members(dir, format),
            _ => Vec::new(),
        }
    }

    pub fn is_stdin(&self) -> bool {
        self.path.is_none()
    }

    /// False for a file that does not exist (yet); following waits for it.
    pub fn exists(&self) -> bool {
        self.path.as_deref().is_none_or(Path::exists)
    }
}
