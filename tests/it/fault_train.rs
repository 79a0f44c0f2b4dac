//! Training under faults, through the real binary: SIGTERM and SIGINT in
//! the middle of a long run leave a complete log (every computed record,
//! no partial line) and a loadable checkpoint; a diverging run stops with a
//! critical alert instead of spinning to --steps; out-of-range options are
//! clear errors with exit code 2.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use lrtop::ingest::{FieldMap, Format, LoadOptions, load_bytes};
use lrtop::train::{DeviceSpec, Learner, LearnerConfig, ModelSpec, TaskSpec};

fn lrtop() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lrtop"))
}

struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Waits for the child to exit: its status, stdout and stderr; None (and
/// the child killed) when it is still running after `limit`. The pipes are
/// drained on threads so a chatty child cannot block on a full pipe.
fn try_wait_with_timeout(
    guard: &mut KillOnDrop,
    limit: Duration,
) -> Option<(ExitStatus, String, String)> {
    let mut child = guard.0.take().unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    status.map(|s| (s, out, err))
}

fn wait_with_timeout(guard: &mut KillOnDrop, limit: Duration) -> (ExitStatus, String, String) {
    try_wait_with_timeout(guard, limit)
        .unwrap_or_else(|| panic!("lrtop did not exit within {limit:?}"))
}

/// Steps of the per-update records in a training log.
fn update_steps(log: &Path) -> Vec<u64> {
    let bytes = fs::read(log).unwrap();
    let run = load_bytes(
        &bytes,
        Format::JSONL,
        &FieldMap::new(),
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(
        run.bad_lines,
        0,
        "bad lines in {}: {:?}",
        log.display(),
        run.last_error
    );
    run.data
        .records()
        .filter(|r| r.lr.is_some())
        .map(|r| r.step.expect("a step"))
        .collect()
}

fn count_update_lines(log: &Path) -> usize {
    fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"lr\""))
        .count()
}

/// Starts a long headless run in `dir`, waits until it has logged at least
/// `min_steps` updates, sends `sig`, and checks what it leaves behind.
fn interrupt_mid_run(sig: &str, extra: &[&str], log: Option<&str>) -> (PathBuf, PathBuf, u64) {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut cmd = lrtop();
    cmd.current_dir(&dir)
        .args([
            "train",
            "--headless",
            "--steps",
            "1000000",
            "--eval-every",
            "100",
        ])
        .args(["--policy", "FIX(k0=0.05)"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(log) = log {
        cmd.args(["--log", log]);
    }
    let mut guard = KillOnDrop(Some(cmd.spawn().unwrap()));
    let pid = guard.0.as_ref().unwrap().id();
    // Find the log (the default one has a generated name under runs/).
    let deadline = Instant::now() + Duration::from_secs(60);
    let log_path = loop {
        let found = match log {
            Some(l) => Some(dir.join(l)).filter(|p| p.exists()),
            None => fs::read_dir(dir.join("runs")).ok().and_then(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
            }),
        };
        if let Some(p) = found
            && count_update_lines(&p) >= 200
        {
            break p;
        }
        if let Some(status) = guard.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("lrtop exited early: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "no log with 200 updates within 60 s"
        );
        thread::sleep(Duration::from_millis(25));
    };
    signal(pid, sig);
    let (status, stdout, stderr) = wait_with_timeout(&mut guard, Duration::from_secs(30));
    assert!(
        matches!(status.code(), Some(130) | Some(143)),
        "exit after SIG{sig}: {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");

    // The log: ends with a newline, every line parses, updates 1..=N.
    let text = fs::read(&log_path).unwrap();
    assert_eq!(text.last(), Some(&b'\n'), "the log ends in a partial line");
    let steps = update_steps(&log_path);
    let n = steps.len() as u64;
    assert!(n >= 200, "only {n} updates logged");
    assert!(n < 1_000_000, "SIG{sig} did not stop the run");
    assert!(steps.iter().copied().eq(1..=n), "updates are not 1..={n}");
    // The summary line agrees: every computed update is in the log.
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap())
        .unwrap_or_else(|e| panic!("no summary ({e}):\n{stdout}"));
    assert_eq!(summary["steps"].as_u64(), Some(n), "{summary}");
    assert_eq!(summary["end"], "quit", "{summary}");
    (dir, log_path, n)
}

