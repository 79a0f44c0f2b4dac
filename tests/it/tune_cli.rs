//! `lrtop tune` end to end: tiny digits trials as child processes, the JSON
//! report, every log readable by `lrtop attach`, failures recorded, random
//! search reproducible, successive halving's accounting, and the Slurm path
//! run locally then collected.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn lrtop() -> Command {
    Command::cargo_bin("lrtop").unwrap()
}

/// Small, fast trials: the digits MLP for a few updates.
const FAST: [&str; 6] = ["--steps", "60", "--eval-every", "20", "--hidden", "32"];

fn json(out: &[u8]) -> Value {
    let text = String::from_utf8_lossy(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn tune(dir: &Path, extra: &[&str]) -> assert_cmd::assert::Assert {
    lrtop()
        .current_dir(dir)
        .args(["tune", "--format", "json", "--jobs", "2"])
        .args(FAST)
        .args(extra)
        .assert()
}

#[test]
fn grid_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = tune(
        dir.path(),
        &[
            "--policy",
            "FIX(k0={0.003,0.1})",
            "--policy",
            "COS(k0=0.001,k1=0.1,l=60)",
            "--target-acc",
            "0.5",
            "--out",
            "runs/grid",
        ],
    )
    .success()
    .get_output()
    .stdout
    .clone();
    let report = json(&out);
    assert_eq!(report["search"], "grid");
    assert_eq!(report["objective"], "acc");
    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 3);
    for key in [
        "spec",
        "final_acc",
        "best_acc",
        "top5",
        "confidence_mean",
        "confidence_std",
        "robustness",
        "steps_to_target",
        "time_to_target",
        "wall_s",
        "log",
        "status",
    ] {
        assert!(trials[0].get(key).is_some(), "missing {key}: {}", trials[0]);
    }
    let accs: Vec<f64> = trials
        .iter()
        .map(|t| t["final_acc"].as_f64().unwrap())
        .collect();
    assert!(
        accs.windows(2).all(|w| w[0] >= w[1]),
        "ranked by final accuracy: {accs:?}"
    );
    assert!(trials.iter().all(|t| t["status"] == "ok"), "{report}");
    assert_eq!(report["best"], trials[0]);
    let conf = trials[0]["confidence_mean"].as_f64().unwrap();
    assert!(conf > 0.0 && conf <= 1.0);
    // FIX at 0.003 for 60 updates learns little: the better two rank first.
    assert_eq!(trials[2]["spec"], "FIX(k0=0.003)");
    // Every trial's log exists and attach reads them all.
    let tune_dir = dir.path().join("runs/grid");
    for t in trials {
        assert!(dir.path().join(t["log"].as_str().unwrap()).is_file(), "{t}");
    }
    assert!(tune_dir.join("tune.json").is_file());
    let out = lrtop()
        .current_dir(dir.path())
        .args(["attach", "--no-follow", "--summary", "runs/grid"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let summaries: Vec<Value> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(summaries.len(), 3);
    for s in &summaries {
        assert_eq!(s["last_step"], 60, "{s}");
    }
    // A local tune can be collected again later.
    let again = lrtop()
        .current_dir(dir.path())
        .args(["tune", "collect", "runs/grid", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let again = json(&again);
    assert_eq!(again["best"]["spec"], report["best"]["spec"]);
}

#[test]
fn text_report_is_a_ranked_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = lrtop()
        .current_dir(dir.path())
        .args([
            "tune",
            "--headless",
            "--jobs",
            "2",
            "--policy",
            "FIX(k0={0.05,0.1})",
        ])
        .args(FAST)
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stdout);
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("rank"), "{text}");
    assert!(
        text.contains("FIX(k0=0.05)") && text.contains("best: #"),
        "{text}"
    );
    // The number `best: #N` names is the table's `#` column, and the one
    // in the progress lines.
    let best = text
        .lines()
        .find_map(|l| l.strip_prefix("best: "))
        .and_then(|b| b.split_whitespace().next())
        .unwrap();
    let header = text
        .lines()
        .find(|l| l.trim_start().starts_with("rank"))
        .unwrap();
    assert!(header.split_whitespace().nth(1) == Some("#"), "{header}");
    let first_row = text.lines().skip_while(|l| *l != header).nth(1).unwrap();
    assert_eq!(first_row.split_whitespace().nth(1), Some(best), "{text}");
    assert!(
        progress
            .lines()
            .any(|l| l.starts_with('[') && l.contains(&format!("] {best} "))),
        "{progress}"
    );
    assert!(dir.path().join("runs").read_dir().unwrap().count() == 1);
}

#[test]
fn a_failing_trial_is_recorded_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    // An LR of 1e30 parses, but the first updates diverge: only the run
    // finds out.
    let out = tune(
        dir.path(),
        &[
            "--policy",
            "FIX(k0=0.1)",
            "--policy",
            "FIX(k0=1e30)",
            "--out",
            "t",
        ],
    )
    .success()
    .get_output()
    .stdout
    .clone();
    let report = json(&out);
    let trials = report["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    assert_eq!(trials[0]["status"], "ok");
    let failed = trials[1]["status"].as_str().unwrap();
    assert_eq!(failed, "diverged", "the trial's end is kept");
    assert_eq!(report["best"]["spec"], "FIX(k0=0.1)");
}

#[test]
fn all_trials_failing_is_an_error_after_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let assert = tune(dir.path(), &["--policy", "FIX(k0=1e30)", "--out", "t"]).code(1);
    let report = json(&assert.get_output().stdout);
    assert!(report["best"].is_null());
}

