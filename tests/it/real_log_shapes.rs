//! Shapes real logs have that the formats alone do not cover: resumed and
//! appended runs, logs indexed by epoch, fields lrtop cannot name. Each
//! fixture is written here in the shape the real one had, and read through
//! `lrtop attach --summary` as a user would.

use std::fmt::Write as _;
use std::path::Path;

use std::ffi::OsStr;

use serde_json::Value;

use crate::cli_support::attach_summaries;

fn summaries(path: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args: Vec<&OsStr> = extra.iter().map(OsStr::new).collect();
    args.push(path.as_os_str());
    attach_summaries(args)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn alerts(summary: &Value) -> Vec<String> {
    summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {}", a["level"], a["message"]))
        .collect()
}

#[test]
fn a_resumed_run_is_one_curve_with_the_later_records_from_the_resume_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    // Ran to step 120, crashed, resumed from the checkpoint at step 80.
    for step in (1..=120).chain(80..=200) {
        let loss = 3.0 - step as f64 * 0.01;
        writeln!(log, r#"{{"step": {step}, "loss": {loss}, "lr": 0.001}}"#).unwrap();
    }
    let s = &summaries(&write(dir.path(), "resumed.jsonl", &log), &[])[..];
    assert_eq!(s.len(), 1, "one run: {s:?}");
    assert_eq!(s[0]["resumed_at"], serde_json::json!([80]));
    assert_eq!(s[0]["points"]["loss"], 200);
    assert_eq!(s[0]["last_step"], 200);
    assert!(alerts(&s[0]).is_empty(), "{:?}", alerts(&s[0]));
}

#[test]
fn runs_appended_to_one_file_are_separate_runs_without_divergence_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    // Seven runs, no step: only an epoch counter that starts over each time.
    for run in 0..7 {
        for i in 1..=50 {
            let epoch = i as f64 / 50.0;
            let loss = 2.5 - epoch - run as f64 * 0.01;
            writeln!(log, r#"{{"epoch": {epoch}, "loss": {loss}, "lr": 0.0003}}"#).unwrap();
        }
    }
    let s = summaries(&write(dir.path(), "seven.jsonl", &log), &[]);
    let labels: Vec<&str> = s.iter().map(|r| r["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "seven.jsonl",
            "seven.jsonl#2",
            "seven.jsonl#3",
            "seven.jsonl#4",
            "seven.jsonl#5",
            "seven.jsonl#6",
            "seven.jsonl#7"
        ]
    );
    for run in &s {
        assert_eq!(run["records"], 50);
        assert!(
            alerts(run).is_empty(),
            "{}: {:?}",
            run["label"],
            alerts(run)
        );
    }
}

#[test]
fn a_run_started_over_from_step_one_is_a_new_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for step in (1..=60).chain(1..=40) {
        writeln!(
            log,
            r#"{{"step": {step}, "loss": {}, "lr": 0.01}}"#,
            2.0 / step as f64
        )
        .unwrap();
    }
    let s = summaries(&write(dir.path(), "again.jsonl", &log), &[]);
    assert_eq!(s.len(), 2);
    assert_eq!(
        (&s[0]["last_step"], &s[1]["label"]),
        (&Value::from(60), &Value::from("again.jsonl#2"))
    );
    assert_eq!(s[1]["records"], 40);
    assert!(s.iter().all(|r| alerts(r).is_empty()), "{s:?}");
}

#[test]
fn an_epoch_indexed_csv_uses_the_epoch_as_its_step() {
    let dir = tempfile::tempdir().unwrap();
    // Keras' CSVLogger: one row per epoch, no step column.
    let mut csv = String::from("epoch,loss,val_loss,learning_rate\n");
    for epoch in 0..12 {
        let loss = 1.0 / (epoch + 1) as f64;
        writeln!(csv, "{epoch},{loss},{},0.001", loss * 1.1).unwrap();
    }
    let s = &summaries(&write(dir.path(), "training.log.csv", &csv), &[])[0];
    assert_eq!(s["x"], "epoch");
    assert_eq!(
        (&s["first_step"], &s["last_step"]),
        (&Value::from(0), &Value::from(11))
    );
    assert_eq!(s["min_loss_step"], 11);
    assert!(s["unmapped"].is_null());
    // A log with steps says so too.
    let steps = write(
        dir.path(),
        "steps.jsonl",
        "{\"step\": 1, \"loss\": 1.0, \"lr\": 0.1}\n",
    );
    assert_eq!(summaries(&steps, &[])[0]["x"], "step");
}

