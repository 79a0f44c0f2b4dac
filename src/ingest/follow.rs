//! `follow`: tails a source and sends `SourceEvent`s. Files (and run
//! directories) are checked by the shared pool of follower threads (see
//! `pool`): woken by a notify watch on their directory and polled as a
//! safety net. Stdin and FIFOs, whose reads block, get a thread each.

use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use crate::metrics::RunId;

use super::Source;
use super::batch::Batch;
use super::event::{FollowStatus, SourceEvent};
use super::fields::FieldMap;
use super::formats::{Format, Reader, SNIFF_BYTES, detect};
use super::out::Out;
use super::pool::{self, FAST_POLL, Job};
use super::special::{self, PathKind};
use super::tail::{ReaderOf, Tail};

type Sink = Box<dyn FnMut(SourceEvent) -> bool + Send>;

/// A running follower. Dropping it stops it (as `stop` does).
pub struct Follower {
    stop: Arc<AtomicBool>,
    runner: Runner,
}

enum Runner {
    Pooled(pool::Handle),
    Thread(Option<JoinHandle<()>>),
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl Follower {
    /// Asks the follower to stop; it does within a moment (a follower of
    /// stdin only once its blocking read returns).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Runner::Pooled(handle) = &self.runner {
            handle.stop();
        }
    }

    pub fn is_finished(&self) -> bool {
        match &self.runner {
            Runner::Pooled(handle) => handle.is_finished(),
            Runner::Thread(handle) => handle.as_ref().is_none_or(|h| h.is_finished()),
        }
    }

    /// Stops the follower and waits for it.
    pub fn join(mut self) {
        self.stop();
        match &mut self.runner {
            Runner::Pooled(handle) => handle.wait(),
            Runner::Thread(handle) => {
                if let Some(handle) = handle.take() {
                    let _ = handle.join();
                }
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Follows `source`, sending events to `sink`; it ends when `sink` returns
/// false, on `Follower::stop` or drop, and for stdin at its end.
pub fn follow(
    run: RunId,
    source: Source,
    map: FieldMap,
    sink: impl FnMut(SourceEvent) -> bool + Send + 'static,
) -> Follower {
    let stop = Arc::new(AtomicBool::new(false));
    let sink: Sink = Box::new(sink);
    let job: Box<dyn Job> = match source.path {
        Some(dir) if source.group => match source.format {
            Some(format) => Box::new(GroupJob::new(run, dir, format, map, sink)),
            None => return thread_follower(stop, |_| {}),
        },
        Some(path) if special::kind(&path) == PathKind::Device => {
            let mut sink = sink;
            return thread_follower(stop, move |_| {
                sink(SourceEvent::Failed {
                    run,
                    error: format!("{}: {}", path.display(), special::DEVICE),
                });
            });
        }
        Some(path) if special::kind(&path) == PathKind::Fifo => {
            return thread_follower(stop, move |stop| {
                follow_fifo(run, &path, source.format, map, sink, stop)
            });
        }
        Some(path) => Box::new(FileJob::new(
            run,
            path,
            source.part,
            source.format,
            map,
            sink,
        )),
        None => {
            let mut sink = sink;
            return thread_follower(stop, move |stop| {
                follow_reader(run, io::stdin().lock(), source.format, map, &mut sink, stop);
            });
        }
    };
    match pool::start(job, stop.clone()) {
        Ok(handle) => Follower {
            stop,
            runner: Runner::Pooled(handle),
        },
        // No pool thread could be started: a thread of its own, polling.
        Err(mut job) => thread_follower(stop, move |stop| {
            while !stop.load(Ordering::Relaxed) && job.check() {
                thread::sleep(FAST_POLL);
            }
        }),
    }
}

fn thread_follower(
    stop: Arc<AtomicBool>,
    work: impl FnOnce(&AtomicBool) + Send + 'static,
) -> Follower {
    let flag = stop.clone();
    let handle = thread::Builder::new()
        .name("lrtop-follow".into())
        .spawn(move || work(&flag))
        .ok();
    Follower {
        stop,
        runner: Runner::Thread(handle),
    }
}

/// A FIFO is a stream: its writer's records until it closes.
fn follow_fifo(
    run: RunId,
    path: &Path,
    format: Option<Format>,
    map: FieldMap,
    mut sink: Sink,
    stop: &AtomicBool,
) {
    Out::new(run, &mut sink).status(
        FollowStatus::Waiting,
        Some("a FIFO with no writer yet".into()),
    );
    match std::fs::File::open(path) {
        Ok(fifo) => follow_reader(run, fifo, format, map, &mut sink, stop),
        Err(e) => {
            sink(SourceEvent::Failed {
                run,
                error: format!("{} is not readable: {e}", path.display()),
            });
        }
    }
}

/// Runs `check` with an `Out` on `sink`, noting whether it sent anything;
/// false once the sink stopped listening.
fn checked(run: RunId, sink: &mut Sink, sent: &mut bool, check: impl FnOnce(&mut Out)) -> bool {
    let mut counting = |event| {
        *sent = true;
        sink(event)
    };
    let mut out = Out::new(run, &mut counting);
    check(&mut out);
    out.alive()
}

/// Where a change to `file` shows: its directory, under its name.
fn file_target(file: &Path) -> Option<(PathBuf, Option<OsString>)> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Some((dir, Some(file.file_name()?.to_os_string())))
}

/// One followed file.
struct FileJob {
    run: RunId,
    tail: Tail,
    sink: Sink,
    sent: bool,
}

impl FileJob {
    fn new(
        run: RunId,
        path: PathBuf,
        part: Option<String>,
        format: Option<Format>,
        map: FieldMap,
        sink: Sink,
    ) -> Self {
        let reader_of = part.map_or(ReaderOf::File, ReaderOf::Part);
        FileJob {
            run,
            tail: Tail::with_reader(path, format, map, reader_of),
            sink,
            sent: false,
        }
    }
}

impl Job for FileJob {
    fn check(&mut self) -> bool {
        let tail = &mut self.tail;
        checked(self.run, &mut self.sink, &mut self.sent, |out| {
            tail.check(out)
        })
    }

    fn watch_target(&self) -> Option<(PathBuf, Option<OsString>)> {
        file_target(self.tail.path())
    }

    fn busy(&self) -> bool {
        self.tail.busy()
    }

    fn progressed(&mut self) -> bool {
        std::mem::take(&mut self.sent)
    }
}

/// Every file of `format` in `dir` as one run: files in name order, each
/// from its start, new ones as they appear.
struct GroupJob {
    run: RunId,
    dir: PathBuf,
    format: Format,
    map: FieldMap,
    tails: Vec<Tail>,
    waiting_sent: bool,
    sink: Sink,
    sent: bool,
}

impl GroupJob {
    fn new(run: RunId, dir: PathBuf, format: Format, map: FieldMap, sink: Sink) -> Self {
        GroupJob {
            run,
            dir,
            format,
            map,
            tails: Vec::new(),
            waiting_sent: false,
            sink,
            sent: false,
        }
    }
}

impl Job for GroupJob {
    fn check(&mut self) -> bool {
        for member in super::formats::group_members(&self.dir, self.format) {
            if !self.tails.iter().any(|t| t.path() == member) {
                self.tails.push(Tail::with_reader(
                    member,
                    Some(self.format),
                    self.map.clone(),
                    ReaderOf::Member(self.dir.clone()),
                ));
            }
        }
        self.tails.sort_by(|a, b| a.path().cmp(b.path()));
        let (tails, waiting_sent) = (&mut self.tails, &mut self.waiting_sent);
        let alive = checked(self.run, &mut self.sink, &mut self.sent, |out| {
            if tails.is_empty() && !*waiting_sent {
                out.status(FollowStatus::Waiting, None);
                *waiting_sent = true;
            }
            for tail in tails.iter_mut() {
                tail.check(out);
                if !out.alive() {
                    return;
                }
            }
        });
        // A member deleted after it was read is done with.
        self.tails.retain(|t| t.path().exists());
        alive
    }

    fn watch_target(&self) -> Option<(PathBuf, Option<OsString>)> {
        Some((self.dir.clone(), None))
    }

    fn busy(&self) -> bool {
        self.tails.iter().any(Tail::busy)
    }

    fn progressed(&mut self) -> bool {
        std::mem::take(&mut self.sent)
    }
}

/// Follows a stream (stdin) to its end: its format sniffed from the first
/// bytes; a whole document (trainer_state) is parsed once the stream ends.
pub(crate) fn follow_reader(
    run: RunId,
    mut input: impl Read,
    format: Option<Format>,
    map: FieldMap,
    sink: &mut dyn FnMut(SourceEvent) -> bool,
    stop: &AtomicBool,
) {
    let mut out = Out::new(run, sink);
    out.status(FollowStatus::Following, None);
    let mut format = format;
    let mut reader: Option<Reader> = None;
    let mut head: Vec<u8> = Vec::new();
    let mut batch = Batch::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut ended = false;
    while out.alive() && !stop.load(Ordering::Relaxed) {
        let n = match input.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                out.status(FollowStatus::Closed, Some(format!("reading stdin: {e}")));
                return;
            }
        };
        ended = n == 0;
        let data = &buf[..n];
        match &mut reader {
            Some(Reader::Stream(p)) => {
                p.feed(data, &mut batch);
                batch.dialect = p.dialect();
            }
            // A whole document waits for the end of the stream.
            Some(Reader::Whole(_)) => head.extend_from_slice(data),
            Some(Reader::Query(_)) => {
                out.status(
                    FollowStatus::Closed,
                    Some("a database cannot be read from a stream: give its path".into()),
                );
                return;
            }
            None => {
                head.extend_from_slice(data);
                let enough = ended || head.len() >= SNIFF_BYTES;
                format = format.or_else(|| detect(None, &head, enough));
                if let Some(f) = format {
                    out.format(f);
                    let mut r = f.spec().reader(&map);
                    if let Reader::Stream(p) = &mut r {
                        p.feed(&std::mem::take(&mut head), &mut batch);
                    }
                    reader = Some(r);
                }
            }
        }
        out.flush(&mut batch);
        if ended {
            break;
        }
    }
    if !ended {
        return;
    }
    match &mut reader {
        Some(Reader::Stream(p)) => p.finish(&mut batch),
        Some(Reader::Whole(p)) => {
            if let Err(message) = p.parse(&head, &mut batch) {
                let message = match format {
                    Some(f) => f.spec().invalid(Path::new("<stdin>"), message).to_string(),
                    None => message,
                };
                batch.tally.bad(1, message);
            }
        }
        Some(Reader::Query(_)) | None => {}
    }
    out.flush(&mut batch);
    out.status(FollowStatus::Closed, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of(input: &[u8]) -> Vec<SourceEvent> {
        let mut events = Vec::new();
        let stop = AtomicBool::new(false);
        let mut sink = |e| {
            events.push(e);
            true
        };
        follow_reader(7, input, None, FieldMap::new(), &mut sink, &stop);
        events
    }

    fn steps(events: &[SourceEvent]) -> Vec<u64> {
        events
            .iter()
            .flat_map(|e| match e {
                SourceEvent::Records { records, .. } => {
                    records.iter().filter_map(|r| r.step).collect()
                }
                _ => Vec::new(),
            })
            .collect()
    }

    #[test]
    fn stdin_jsonl_to_its_end() {
        let events =
            events_of(b"{\"step\": 1, \"loss\": 2}\nbad\n{\"step\": 2, \"loss\": 1}\n{\"step\": 3");
        assert_eq!(steps(&events), [1, 2]);
        assert_eq!(
            events[1],
            SourceEvent::Format {
                run: 7,
                format: Format::JSONL
            }
        );
        let bad = events.iter().rev().find_map(|e| match e {
            SourceEvent::BadLines { total, .. } => Some(*total),
            _ => None,
        });
        assert_eq!(bad, Some(2));
        assert!(matches!(
            events.last(),
            Some(SourceEvent::Status {
                status: FollowStatus::Closed,
                ..
            })
        ));
    }

    #[test]
    fn stdin_csv_is_sniffed() {
        let events = events_of(b"step,loss\n1,0.5\n2,0.25\n");
        assert_eq!(steps(&events), [1, 2]);
        assert!(events.contains(&SourceEvent::Format {
            run: 7,
            format: Format::CSV
        }));
    }

    #[test]
    fn stdin_trainer_state_is_parsed_at_its_end() {
        let events = events_of(b"{\n \"log_history\": [{\"step\": 4, \"loss\": 1}]\n}\n");
        assert_eq!(steps(&events), [4]);
    }

    #[test]
    fn empty_stdin_just_closes() {
        let events = events_of(b"");
        assert_eq!(events.len(), 2);
    }
}
