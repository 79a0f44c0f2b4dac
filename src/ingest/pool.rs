//! The followers of files share a few threads: a small pool of readers,
//! each checking its share of the followed files when a watch wakes it or
//! its poll is due, and one notify watch (one inotify instance, one watch
//! per directory) for all of them. Ten thousand followed files are then a
//! handful of threads and an idle process, not ten thousand threads each
//! polling four times a second (and inotify's 128-instance limit, past
//! which watches silently failed and everything polled).
//!
//! A file that is quiet is polled less and less often (the watch wakes it
//! at once for a change; the poll is the safety net for file systems whose
//! changes inotify does not see, NFS say), and more rarely the more files
//! there are, so that the polls of all of them stay a small, bounded load.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::file_id::{FileId, file_id};

/// The first poll after a change, and the poll while a file is busy
/// (catching up, or a rotated-away file still being drained).
pub(crate) const FAST_POLL: Duration = Duration::from_millis(250);
/// The longest a quiet, watched file goes unpolled, for a few files.
const QUIET_POLL: Duration = Duration::from_secs(2);
/// The polls of all quiet files together stay under this many a second.
const POLLS_PER_SECOND: f64 = 500.0;
/// The same, for files whose watch can be trusted (a local file system,
/// no symlink): their poll is only a safety net, since every change, and
/// an overflow of the kernel's event queue, wakes them at once.
const TRUSTED_POLLS_PER_SECOND: f64 = 100.0;
/// Checks due this soon are done in the same wake-up: with thousands of
/// quiet files, one wake-up per poll was most of what the pool cost.
const BATCH_SLACK: Duration = Duration::from_millis(50);
/// The most reader threads, whatever the machine.
const MAX_WORKERS: usize = 4;

/// Work a pool thread does for one followed source, a check at a time.
pub(crate) trait Job: Send {
    /// One look at the source: false once it is done with (its sink
    /// stopped listening).
    fn check(&mut self) -> bool;
    /// Where a change wakes this job: a directory and the name in it
    /// (None: any name). None: nothing to watch (poll only).
    fn watch_target(&self) -> Option<(PathBuf, Option<OsString>)>;
    /// Still reading (or draining a rotated file): polled fast.
    fn busy(&self) -> bool;
    /// Whether the last check found anything new.
    fn progressed(&mut self) -> bool;
}

enum Msg {
    Add(Box<Entry>),
    Wake(u64),
    Stop(u64),
}

/// A job and what the pool knows of it.
struct Entry {
    id: u64,
    job: Box<dyn Job>,
    stop: Arc<AtomicBool>,
    /// Dropped when the job ends: its follower's `join` returns then.
    _done: Sender<()>,
    next_check: Instant,
    quiet_for: Duration,
    target: Option<(PathBuf, Option<OsString>)>,
    /// The target directory's identity when it was last looked at: a
    /// directory that appears, or is replaced, is watched (again).
    dir_id: Option<FileId>,
    watched: Watched,
}

/// What wakes a job besides its poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    /// Nothing: the poll is all there is.
    No,
    /// A watch that may miss changes (a network file system, a symlink
    /// whose target lives elsewhere).
    Maybe,
    /// A watch on a local file system, of the file itself.
    Yes,
}

/// A job's handle: stopping it, and telling when it ended.
pub(crate) struct Handle {
    pub(crate) id: u64,
    worker: Sender<Msg>,
    done: Receiver<()>,
}

impl Handle {
    pub(crate) fn stop(&self) {
        let _ = self.worker.send(Msg::Stop(self.id));
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.done.try_recv(), Err(mpsc::TryRecvError::Disconnected))
    }

    /// Waits until the job ended (a pool thread checks one job at a time,
    /// so this is within one check of the job).
    pub(crate) fn wait(&self) {
        let _ = self.done.recv();
    }
}

struct Pool {
    workers: Vec<Sender<Msg>>,
    next_worker: AtomicUsize,
    next_id: AtomicU64,
    /// Jobs in all workers: the more, the rarer each quiet poll.
    jobs: Arc<AtomicUsize>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let count = thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, MAX_WORKERS);
        let jobs = Arc::new(AtomicUsize::new(0));
        let watch = Arc::new(SharedWatch::default());
        let workers = (0..count)
            .filter_map(|i| {
                let (tx, rx) = mpsc::channel();
                let (jobs, watch, me) = (jobs.clone(), watch.clone(), tx.clone());
                thread::Builder::new()
                    .name(format!("lrtop-follow-{i}"))
                    .spawn(move || Worker::new(rx, me, jobs, watch).run())
                    .ok()
                    .map(|_| tx)
            })
            .collect();
        Pool {
            workers,
            next_worker: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            jobs,
        }
    })
}

