//! Following what trackers write while their jobs run: a TensorBoard event
//! file appended in partial writes, a new event file appearing in a run
//! directory (a restart), a W&B run file growing block by block, printed
//! output with tqdm redraws cut anywhere, and MLflow's and Trackio's
//! databases gaining rows. Followed to the end, each gives the session the
//! same run as reading the finished files at once.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use lrtop::ingest::{FieldMap, Source, SourceEvent, discover, follow, load};
use lrtop::session::{MonitorSetup, Session};
use rusqlite::Connection;
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(30);

fn fixtures() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/reference-logs/formats");
    if shared.join("wandb.expected.json").is_file() {
        shared
    } else {
        root.join("tests/fixtures/formats")
    }
}

/// The parts of a summary that must not depend on how the file was read.
fn facts(summary: &Value) -> Value {
    serde_json::json!({
        "records": summary["records"],
        "first_step": summary["first_step"],
        "last_step": summary["last_step"],
        "last_lr": summary["last_lr"],
        "min_loss": summary["min_loss"],
        "min_loss_step": summary["min_loss_step"],
        "points": summary["points"],
        "resumed_at": summary["resumed_at"],
        "bad_lines": summary["bad_lines"],
        "format": summary["format"],
    })
}

/// The summary of `source` read at once.
fn cold(source: &Source) -> Value {
    let loaded = load(source, &FieldMap::new()).unwrap();
    let mut session = Session::new(MonitorSetup::default());
    let run = session.add_run(source.label.clone(), source.path.clone());
    session.apply(
        SourceEvent::Loaded {
            run,
            loaded: Box::new(loaded),
        }
        .into(),
    );
    facts(&session.runs[run].summary())
}

