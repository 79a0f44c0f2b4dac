//! `lrtop range-test` on the digits task: suggestions in a sane range, the
//! learner's weights put back exactly, the JSON shape, images.

use assert_cmd::Command;
use lrtop::train::{Learner, LearnerConfig};
use lrtop::tune::range_test::{RangeTestConfig, run_on_learner};
use serde_json::Value;

fn weights(learner: &Learner) -> Vec<(String, Vec<f32>)> {
    learner
        .weights()
        .unwrap()
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn digits_suggestions_are_sane_and_weights_restored() {
    let mut learner = Learner::new(&LearnerConfig::default()).unwrap();
    let before = weights(&learner);
    let result = run_on_learner(&mut learner, &RangeTestConfig::default()).unwrap();
    assert_eq!(
        weights(&learner),
        before,
        "the range test puts the weights back"
    );
    assert!(!result.lrs.is_empty() && result.lrs.len() <= 100);
    let min = result.losses.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(
        min < result.losses[0] - 0.1,
        "the loss falls somewhere in the ramp: {:?}",
        result.losses
    );
    let s = &result.suggestions;
    for (name, v) in [
        ("valley", s.valley),
        ("steep", s.steep),
        ("minimum", s.minimum),
    ] {
        let v = v.unwrap_or_else(|| panic!("no {name}"));
        assert!((1e-5..=1.0).contains(&v), "{name} = {v}");
    }
    let [lo, hi] = s.cyclic.unwrap();
    assert!(lo < hi && hi <= 10.0, "{lo} {hi}");
    // The next steps are those a fresh learner takes.
    let mut fresh = Learner::new(&LearnerConfig::default()).unwrap();
    assert_eq!(
        learner.train_step(0.05).unwrap().loss,
        fresh.train_step(0.05).unwrap().loss
    );
}

#[test]
fn json_output_shape() {
    let out = Command::cargo_bin("lrtop")
        .unwrap()
        .args([
            "range-test",
            "--format",
            "json",
            "--iters",
            "80",
            "--mode",
            "linear",
            "--start",
            "1e-4",
            "--end",
            "2",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let lrs = v["lrs"].as_array().unwrap();
    let losses = v["losses"].as_array().unwrap();
    assert!(!lrs.is_empty() && lrs.len() == losses.len() && lrs.len() <= 80);
    // A linear ramp: equal increments.
    let lr = |i: usize| lrs[i].as_f64().unwrap();
    assert!(((lr(2) - lr(1)) - (lr(1) - lr(0))).abs() < 1e-12);
    for key in ["valley", "steep", "minimum", "cyclic"] {
        assert!(v["suggestions"].get(key).is_some(), "{key}: {v}");
    }
    assert_eq!(v["config"]["mode"], "linear");
}

#[test]
fn text_chart_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("lr.png");
    let svg = dir.path().join("lr.svg");
    let out = Command::cargo_bin("lrtop")
        .unwrap()
        .args(["range-test", "--text", "90x24", "--png"])
        .arg(&png)
        .arg("--svg")
        .arg(&svg)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("LR range test"), "{text}");
    assert!(
        text.contains("valley") && text.contains("steep") && text.contains("minimum"),
        "{text}"
    );
    assert!(
        text.contains("1e-7"),
        "a log axis from the start LR:\n{text}"
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("valley"), "the suggestions are marked");
}

#[test]
fn bad_options_exit_2() {
    for args in [
        &["range-test", "--start", "0"][..],
        &["range-test", "--end", "1e-9"],
        &["range-test", "--iters", "3"],
        &["range-test", "--beta", "1"],
        &["range-test", "--stop-factor", "0.5"],
        &["range-test", "--png", "chart.svg"],
        &["range-test", "--model", "nope"],
    ] {
        Command::cargo_bin("lrtop")
            .unwrap()
            .args(args)
            .assert()
            .code(2);
    }
}
