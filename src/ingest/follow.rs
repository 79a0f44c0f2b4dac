//! `follow`: a thread per source that tails it and sends `SourceEvent`s.
//! Files are followed by name: woken by a notify watch on their directory,
//! and polled every `POLL_INTERVAL` as a safety net (and as the only way
//! when no watch can be set up). Stdin is read to its end.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::metrics::RunId;

use super::Source;
use super::batch::Batch;
use super::event::{FollowStatus, SourceEvent};
use super::fields::FieldMap;
use super::formats::{Format, Reader, SNIFF_BYTES, detect};
use super::out::Out;
use super::special::{self, PathKind};
use super::tail::{ReaderOf, Tail};
use super::watch::{DirWatch, Wake};

/// How often a followed file is checked without any notification.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A running follower. Dropping it stops the thread (as `stop` does).
#[derive(Debug)]
pub struct Follower {
    stop: Arc<AtomicBool>,
    wake: Sender<Wake>,
    handle: Option<JoinHandle<()>>,
}

impl Follower {
    /// Asks the thread to stop; it does within a moment (a follower of stdin
    /// only once its blocking read returns).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.wake.send(Wake::Stop);
    }

    /// A flag that stops the thread when set (at its next wake-up, within
    /// the 250 ms poll interval; `stop` is immediate).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Stops the thread and waits for it.
    pub fn join(mut self) {
        self.stop();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Follows `source` on a thread of its own, sending events to `sink`; the
/// thread ends when `sink` returns false, on `Follower::stop` or drop, and
/// for stdin at its end.
pub fn follow(
    run: RunId,
    source: Source,
    map: FieldMap,
    sink: impl FnMut(SourceEvent) -> bool + Send + 'static,
) -> Follower {
    let stop = Arc::new(AtomicBool::new(false));
    let (wake, wakes) = mpsc::channel();
    let (thread_stop, thread_wake) = (stop.clone(), wake.clone());
    let mut sink = sink;
    let handle = thread::Builder::new()
        .name(format!("lrtop-follow-{run}"))
        .spawn(move || match source.path {
            Some(dir) if source.group => follow_group(
                run,
                dir,
                source.format,
                map,
                &mut sink,
                &thread_stop,
                (thread_wake, wakes),
            ),
            Some(path) if special::kind(&path) == PathKind::Device => {
                sink(SourceEvent::Failed {
                    run,
                    error: format!("{}: {}", path.display(), special::DEVICE),
                });
            }
            Some(path) if special::kind(&path) == PathKind::Fifo => {
                // A FIFO is a stream: its writer's records until it closes.
                Out::new(run, &mut sink).status(
                    FollowStatus::Waiting,
                    Some("a FIFO with no writer yet".into()),
                );
                match std::fs::File::open(&path) {
                    Ok(fifo) => {
                        follow_reader(run, fifo, source.format, map, &mut sink, &thread_stop)
                    }
                    Err(e) => {
                        sink(SourceEvent::Failed {
                            run,
                            error: format!("{} is not readable: {e}", path.display()),
                        });
                    }
                }
            }
            Some(path) => follow_file(
                run,
                path,
                source.part,
                source.format,
                map,
                &mut sink,
                &thread_stop,
                (thread_wake, wakes),
            ),
            None => follow_reader(
                run,
                io::stdin().lock(),
                source.format,
                map,
                &mut sink,
                &thread_stop,
            ),
        })
        .ok();
    Follower { stop, wake, handle }
}

#[allow(clippy::too_many_arguments)]
fn follow_file(
    run: RunId,
    path: PathBuf,
    part: Option<String>,
    format: Option<Format>,
    map: FieldMap,
    sink: &mut dyn FnMut(SourceEvent) -> bool,
    stop: &AtomicBool,
    (wake, wakes): (Sender<Wake>, Receiver<Wake>),
) {
    let reader_of = part.map_or(ReaderOf::File, ReaderOf::Part);
    let mut tail = Tail::with_reader(path, format, map, reader_of);
    let mut watch = DirWatch::new(wake);
    loop {
        // Watch first, so a change right after the check is not missed.
        watch.ensure(tail.path());
        let mut out = Out::new(run, sink);
        tail.check(&mut out);
        if !out.alive() || stop.load(Ordering::Relaxed) || !wait(&wakes, stop) {
            return;
        }
    }
}

/// Follows every file of `format` in `dir` as one run: files in name order,
/// each from its start, new ones as they appear.
fn follow_group(
    run: RunId,
    dir: PathBuf,
    format: Option<Format>,
    map: FieldMap,
    sink: &mut dyn FnMut(SourceEvent) -> bool,
    stop: &AtomicBool,
    (wake, wakes): (Sender<Wake>, Receiver<Wake>),
) {
    let Some(format) = format else {
        return;
    };
    let mut tails: Vec<Tail> = Vec::new();
    let mut watch = DirWatch::new(wake);
    let mut waiting_sent = false;
    loop {
        watch.ensure_dir(&dir);
        for member in super::formats::group_members(&dir, format) {
            if !tails.iter().any(|t| t.path() == member) {
                tails.push(Tail::with_reader(
                    member,
                    Some(format),
                    map.clone(),
                    ReaderOf::Member(dir.clone()),
                ));
            }
        }
        tails.sort_by(|a, b| a.path().cmp(b.path()));
        let mut out = Out::new(run, sink);
        if tails.is_empty() && !waiting_sent {
            out.status(FollowStatus::Waiting, None);
            waiting_sent = true;
        }
        for tail in &mut tails {
            tail.check(&mut out);
            if !out.alive() {
                return;
            }
        }
        // A member deleted after it was read is done with.
        tails.retain(|t| t.path().exists());
        if stop.load(Ordering::Relaxed) || !wait(&wakes, stop) {
            return;
        }
    }
}

/// Waits for a change or the poll interval; false when asked to stop.
fn wait(wakes: &Receiver<Wake>, stop: &AtomicBool) -> bool {
    match wakes.recv_timeout(POLL_INTERVAL) {
        Ok(Wake::Stop) => return false,
        // The watch holds a sender, so the channel never disconnects here.
        Ok(Wake::Changed) | Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
    }
    // Many notifications, one read.
    loop {
        match wakes.try_recv() {
            Ok(Wake::Stop) => return false,
            Ok(Wake::Changed) => {}
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
    !stop.load(Ordering::Relaxed)
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
