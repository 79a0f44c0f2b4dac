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
// Only the freeze tests use it, and LRTOP_TEST_FREEZE exists in debug builds only.
#[cfg(debug_assertions)]
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

/// The processes whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                // pid (comm) state ppid ...: comm may hold spaces.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

/// A headless tune with one long trial; its pid and its trial's.
// The caller waits for the child it is given.
#[allow(clippy::zombie_processes)]
fn long_tune(dir: &std::path::Path, freeze: &str) -> (Child, u32) {
    let out = dir.join("tune").display().to_string();
    #[rustfmt::skip]
    let args = [
        "tune", "--headless", "--jobs", "1", "--policy", "FIX(k0=0.1)",
        "--steps", "100000000", "--eval-every", "1000000", "--hidden", "16",
        "--out", &out,
    ];
    let mut child = spawn(&args, freeze);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(&trial) = children_of(child.id()).first() {
            return (child, trial);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no trial started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `limit` for `pid` to end.
fn ends_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[cfg(target_os = "linux")]
#[test]
fn a_sighup_stops_a_headless_tune_and_its_trial() {
    let dir = tempfile::tempdir().unwrap();
    let (mut tune, trial) = long_tune(dir.path(), "");
    signal(&tune, "HUP");
    let (code, took) = exit_within(&mut tune, Duration::from_secs(15));
    assert!(
        code.is_some(),
        "ended by itself, not by the signal's default"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        ends_within(trial, Duration::from_secs(5)),
        "the trial still runs"
    );
}

#[cfg(all(target_os = "linux", debug_assertions))]
#[test]
fn a_second_signal_ends_a_stuck_tune_and_kills_its_trial() {
    let dir = tempfile::tempdir().unwrap();
    // The stop gets stuck before it kills the trial.
    let (mut tune, trial) = long_tune(dir.path(), "tune-stop");
    signal(&tune, "TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        tune.try_wait().unwrap().is_none(),
        "the first one is graceful"
    );
    signal(&tune, "TERM");
    let (code, took) = exit_within(&mut tune, Duration::from_secs(10));
    assert_eq!(code, Some(128 + 15));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        ends_within(trial, Duration::from_secs(5)),
        "the trial still runs"
    );
}
