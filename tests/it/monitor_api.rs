//! The monitor's public surface: JSON shapes, hook environment, config from
//! TOML, target parsing, and robustness against odd records.

use crate::monitor_support as support;

use lrtop::metrics::Record;
use lrtop::monitor::{
    Alert, AlertKind, Level, Monitor, MonitorConfig, Target, TargetOp, run_on_alert,
};
use serde_json::json;
use support::*;

fn sample_alert() -> Alert {
    Alert::new(
        Level::Critical,
        AlertKind::Divergence,
        Some(28),
        "grad norm is inf: the run has diverged",
        "stop the run",
    )
}

#[test]
fn alerts_serialise_to_the_summary_shape() {
    let v = serde_json::to_value(sample_alert()).unwrap();
    assert_eq!(
        v,
        json!({
            "level": "critical",
            "kind": "divergence",
            "step": 28,
            "message": "grad norm is inf: the run has diverged",
            "suggestion": "stop the run",
        })
    );
    let kinds: Vec<String> = AlertKind::ALL
        .iter()
        .map(|k| {
            serde_json::to_value(k)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "divergence",
            "spike",
            "plateau",
            "lr_too_high",
            "lr_too_low",
            "grad_explosion",
            "overfitting",
            "stalled",
            "target_reached",
            "schedule_deviation"
        ]
    );
    assert!(
        AlertKind::ALL
            .iter()
            .all(|k| serde_json::to_value(k).unwrap() == json!(k.as_str()))
    );
    assert_eq!(serde_json::to_value(Level::Warn).unwrap(), json!("warn"));
    assert!(Level::Info < Level::Warn && Level::Warn < Level::Critical);
}

#[test]
fn schedule_fit_serialises_spec_and_error() {
    let records: Vec<Record> = (1..=50u64)
        .map(|s| Record {
            step: Some(s),
            lr: Some(0.01),
            ..Default::default()
        })
        .collect();
    let (m, _) = run_default(&records);
    let v = serde_json::to_value(m.schedule_fit()).unwrap();
    assert_eq!(v["spec"], json!("constant(lr=0.01)"));
    assert_eq!(v["rel_err"], json!(0.0));
    assert!(v["description"].as_str().unwrap().contains("constant"));
}

#[test]
fn alert_environment_for_hooks() {
    let env = sample_alert().to_env();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("LRTOP_ALERT_LEVEL"), Some("critical"));
    assert_eq!(get("LRTOP_ALERT_KIND"), Some("divergence"));
    assert_eq!(get("LRTOP_ALERT_STEP"), Some("28"));
    assert_eq!(
        get("LRTOP_ALERT_MESSAGE"),
        Some("grad norm is inf: the run has diverged")
    );
    assert_eq!(get("LRTOP_ALERT_SUGGESTION"), Some("stop the run"));
    let json: serde_json::Value = serde_json::from_str(get("LRTOP_ALERT_JSON").unwrap()).unwrap();
    assert_eq!(json["kind"], "divergence");
    let no_step = Alert {
        step: None,
        ..sample_alert()
    }
    .to_env();
    assert!(no_step.contains(&("LRTOP_ALERT_STEP".to_string(), String::new())));
}

#[test]
fn on_alert_runs_the_command_with_the_alert_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hook.txt");
    let cmd = format!(
        "printf '%s|%s|%s|%s|%s' \"$LRTOP_RUN\" \"$LRTOP_ALERT_LEVEL\" \"$LRTOP_ALERT_KIND\" \"$LRTOP_ALERT_STEP\" \"$LRTOP_ALERT_JSON\" > '{}'",
        out.display()
    );
    let mut child = run_on_alert(&cmd, &sample_alert(), "run one").unwrap();
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(&out).unwrap();
    let parts: Vec<&str> = text.splitn(5, '|').collect();
    assert_eq!(&parts[..4], ["run one", "critical", "divergence", "28"]);
    let json: serde_json::Value = serde_json::from_str(parts[4]).unwrap();
    assert_eq!(json["step"], 28);
}

#[test]
fn config_reads_a_partial_toml_table() {
    #[derive(serde::Deserialize)]
    struct File {
        monitor: MonitorConfig,
    }
    let file: File = toml::from_str("[monitor]\nspike_z = 5.0\nstall_secs = 30\n").unwrap();
    let expected = MonitorConfig {
        spike_z: 5.0,
        stall_secs: Some(30.0),
        ..MonitorConfig::default()
    };
    assert_eq!(file.monitor, expected);
    let empty: MonitorConfig = toml::from_str("").unwrap();
    assert_eq!(empty, MonitorConfig::default());
    let typo = toml::from_str::<MonitorConfig>("spike_zz = 5.0").unwrap_err();
    assert!(typo.to_string().contains("spike_zz"), "{typo}");
}

#[test]
fn targets_parse_and_explain_errors() {
    let t: Target = "val_acc>=0.95".parse().unwrap();
    assert_eq!(
        (t.metric.as_str(), t.op, t.value),
        ("val_acc", TargetOp::Ge, 0.95)
    );
    let t = Target::parse("eval_loss<=1.2").unwrap();
    assert_eq!(t.op, TargetOp::Le);
    let e = Target::parse("val_acc=0.95").unwrap_err().to_string();
    assert!(
        e.contains("invalid target 'val_acc=0.95'") && e.contains(">= or <="),
        "{e}"
    );
    let e = Target::parse("val_acc>=high").unwrap_err().to_string();
    assert!(e.contains("'high' is not a number"), "{e}");
}

#[test]
fn the_monitor_is_send_sync_and_clone() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Monitor>();
    let (m, _) = run_default(&read_jsonl("hf_trainer_cosine.jsonl"));
    let copy = m.clone();
    assert_eq!(copy.alerts(), m.alerts());
    assert_eq!(copy.schedule_fit(), m.schedule_fit());
}

#[test]
fn odd_records_never_panic() {
    let mut m = Monitor::new(MonitorConfig::default())
        .with_declared(
            lrtop::policy::Policy::parse("OneCycleLR(max_lr=0.1,total_steps=100)").unwrap(),
        )
        .with_target(Target::parse("val_acc>=0.5").unwrap());
    let mut noise = Noise::new(42);
    let odd = [
        0.0,
        -1.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e308,
        -1e308,
        1e-320,
    ];
    for i in 0..5000u64 {
        let mut pick = || {
            let r = noise.sample();
            if r > 0.6 {
                Some(odd[((r * 1000.0) as usize) % odd.len()])
            } else if r > 0.0 {
                Some(r)
            } else {
                None
            }
        };
        let rec = Record {
            step: if i % 7 == 0 {
                None
            } else {
                Some((i * 7919) % 300)
            },
            epoch: pick(),
            time: pick(),
            lr: pick(),
            loss: pick(),
            grad_norm: pick(),
            extra: vec![
                ("val_loss".into(), pick().unwrap_or(1.0)),
                ("val_acc".into(), pick().unwrap_or(0.1)),
            ],
        };
        m.observe(&rec);
        if i % 100 == 0 {
            m.tick(i as f64 * 10.0, true);
            let _ = m.schedule_fit();
        }
    }
    m.observe(&Record::default());
    m.tick(f64::NAN, true);
    m.tick(f64::INFINITY, true);
    let _ = m.schedule_fit();
}
