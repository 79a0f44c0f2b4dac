//! Helpers shared by the monitor tests (included with `#[path]`): a tiny
//! reader for the reference logs, independent of `lrtop::ingest`, and
//! builders of synthetic records.
#![allow(dead_code)]

use std::path::PathBuf;

use lrtop::metrics::Record;
use lrtop::monitor::{Alert, AlertKind, Level, Monitor, MonitorConfig};
use serde_json::Value;

/// The reference log from `../shared/reference-logs`, or the copy in
/// `sample-logs/` when the shared folder is not next to the checkout.
pub fn reference_log(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/reference-logs").join(name);
    if shared.exists() {
        shared
    } else {
        root.join("sample-logs").join(name)
    }
}

/// Maps a logged field to the record: LR, loss and grad-norm aliases, the
/// step, epoch and time, and everything else numeric into `extra`.
fn set_field(rec: &mut Record, key: &str, value: f64) {
    match key {
        "step" => rec.step = Some(value as u64),
        "epoch" => rec.epoch = Some(value),
        "time" => rec.time = Some(value),
        "learning_rate" | "lr" | "lr-AdamW" => rec.lr = Some(value),
        "loss" | "train_loss_step" => rec.loss = Some(value),
        "grad_norm" => rec.grad_norm = Some(value),
        _ => rec.extra.push((key.to_string(), value)),
    }
}

/// Python's json.dumps writes bare NaN / Infinity / -Infinity: quote them
/// so serde_json reads them as strings, then map them back to floats.
fn quote_python_tokens(line: &str) -> String {
    line.replace(": -Infinity", ": \"-Infinity\"")
        .replace(": Infinity", ": \"Infinity\"")
        .replace(": NaN", ": \"NaN\"")
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

pub fn read_jsonl(name: &str) -> Vec<Record> {
    let path = reference_log(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(&quote_python_tokens(line))
                .unwrap_or_else(|e| panic!("{line}: {e}"));
            let mut rec = Record::default();
            if let Value::Object(map) = value {
                for (k, v) in &map {
                    if let Some(x) = as_f64(v) {
                        set_field(&mut rec, k, x);
                    }
                }
            }
            rec
        })
        .collect()
}

/// A Lightning CSVLogger metrics.csv: sparse rows, empty cells skipped.
pub fn read_lightning_csv(name: &str) -> Vec<Record> {
    let path = reference_log(name);
    let mut reader =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let headers = reader.headers().expect("csv header").clone();
    reader
        .records()
        .map(|row| {
            let row = row.expect("csv row");
            let mut rec = Record::default();
            for (key, cell) in headers.iter().zip(row.iter()) {
                if let Ok(x) = cell.trim().parse::<f64>() {
                    set_field(&mut rec, key, x);
                }
            }
            rec
        })
        .collect()
}

pub fn run(monitor: &mut Monitor, records: &[Record]) -> Vec<Alert> {
    records.iter().flat_map(|r| monitor.observe(r)).collect()
}

pub fn run_default(records: &[Record]) -> (Monitor, Vec<Alert>) {
    let mut m = Monitor::new(MonitorConfig::default());
    let alerts = run(&mut m, records);
    (m, alerts)
}

pub fn of_kind(alerts: &[Alert], kind: AlertKind) -> Vec<&Alert> {
    alerts.iter().filter(|a| a.kind == kind).collect()
}

pub fn at_least(alerts: &[Alert], level: Level) -> Vec<&Alert> {
    alerts.iter().filter(|a| a.level >= level).collect()
}

/// A training record with step, loss and LR.
pub fn train(step: u64, loss: f64, lr: f64) -> Record {
    Record {
        step: Some(step),
        loss: Some(loss),
        lr: Some(lr),
        ..Default::default()
    }
}

/// An eval record.
pub fn eval(step: u64, name: &str, value: f64) -> Record {
    Record {
        step: Some(step),
        extra: vec![(name.to_string(), value)],
        ..Default::default()
    }
}

/// Deterministic noise in [-1, 1] (a small LCG), so tests need no rand crate.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Noise(
            seed.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        )
    }

    pub fn sample(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// A healthy-looking loss: exponential decay towards a floor with 5%
/// multiplicative noise.
pub fn healthy_loss(step: u64, noise: &mut Noise) -> f64 {
    let clean = 0.5 + 3.5 * (-(step as f64) / 300.0).exp();
    clean * (1.0 + 0.05 * noise.sample())
}

pub fn describe(alerts: &[Alert]) -> String {
    alerts
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
