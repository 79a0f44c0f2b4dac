//! Signals always end lrtop: the first asks it to stop the ordinary way,
//! and past a grace period, or at a second signal, it exits whatever its
//! loop is doing (debug builds freeze a loop on purpose with
//! `LRTOP_TEST_FREEZE`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(args: &[&str], freeze: &str) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("lrtop"))
        .args(args)
        .env("LRTOP_TEST_FREEZE", freeze)
        .env("LRTOP_CONFIG", "/nonexistent/lrtop/config.toml")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Waits for the child to exit (killing it after `limit`); its exit code
/// and how long it took.
fn exit_within(child: &mut Child, limit: Duration) -> (Option<i32>, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running {limit:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads stdout until a line contains `needle` (on a thread, so that a
/// child that never writes it fails the test instead of hanging it).
fn wait_for_line(child: &mut Child, needle: &str) {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Keeps draining after the receiver is gone: a full pipe never
            // blocks the child.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains(needle) => return,
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    panic!("no line with '{needle}'");
}

#[cfg(debug_assertions)]
#[test]
fn a_stuck_headless_follow_still_ends_on_sigterm_within_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    std::fs::write(&log, "{\"step\": 1, \"loss\": 1.0}\n").unwrap();
    let mut child = spawn(
        &[
            "attach",
            "--headless",
            "--interval",
            "0.2",
            log.to_str().unwrap(),
        ],
        "headless",
    );
    wait_for_line(&mut child, "record");
    signal(&child, "TERM");
    let (code, took) = exit_within(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(128 + 15), "exits as killed by SIGTERM");
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("SIGTERM (it did not stop in time)"), "{err}");
}

#[cfg(debug_assertions)]
#[test]
fn a_second_ctrl_c_ends_a_stuck_training_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("train.jsonl");
    let mut child = spawn(
        &[
            "train",
            "--headless",
            "--steps",
            "1000000",
            "--log",
            log.to_str().unwrap(),
        ],
        "train",
    );
    wait_for_line(&mut child, "training");
    signal(&child, "INT");
    // The first one waits for the step and the log (up to 10 s) ...
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first Ctrl-C is graceful"
    );
    // ... a second one does not wait.
    signal(&child, "INT");
    let (code, took) = exit_within(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(128 + 2));
    assert!(took < Duration::from_secs(2), "took {took:?}");
}
