//! Exactly once, whatever way a real tool rewrites a followed log: rename
//! replacement (rsync, `cp tmp && mv tmp log`, atomic saves), an in-place
//! copy over it, truncation back to a checkpoint, logrotate `create` with a
//! writer that keeps its descriptor. Each scenario runs under
//! `lrtop attach --headless --summary`, ended by SIGTERM; the oracle counts
//! what the summary holds: every step once, one run, no alert.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

fn lines(from: u64, to: u64, lr: f64) -> String {
    let mut text = String::new();
    for step in from..=to {
        let loss = 2.0 / (step as f64).powf(0.3);
        writeln!(text, r#"{{"step": {step}, "loss": {loss:.6}, "lr": {lr}}}"#).unwrap();
    }
    text
}

struct Attached {
    child: Child,
    out: Receiver<String>,
}

impl Attached {
    fn start(path: &Path) -> Attached {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("lrtop"))
            .args(["attach", "--headless", "--summary", "--interval", "0.2"])
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, out) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Attached { child, out }
    }

    /// Waits for a status line that says `what`.
    fn wait_for(&self, what: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        while let Ok(line) = self
            .out
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            if line.contains(what) {
                return;
            }
        }
        panic!("no status line with {what:?}");
    }

    /// SIGTERM, then the summaries it prints (and every alert line).
    fn stop(mut self) -> (Vec<Value>, Vec<String>) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        let (mut summaries, mut alerts) = (Vec::new(), Vec::new());
        while let Ok(line) = self.out.recv_timeout(Duration::from_secs(5)) {
            if !line.starts_with('{') {
                continue;
            }
            let value: Value = serde_json::from_str(&line).unwrap();
            // Headless alert lines are {"run", "alert"}; summaries have "alerts".
            if value.get("alert").is_some() {
                alerts.push(line);
            } else {
                summaries.push(value);
            }
        }
        (summaries, alerts)
    }
}

/// Runs `rewrite` on a followed log of steps 1..=500 and checks the run
/// ends with exactly the steps `expect` (first, last, count).
fn scenario(rewrite: impl FnOnce(&Path), expect: (u64, u64, u64)) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    fs::write(&log, lines(1, 500, 0.001)).unwrap();
    let attached = Attached::start(&log);
    attached.wait_for("· 500 records");
    rewrite(&log);
    let (first, last, count) = expect;
    attached.wait_for(&format!("step {last} "));
    // One more status line: nothing further arrives.
    thread::sleep(Duration::from_millis(600));
    let (summaries, alerts) = attached.stop();
    assert_eq!(summaries.len(), 1, "one run: {summaries:?}");
    let s = &summaries[0];
    assert_eq!(
        (&s["first_step"], &s["last_step"], &s["records"]),
        (&Value::from(first), &Value::from(last), &Value::from(count)),
        "{s}"
    );
    assert_eq!(s["points"]["loss"], count, "{s}");
    assert!(alerts.is_empty(), "{alerts:?}");
    assert!(s["alerts"].as_array().unwrap().is_empty(), "{s}");
}

fn replace_by_rename(log: &Path, text: &str) {
    let tmp: PathBuf = log.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, log).unwrap();
}

#[test]
fn a_rename_replacement_that_extends_the_log_continues_after_what_was_read() {
    scenario(
        |log| replace_by_rename(log, &(lines(1, 500, 0.001) + &lines(501, 800, 0.001))),
        (1, 800, 800),
    );
}

#[test]
fn repeated_identical_replacements_add_nothing() {
    scenario(
        |log| {
            for _ in 0..3 {
                replace_by_rename(log, &lines(1, 500, 0.001));
                thread::sleep(Duration::from_millis(400));
            }
            let mut f = OpenOptions::new().append(true).open(log).unwrap();
            f.write_all(lines(501, 510, 0.001).as_bytes()).unwrap();
        },
        (1, 510, 510),
    );
}

#[test]
fn a_replacement_that_differs_replaces_the_run_without_alerts() {
    scenario(
        |log| replace_by_rename(log, &lines(1, 300, 0.002)),
        (1, 300, 300),
    );
}

#[test]
fn a_copy_over_the_log_in_place_is_read_once() {
    scenario(
        |log| fs::write(log, lines(1, 900, 0.001)).unwrap(),
        (1, 900, 900),
    );
}

#[test]
fn truncation_back_to_a_checkpoint_then_logging_again_keeps_one_curve() {
    scenario(
        |log| {
            fs::write(log, lines(1, 250, 0.001)).unwrap();
            thread::sleep(Duration::from_millis(500));
            let mut f = OpenOptions::new().append(true).open(log).unwrap();
            f.write_all(lines(251, 1000, 0.001).as_bytes()).unwrap();
        },
        (1, 1000, 1000),
    );
}

#[test]
fn logrotate_create_with_a_writer_on_the_old_descriptor_loses_nothing() {
    scenario(
        |log| {
            // The writer keeps its descriptor across the rotation.
            let mut writer = OpenOptions::new().append(true).open(log).unwrap();
            fs::rename(log, log.with_extension("jsonl.1")).unwrap();
            fs::write(log, "").unwrap();
            writer.write_all(lines(501, 600, 0.001).as_bytes()).unwrap();
            writer.flush().unwrap();
            thread::sleep(Duration::from_millis(1500));
            drop(writer);
            // Reopened: it now writes to the new file.
            let mut f = OpenOptions::new().append(true).open(log).unwrap();
            f.write_all(lines(601, 700, 0.001).as_bytes()).unwrap();
        },
        (1, 700, 700),
    );
}