/// Hands `job` to a pool thread; None when no thread could be started
/// (the caller then runs it on a thread of its own).
pub(crate) fn start(job: Box<dyn Job>, stop: Arc<AtomicBool>) -> Result<Handle, Box<dyn Job>> {
    let pool = pool();
    if pool.workers.is_empty() {
        return Err(job);
    }
    let id = pool.next_id.fetch_add(1, Ordering::Relaxed);
    let worker =
        &pool.workers[pool.next_worker.fetch_add(1, Ordering::Relaxed) % pool.workers.len()];
    let (done_tx, done) = mpsc::channel();
    let entry = Entry {
        id,
        job,
        stop,
        _done: done_tx,
        next_check: Instant::now(),
        quiet_for: Duration::ZERO,
        target: None,
        dir_id: None,
        watched: Watched::No,
    };
    pool.jobs.fetch_add(1, Ordering::Relaxed);
    if let Err(mpsc::SendError(Msg::Add(entry))) = worker.send(Msg::Add(Box::new(entry))) {
        pool.jobs.fetch_sub(1, Ordering::Relaxed);
        return Err(entry.job);
    }
    Ok(Handle {
        id,
        worker: worker.clone(),
        done,
    })
}

/// How long a quiet job waits for its next poll: doubling from the fast
/// poll up to a ceiling that grows with the number of jobs.
fn quiet_poll(quiet_for: Duration, watched: Watched, jobs: usize) -> Duration {
    let rate = match watched {
        Watched::Yes => TRUSTED_POLLS_PER_SECOND,
        Watched::No | Watched::Maybe => POLLS_PER_SECOND,
    };
    let spread = Duration::from_secs_f64(jobs as f64 / rate);
    // Without a watch the poll is all there is: keep it quick.
    let ceiling = match watched {
        Watched::No => FAST_POLL * 2,
        Watched::Maybe | Watched::Yes => QUIET_POLL,
    }
    .max(spread);
    (quiet_for * 2).clamp(FAST_POLL, ceiling)
}

struct Worker {
    inbox: Receiver<Msg>,
    me: Sender<Msg>,
    jobs: Arc<AtomicUsize>,
    watch: Arc<SharedWatch>,
    entries: HashMap<u64, Box<Entry>>,
    /// When each entry is due, earliest first; an entry rescheduled (or
    /// gone) leaves a stale item here, skipped when it comes up.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
}

impl Worker {
    fn new(
        inbox: Receiver<Msg>,
        me: Sender<Msg>,
        jobs: Arc<AtomicUsize>,
        watch: Arc<SharedWatch>,
    ) -> Self {
        Worker {
            inbox,
            me,
            jobs,
            watch,
            entries: HashMap::new(),
            due: BinaryHeap::new(),
        }
    }

    fn run(mut self) {
        loop {
            let now = Instant::now();
            let next = self.due.peek().map(|Reverse((at, _))| *at);
            let timeout = next.map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(now)
            });
            match self.inbox.recv_timeout(timeout) {
                Ok(msg) => self.take(msg),
                Err(RecvTimeoutError::Timeout) => {}
                // The pool holds a sender for as long as the process lives.
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Many notifications, one check.
            while let Ok(msg) = self.inbox.try_recv() {
                self.take(msg);
            }
            self.check_due();
        }
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Add(entry) => {
                self.due.push(Reverse((entry.next_check, entry.id)));
                self.entries.insert(entry.id, entry);
            }
            Msg::Wake(id) => {
                if let Some(entry) = self.entries.get_mut(&id) {
                    let now = Instant::now();
                    if entry.next_check > now {
                        entry.next_check = now;
                        self.due.push(Reverse((now, id)));
                    }
                    entry.quiet_for = Duration::ZERO;
                }
            }
            Msg::Stop(id) => {
                if let Some(mut entry) = self.entries.remove(&id) {
                    self.end(&mut entry);
                }
            }
        }
    }

    fn check_due(&mut self) {
        let now = Instant::now();
        let jobs = self.jobs.load(Ordering::Relaxed);
        // The identity of the directory checked last: the jobs due together
        // are mostly files of one directory, which one stat is enough for.
        let mut last_dir: Option<(PathBuf, Option<FileId>)> = None;
        while let Some(&Reverse((at, id))) = self.due.peek() {
            if at > now + BATCH_SLACK {
                break;
            }
            self.due.pop();
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            if entry.next_check != at {
                continue;
            }
            if entry.stop.load(Ordering::Relaxed) {
                if let Some(mut entry) = self.entries.remove(&id) {
                    self.end(&mut entry);
                }
                continue;
            }
            // Watch first, so a change right after the check is not missed.
            let target = entry.job.watch_target();
            let dir_id = target.as_ref().and_then(|(dir, _)| match &last_dir {
                Some((seen, id)) if seen == dir => *id,
                _ => {
                    let id = std::fs::metadata(dir).ok().map(|m| file_id(&m));
                    last_dir = Some((dir.clone(), id));
                    id
                }
            });
            if target != entry.target || dir_id != entry.dir_id {
                self.watch.forget(entry.id, entry.target.take());
                entry.watched = match (&target, dir_id) {
                    (Some((dir, name)), Some(id)) => {
                        match self.watch.add(dir, id, name.clone(), entry.id, &self.me) {
                            // A symlink's target changes in another directory.
                            Watched::Yes if is_symlink(dir, name.as_deref()) => Watched::Maybe,
                            worth => worth,
                        }
                    }
                    _ => Watched::No,
                };
                entry.target = target;
                entry.dir_id = dir_id;
            }
            let alive = entry.job.check();
            if !alive || entry.stop.load(Ordering::Relaxed) {
                if let Some(mut entry) = self.entries.remove(&id) {
                    self.end(&mut entry);
                }
                continue;
            }
            entry.quiet_for = if entry.job.progressed() || entry.job.busy() {
                Duration::ZERO
            } else {
                quiet_poll(entry.quiet_for, entry.watched, jobs)
            };
            entry.next_check = Instant::now() + entry.quiet_for.max(FAST_POLL);
            self.due.push(Reverse((entry.next_check, id)));
        }
    }

    fn end(&mut self, entry: &mut Entry) {
        self.watch.forget(entry.id, entry.target.take());
        self.jobs.fetch_sub(1, Ordering::Relaxed);
    }
}

