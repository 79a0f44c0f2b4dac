//! Following files while a writer thread writes them: every complete record
//! arrives exactly once, in order, through appends in pieces, truncation,
//! rotation, deletion, late creation and fast writers.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use lrtop::ingest::{FieldMap, FollowStatus, Follower, Format, Source, SourceEvent, follow};

/// Generous: the machine may be busy with other tests.
const PATIENCE: Duration = Duration::from_secs(20);
/// How long to keep listening for duplicates after everything arrived.
const QUIET: Duration = Duration::from_millis(400);

struct Collector {
    run: usize,
    events: Receiver<SourceEvent>,
    steps: Vec<u64>,
    statuses: Vec<FollowStatus>,
    formats: Vec<Format>,
    bad_total: u64,
    batches: usize,
}

impl Collector {
    fn start(run: usize, path: &Path) -> (Follower, Collector) {
        Self::start_source(run, Source::file(path))
    }

    fn start_source(run: usize, source: Source) -> (Follower, Collector) {
        let (tx, rx) = mpsc::channel();
        let follower = follow(run, source, FieldMap::new(), move |event| {
            tx.send(event).is_ok()
        });
        let collector = Collector {
            run,
            events: rx,
            steps: Vec::new(),
            statuses: Vec::new(),
            formats: Vec::new(),
            bad_total: 0,
            batches: 0,
        };
        (follower, collector)
    }

    fn take(&mut self, event: SourceEvent) {
        assert_eq!(event.run(), self.run, "event of another run");
        match event {
            SourceEvent::Records { records, .. } => {
                self.batches += 1;
                self.steps
                    .extend(records.iter().map(|r| r.step.expect("a step")));
            }
            SourceEvent::Status { status, .. } => self.statuses.push(status),
            SourceEvent::Format { format, .. } => self.formats.push(format),
            SourceEvent::BadLines { total, .. } => self.bad_total = total,
            other => panic!("a follower does not send {other:?}"),
        }
    }

    /// Takes events until `done` holds (true) or patience runs out (false).
    fn until(&mut self, mut done: impl FnMut(&Collector) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => self.take(event),
                Err(_) => return false,
            }
        }
        true
    }

    fn until_records(&mut self, n: usize) {
        let ok = self.until(|c| c.steps.len() >= n);
        assert!(ok, "got {} of {n} records", self.steps.len());
    }

    fn until_status(&mut self, status: FollowStatus) {
        let ok = self.until(|c| c.statuses.contains(&status));
        assert!(ok, "no {status:?}; statuses: {:?}", self.statuses);
    }

    /// Listens a little longer: nothing more may arrive.
    fn settle(&mut self) {
        let end = Instant::now() + QUIET;
        while let Ok(event) = self
            .events
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            self.take(event);
        }
    }

    fn assert_exactly(&mut self, expected: impl IntoIterator<Item = u64>) {
        self.settle();
        let expected: Vec<u64> = expected.into_iter().collect();
        assert_eq!(self.steps.len(), expected.len(), "record count");
        assert_eq!(self.steps, expected);
    }
}

fn line(step: u64) -> String {
    format!(
        "{{\"step\": {step}, \"loss\": {}, \"learning_rate\": 0.0003, \"epoch\": {}}}\n",
        1.0 / (step + 1) as f64,
        step as f64 / 100.0
    )
}

