//! Live discovery: `lrtop attach DIR` (or a glob) keeps looking for logs
//! that appear below DIR after it started — a new `version_N/`, a new
//! `checkpoint-N/trainer_state.json`, a run that had not started yet — and
//! reports each once.
//!
//! A rescan every half second rather than a recursive watch: it sees new
//! files on every file system (NFS and Lustre included, where inotify does
//! not), costs a few directory reads, and meets the promise of a second.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::discover::discover;
use super::formats::trainer_state::checkpoint_of;
use super::{IngestError, Source};

/// How often the arguments are scanned again.
pub const RESCAN: Duration = Duration::from_millis(500);

/// A source found after the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub source: Source,
    /// A newer checkpoint's `trainer_state.json`: the run of this older
    /// one's path continues in it (it repeats the history, then goes on).
    pub continues: Option<PathBuf>,
}

/// Whether any argument can gain logs later: a directory, a glob, or a
/// missing path that names a directory (ends in `/` or has no extension).
pub fn can_gain_logs(args: &[String]) -> bool {
    args.iter()
        .any(|a| waits_for_directory(a) || Path::new(a).is_dir())
}

/// A missing argument that looks like a directory or a pattern: it may
/// fill later, so it is waited for instead of being an error.
pub fn waits_for_directory(arg: &str) -> bool {
    let path = Path::new(arg);
    if is_pattern(arg) {
        return true;
    }
    !path.exists() && (arg.ends_with('/') || path.extension().is_none()) && arg != "-"
}

/// The sources for `args` now, where a directory without logs, a glob
/// matching nothing or a missing directory are no sources yet (other
/// errors, a bad pattern say, are errors).
pub fn discover_live(args: &[String]) -> Result<Vec<Source>, IngestError> {
    let present: Vec<String> = args
        .iter()
        .filter(|a| !(waits_for_directory(a) && !Path::new(a).exists() && !is_pattern(a)))
        .cloned()
        .collect();
    match discover(&present) {
        Ok(sources) => Ok(sources),
        Err(IngestError::NoLogsInDir { .. } | IngestError::GlobNoMatch { .. }) => {
            // One argument has nothing yet: the others, each on its own.
            let mut sources = Vec::new();
            for arg in &present {
                match discover(std::slice::from_ref(arg)) {
                    Ok(found) => sources.extend(found),
                    Err(IngestError::NoLogsInDir { .. } | IngestError::GlobNoMatch { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(sources)
        }
        Err(e) => Err(e),
    }
}

/// `discover_live`, with errors as no sources (a rescan).
pub fn discover_now(args: &[String]) -> Vec<Source> {
    discover_live(args).unwrap_or_default()
}

fn is_pattern(arg: &str) -> bool {
    arg.contains(['*', '?', '['])
}

/// Identity of a source across scans (labels change as the set grows).
fn key(source: &Source) -> (Option<PathBuf>, Option<String>) {
    (source.path.clone(), source.part.clone())
}

/// Finds the sources that are new since `known`, adding them to it.
pub fn new_sources(
    args: &[String],
    known: &mut HashSet<(Option<PathBuf>, Option<String>)>,
) -> Vec<Discovered> {
    let mut new = Vec::new();
    for source in discover_now(args) {
        if known.contains(&key(&source)) {
            continue;
        }
        let continues = source
            .path
            .as_deref()
            .filter(|p| p.ends_with("trainer_state.json"))
            .and_then(checkpoint_of)
            .and_then(|(run_dir, _)| {
                known
                    .iter()
                    .filter_map(|(path, _)| path.as_ref())
                    .find(|p| checkpoint_of(p).is_some_and(|(dir, _)| dir == run_dir))
                    .cloned()
            });
        known.insert(key(&source));
        new.push(Discovered { source, continues });
    }
    new
}

/// Rescans `args` on a thread until stopped (or `sink` returns false).
pub struct Scanner {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Scanner {
    pub fn start(
        args: Vec<String>,
        initial: &[Source],
        mut sink: impl FnMut(Discovered) -> bool + Send + 'static,
    ) -> Scanner {
        let stop = Arc::new(AtomicBool::new(false));
        let mut known: HashSet<_> = initial.iter().map(key).collect();
        let flag = stop.clone();
        let handle = thread::Builder::new()
            .name("lrtop-scan".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(RESCAN);
                    for found in new_sources(&args, &mut known) {
                        if !sink(found) {
                            return;
                        }
                    }
                }
            })
            .ok();
        Scanner { stop, handle }
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Not joined: it wakes within RESCAN and ends by itself.
        self.handle.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_logs_are_found_once_and_checkpoints_continue_their_run() {
        let dir = tempfile::tempdir().unwrap();
        let args = vec![dir.path().display().to_string()];
        let mut known = HashSet::new();
        assert!(new_sources(&args, &mut known).is_empty());
        std::fs::write(dir.path().join("a.jsonl"), "{\"step\": 1, \"loss\": 1}\n").unwrap();
        let found = new_sources(&args, &mut known);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].continues, None);
        assert!(new_sources(&args, &mut known).is_empty(), "reported once");

        let state = |n: u32| {
            let d = dir.path().join(format!("out/checkpoint-{n}"));
            std::fs::create_dir_all(&d).unwrap();
            let path = d.join("trainer_state.json");
            std::fs::write(&path, r#"{"log_history": [{"step": 1, "loss": 1.0}]}"#).unwrap();
            path
        };
        let first = state(500);
        let found = new_sources(&args, &mut known);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].source.path.as_deref(), Some(first.as_path()));
        state(1000);
        let found = new_sources(&args, &mut known);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].continues.as_deref(), Some(first.as_path()));
    }

    #[test]
    fn missing_directories_and_empty_globs_wait() {
        assert!(waits_for_directory("/nonexistent/runs/"));
        assert!(waits_for_directory("/nonexistent/runs"));
        assert!(waits_for_directory("/nonexistent/*.jsonl"));
        assert!(!waits_for_directory("/nonexistent/train.jsonl"));
        assert!(!waits_for_directory("-"));
        assert!(discover_now(&["/nonexistent/runs/".into()]).is_empty());
    }
}