#[test]
fn a_log_without_a_recognised_loss_or_lr_names_its_fields_and_the_map_to_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    for step in 1..=5 {
        writeln!(log, r#"{{"it": {step}, "objective": 0.5, "alpha": 0.01}}"#).unwrap();
    }
    let path = write(dir.path(), "custom.jsonl", &log);
    let s = &summaries(&path, &[])[0];
    let unmapped: Vec<&str> = s["unmapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        unmapped.contains(&"objective") && unmapped.contains(&"alpha"),
        "{unmapped:?}"
    );
    let hint = s["map_hint"].as_str().unwrap();
    assert_eq!(hint, "--map loss=FIELD,lr=FIELD");
    // Typing the line it suggests, with the fields filled in, maps them.
    let mapped = &summaries(&path, &["--map", "loss=objective,lr=alpha"])[0];
    assert!(mapped["unmapped"].is_null() && mapped["map_hint"].is_null());
    assert_eq!(mapped["last_loss"], 0.5);

    // Where a field looks like one, the hint names it.
    let lossy = write(
        dir.path(),
        "lossy.jsonl",
        "{\"my_loss_value\": 1.0, \"x\": 2}\n",
    );
    let s = &summaries(&lossy, &[])[0];
    assert_eq!(s["map_hint"], "--map loss=my_loss_value,lr=FIELD");
}

#[test]
fn lrtop_train_logs_declare_the_policy_they_trained_with() {
    let dir = tempfile::tempdir().unwrap();
    let policy = "linear(lr=0.1,num_warmup_steps=0,num_training_steps=40)";
    let mut log = format!(
        "{{\"header\":{{\"attempt\":1,\"lrtop\":\"0.1.0\",\"policy\":\"{policy}\",\"run\":\"own-1\",\"total_steps\":40}}}}\n"
    );
    for step in 1..=40u64 {
        let lr = 0.1 * (40 - (step - 1)) as f64 / 40.0;
        writeln!(
            log,
            r#"{{"step": {step}, "lr": {lr}, "loss": {}}}"#,
            2.0 / step as f64
        )
        .unwrap();
    }
    let s = &summaries(&write(dir.path(), "own.jsonl", &log), &[])[0];
    assert_eq!(s["config"]["declared"], policy);
    assert_eq!(s["config"]["name"], "own-1");
    assert_eq!(s["config"]["total_steps"], 40);
    assert_eq!(s["records"], 40, "the header is not a record");
    assert!(alerts(s).is_empty(), "{:?}", alerts(s));
}

#[test]
fn a_followed_directory_picks_up_logs_created_later_and_waits_while_empty() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("runs");
    // The directory does not exist yet: lrtop waits for it.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("lrtop"))
        .args(["attach", "--headless", "--interval", "0.2"])
        .arg(format!("{}/", watched.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str, deadline: Duration| -> Instant {
        let end = Instant::now() + deadline;
        while let Ok((at, line)) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            if line.contains(what) {
                return at;
            }
        }
        panic!("no line containing {what:?} within {deadline:?}");
    };
    wait_for("waiting for logs in", Duration::from_secs(10));
    std::fs::create_dir_all(watched.join("version_0")).unwrap();
    let created = Instant::now();
    std::fs::write(
        watched.join("version_0/metrics.jsonl"),
        "{\"step\": 7, \"loss\": 1.25, \"lr\": 0.1}\n",
    )
    .unwrap();
    let seen = wait_for("loss 1.250", Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    // Scanned every 0.5 s and reported at the next 0.2 s status line: 0.7 s
    // at worst; the bound leaves room for a loaded CI machine.
    let latency = seen.saturating_duration_since(created);
    assert!(
        latency < Duration::from_millis(2500),
        "picked up after {latency:?}"
    );
}
