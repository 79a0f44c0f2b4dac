//! Inputs that are not ordinary logs and options that are not sane: each
//! ends with a clear message or a sensible result, quickly, never a hang.

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn lrtop() -> Command {
    let mut cmd = Command::cargo_bin("lrtop").unwrap();
    // A hang is a failure, not a stuck CI job.
    cmd.timeout(Duration::from_secs(20));
    cmd
}

fn summaries(args: &[&str]) -> Vec<Value> {
    crate::cli_support::attach_summaries(args)
}

#[test]
fn devices_are_refused_at_once() {
    let started = Instant::now();
    let out = lrtop()
        .args(["attach", "--no-follow", "--summary", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a device, not a log file"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_fifo_without_a_writer_is_read_to_its_end_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("no mkfifo here: skipped");
        return;
    }
    let s = summaries(&[fifo.to_str().unwrap()]);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["records"], 0);
}

#[test]
fn random_binary_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob.bin");
    // Deterministic noise, NULs included.
    let bytes: Vec<u8> = (0u32..20_000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, bytes).unwrap();
    let out = lrtop()
        .args(["attach", "--summary"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("binary data in no format lrtop reads"),
        "{err}"
    );
}

#[test]
fn a_glob_over_a_symlink_loop_ends_and_finds_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("loop/a");
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::write(inner.join("m.jsonl"), "{\"step\": 1, \"loss\": 1}\n").unwrap();
    // Two links back up: without a visited set, 2^depth paths.
    std::os::unix::fs::symlink("..", inner.join("up")).unwrap();
    std::os::unix::fs::symlink("..", inner.join("up2")).unwrap();
    let pattern = format!("{}/loop/**/*.jsonl", dir.path().display());
    let started = Instant::now();
    let s = summaries(&[&pattern]);
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn one_file_named_several_ways_is_one_run_and_a_bracketed_name_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.jsonl");
    std::fs::write(&file, "{\"step\": 1, \"loss\": 1}\n").unwrap();
    std::os::unix::fs::symlink(&file, dir.path().join("link.jsonl")).unwrap();
    let spellings = [
        file.display().to_string(),
        format!("{}/./a.jsonl", dir.path().display()),
        dir.path().join("link.jsonl").display().to_string(),
    ];
    let args: Vec<&str> = spellings.iter().map(String::as_str).collect();
    assert_eq!(summaries(&args).len(), 1);
    let odd = dir.path().join("run[1]*.jsonl");
    std::fs::write(&odd, "{\"step\": 1, \"loss\": 1}\n").unwrap();
    let s = summaries(&[odd.to_str().unwrap()]);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0]["records"], 1);
}

#[test]
fn duplicate_keys_keep_the_last_value_and_text_steps_are_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    std::fs::write(
        &path,
        "{\"step\": \"10\", \"loss\": 1.0, \"loss\": 2.0, \"lr\": 0.1}\n",
    )
    .unwrap();
    let s = &summaries(&[path.to_str().unwrap()])[0];
    assert_eq!(
        (&s["last_step"], &s["last_loss"]),
        (&Value::from(10), &Value::from(2.0))
    );
}

#[test]
fn a_nan_or_negative_lr_is_an_alert() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lr.jsonl");
    std::fs::write(
        &path,
        "{\"step\": 1, \"loss\": 1, \"lr\": 0.1}\n{\"step\": 2, \"loss\": 1, \"lr\": NaN}\n{\"step\": 3, \"loss\": 1, \"lr\": -0.1}\n",
    )
    .unwrap();
    let s = &summaries(&[path.to_str().unwrap()])[0];
    let alerts: Vec<(String, u64)> = s["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["level"].as_str().unwrap().to_string(),
                a["step"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        alerts,
        [("critical".to_string(), 2), ("warn".to_string(), 3)]
    );
}

#[test]
fn policies_that_overflow_are_refused_with_the_reason() {
    for spec in ["COS(k0=0.1,k1=1,l=1e-320)", "EXP(k0=0.1,gamma=1e300)"] {
        let out = lrtop()
            .args(["policy", "eval", spec, "--steps", "3"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{spec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("gives an LR of"), "{spec}: {err}");
    }
    let out = lrtop()
        .args(["policy", "eval", "FIX(k0=0.1)", "--steps", "100000000000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn no_home_is_not_fatal_when_no_config_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    std::fs::write(&path, "{\"step\": 1, \"loss\": 1}\n").unwrap();
    for home in [None, Some(Path::new("/nonexistent/home"))] {
        let mut cmd = lrtop();
        cmd.args(["attach", "--summary"]).arg(&path);
        match home {
            None => cmd.env_remove("HOME").env_remove("XDG_CONFIG_HOME"),
            Some(h) => cmd.env("HOME", h).env_remove("XDG_CONFIG_HOME"),
        };
        cmd.assert().success();
    }
}

#[test]
fn a_new_metric_name_on_every_line_is_capped_not_a_memory_bomb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("names.jsonl");
    let mut text = String::new();
    for i in 0..100_000u64 {
        text.push_str(&format!(
            "{{\"step\": {}, \"loss\": 1.0, \"m{i}\": 0.5}}\n",
            i + 1
        ));
    }
    std::fs::write(&path, text).unwrap();
    let started = Instant::now();
    let s = &summaries(&[path.to_str().unwrap()])[0];
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s["records"], 100_000);
    assert_eq!(s["metrics"].as_array().unwrap().len(), 10_000);
    assert_eq!(s["dropped_values"], 100_000 - 9_999);
}

/// The process's status field (`Threads`, `VmHWM`) as a number.
#[cfg(target_os = "linux")]
fn proc_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// User plus system CPU seconds the process used so far.
#[cfg(target_os = "linux")]
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().unwrap())
        .collect();
    // Clock ticks: 100 a second on every Linux lrtop runs on.
    (fields[0] + fields[1]) as f64 / 100.0
}