fn is_symlink(dir: &Path, name: Option<&std::ffi::OsStr>) -> bool {
    name.is_some_and(|name| {
        std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.file_type().is_symlink())
    })
}

/// Whether changes in `dir` are all made on this machine, so that a watch
/// sees them (inotify does not see writes made by other machines on NFS,
/// SMB, Lustre or FUSE mounts).
#[cfg(target_os = "linux")]
fn local_file_system(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    // statfs(2)'s f_type of the file systems whose changes may come from
    // elsewhere; anything else is taken as local.
    const REMOTE: &[i64] = &[
        0x6969,      // NFS
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x517B,      // SMB
        0x6573_5546, // FUSE (sshfs, s3fs, ...)
        0x0102_1997, // 9p
        0x0BD0_0BD0, // Lustre
        0x4757_5353, // GPFS
        0x0122_5F46, // GPFS (older)
        0xAAD7_AAEA, // PanFS
        0x0BEE_F00D, // BeeGFS (FhGFS)
        0x0013_1F4B, // Ceph
        0x5346_414F, // AFS
        0x7375_7245, // Coda
    ];
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut stats = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string and `stats` is written by
    // statfs before it is read (only when it returned 0).
    let ok = unsafe { libc::statfs(path.as_ptr(), stats.as_mut_ptr()) } == 0;
    if !ok {
        return false;
    }
    // SAFETY: statfs returned 0, so it filled `stats`.
    // f_type is an i64 here, an i32 or u32 elsewhere.
    #[allow(clippy::useless_conversion)]
    let kind = i64::from(unsafe { stats.assume_init() }.f_type);
    !REMOTE.contains(&(kind & 0xFFFF_FFFF))
}

#[cfg(not(target_os = "linux"))]
fn local_file_system(_dir: &Path) -> bool {
    false
}

/// Who wants to hear of changes in a directory.
struct Subscriber {
    job: u64,
    name: Option<OsString>,
    worker: Sender<Msg>,
}

/// One notify watcher for the whole process; a watch per directory, with
/// the jobs that care about it.
#[derive(Default)]
struct SharedWatch {
    /// Locked by notify's thread for every event: never held while calling
    /// into the watcher (whose calls wait on that same thread).
    subscribers: Arc<Mutex<HashMap<PathBuf, Vec<Subscriber>>>>,
    watcher: Mutex<WatcherState>,
}

#[derive(Default)]
struct WatcherState {
    /// None until first needed, and when notify could not start.
    watcher: Option<RecommendedWatcher>,
    started: bool,
    /// The directories watched, each with its identity when the watch was
    /// set (a replaced directory is watched again) and what the watch is
    /// worth there (No: it failed).
    dirs: HashMap<PathBuf, (FileId, Watched)>,
}

