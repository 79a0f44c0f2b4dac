//! Live discovery: `lrtop attach DIR` (or a glob) keeps looking for logs
//! that appear below DIR after it started — a new `version_N/`, a new
//! `checkpoint-N/trainer_state.json`, a run that had not started yet — and
//! reports each once.
//!
//! A rescan every half second rather than a recursive watch: it sees new
//! files on every file system (NFS and Lustre included, where inotify does
//! not), costs a few directory reads, and meets the promise of a second.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::discover::{Settled, discover_with};
use super::formats::trainer_state::checkpoint_of;
use super::{IngestError, Source};

/// How often the arguments are scanned again, while they hold few logs.
pub const RESCAN: Duration = Duration::from_millis(500);
/// A rescan's cost grows with the logs it finds again (about 5 µs each):
/// past 500 logs the rescans are spaced by this much per log, so that
/// their load stays under 0.5% of a core (a thousand logs: a rescan every
/// second; ten thousand: every 10 s).
const RESCAN_PER_LOG: Duration = Duration::from_millis(1);

/// The wait before the next rescan when `known` logs were found so far.
fn rescan_after(known: usize) -> Duration {
    RESCAN.max(RESCAN_PER_LOG * u32::try_from(known).unwrap_or(u32::MAX))
}

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
    discover_live_with(args, &|_| None)
}