/// Ten thousand followed files are a few threads, bounded memory and an
/// idle process (one thread per file made this 10,130 threads, 300 MB
/// and 180% of a core while nothing was written).
#[cfg(target_os = "linux")]
#[test]
fn ten_thousand_followed_files_take_a_few_threads_and_little_cpu() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for i in 0..10_000 {
        std::fs::write(
            logs.join(format!("run{i:05}.jsonl")),
            "{\"step\": 1, \"loss\": 1.0}\n{\"step\": 2, \"loss\": 0.5}\n",
        )
        .unwrap();
    }
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("lrtop"))
        .args(["attach", "--headless", "--interval", "1"])
        .arg(&logs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    // Status lines are read on a thread, so that the pipe never fills.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut read = 0;
    while read < 10_000 && started.elapsed() < Duration::from_secs(60) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && line.contains("· 2 records")
        {
            read += 1;
        }
    }
    let result = std::panic::catch_unwind(|| {
        assert_eq!(read, 10_000, "runs read within a minute");
        let threads = proc_field(pid, "Threads");
        assert!(threads <= 16, "{threads} threads");
        let peak_mb = proc_field(pid, "VmHWM") / 1024;
        assert!(peak_mb < 300, "peak RSS {peak_mb} MB");
        // Idle: what was there is read; nothing is written for 3 s.
        std::thread::sleep(Duration::from_secs(2));
        let (c0, t0) = (cpu_seconds(pid), Instant::now());
        std::thread::sleep(Duration::from_secs(3));
        let share = (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64();
        // Measured here: about 3%, the status lines (10,000 a second) included.
        assert!(share < 0.25, "idle CPU {:.0}% of a core", share * 100.0);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Runs lrtop with its address space limited to `mib` MiB (`ulimit -v`):
/// allocations past it are refused, as on a full machine or in a cgroup.
#[cfg(target_os = "linux")]
fn lrtop_with_memory_limit(dir: &Path, mib: u64, args: &[&str]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("lrtop"));
    cmd.current_dir(dir)
        .args(args)
        .env("LRTOP_CONFIG", "/nonexistent/lrtop/config.toml")
        // Rust's own report would print a backtrace with this set.
        .env("RUST_BACKTRACE", "1");
    let bytes = mib * 1024 * 1024;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_memory_limit_counts_in_the_estimate_before_training() {
    let dir = tempfile::tempdir().unwrap();
    // About 1 GiB of weights, gradients and moments; the machine may have
    // far more, the limit is 400 MiB.
    let args = [
        "train",
        "--headless",
        "--model",
        "mlp",
        "--hidden",
        "8000,8000",
        "--steps",
        "2",
    ];
    let out = lrtop_with_memory_limit(dir.path(), 400, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("this job needs about 997.6 MiB"), "{err}");
    assert!(
        !err.contains("backtrace") && !err.contains("panicked"),
        "{err}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn running_out_of_memory_prints_a_sentence_not_an_abort() {
    use std::fmt::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for step in 1..=200_000 {
        let _ = writeln!(
            log,
            r#"{{"loss": {:.4}, "grad_norm": {:.3}, "learning_rate": 3e-4, "epoch": {:.4}, "step": {step}}}"#,
            4.0 / (1.0 + step as f64 / 1000.0),
            1.0 + (step % 7) as f64 / 10.0,
            step as f64 / 20_000.0
        );
    }
    std::fs::write(dir.path().join("big.jsonl"), log).unwrap();
    let args = ["attach", "big.jsonl", "--no-follow", "--summary"];
    let mut refused = Vec::new();
    // Somewhere between "cannot start" and "enough" the store is refused
    // memory; every limit ends in a result or in the sentence.
    for mib in [48, 64, 96, 128, 192, 4096] {
        let out = lrtop_with_memory_limit(dir.path(), mib, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                // A refused allocation, or a refused reader thread.
                assert!(
                    err.contains("error: out of memory: the system refused")
                        || (err.contains("error: out of memory: cannot read big.jsonl")
                            && err.contains("the system refused a reader thread")),
                    "{mib} MiB: {err}"
                );
                refused.push(mib);
            }
            other => panic!("{mib} MiB: exit {other:?}: {err}"),
        }
        assert!(
            !err.contains("backtrace") && !err.contains("memory allocation of"),
            "{mib} MiB: {err}"
        );
    }
    assert!(
        !refused.is_empty(),
        "no limit was small enough to be refused"
    );
    assert!(!refused.contains(&4096), "4 GiB is enough for a 20 MB log");
}
