//! `lrtop attach` through the real binary: the machine-readable summary,
//! headless output, the declared-schedule check and alert hooks.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn lrtop() -> Command {
    Command::cargo_bin("lrtop").unwrap()
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample-logs")
        .join(name)
}

fn summaries(args: &[&str]) -> Vec<Value> {
    crate::cli_support::attach_summaries(args)
}

#[test]
fn summary_of_every_reference_format() {
    let dir = sample("");
    let runs = summaries(&[dir.to_str().unwrap()]);
    assert_eq!(runs.len(), 5, "one summary per run");
    let by_label = |label: &str| {
        runs.iter()
            .find(|r| r["label"].as_str().unwrap().ends_with(label))
            .unwrap()
    };

    let hf = by_label("hf_trainer_cosine.jsonl");
    assert_eq!(hf["format"], "jsonl");
    assert_eq!(hf["records"], 311);
    assert_eq!(hf["bad_lines"], 0);
    assert_eq!(hf["first_step"], 1);
    assert_eq!(hf["last_step"], 300);
    assert!(hf["first_nonfinite_step"].is_null());
    assert!(
        hf["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "eval_loss")
    );
    assert_eq!(
        hf["schedule_fit"]["spec"],
        "cosine(lr=0.003,num_warmup_steps=30,num_training_steps=300)"
    );
    assert!(hf["alerts"].as_array().unwrap().is_empty());
    for key in ["path", "last_lr", "min_loss", "min_loss_step", "last_loss"] {
        assert!(hf.get(key).is_some(), "{key}");
    }

    assert_eq!(by_label("trainer_state.json")["format"], "hf-trainer-state");
    assert_eq!(by_label("metrics.csv")["format"], "csv");

    let nan = by_label("torch_diverged_nan.jsonl");
    assert_eq!(nan["first_nonfinite_step"], 28);
    let alerts = nan["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["level"] == "critical" && a["kind"] == "divergence" && a["step"] == 28),
        "{alerts:?}"
    );
    // No critical alert on the healthy runs.
    for run in &runs {
        if run == nan {
            continue;
        }
        assert!(
            run["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["level"] != "critical"),
            "{}",
            run["label"]
        );
    }
}

#[test]
fn declared_schedule_is_checked() {
    let log = sample("hf_trainer_cosine.jsonl");
    let ok = summaries(&[
        log.to_str().unwrap(),
        "--declared",
        "cosine(lr=3e-3,num_warmup_steps=30,num_training_steps=300)",
    ]);
    assert!(
        ok[0]["alerts"].as_array().unwrap().is_empty(),
        "{:?}",
        ok[0]["alerts"]
    );
    let wrong = summaries(&[
        log.to_str().unwrap(),
        "--declared",
        "linear(lr=3e-3,num_warmup_steps=30,num_training_steps=300)",
    ]);
    assert!(
        wrong[0]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "schedule_deviation"),
        "{:?}",
        wrong[0]["alerts"]
    );
    lrtop()
        .args([
            "attach",
            "--no-follow",
            "--summary",
            log.to_str().unwrap(),
            "--declared",
            "cosine(lr=-1)",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--declared"));
}

#[test]
fn headless_prints_alerts_as_json_lines_and_status() {
    let out = lrtop()
        .args(["attach", "--no-follow", "--headless", "--fail-on", "never"])
        .arg(sample("torch_diverged_nan.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let alerts: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        alerts.iter().any(|a| a["alert"]["level"] == "critical"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("[torch_diverged_nan.jsonl]") && l.contains("step 300")),
        "{text}"
    );
}

#[test]
fn on_alert_runs_a_command_per_alert() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("alerts.txt");
    let cmd = format!(
        "echo \"$LRTOP_ALERT_LEVEL $LRTOP_ALERT_KIND $LRTOP_ALERT_STEP $LRTOP_RUN\" >> {}",
        marker.display()
    );
    lrtop()
        .args([
            "attach",
            "--no-follow",
            "--headless",
            "--on-alert-history",
            "--fail-on",
            "never",
            "--on-alert",
            &cmd,
        ])
        .arg(sample("torch_diverged_nan.jsonl"))
        .assert()
        .success();
    // The hooks run in the background; give them a moment.
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&marker).unwrap_or_default();
        if text.lines().count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        text.contains("critical divergence 28 torch_diverged_nan.jsonl"),
        "{text}"
    );
}

#[test]
fn target_reached_is_reported() {
    let runs = summaries(&[
        sample("torch_cyclic_triangular2.jsonl").to_str().unwrap(),
        "--target",
        "val_acc>=0.95",
    ]);
    let alerts = runs[0]["alerts"].as_array().unwrap();
    assert!(
        alerts.iter().any(|a| a["kind"] == "target_reached"),
        "{alerts:?}"
    );
}

#[test]
fn bad_input_is_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.jsonl");
    std::fs::write(
        &path,
        "{\"step\": 1, \"loss\": 2.0}\ngarbage\n\u{0}\u{1}\u{2}\n{\"step\": 2, \"loss\": NaN}\n{\"step\": 3, \"loss\": 1.5}\n{\"step\": 4, \"lo",
    )
    .unwrap();
    let runs = summaries(&[path.to_str().unwrap()]);
    assert_eq!(runs[0]["records"], 3);
    assert_eq!(
        runs[0]["bad_lines"], 3,
        "two garbage lines and the partial last line"
    );
    assert_eq!(runs[0]["first_nonfinite_step"], 2);
    assert_eq!(runs[0]["last_step"], 3);
}

