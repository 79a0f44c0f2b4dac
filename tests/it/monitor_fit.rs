//! Schedule fit on synthetic logs of every candidate family: the log of a
//! policy is recognised, its parameters recovered, and the spec parses.

use crate::monitor_support as support;

use lrtop::metrics::Record;
use lrtop::monitor::{Monitor, MonitorConfig, ScheduleFit};
use lrtop::policy::Policy;
use support::*;

/// A log of `spec` under Hugging Face's convention (step s has policy(s-1)),
/// one record every `every` steps.
fn log_of(spec: &str, steps: u64, every: u64) -> Vec<Record> {
    let p = Policy::parse(spec).unwrap();
    (1..=steps)
        .filter(|s| s % every == 0 || *s == 1)
        .map(|s| Record {
            step: Some(s),
            lr: Some(p.lr(s - 1)),
            ..Default::default()
        })
        .collect()
}

fn fit(records: &[Record]) -> ScheduleFit {
    let mut m = Monitor::new(MonitorConfig::default());
    run(&mut m, records);
    let fit = m.schedule_fit().expect("enough points for a fit");
    Policy::parse(&fit.spec)
        .unwrap_or_else(|e| panic!("fit spec {} does not parse: {e}", fit.spec));
    fit
}

fn assert_fits(spec: &str, steps: u64, every: u64, expect_prefix: &str) -> ScheduleFit {
    let f = fit(&log_of(spec, steps, every));
    assert!(
        f.spec.starts_with(expect_prefix),
        "{spec} (every {every}): got {f:?}"
    );
    assert!(f.rel_err < 0.01, "{spec}: {f:?}");
    f
}

#[test]
fn hugging_face_schedules() {
    let f = assert_fits(
        "linear(lr=5e-4,num_warmup_steps=100,num_training_steps=1000)",
        1000,
        1,
        "linear(",
    );
    assert!(
        f.spec
            .contains("num_warmup_steps=100,num_training_steps=1000"),
        "{f:?}"
    );
    assert!(
        f.description.contains("linear with 100 warmup steps"),
        "{f:?}"
    );
    assert_fits(
        "cosine(lr=1e-4,num_warmup_steps=50,num_training_steps=2000)",
        2000,
        10,
        "cosine(",
    );
    assert_fits(
        "constant_with_warmup(lr=2e-5,num_warmup_steps=40)",
        500,
        1,
        "constant_with_warmup(lr=2e-5,num_warmup_steps=40)",
    );
    assert_fits(
        "polynomial(lr=1e-3,num_warmup_steps=20,num_training_steps=400,lr_end=1e-5,power=2)",
        400,
        1,
        "polynomial(",
    );
    assert_fits(
        "cosine_with_restarts(lr=1e-3,num_warmup_steps=20,num_training_steps=620,num_cycles=3)",
        620,
        1,
        "cosine_with_restarts(",
    );
    assert_fits("constant(lr=3e-4)", 100, 1, "constant(lr=0.0003)");
}

#[test]
fn pytorch_schedules() {
    let f = assert_fits(
        "StepLR(lr=0.1,step_size=100,gamma=0.5)",
        450,
        1,
        "StepLR(lr=0.1,step_size=100,gamma=0.5)",
    );
    assert!(f.description.contains("every 100 steps"), "{f:?}");
    assert_fits(
        "MultiStepLR(lr=0.1,milestones=[100,250],gamma=0.1)",
        400,
        1,
        "MultiStepLR(lr=0.1,milestones=[100,250]",
    );
    assert_fits(
        "ExponentialLR(lr=0.1,gamma=0.995)",
        500,
        1,
        "ExponentialLR(",
    );
    assert_fits(
        "CosineAnnealingLR(lr=0.1,T_max=400,eta_min=0.001)",
        400,
        1,
        "CosineAnnealingLR(lr=0.1,T_max=400",
    );
    assert_fits(
        "OneCycleLR(max_lr=0.1,total_steps=1000)",
        1000,
        1,
        "OneCycleLR(max_lr=0.1,total_steps=1000)",
    );
    assert_fits(
        "OneCycleLR(max_lr=0.05,total_steps=800,pct_start=0.25,anneal_strategy=linear)",
        800,
        5,
        "OneCycleLR(",
    );
    assert_fits(
        "CyclicLR(base_lr=0.001,max_lr=0.1,step_size_up=50)",
        400,
        1,
        "CyclicLR(base_lr=0.001,max_lr=0.1,step_size_up=50,mode=triangular)",
    );
    assert_fits(
        "CyclicLR(base_lr=0.001,max_lr=0.1,step_size_up=30,step_size_down=70,mode=triangular2)",
        500,
        1,
        "CyclicLR(",
    );
}

#[test]
fn lrbench_schedules_match_themselves_or_their_twins() {
    // COS is CosineAnnealingLR, TRI2 is CyclicLR triangular2: the fit may
    // name either, with the same values.
    for (spec, names) in [
        ("COS(k0=0.001,k1=0.1,l=300)", ["COS(", "CosineAnnealingLR("]),
        ("TRI2(k0=0.005,k1=0.2,l=40)", ["TRI2(", "CyclicLR("]),
        ("TRI(k0=0.005,k1=0.2,l=40)", ["TRI(", "CyclicLR("]),
        ("FIX(k0=0.1)", ["FIX(", "constant("]),
    ] {
        let f = fit(&log_of(spec, 300, 1));
        assert!(names.iter().any(|n| f.spec.starts_with(n)), "{spec}: {f:?}");
        assert!(f.rel_err < 0.01, "{spec}: {f:?}");
    }
}

#[test]
fn an_unfinished_cosine_run_still_finds_its_length() {
    // Half of a 2000-step cosine: the total comes from the curvature.
    let records: Vec<Record> = log_of(
        "cosine(lr=1e-3,num_warmup_steps=100,num_training_steps=2000)",
        2000,
        1,
    )
    .into_iter()
    .take(1000)
    .collect();
    let f = fit(&records);
    assert!(f.spec.starts_with("cosine("), "{f:?}");
    assert!(f.spec.contains("num_training_steps=2000"), "{f:?}");
}

#[test]
fn a_long_run_is_fitted_from_decimated_points() {
    let f = fit(&log_of(
        "cosine(lr=1e-3,num_warmup_steps=2000,num_training_steps=200000)",
        200_000,
        1,
    ));
    assert!(
        f.spec.starts_with("cosine(lr=0.001,num_warmup_steps="),
        "{f:?}"
    );
    assert!(f.rel_err < 0.01, "{f:?}");
}

#[test]
fn an_lr_that_fits_nothing_says_so() {
    let mut noise = Noise::new(1);
    let records: Vec<Record> = (1..=200u64)
        .map(|s| Record {
            step: Some(s),
            lr: Some(0.01 * (1.0 + 0.9 * noise.sample())),
            ..Default::default()
        })
        .collect();
    let f = fit(&records);
    assert!(f.rel_err > 0.05, "{f:?}");
    assert!(f.description.starts_with("no close match"), "{f:?}");
}

#[test]
fn no_fit_before_enough_points() {
    let mut m = Monitor::new(MonitorConfig::default());
    run(&mut m, &log_of("constant(lr=1e-3)", 5, 1));
    assert!(m.schedule_fit().is_none());
}