/// Follows `source` while `write` writes it, until the session's run has
/// `records` records and nothing more arrives; returns the run's facts.
fn follow_while(source: Source, records: u64, write: impl FnOnce() + Send + 'static) -> Value {
    let (tx, rx) = mpsc::channel();
    let follower = follow(0, source.clone(), FieldMap::new(), move |e| {
        tx.send(e).is_ok()
    });
    let mut session = Session::new(MonitorSetup::default());
    session.add_run(source.label.clone(), source.path.clone());
    let writer = thread::spawn(write);
    let deadline = Instant::now() + PATIENCE;
    let mut quiet_since = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => {
                session.apply(event.into());
                quiet_since = None;
            }
            Err(_) => {
                let done = writer.is_finished() && session.runs[0].records >= records;
                if done {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(700) {
                        break;
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "got {} of {records} records",
            session.runs[0].records
        );
    }
    writer.join().unwrap();
    follower.join();
    facts(&session.runs[0].summary())
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

/// Appends `bytes` to `path` in pieces of 1..`max` bytes, with pauses.
fn write_in_pieces(path: &Path, bytes: &[u8], max: u64, seed: u64) {
    let mut rng = Rng(seed);
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut at = 0;
    while at < bytes.len() {
        let n = (1 + rng.below(max) as usize).min(bytes.len() - at);
        file.write_all(&bytes[at..at + n]).unwrap();
        file.flush().unwrap();
        at += n;
        if rng.below(4) == 0 {
            thread::sleep(Duration::from_millis(1 + rng.below(3)));
        }
    }
}

#[test]
fn an_event_file_appended_in_partial_writes() {
    let dir = tempfile::tempdir().unwrap();
    let original = fixtures().join("tb_lightning/lightning_logs/version_0");
    let event = fs::read_dir(&original)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("tfevents"))
        .unwrap();
    let bytes = fs::read(&event).unwrap();
    let target = dir.path().join(event.file_name().unwrap());
    let expected = cold(&Source::file(&event));
    let writer_target = target.clone();
    let got = follow_while(
        Source::file(&target),
        expected["records"].as_u64().unwrap(),
        move || write_in_pieces(&writer_target, &bytes, 300, 7),
    );
    assert_eq!(got, expected);
}

#[test]
fn a_new_event_file_in_the_run_directory_is_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("tb_torch");
    fs::create_dir(&run_dir).unwrap();
    let mut files: Vec<PathBuf> = fs::read_dir(fixtures().join("tb_torch"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let expected =
        cold(&discover(&[fixtures().join("tb_torch").display().to_string()]).unwrap()[0]);
    // The first file exists when following starts; the second (the restart)
    // appears later and is written in pieces.
    fs::copy(&files[0], run_dir.join(files[0].file_name().unwrap())).unwrap();
    let source = discover(&[run_dir.display().to_string()])
        .unwrap()
        .remove(0);
    assert!(source.group);
    let second = fs::read(&files[1]).unwrap();
    let target = run_dir.join(files[1].file_name().unwrap());
    let got = follow_while(source, expected["records"].as_u64().unwrap(), move || {
        thread::sleep(Duration::from_millis(600));
        write_in_pieces(&target, &second, 4000, 3)
    });
    assert_eq!(got, expected);
    assert_eq!(got["resumed_at"], serde_json::json!([300]));
}

#[test]
fn a_wandb_file_growing_block_by_block() {
    let dir = tempfile::tempdir().unwrap();
    let run = fs::read_dir(fixtures().join("wandb"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.to_string_lossy().contains("p63wab0r"))
        .unwrap();
    let file = run.join("run-p63wab0r.wandb");
    let expected = cold(&Source::file(&file));
    let bytes = fs::read(&file).unwrap();
    let target = dir.path().join("run-p63wab0r.wandb");
    let writer_target = target.clone();
    let got = follow_while(
        Source::file(&target),
        expected["records"].as_u64().unwrap(),
        move || {
            // wandb-core flushes whole 32 KiB blocks and partial ones.
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&writer_target)
                .unwrap();
            for piece in bytes.chunks(32 * 1024 / 3) {
                file.write_all(piece).unwrap();
                file.flush().unwrap();
                thread::sleep(Duration::from_millis(20));
            }
        },
    );
    assert_eq!(got, expected);
}

#[test]
fn printed_output_with_tqdm_redraws_cut_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let log = fixtures().join("hf_stdout.log");
    let expected = cold(&Source::file(&log));
    let bytes = fs::read(&log).unwrap();
    let target = dir.path().join("train.log");
    let writer_target = target.clone();
    let got = follow_while(
        Source::file(&target),
        expected["records"].as_u64().unwrap(),
        move || write_in_pieces(&writer_target, &bytes, 60, 11),
    );
    assert_eq!(got, expected);
}

fn mlflow_schema(conn: &Connection) {
    conn.execute_batch(
        "CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY, name VARCHAR(250), start_time BIGINT);
         CREATE TABLE metrics (key VARCHAR(250), value FLOAT, timestamp BIGINT, run_uuid VARCHAR(32),
                               step BIGINT, is_nan BOOLEAN);
         CREATE TABLE params (key VARCHAR(250), value VARCHAR(8000), run_uuid VARCHAR(32));
         INSERT INTO runs VALUES ('abc', 'live-run', 1);
         INSERT INTO params VALUES ('total_steps', '200', 'abc');",
    )
    .unwrap();
}

#[test]
fn an_mlflow_database_gaining_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let conn = Connection::open(&db).unwrap();
    mlflow_schema(&conn);
    drop(conn);
    let sources = discover(&[db.display().to_string()]).unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].label, "mlflow.db/live-run");
    let writer_db = db.clone();
    let got = follow_while(sources[0].clone(), 400, move || {
        let conn = Connection::open(&writer_db).unwrap();
        for step in 0..200i64 {
            for (key, value) in [("loss", 2.0 / (step + 1) as f64), ("lr", 0.01)] {
                conn.execute(
                    "INSERT INTO metrics VALUES (?1, ?2, ?3, 'abc', ?4, 0)",
                    rusqlite::params![key, value, 1_000 + step, step],
                )
                .unwrap();
            }
            if step % 20 == 0 {
                thread::sleep(Duration::from_millis(30));
            }
        }
    });
    assert_eq!(got["records"], 400);
    assert_eq!(got["points"]["loss"], 200);
    assert_eq!(got["last_step"], 199);
    assert_eq!(got["resumed_at"], serde_json::json!([]));
}

#[test]
fn a_trackio_database_gaining_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("project.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, timestamp TEXT,
                               run_name TEXT, step INTEGER, metrics TEXT, log_id TEXT, space_id TEXT);
         CREATE TABLE configs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT, run_name TEXT,
                               config TEXT, created_at TEXT);
         INSERT INTO metrics (run_id, timestamp, run_name, step, metrics)
             VALUES ('r', '2026-12-01T10:00:00+00:00', 'live', 0, '{\"loss\": 2.5}');",
    )
    .unwrap();
    drop(conn);
    let sources = discover(&[db.display().to_string()]).unwrap();
    assert_eq!(sources.len(), 1, "{sources:?}");
    let writer_db = db.clone();
    let got = follow_while(sources[0].clone(), 100, move || {
        let conn = Connection::open(&writer_db).unwrap();
        for step in 1..100i64 {
            let metrics = format!(
                "{{\"loss\": {}, \"learning_rate\": \"NaN\"}}",
                2.5 / (step + 1) as f64
            );
            conn.execute(
                "INSERT INTO metrics (run_id, timestamp, run_name, step, metrics)
                 VALUES ('r', '2026-12-01T10:00:01+00:00', 'live', ?1, ?2)",
                rusqlite::params![step, metrics],
            )
            .unwrap();
            if step % 10 == 0 {
                thread::sleep(Duration::from_millis(30));
            }
        }
    });
    assert_eq!(got["records"], 100);
    assert_eq!(got["points"]["loss"], 100);
    assert_eq!(got["points"]["lr"], 99);
    assert_eq!(got["last_step"], 99);
}