/// Loads a checkpoint into a fresh digits MLP and checks it learned something.
fn assert_loadable_checkpoint(path: &Path) {
    assert!(path.exists(), "no checkpoint at {}", path.display());
    let config = LearnerConfig {
        task: TaskSpec::Digits,
        model: "mlp".parse::<ModelSpec>().unwrap(),
        device: DeviceSpec::Cpu,
        threads: Some(1),
        ..LearnerConfig::default()
    };
    let mut learner = Learner::new(&config).unwrap();
    let before = learner.evaluate().unwrap().acc.unwrap();
    learner.load_weights(path).unwrap();
    let after = learner.evaluate().unwrap().acc.unwrap();
    assert!(
        after > 0.8 && after > before,
        "checkpoint {} gives accuracy {after} (untrained: {before})",
        path.display()
    );
}

#[test]
fn sigterm_mid_run_leaves_a_complete_log_and_a_checkpoint() {
    let (dir, log, n) = interrupt_mid_run("TERM", &[], Some("logs/run.jsonl"));
    assert_loadable_checkpoint(&log.with_extension("safetensors"));
    eprintln!("SIGTERM after {n} updates: log and checkpoint complete");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn sigint_mid_run_with_the_default_log_leaves_a_checkpoint_next_to_it() {
    let (dir, log, n) = interrupt_mid_run("INT", &[], None);
    assert!(log.starts_with(dir.join("runs")), "{}", log.display());
    assert_loadable_checkpoint(&log.with_extension("safetensors"));
    eprintln!("SIGINT after {n} updates: log and checkpoint complete");
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn sigterm_with_save_writes_the_checkpoint_there() {
    let (dir, _log, _) = interrupt_mid_run(
        "TERM",
        &["--save", "weights/final.safetensors"],
        Some("run.jsonl"),
    );
    assert_loadable_checkpoint(&dir.join("weights/final.safetensors"));
    assert!(!dir.join("run.safetensors").exists());
    let _ = fs::remove_dir_all(dir);
}

#[test]
fn a_diverging_run_stops_with_a_critical_alert_instead_of_spinning() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let child = lrtop()
        .current_dir(dir.path())
        .args([
            "train",
            "--headless",
            "--steps",
            "1000000",
            "--optimizer",
            "sgd",
        ])
        .args(["--policy", "FIX(k0=50)", "--log", "diverged.jsonl"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = KillOnDrop(Some(child));
    let (status, stdout, stderr) = wait_with_timeout(&mut guard, Duration::from_secs(60));
    let took = started.elapsed();
    // A diverged run is a failed check: exit code 4, with the reason.
    assert_eq!(status.code(), Some(4), "{status}\n{stderr}");
    assert!(stderr.contains("training diverged: "), "{stderr}");
    let alerts: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("alert").is_some() && v.get("run").is_some())
        .collect();
    assert!(
        alerts
            .iter()
            .any(|a| a["alert"]["level"] == "critical" && a["alert"]["kind"] == "divergence"),
        "no critical divergence alert:\n{stdout}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["end"], "diverged", "{summary}");
    let steps = summary["steps"].as_u64().unwrap();
    assert!(steps < 1000, "ran {steps} updates after diverging");
    // The log has every update, the alert, and no partial line.
    let log = dir.path().join("diverged.jsonl");
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    assert!(
        text.lines()
            .any(|l| l.starts_with("{\"alert\"") && l.contains("divergence")),
        "no alert in the log"
    );
    let logged = update_steps(&log);
    assert!(logged.iter().copied().eq(1..=steps), "{logged:?}");
    eprintln!("diverged after {steps} updates, exited after {took:?}");
}

#[test]
fn out_of_range_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("empty.txt");
    fs::write(&text_file, "").unwrap();
    let empty_task = format!("text={}", text_file.display());
    let cases: &[(&[&str], &str)] = &[
        (&["--policy", "FIX(k0=-0.1)"], "negative"),
        (&["--policy", "COS(k0=0.1,k1=1,l=0)"], "must be positive"),
        (&["--policy", "NOPE(k0=1)"], "NOPE"),
        (&["--batch-size", "0"], "--batch-size"),
        (&["--momentum", "1.5"], "--momentum"),
        (&["--momentum=-0.1"], "--momentum"),
        (&["--weight-decay=-1"], "--weight-decay"),
        (&["--clip-grad-norm", "0"], "--clip-grad-norm"),
        (&["--target-acc", "2"], "--target-acc"),
        (&["--target-acc", "0"], "--target-acc"),
        (&["--steps=99999999999999"], "--steps"),
        (&["--threads", "0"], "--threads"),
        (&["--seq-len", "1"], "--seq-len"),
        (&["--task", "mnist=/no/such/dir"], "/no/such/dir"),
        (&["--task", "cifar10=/no/such/dir"], "/no/such/dir"),
        (&["--task", "text=/no/such/file.txt"], "/no/such/file.txt"),
        (&["--task", &empty_task], "empty.txt"),
        (&["--task", "imagenet"], "--task"),
        (&["--model", "transformer9000"], "--model"),
        (&["--hidden", "0"], "--hidden"),
        (&["--optimizer", "lion"], "--optimizer"),
        (&["--device", "tpu"], "--device"),
        (&["--device", "cuda:x"], "--device"),
        (&["--target", "acc=>1"], "--target"),
        (&["--declared", "COS(k0=1"], "--declared"),
    ];
    let mut failures = Vec::new();
    for (args, needle) in cases {
        let out = lrtop()
            .current_dir(dir.path())
            .args(["train", "--headless"])
            .args(*args)
            .args(if args.iter().any(|a| a.starts_with("--steps")) {
                &[][..]
            } else {
                &["--steps", "10"][..]
            })
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let clear = stderr.starts_with("error: ") && stderr.contains(needle);
        let no_panic = !stderr.contains("panicked");
        if out.status.code() != Some(2) || !clear || !no_panic {
            failures.push(format!(
                "{args:?}: exit {:?}, stderr: {}",
                out.status.code(),
                stderr.trim()
            ));
        }
    }
    // Nothing was trained: no run directory appeared.
    assert!(
        !dir.path().join("runs").exists(),
        "a bad option still started a run"
    );
    assert!(
        failures.is_empty(),
        "unclear errors:\n{}",
        failures.join("\n")
    );
}

#[test]
fn out_of_range_attach_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.jsonl");
    fs::write(&log, "{\"step\": 1, \"loss\": 1.0}\n").unwrap();
    let log = log.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--headless", "--interval", "inf", log], "--interval"),
        (&["--headless", "--interval=-1", log], "--interval"),
        (&["--headless", "--interval", "0", log], "--interval"),
        (&["--theme", "no-such-theme", log], "theme"),
        (&["--headless", "--interval", "NaN", log], "--interval"),
        (&["--map", "nope=x", log], "--map"),
        (
            &["--declared", "FIX(k0=-1)", "--no-follow", "--headless", log],
            "--declared",
        ),
        (
            &["--no-follow", "--summary", "/no/such/file.jsonl"],
            "/no/such/file.jsonl",
        ),
    ];
    let mut failures = Vec::new();
    for (args, needle) in cases {
        // A bad option accepted would follow forever: give it 10 s.
        let child = lrtop()
            .arg("attach")
            .args(*args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut guard = KillOnDrop(Some(child));
        let Some((status, _, stderr)) = try_wait_with_timeout(&mut guard, Duration::from_secs(10))
        else {
            failures.push(format!("{args:?}: accepted (still running after 10 s)"));
            continue;
        };
        if status.code() != Some(2) || !stderr.contains(needle) || stderr.contains("panicked") {
            failures.push(format!(
                "{args:?}: exit {:?}, stderr: {}",
                status.code(),
                stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "unclear errors:\n{}",
        failures.join("\n")
    );
}

/// Runs `lrtop train` with files limited to 64 KiB (RLIMIT_FSIZE, SIGXFSZ
/// ignored): writes past it fail as on a full disk, without needing one.
#[cfg(target_os = "linux")]
fn train_with_small_disk(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("lrtop"));
    cmd.current_dir(dir)
        .args(["train", "--headless"])
        .args(args)
        .env("LRTOP_CONFIG", "/nonexistent/lrtop/config.toml");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_names_the_file_and_never_tears_the_previous_weights() {
    let dir = tempfile::tempdir().unwrap();
    // The log grows past the limit.
    let out = train_with_small_disk(dir.path(), &["--steps", "3000", "--log", "big.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writing big.jsonl: File too large"), "{err}");
    // The weights (about 100 KB) do not fit: the old file stays whole.
    std::fs::write(dir.path().join("w.safetensors"), "previous weights").unwrap();
    let out = train_with_small_disk(
        dir.path(),
        &[
            "--steps",
            "20",
            "--log",
            "small.jsonl",
            "--save",
            "w.safetensors",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("saving weights: w.safetensors: File too large"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("w.safetensors")).unwrap(),
        "previous weights"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