#[test]
fn usage_errors_exit_2() {
    lrtop()
        .args(["attach", "--summary", "/no/such/file.jsonl"])
        .assert()
        .code(2);
    lrtop()
        .args(["attach", "--summary", "nope-*.jsonl"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope"));
    lrtop()
        .args(["attach", "--summary", "--map", "lr"])
        .arg(sample("hf_trainer_cosine.jsonl"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--map"));
    lrtop()
        .args(["attach", "--summary", "--target", "acc=0.9"])
        .arg(sample("hf_trainer_cosine.jsonl"))
        .assert()
        .code(2);
}

#[test]
fn map_overrides_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custom.jsonl");
    std::fs::write(&path, "{\"it\": 10, \"my_lr\": 0.5, \"objective\": 3.0}\n{\"it\": 20, \"my_lr\": 0.25, \"objective\": 2.0}\n").unwrap();
    let runs = summaries(&[
        path.to_str().unwrap(),
        "--map",
        "lr=my_lr,loss=objective,step=it",
    ]);
    assert_eq!(runs[0]["last_step"], 20);
    assert_eq!(runs[0]["last_lr"], 0.25);
    assert_eq!(runs[0]["min_loss"], 2.0);
}

#[test]
fn fail_on_fails_the_check_with_the_reason_that_fired() {
    // Critical is the default: a check needs no flag.
    let out = lrtop()
        .args(["attach", "--no-follow", "--summary"])
        .arg(sample("torch_diverged_nan.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    lrtop()
        .args(["attach", "--no-follow", "--headless", "--fail-on", "never"])
        .arg(sample("torch_diverged_nan.jsonl"))
        .assert()
        .success();
    let out = lrtop()
        .args(["attach", "--summary", "--fail-on", "critical"])
        .arg(sample("torch_diverged_nan.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    // The rule that fired first is the loss climbing, not a NaN.
    assert!(err.contains("loss climbed to"), "{err}");
    assert!(!err.contains("non-finite"), "{err}");
    // The summary is still printed, and a healthy run passes.
    assert!(!out.stdout.is_empty());
    lrtop()
        .args(["attach", "--summary", "--fail-on", "warn"])
        .arg(sample("hf_trainer_cosine.jsonl"))
        .assert()
        .success();
}

#[test]
fn hooks_run_one_at_a_time_for_new_alerts_only_and_get_no_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    // A file name with an escape sequence and a log with many alerts.
    let log = dir.path().join("run\u{1b}[31m.jsonl");
    let mut text = String::new();
    for step in 1..=400u64 {
        // A NaN LR now and then: an alert each time.
        let lr = if step % 50 == 0 { "NaN" } else { "0.001" };
        text.push_str(&format!(
            "{{\"step\": {step}, \"loss\": 1.0, \"lr\": {lr}}}\n"
        ));
    }
    std::fs::write(&log, text).unwrap();
    let marker = dir.path().join("hooks.txt");
    let lock = dir.path().join("lock");
    let cmd = format!(
        "mkdir {lock} || echo overlap >> {m}; printf '%s\\n' \"$LRTOP_RUN|$LRTOP_ALERT_MESSAGE\" >> {m}; sleep 0.05; rmdir {lock}",
        lock = lock.display(),
        m = marker.display()
    );
    // History (an old log read once): no hooks unless asked.
    lrtop()
        .args([
            "attach",
            "--no-follow",
            "--headless",
            "--fail-on",
            "never",
            "--on-alert",
            &cmd,
        ])
        .arg(&log)
        .assert()
        .success();
    assert!(!marker.exists(), "no hook for history");
    let out = lrtop()
        .args([
            "attach",
            "--no-follow",
            "--headless",
            "--on-alert-history",
            "--fail-on",
            "never",
            "--on-alert",
            &cmd,
        ])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success());
    // Every headless line is free of raw escapes too.
    assert!(
        !out.stdout.contains(&0x1b),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = std::fs::read_to_string(&marker).unwrap();
    assert!(!text.contains("overlap"), "hooks overlapped:\n{text}");
    let runs: Vec<&str> = text.lines().collect();
    let alerts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"alert\":"))
        .count();
    assert!(alerts >= 2);
    assert_eq!(runs.len(), alerts, "one hook per alert:\n{text}");
    assert!(
        runs.iter()
            .all(|l| !l.contains('\u{1b}') && l.contains("run\u{fffd}[31m.jsonl")),
        "{text}"
    );
}
