//! `lrtop policy ...` driven through the real binary.

use assert_cmd::Command;
use predicates::prelude::*;

fn lrtop() -> Command {
    Command::cargo_bin("lrtop").unwrap()
}

#[derive(serde::Deserialize)]
struct Golden {
    spec: String,
    steps: u64,
    lr: Vec<f64>,
}

fn golden_path() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/reference-schedules/golden-public.json");
    if shared.exists() {
        shared
    } else {
        root.join("tests/fixtures/golden-public.json")
    }
}

#[test]
fn eval_csv_reproduces_golden_schedules() {
    let cases: Vec<Golden> =
        serde_json::from_str(&std::fs::read_to_string(golden_path()).unwrap()).unwrap();
    assert!(cases.len() >= 17);
    for case in cases {
        let out = lrtop()
            .args([
                "policy",
                "eval",
                &case.spec,
                "--steps",
                &case.steps.to_string(),
                "--format",
                "csv",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            case.spec,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("step,lr"));
        let rows: Vec<(u64, f64)> = lines
            .map(|l| {
                let (t, lr) = l.split_once(',').unwrap();
                (t.parse().unwrap(), lr.parse().unwrap())
            })
            .collect();
        assert_eq!(rows.len() as u64, case.steps, "{}", case.spec);
        for ((t, got), want) in rows.iter().zip(&case.lr) {
            let rel = (got - want).abs() / want.abs().max(1e-300);
            assert!(
                rel <= 1e-6 || (got - want).abs() < 1e-15,
                "{} t={t}: {got} vs {want}",
                case.spec
            );
        }
    }
}

#[test]
fn eval_json_has_spec_steps_and_values() {
    let out = lrtop()
        .args([
            "policy",
            "eval",
            "cos(k0=1e-3, k1=0.1, l=10)",
            "--steps",
            "3",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["spec"], "COS(k0=0.001,k1=0.1,l=10)");
    assert_eq!(v["steps"], 3);
    assert_eq!(v["lr"][0], 0.1);
    assert_eq!(v["lr"].as_array().unwrap().len(), 3);
}

#[test]
fn eval_full_precision() {
    lrtop()
        .args(["policy", "eval", "EXP(k0=0.1,gamma=0.993)", "--steps", "3"])
        .assert()
        .success()
        .stdout("step,lr\n0,0.1\n1,0.0993\n2,0.0986049\n");
}

#[test]
fn eval_feeds_metrics_to_plateau_policies() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("m.csv");
    std::fs::write(&metrics, "step,value\n2,1.0\n4,1.0\n6,1.0\n").unwrap();
    lrtop()
        .args([
            "policy",
            "eval",
            "ReduceLROnPlateau(lr=0.1,factor=0.5,patience=1)",
            "--steps",
            "8",
        ])
        .arg("--metrics")
        .arg(&metrics)
        .assert()
        .success()
        .stdout("step,lr\n0,0.1\n1,0.1\n2,0.1\n3,0.1\n4,0.1\n5,0.1\n6,0.05\n7,0.05\n");
}

#[test]
fn bad_specs_exit_2_with_position() {
    lrtop()
        .args(["policy", "eval", "COS(k0=0.1,k1=1,l=0)", "--steps", "3"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("column 19").and(predicate::str::contains("period")));
    lrtop()
        .args(["policy", "eval", "Cosine_Anealing(lr=1)"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown policy"));
    lrtop()
        .args(["policy", "plot", "FIX(k0=0.1) then FIX(k0=0.2)"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has no length"));
    lrtop()
        .args(["policy", "show", "NOPE"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown policy"));
}

#[test]
fn list_has_every_family() {
    let out = lrtop()
        .args(["policy", "list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let count = |fam: &str| all.iter().filter(|p| p["family"] == fam).count();
    assert_eq!(count("lrbench"), 35, "34 functions + ChangeLROnPlateau");
    assert!(count("pytorch") >= 11);
    assert!(count("hf") >= 10);
    for name in [
        "FIX",
        "NSTEP",
        "COSRSWEXP",
        "OneCycleLR",
        "CyclicLR",
        "warmup_stable_decay",
        "ReduceLROnPlateau",
    ] {
        assert!(all.iter().any(|p| p["name"] == name), "{name}");
    }
    lrtop()
        .args(["policy", "list", "--family", "hf"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("inverse_sqrt").and(predicate::str::contains("TRI2").not()),
        );
}

#[test]
fn show_describes_one_policy() {
    lrtop()
        .args(["policy", "show", "onecyclelr"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("OneCycleLR (PyTorch)")
                .and(predicate::str::contains("pct_start"))
                .and(predicate::str::contains("default 0.3")),
        );
}

#[test]
fn plot_writes_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("p.png");
    let svg = dir.path().join("p.svg");
    lrtop()
        .args([
            "policy",
            "plot",
            "COS(k0=0.001,k1=0.1,l=100)",
            "OneCycleLR(max_lr=0.1,total_steps=200)",
            "--log-y",
        ])
        .arg("--png")
        .arg(&png)
        .arg("--svg")
        .arg(&svg)
        .assert()
        .success();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("learning rate (log)") && svg.contains("update t"));
    lrtop()
        .args([
            "policy",
            "plot",
            "FIX(k0=1)",
            "--png",
            "/nonexistent-dir/x.png",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent-dir/x.png"));
    lrtop()
        .args(["policy", "plot", "FIX(k0=1)", "--png", "x.gif"])
        .assert()
        .code(2);
}

#[test]
fn plot_as_text() {
    let out = lrtop()
        .args([
            "policy",
            "plot",
            "TRI2(k0=0.005,k1=0.08,l=50)",
            "--steps",
            "400",
            "--text",
            "80x20",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}
