//! The schedule fit finds the exact schedule when a policy of the database
//! produced the log, with the logging offset detected from the data: the
//! logged LR at step s is `spec` at t = s + offset, offset -1 (Hugging Face
//! Trainer, which logs the LR of the update it just made) or 0 (older
//! transformers, and loops that log `get_last_lr()` after
//! `scheduler.step()`). "Exact" is a mean relative error below 1e-4 over the
//! logged points, also for sparse logs and LRs rounded to 8 decimals.

use lrtop::metrics::Record;
use lrtop::monitor::{Monitor, MonitorConfig, ScheduleFit};
use lrtop::policy::Policy;

/// How a case is logged.
#[derive(Clone, Copy)]
struct Logging {
    offset: i64,
    every: u64,
    round8: bool,
}

fn log_of(spec: &str, steps: u64, how: Logging) -> Vec<Record> {
    let p = Policy::parse(spec).unwrap();
    (1..=steps)
        .filter(|s| s % how.every == 0 || *s == 1)
        .map(|s| {
            let t = (s as i64 + how.offset).max(0) as u64;
            let mut lr = p.lr(t);
            if how.round8 {
                lr = (lr * 1e8).round() / 1e8;
            }
            Record {
                step: Some(s),
                lr: Some(lr),
                ..Default::default()
            }
        })
        .collect()
}

fn fit_of(records: &[Record]) -> Option<ScheduleFit> {
    let mut m = Monitor::new(MonitorConfig::default());
    for r in records {
        m.observe(r);
    }
    m.schedule_fit()
}

/// Mean relative error of the fit's spec over the logged points (the
/// spec's values rounded as the log was, when it was).
fn error_of(fit: &ScheduleFit, records: &[Record], round8: bool) -> f64 {
    let p = Policy::parse(&fit.spec).unwrap();
    let errs: Vec<f64> = records
        .iter()
        .filter_map(|r| {
            let (s, y) = (r.step? as i64, r.lr?);
            let t = (s + fit.offset).max(0) as u64;
            let mut v = p.lr(t);
            if round8 {
                v = (v * 1e8).round() / 1e8;
            }
            if y == 0.0 && v == 0.0 {
                return Some(0.0);
            }
            Some((v - y).abs() / y.abs().max(1e-12))
        })
        .collect();
    errs.iter().sum::<f64>() / errs.len() as f64
}

const CASES: &[(&str, u64)] = &[
    (
        "linear(lr=5e-4,num_warmup_steps=0,num_training_steps=3000)",
        3000,
    ),
    (
        "linear(lr=5e-4,num_warmup_steps=90,num_training_steps=9411)",
        9411,
    ),
    (
        "cosine(lr=5e-5,num_warmup_steps=866,num_training_steps=8660)",
        8660,
    ),
    (
        "cosine(lr=3e-3,num_warmup_steps=30,num_training_steps=300)",
        300,
    ),
    (
        "cosine_with_min_lr(lr=6e-4,num_warmup_steps=200,num_training_steps=5000,min_lr=6e-5)",
        5000,
    ),
    (
        "cosine_with_min_lr(lr=1e-3,num_warmup_steps=50,num_training_steps=2000,min_lr_rate=0.05)",
        2000,
    ),
    ("OneCycleLR(max_lr=0.01,total_steps=675)", 675),
    (
        "OneCycleLR(max_lr=0.1,total_steps=1200,three_phase=true,anneal_strategy=linear)",
        1200,
    ),
    (
        "warmup_stable_decay(lr=5e-4,num_warmup_steps=100,num_training_steps=2000,num_decay_steps=400)",
        2000,
    ),
    ("inverse_sqrt(lr=1e-3,num_warmup_steps=400)", 4000),
    ("constant(lr=2e-5)", 500),
    ("StepLR(lr=0.1,step_size=300,gamma=0.1)", 1000),
    ("MultiStepLR(lr=0.1,milestones=[500,750],gamma=0.1)", 1000),
    (
        "CosineAnnealingWarmRestarts(lr=0.05,T_0=250,eta_min=0.0)",
        1000,
    ),
];

fn check(spec: &str, steps: u64, how: Logging) -> Result<(), String> {
    let records = log_of(spec, steps, how);
    let Some(fit) = fit_of(&records) else {
        return Err(format!("{spec}: no fit"));
    };
    let err = error_of(&fit, &records, how.round8);
    let mut problems = Vec::new();
    if err >= 1e-4 {
        problems.push(format!("error {err:.2e}"));
    }
    // A constant LR reads the same under either offset.
    if fit.offset != how.offset && !spec.starts_with("constant(") {
        problems.push(format!("offset {} instead of {}", fit.offset, how.offset));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{spec} (offset {}, every {}, rounded {}): {} -> fit {} [{}]",
            how.offset,
            how.every,
            how.round8,
            problems.join(", "),
            fit.spec,
            fit.description
        ))
    }
}

fn run_all(logging: &[Logging]) {
    let mut failures = Vec::new();
    for (spec, steps) in CASES {
        for how in logging {
            if let Err(e) = check(spec, *steps, *how) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_step_under_either_offset() {
    run_all(&[
        Logging {
            offset: -1,
            every: 1,
            round8: false,
        },
        Logging {
            offset: 0,
            every: 1,
            round8: false,
        },
    ]);
}

#[test]
fn sparse_and_rounded_logs() {
    run_all(&[
        Logging {
            offset: -1,
            every: 10,
            round8: true,
        },
        Logging {
            offset: 0,
            every: 25,
            round8: true,
        },
    ]);
}