impl SharedWatch {
    /// Wakes `job` on `worker` for changes to `name` in `dir`; what the
    /// directory's watch is worth (No: the job relies on its poll).
    fn add(
        &self,
        dir: &Path,
        id: FileId,
        name: Option<OsString>,
        job: u64,
        worker: &Sender<Msg>,
    ) -> Watched {
        if let Ok(mut subs) = self.subscribers.lock() {
            subs.entry(dir.to_path_buf()).or_default().push(Subscriber {
                job,
                name,
                worker: worker.clone(),
            });
        }
        let Ok(mut state) = self.watcher.lock() else {
            return Watched::No;
        };
        if !state.started {
            state.started = true;
            let subscribers = self.subscribers.clone();
            state.watcher =
                notify::recommended_watcher(move |event| dispatch(&subscribers, event)).ok();
        }
        if let Some(&(watched_id, worth)) = state.dirs.get(dir)
            && watched_id == id
        {
            return worth;
        }
        let Some(watcher) = state.watcher.as_mut() else {
            return Watched::No;
        };
        // A replaced directory: the old watch is gone with it.
        let _ = watcher.unwatch(dir);
        let worth = if watcher.watch(dir, RecursiveMode::NonRecursive).is_err() {
            Watched::No
        } else if local_file_system(dir) {
            Watched::Yes
        } else {
            Watched::Maybe
        };
        state.dirs.insert(dir.to_path_buf(), (id, worth));
        worth
    }

    /// `job` no longer cares about `target`; a directory nobody cares
    /// about is no longer watched.
    fn forget(&self, job: u64, target: Option<(PathBuf, Option<OsString>)>) {
        let Some((dir, _)) = target else {
            return;
        };
        let unused = match self.subscribers.lock() {
            Ok(mut subs) => match subs.get_mut(&dir) {
                Some(list) => {
                    list.retain(|s| s.job != job);
                    let unused = list.is_empty();
                    if unused {
                        subs.remove(&dir);
                    }
                    unused
                }
                None => false,
            },
            Err(_) => false,
        };
        if unused && let Ok(mut state) = self.watcher.lock() {
            if let Some(watcher) = state.watcher.as_mut() {
                let _ = watcher.unwatch(&dir);
            }
            state.dirs.remove(&dir);
        }
    }
}

/// Sends a wake-up to every job an event concerns (all of a directory's
/// when the event names no file, or is an error).
fn dispatch(
    subscribers: &Mutex<HashMap<PathBuf, Vec<Subscriber>>>,
    event: notify::Result<notify::Event>,
) {
    let Ok(subs) = subscribers.lock() else {
        return;
    };
    let wake = |list: &Vec<Subscriber>, name: Option<&std::ffi::OsStr>| {
        for s in list {
            if name.is_none() || s.name.is_none() || s.name.as_deref() == name {
                let _ = s.worker.send(Msg::Wake(s.job));
            }
        }
    };
    match event {
        Ok(event) if !event.paths.is_empty() => {
            for path in &event.paths {
                if let Some(list) = path.parent().and_then(|dir| subs.get(dir)) {
                    wake(list, path.file_name());
                }
                // The directory itself (deleted, moved).
                if let Some(list) = subs.get(path) {
                    wake(list, None);
                }
            }
        }
        _ => {
            for list in subs.values() {
                wake(list, None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_polls_back_off_and_spread_with_many_jobs() {
        let mut quiet = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..6 {
            quiet = quiet_poll(quiet, Watched::Maybe, 10);
            seen.push(quiet.as_millis());
        }
        assert_eq!(seen, [250, 500, 1000, 2000, 2000, 2000]);
        assert_eq!(
            quiet_poll(Duration::from_secs(9), Watched::No, 10),
            FAST_POLL * 2
        );
        // 10,000 files: each polled every 20 s at most, 500 polls a second.
        assert_eq!(
            quiet_poll(Duration::from_secs(60), Watched::Maybe, 10_000),
            Duration::from_secs(20)
        );
        // A trusted watch: the poll is a safety net, 100 polls a second.
        assert_eq!(
            quiet_poll(Duration::from_secs(600), Watched::Yes, 10_000),
            Duration::from_secs(100)
        );
        assert_eq!(
            quiet_poll(Duration::from_secs(9), Watched::Yes, 10),
            QUIET_POLL
        );
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_local_directory_is_trusted_and_a_symlink_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log.jsonl"), "{}\n").unwrap();
        assert!(local_file_system(dir.path()));
        assert!(!is_symlink(dir.path(), Some("log.jsonl".as_ref())));
        std::os::unix::fs::symlink(dir.path().join("log.jsonl"), dir.path().join("link")).unwrap();
        assert!(is_symlink(dir.path(), Some("link".as_ref())));
    }
}