fn lines(steps: std::ops::Range<u64>) -> String {
    steps.map(line).collect()
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn temp_log(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

/// xorshift64*, for reproducible piece sizes.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[test]
fn appends_in_random_partial_writes_arrive_exactly_once() {
    let (_dir, path) = temp_log("run.jsonl");
    append(&path, &lines(0..100));
    let (follower, mut c) = Collector::start(0, &path);
    c.until_records(100);
    let writer_path = path.clone();
    let writer = thread::spawn(move || {
        let text = lines(100..3000);
        let bytes = text.as_bytes();
        let mut rng = Rng(42);
        let mut file = OpenOptions::new().append(true).open(&writer_path).unwrap();
        let mut at = 0;
        while at < bytes.len() {
            let n = (1 + rng.below(400) as usize).min(bytes.len() - at);
            file.write_all(&bytes[at..at + n]).unwrap();
            file.flush().unwrap();
            at += n;
            if rng.below(10) == 0 {
                thread::sleep(Duration::from_millis(rng.below(5)));
            }
        }
    });
    writer.join().unwrap();
    c.until_records(3000);
    c.assert_exactly(0..3000);
    assert_eq!(c.bad_total, 0);
    assert_eq!(c.formats, vec![Format::JSONL]);
    assert_eq!(
        &c.statuses[..2],
        &[FollowStatus::Reading, FollowStatus::Following]
    );
    follower.join();
}

#[test]
fn a_partial_line_waits_for_its_newline() {
    let (_dir, path) = temp_log("run.jsonl");
    let first = line(0);
    let (head, rest) = first.split_at(10);
    append(&path, head);
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_status(FollowStatus::Following);
    c.settle();
    assert!(c.steps.is_empty());
    append(&path, rest);
    c.until_records(1);
    c.assert_exactly([0]);
}

#[test]
fn new_records_arrive_quickly() {
    let (_dir, path) = temp_log("run.jsonl");
    append(&path, &line(0));
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_records(1);
    let mut latencies = Vec::new();
    for step in 1..=20 {
        let written = Instant::now();
        append(&path, &line(step));
        c.until_records(step as usize + 1);
        latencies.push(written.elapsed());
        thread::sleep(Duration::from_millis(20));
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "arrival latency: median {median:?}, max {:?}",
        latencies.last()
    );
    assert!(median < Duration::from_millis(100), "median {median:?}");
    c.assert_exactly(0..=20);
}

#[test]
fn truncation_starts_over() {
    let (_dir, path) = temp_log("run.jsonl");
    append(&path, &lines(0..200));
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_records(200);
    // Shorter than before.
    File::create(&path)
        .unwrap()
        .write_all(lines(1000..1010).as_bytes())
        .unwrap();
    c.until_status(FollowStatus::Truncated);
    c.until_records(210);
    c.assert_exactly((0..200).chain(1000..1010));
}

#[test]
fn truncation_that_looks_like_an_append_is_noticed() {
    let (_dir, path) = temp_log("run.jsonl");
    append(&path, &lines(0..50));
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_records(50);
    c.settle();
    // Rewritten in place with more bytes than before, in one go: the size
    // only grew, the inode is the same.
    let replacement = lines(5000..5300);
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(replacement.as_bytes()).unwrap();
    drop(f);
    c.until_records(350);
    c.assert_exactly((0..50).chain(5000..5300));
    assert!(c.statuses.contains(&FollowStatus::Truncated));
}

#[test]
fn rotation_by_rename_and_create() {
    let (dir, path) = temp_log("run.jsonl");
    append(&path, &lines(0..100));
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_records(100);
    // Last lines of the old file, then rotate at once: the follower must
    // still read them from the renamed file.
    append(&path, &lines(100..150));
    fs::rename(&path, dir.path().join("run.jsonl.1")).unwrap();
    append(&path, &lines(150..250));
    // Usually seen as a rotation; when the follower looks between the
    // rename and the create it sees a deletion and a new file instead.
    // Either way every record must arrive exactly once.
    let ok = c.until(|c| {
        c.statuses.contains(&FollowStatus::Rotated) || c.statuses.contains(&FollowStatus::Deleted)
    });
    assert!(ok, "no rotation seen; statuses: {:?}", c.statuses);
    c.until_records(250);
    c.assert_exactly(0..250);
    // And it keeps following the new file.
    append(&path, &lines(250..260));
    c.until_records(260);
    c.assert_exactly(0..260);
}

#[test]
fn deletion_then_recreation() {
    let (_dir, path) = temp_log("run.jsonl");
    append(&path, &lines(0..50));
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_records(50);
    fs::remove_file(&path).unwrap();
    c.until_status(FollowStatus::Deleted);
    append(&path, &lines(50..120));
    c.until_records(120);
    c.assert_exactly(0..120);
    let after_delete = c
        .statuses
        .iter()
        .skip_while(|s| **s != FollowStatus::Deleted)
        .copied()
        .collect::<Vec<_>>();
    assert_eq!(
        after_delete,
        [
            FollowStatus::Deleted,
            FollowStatus::Reading,
            FollowStatus::Following
        ]
    );
}

#[test]
fn a_file_that_appears_late() {
    let (_dir, path) = temp_log("later.jsonl");
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_status(FollowStatus::Waiting);
    thread::sleep(Duration::from_millis(300));
    append(&path, &lines(0..20));
    c.until_records(20);
    c.assert_exactly(0..20);
    assert_eq!(
        c.statuses,
        [
            FollowStatus::Waiting,
            FollowStatus::Reading,
            FollowStatus::Following
        ]
    );
}

#[test]
fn a_file_in_a_directory_that_appears_late() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not/yet/run.jsonl");
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_status(FollowStatus::Waiting);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    append(&path, &lines(0..5));
    c.until_records(5);
    append(&path, &lines(5..10));
    c.until_records(10);
    c.assert_exactly(0..10);
}

#[test]
fn a_fast_writer() {
    let (_dir, path) = temp_log("fast.jsonl");
    File::create(&path).unwrap();
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_status(FollowStatus::Following);
    let total = 100_000u64;
    let writer_path = path.clone();
    let started = Instant::now();
    let writer = thread::spawn(move || {
        let mut file = OpenOptions::new().append(true).open(&writer_path).unwrap();
        // 100 batches of 1000 records over about a second.
        for batch in 0..100 {
            let text = lines(batch * 1000..(batch + 1) * 1000);
            file.write_all(text.as_bytes()).unwrap();
            thread::sleep(Duration::from_millis(10));
        }
    });
    writer.join().unwrap();
    let written = started.elapsed();
    c.until_records(total as usize);
    let arrived = started.elapsed();
    eprintln!(
        "fast writer: written in {written:?}, all arrived after {arrived:?} in {} batches",
        c.batches
    );
    c.assert_exactly(0..total);
}

#[test]
fn several_files_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = (0..4)
        .map(|i| dir.path().join(format!("run{i}.jsonl")))
        .collect();
    let mut followers = Vec::new();
    let mut collectors = Vec::new();
    for (run, path) in paths.iter().enumerate() {
        let (f, c) = Collector::start(run, path);
        followers.push(f);
        collectors.push(c);
    }
    let writers: Vec<_> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let path = path.clone();
            thread::spawn(move || {
                let base = i as u64 * 10_000;
                for chunk in 0..20 {
                    append(&path, &lines(base + chunk * 50..base + (chunk + 1) * 50));
                    thread::sleep(Duration::from_millis(3));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for (i, c) in collectors.iter_mut().enumerate() {
        c.until_records(1000);
        let base = i as u64 * 10_000;
        c.assert_exactly(base..base + 1000);
    }
}

#[test]
fn bad_lines_are_reported_as_a_running_total() {
    let (_dir, path) = temp_log("run.jsonl");
    append(&path, &format!("{}oops\n{}", line(0), line(1)));
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_records(2);
    assert!(c.until(|c| c.bad_total == 1));
    append(&path, &format!("\u{1}\u{2}\n{}[]\n", line(2)));
    c.until_records(3);
    assert!(c.until(|c| c.bad_total == 3));
    c.assert_exactly(0..3);
}

#[test]
fn csv_rows_and_a_lightning_style_rewrite_with_a_grown_header() {
    let (_dir, path) = temp_log("metrics.csv");
    let row = |step: u64| format!("{step},{},\r\n", 1.0 / (step + 1) as f64);
    let mut text = String::from("step,train_loss_step,lr-AdamW\r\n");
    for s in 0..30 {
        text.push_str(&row(s));
    }
    append(&path, &text);
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_records(30);
    assert_eq!(c.formats, vec![Format::CSV]);
    for s in 30..40 {
        append(&path, &row(s));
    }
    c.until_records(40);
    // A new metric: the whole file is rewritten with a sorted, longer
    // header, old rows first (as Lightning's CSVLogger does), then new rows.
    let mut text = String::from("lr-AdamW,step,train_loss_step,val_loss\r\n");
    for s in 0..40 {
        text.push_str(&format!(",{s},{},\r\n", 1.0 / (s + 1) as f64));
    }
    for s in 40..45 {
        text.push_str(&format!(",{s},,{}\r\n", s as f64 * 0.1));
    }
    File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    c.until_records(45);
    append(&path, ",45,0.5,\r\n");
    c.until_records(46);
    c.assert_exactly(0..46);
    assert!(!c.statuses.contains(&FollowStatus::Truncated));
}

fn trainer_state(steps: std::ops::Range<u64>) -> String {
    let entries: Vec<String> = steps
        .map(|s| {
            format!("{{\"epoch\": 0.1, \"learning_rate\": 0.001, \"loss\": NaN, \"step\": {s}}}")
        })
        .collect();
    format!(
        "{{\n  \"global_step\": 1,\n  \"log_history\": [\n    {}\n  ]\n}}\n",
        entries.join(",\n    ")
    )
}

#[test]
fn trainer_state_sends_only_new_entries() {
    let (_dir, path) = temp_log("trainer_state.json");
    fs::write(&path, trainer_state(0..10)).unwrap();
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_records(10);
    assert_eq!(c.formats, vec![Format::HF_TRAINER_STATE]);
    fs::write(&path, trainer_state(0..25)).unwrap();
    c.until_records(25);
    c.assert_exactly(0..25);
}

#[test]
fn trainer_state_saved_through_a_temporary_file() {
    let (dir, path) = temp_log("trainer_state.json");
    fs::write(&path, trainer_state(0..10)).unwrap();
    let (_follower, mut c) = Collector::start(0, &path);
    c.until_records(10);
    for n in [15, 30] {
        let tmp = dir.path().join("tmp.json");
        fs::write(&tmp, trainer_state(0..n)).unwrap();
        fs::rename(&tmp, &path).unwrap();
        c.until_records(n as usize);
    }
    // Deleted and written again with the same history and more.
    fs::remove_file(&path).unwrap();
    c.until_status(FollowStatus::Deleted);
    fs::write(&path, trainer_state(0..35)).unwrap();
    c.until_records(35);
    c.assert_exactly(0..35);
    assert!(!c.statuses.contains(&FollowStatus::Truncated));
}

#[test]
fn trainer_state_moves_on_to_newer_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let state = |n: u64| {
        dir.path()
            .join(format!("checkpoint-{n}/trainer_state.json"))
    };
    let write_state = |n: u64| {
        fs::create_dir_all(state(n).parent().unwrap()).unwrap();
        fs::write(state(n), trainer_state(0..n)).unwrap();
    };
    write_state(10);
    let (_follower, mut c) = Collector::start(0, &state(10));
    c.until_records(10);
    write_state(20);
    c.until_records(20);
    // HF's save_total_limit removes old checkpoints.
    fs::remove_dir_all(state(10).parent().unwrap()).unwrap();
    write_state(30);
    c.until_records(30);
    c.assert_exactly(0..30);
    assert!(!c.statuses.contains(&FollowStatus::Deleted));
}

#[test]
fn a_sink_that_says_stop_ends_the_thread() {
    let (_dir, path) = temp_log("run.jsonl");
    append(&path, &lines(0..10));
    let follower = follow(0, Source::file(&path), FieldMap::new(), |_| false);
    let deadline = Instant::now() + PATIENCE;
    while !follower.is_finished() {
        assert!(Instant::now() < deadline, "still running");
        thread::sleep(Duration::from_millis(10));
    }
    // And `stop` ends a follower that waits for a file.
    let (_dir2, missing) = temp_log("never.jsonl");
    let (follower, mut c) = Collector::start(1, &missing);
    c.until_status(FollowStatus::Waiting);
    let started = Instant::now();
    follower.join();
    assert!(started.elapsed() < Duration::from_secs(2));
}