fn discover_live_with(args: &[String], settled: &Settled<'_>) -> Result<Vec<Source>, IngestError> {
    let discover = |args: &[String]| discover_with(args, settled);
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
type Key = (Option<PathBuf>, Option<String>);

fn key(source: &Source) -> Key {
    (source.path.clone(), source.part.clone())
}

/// The sources found so far; of the plain log files among them, their real
/// paths, so that a rescan neither sniffs nor resolves them again.
#[derive(Debug, Default)]
pub struct Known {
    keys: HashSet<Key>,
    settled: HashMap<PathBuf, PathBuf>,
}

impl Known {
    pub fn of(sources: &[Source]) -> Known {
        let mut known = Known::default();
        for source in sources {
            known.insert(source);
        }
        known
    }

    fn insert(&mut self, source: &Source) {
        self.keys.insert(key(source));
        if let (Some(path), None, false) = (&source.path, &source.part, source.group)
            && path.is_file()
            && !super::formats::may_hold_runs(path)
        {
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            self.settled.insert(path.clone(), real);
        }
    }

    fn contains(&self, source: &Source) -> bool {
        self.keys.contains(&key(source))
    }
}

/// Finds the sources that are new since `known`, adding them to it.
pub fn new_sources(args: &[String], known: &mut Known) -> Vec<Discovered> {
    let mut new = Vec::new();
    let found = discover_live_with(args, &|p| known.settled.get(p).cloned()).unwrap_or_default();
    for source in found {
        if known.contains(&source) {
            continue;
        }
        let continues = source
            .path
            .as_deref()
            .filter(|p| p.ends_with("trainer_state.json"))
            .and_then(checkpoint_of)
            .and_then(|(run_dir, _)| {
                known
                    .keys
                    .iter()
                    .filter_map(|(path, _)| path.as_ref())
                    .find(|p| checkpoint_of(p).is_some_and(|(dir, _)| dir == run_dir))
                    .cloned()
            });
        known.insert(&source);
        new.push(Discovered { source, continues });
    }
    new
}

/// What a rescan could find that is new, cached per directory: a new entry
/// changes its directory's mtime; a file already there that is not a known
/// log may become one as it is written (its size and mtime). When none of
/// these changed, a rescan would find nothing, and listing ten thousand
/// known logs again is skipped (a stat of each directory instead).
#[derive(Debug, Default)]
struct Trees {
    dirs: HashMap<PathBuf, Listing>,
}

#[derive(Debug)]
struct Listing {
    mtime: std::time::SystemTime,
    subdirs: Vec<PathBuf>,
    /// Files that are not known logs: (path, size, mtime).
    others: Vec<(PathBuf, u64, Option<std::time::SystemTime>)>,
}

/// A directory changed this recently may change again within the mtime's
/// granularity (a second on some file systems) unseen: not trusted.
const MTIME_SETTLE: Duration = Duration::from_secs(2);
/// As deep as discovery walks.
const TREE_DEPTH: usize = 4;

impl Trees {
    /// Whether anything a rescan of `args` looks at may have changed since
    /// the last call; lists again (and remembers) what did.
    fn changed(&mut self, args: &[String], known: &Known) -> bool {
        let mut changed = false;
        for arg in args {
            let path = Path::new(arg);
            if arg == "-" || !path.exists() {
                // A glob, or a path that does not exist yet.
                changed = true;
            } else if path.is_dir() {
                changed |= self.dir_changed(path, 0, known);
            } else if !known.settled.contains_key(path) {
                changed = true;
            }
        }
        changed
    }

    /// Lists `args` for the first time: whether a rescan may find anything
    /// the start did not (a file there that is not a known log, a glob, a
    /// path that does not exist yet).
    fn seed(&mut self, args: &[String], known: &Known) -> bool {
        let unsure = args.iter().any(|arg| {
            let path = Path::new(arg);
            arg == "-" || !path.exists() || (!path.is_dir() && !known.settled.contains_key(path))
        });
        self.changed(args, known);
        unsure || self.dirs.values().any(|listing| !listing.others.is_empty())
    }

    fn dir_changed(&mut self, dir: &Path, depth: usize, known: &Known) -> bool {
        let Ok(mtime) = std::fs::metadata(dir).and_then(|m| m.modified()) else {
            return true;
        };
        let recent = mtime.elapsed().map_or(true, |age| age < MTIME_SETTLE);
        if let Some(listing) = self.dirs.get(dir)
            && listing.mtime == mtime
            && !recent
        {
            let others_same = listing.others.iter().all(|(path, len, modified)| {
                std::fs::metadata(path)
                    .is_ok_and(|m| m.len() == *len && m.modified().ok() == *modified)
            });
            let subdirs = listing.subdirs.clone();
            let mut changed = !others_same;
            for sub in subdirs {
                changed |= self.dir_changed(&sub, depth + 1, known);
            }
            return changed;
        }
        // New or changed: list it (its mtime was read first, so a change
        // during the listing shows as another mtime next time).
        let mut listing = Listing {
            mtime,
            subdirs: Vec::new(),
            others: Vec::new(),
        };
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let path = entry.path();
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() && depth < TREE_DEPTH => listing.subdirs.push(path),
                    // Deeper than discovery walks.
                    Ok(kind) if kind.is_dir() => {}
                    Ok(_) if !known.settled.contains_key(&path) => {
                        let meta = std::fs::metadata(&path).ok();
                        listing.others.push((
                            path,
                            meta.as_ref().map_or(0, |m| m.len()),
                            meta.and_then(|m| m.modified().ok()),
                        ));
                    }
                    _ => {}
                }
            }
        }
        let subdirs = listing.subdirs.clone();
        self.dirs.insert(dir.to_path_buf(), listing);
        for sub in subdirs {
            self.dir_changed(&sub, depth + 1, known);
        }
        true
    }
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
        let mut known = Known::of(initial);
        let flag = stop.clone();
        let handle = thread::Builder::new()
            .name("lrtop-scan".into())
            .spawn(move || {
                let mut trees = Trees::default();
                // The directories as the start found them: the first rescan
                // need not discover ten thousand logs again unless something
                // there is not a known log yet.
                let mut pending = trees.seed(&args, &known);
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(rescan_after(known.keys.len()));
                    // Nothing changed in the directories: nothing new to find.
                    let unsure = std::mem::replace(&mut pending, false);
                    if !trees.changed(&args, &known) && !unsure {
                        continue;
                    }
                    let found = new_sources(&args, &mut known);
                    if !found.is_empty() {
                        // The new logs are known now: list their directories again.
                        trees = Trees::default();
                    }
                    for found in found {
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
        // Not joined: it ends by itself at its next wake-up.
        self.handle.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets a path's mtime `secs` seconds back (past MTIME_SETTLE).
    fn age(path: &Path, secs: u64) {
        let when = std::time::SystemTime::now() - Duration::from_secs(secs);
        std::fs::File::open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    #[test]
    fn unchanged_directories_skip_the_rescan_and_every_change_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let args = vec![dir.path().display().to_string()];
        let log = |name: &str| {
            std::fs::write(dir.path().join(name), "{\"step\": 1, \"loss\": 1}\n").unwrap()
        };
        log("a.jsonl");
        log("b.jsonl");
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let mut known = Known::default();
        assert_eq!(new_sources(&args, &mut known).len(), 2);
        for p in ["notes.txt", "sub", ""] {
            age(&dir.path().join(p), 10);
        }
        let mut trees = Trees::default();
        assert!(
            trees.changed(&args, &known),
            "the first look lists everything"
        );
        assert!(!trees.changed(&args, &known), "nothing changed");
        // An append to a known log is the follower's business, not a rescan's.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("a.jsonl"))
            .unwrap();
        assert!(!trees.changed(&args, &known));
        // A file that is not a log yet is written to.
        std::fs::write(dir.path().join("notes.txt"), "step 1 loss 2\n").unwrap();
        assert!(trees.changed(&args, &known));
        age(&dir.path().join("notes.txt"), 10);
        trees = Trees::default();
        assert!(trees.changed(&args, &known));
        assert!(!trees.changed(&args, &known));
        // A new file in a subdirectory.
        log("sub/c.jsonl");
        assert!(trees.changed(&args, &known));
        assert_eq!(new_sources(&args, &mut known).len(), 1);
        // A recently changed directory is not trusted for a while.
        let mut trees = Trees::default();
        assert!(trees.changed(&args, &known));
        assert!(trees.changed(&args, &known), "sub changed under 2 s ago");
        // A glob is always rescanned.
        let glob = vec![format!("{}/*.jsonl", dir.path().display())];
        assert!(Trees::default().changed(&glob, &known));
    }

    #[test]
    fn the_first_listing_needs_no_rediscovery_when_every_file_is_a_known_log() {
        let dir = tempfile::tempdir().unwrap();
        let args = vec![dir.path().display().to_string()];
        std::fs::write(dir.path().join("a.jsonl"), "{\"step\": 1, \"loss\": 1}\n").unwrap();
        let mut known = Known::default();
        assert_eq!(new_sources(&args, &mut known).len(), 1);
        assert!(!Trees::default().seed(&args, &known), "only known logs");
        // A file the start did not take as a log (it may become one).
        std::fs::write(dir.path().join("b.txt"), "").unwrap();
        assert!(Trees::default().seed(&args, &known));
        // A path that does not exist yet, and a glob.
        let missing = vec![dir.path().join("later/").display().to_string()];
        assert!(Trees::default().seed(&missing, &known));
        let glob = vec![format!("{}/*.jsonl", dir.path().display())];
        assert!(Trees::default().seed(&glob, &known));
    }

    #[test]
    fn new_logs_are_found_once_and_checkpoints_continue_their_run() {
        let dir = tempfile::tempdir().unwrap();
        let args = vec![dir.path().display().to_string()];
        let mut known = Known::default();
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
    fn rescans_space_out_with_many_logs() {
        assert_eq!(rescan_after(0), RESCAN);
        assert_eq!(rescan_after(500), RESCAN);
        assert_eq!(rescan_after(1_000), Duration::from_secs(1));
        assert_eq!(rescan_after(10_000), Duration::from_secs(10));
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