#[test]
fn random_search_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let emit = |name: &str, seed: &str| {
        lrtop()
            .current_dir(dir.path())
            .args([
                "tune",
                "--executor",
                "slurm",
                "--emit",
                name,
                "--policy",
                "COS(k0=logu(1e-4,1e-2),k1=u(0.05,0.5),l=int(10,100))",
                "--trials",
                "5",
                "--search-seed",
                seed,
            ])
            .assert()
            .success();
        std::fs::read_to_string(dir.path().join(name).join("trials.txt")).unwrap()
    };
    let a = emit("a", "3");
    let b = emit("b", "3");
    let c = emit("c", "4");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.lines().count(), 5);
    assert!(a.lines().all(|l| l.starts_with("COS(k0=")), "{a}");
}

#[test]
fn halving_accounting_and_verification() {
    let dir = tempfile::tempdir().unwrap();
    let out = lrtop()
        .current_dir(dir.path())
        .args(["tune", "--format", "json", "--jobs", "2", "--hidden", "32"])
        .args(["--policy", "FIX(k0={0.003,0.01,0.05,0.1})"])
        .args([
            "--steps",
            "80",
            "--eval-every",
            "20",
            "--halving",
            "2",
            "--halving-verify",
            "--out",
            "h",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report = json(&out);
    let h = &report["halving"];
    let budgets: Vec<u64> = h["rungs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["budget"].as_u64().unwrap())
        .collect();
    assert_eq!(budgets, vec![20, 40, 80]);
    let sizes: Vec<usize> = h["rungs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trials"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![4, 2, 1]);
    assert_eq!(h["updates_spent"], 4 * 20 + 2 * 40 + 80);
    assert_eq!(h["updates_full_grid"], 4 * 80);
    assert!((h["compute_saved"].as_f64().unwrap() - 0.25).abs() < 1e-12);
    assert!(h["same_winner"].is_boolean(), "{h}");
    assert_eq!(report["full_grid"].as_array().unwrap().len(), 4);
    // The winner ran the full length; the survivors' list comes first.
    assert_eq!(report["trials"][0]["steps"], 80);
    assert_eq!(report["best"]["spec"], h["winner_spec"]);
    // A rung's run is the prefix of the full run: same LR and loss at every update.
    let winner = h["winner"].as_u64().unwrap();
    let short =
        std::fs::read_to_string(dir.path().join(format!("h/rung-0/trial-{winner}.jsonl"))).unwrap();
    let full =
        std::fs::read_to_string(dir.path().join(format!("h/full/trial-{winner}.jsonl"))).unwrap();
    let losses = |text: &str| -> Vec<(u64, f64)> {
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| Some((v.get("step")?.as_u64()?, v.get("loss")?.as_f64()?)))
            .collect()
    };
    let (short, full) = (losses(&short), losses(&full));
    assert_eq!(short.len(), 20);
    assert_eq!(short[..], full[..20]);
}

#[test]
fn slurm_emit_run_locally_and_collect() {
    let dir = tempfile::tempdir().unwrap();
    let emit = dir.path().join("array");
    lrtop()
        .current_dir(dir.path())
        .args([
            "tune",
            "--executor",
            "slurm",
            "--emit",
            "array",
            "--target-acc",
            "0.3",
        ])
        .args([
            "--policy",
            "FIX(k0={0.05,0.1})",
            "--policy",
            "TRI2(k0=0.01,k1=0.1,l=10)",
        ])
        .args(FAST)
        .assert()
        .success();
    let script = std::fs::read_to_string(emit.join("run.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-2"), "{script}");
    assert!(script.contains("#SBATCH --cpus-per-task=1"), "{script}");
    assert_eq!(
        std::fs::read_to_string(emit.join("trials.txt"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    let run_task = |id: &str| {
        Command::new("bash")
            .arg(emit.join("run.sbatch"))
            .env("SLURM_ARRAY_TASK_ID", id)
            .assert()
    };
    run_task("0").success();
    run_task("2").success();
    run_task("7").code(2);
    let collect = |dir: &Path| {
        let out = lrtop()
            .args(["tune", "collect", "--format", "json"])
            .arg(dir)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        json(&out)
    };
    let partial = collect(&emit);
    let statuses: Vec<&str> = partial["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["ok", "ok", "pending"]);
    run_task("1").success();
    let report = collect(&emit);
    let trials = report["trials"].as_array().unwrap();
    assert!(trials.iter().all(|t| t["status"] == "ok"), "{report}");
    assert!(trials.iter().all(|t| t["steps"] == 60));
    assert!(report["best"]["spec"].is_string());
    // attach watches the array's logs.
    lrtop()
        .args(["attach", "--no-follow", "--summary"])
        .arg(emit.join("logs"))
        .assert()
        .success();
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[&[&str]] = &[
        &["tune"],
        &["tune", "--policy", "NOPE(k0={1,2})"],
        &[
            "tune",
            "--policy",
            "FIX(k0={0.1,0.2})",
            "--objective",
            "steps-to-target",
        ],
        &[
            "tune",
            "--policy",
            "FIX(k0=logu(0.01,0.1))",
            "--halving",
            "2",
        ],
        &["tune", "--policy", "FIX(k0={0.1,0.2})", "--trials", "3"],
        &["tune", "--policy", "FIX(k0={0.1,0.2})", "--halving", "1"],
        &["tune", "--policy", "FIX(k0={0.1,0.2})", "--emit", "x"],
        &[
            "tune",
            "--policy",
            "FIX(k0={0.1,0.2})",
            "--executor",
            "slurm",
        ],
        &["tune", "--policy", "FIX(k0={0.1,0.2})", "--jobs", "0"],
        &["tune", "collect", "nowhere"],
    ];
    for args in cases {
        lrtop().current_dir(dir.path()).args(*args).assert().code(2);
    }
    assert!(!dir.path().join("runs").exists(), "nothing ran");
}

#[test]
fn ctrl_c_kills_the_trials_and_prints_what_finished() {
    use std::process::{Command as Process, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let child = Process::new(env!("CARGO_BIN_EXE_lrtop"))
        .current_dir(dir.path())
        .args(["tune", "--format", "json", "--jobs", "1", "--hidden", "32"])
        .args([
            "--policy",
            "FIX(k0={0.05,0.1})",
            "--steps",
            "100000000",
            "--eval-every",
            "1000000",
        ])
        .args(["--out", "t"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = dir.path().join("t/trial-0.jsonl");
    let started = Instant::now();
    // Wait until the first trial is training (its log has records).
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the trial never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(
        Process::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let report = json(&out.stdout);
    assert_eq!(report["interrupted"], true);
    let statuses: Vec<&str> = report["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["interrupted", "not run (interrupted)"]);
    // The trial was killed: its log stops growing.
    let size = std::fs::metadata(&log).unwrap().len();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::metadata(&log).unwrap().len(), size);
}
