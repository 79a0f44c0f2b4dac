//! The monitor on real training logs (`../shared/reference-logs`, read by
//! the small reader in `monitor_support.rs`).

use crate::monitor_support as support;

use lrtop::metrics::Record;
use lrtop::monitor::{AlertKind, Level, Monitor, MonitorConfig};
use lrtop::policy::Policy;
use support::*;

const HF: &str = "hf_trainer_cosine.jsonl";
const CYCLIC: &str = "torch_cyclic_triangular2.jsonl";
const NAN: &str = "torch_diverged_nan.jsonl";
const LIGHTNING: &str = "lightning_onecycle.metrics.csv";
const HF_DECLARED: &str = "cosine(lr=3e-3,num_warmup_steps=30,num_training_steps=300)";

fn declared(spec: &str) -> Monitor {
    Monitor::new(MonitorConfig::default()).with_declared(Policy::parse(spec).unwrap())
}

#[test]
fn healthy_hf_run_raises_nothing() {
    let (_, alerts) = run_default(&read_jsonl(HF));
    assert!(alerts.is_empty(), "{}", describe(&alerts));
}

#[test]
fn healthy_cyclic_run_raises_no_warning() {
    let (_, alerts) = run_default(&read_jsonl(CYCLIC));
    // The loss does stop improving (about 0.04 from step ~400 on, val_acc
    // flat at 0.98): plateaus are reported, as information only, because
    // the schedule keeps moving the LR.
    assert!(
        at_least(&alerts, Level::Warn).is_empty(),
        "{}",
        describe(&alerts)
    );
    assert!(
        alerts.iter().all(|a| a.kind == AlertKind::Plateau),
        "{}",
        describe(&alerts)
    );
}

#[test]
fn healthy_lightning_run_only_warns_of_its_real_overfitting() {
    let (_, alerts) = run_default(&read_lightning_csv(LIGHTNING));
    assert!(
        at_least(&alerts, Level::Critical).is_empty(),
        "{}",
        describe(&alerts)
    );
    // Defensible: val_loss bottoms out at 0.303 (epoch 9, step 449) and then
    // stays 5-6% above it for the last evals (0.319, 0.321, 0.321, 0.321)
    // while the training loss keeps falling (~0.03 -> ~0.01) and val_acc
    // slips from 0.911 to 0.903: textbook early stopping point.
    let warns = at_least(&alerts, Level::Warn);
    assert_eq!(warns.len(), 1, "{}", describe(&alerts));
    assert_eq!(warns[0].kind, AlertKind::Overfitting);
    assert!(
        warns[0].message.contains("step 449"),
        "{}",
        warns[0].message
    );
    assert!(
        warns[0].suggestion.contains("449"),
        "{}",
        warns[0].suggestion
    );
}

fn first_nonfinite_step(records: &[Record]) -> u64 {
    records
        .iter()
        .find(|r| {
            [r.loss, r.grad_norm]
                .iter()
                .flatten()
                .any(|v| !v.is_finite())
        })
        .and_then(|r| r.step)
        .expect("the NaN log has a non-finite value")
}

#[test]
fn nan_run_is_critical_at_its_first_nonfinite_step_and_earlier_at_the_explosion() {
    let records = read_jsonl(NAN);
    let first_bad = first_nonfinite_step(&records);
    assert_eq!(
        first_bad, 28,
        "grad_norm is Infinity at step 28, NaN from 29"
    );
    let (_, alerts) = run_default(&records);
    let divergence = of_kind(&alerts, AlertKind::Divergence);
    // The infinite grad norm at step 28 comes after the loss climbed: the
    // divergence going on (critical), then the NaN loss of step 29.
    assert!(divergence.iter().all(|a| a.level == Level::Critical));
    assert!(
        divergence.iter().any(|a| a.step == Some(first_bad)
            && a.message
                .contains("grad norm is inf after the loss climbed")),
        "{}",
        describe(&alerts)
    );
    assert!(
        divergence
            .iter()
            .any(|a| a.step == Some(first_bad + 1) && a.message.contains("loss is NaN")),
        "{}",
        describe(&alerts)
    );
    // The loss goes 0.11, 30, 548, 11 000 ... : flagged within a few steps.
    let explosion = divergence
        .iter()
        .find(|a| a.message.contains("diverging"))
        .expect("explosion alert");
    assert!(explosion.step.unwrap() <= 5, "{explosion}");
    // One alert per episode: NaN continues for ~280 records.
    assert_eq!(divergence.len(), 3, "{}", describe(&alerts));
}

#[test]
fn declaring_the_real_schedule_raises_nothing() {
    let mut m = declared(HF_DECLARED);
    let alerts = run(&mut m, &read_jsonl(HF));
    assert!(alerts.is_empty(), "{}", describe(&alerts));
}

#[test]
fn declaring_a_wrong_schedule_is_a_deviation() {
    let mut m = declared("linear(lr=3e-3,num_warmup_steps=30,num_training_steps=300)");
    let alerts = run(&mut m, &read_jsonl(HF));
    let dev = of_kind(&alerts, AlertKind::ScheduleDeviation);
    assert_eq!(dev.len(), 1, "{}", describe(&alerts));
    assert!(
        dev[0].message.contains("differs from the declared"),
        "{}",
        dev[0]
    );
    // Linear and cosine part by more than 1% a few steps after the warmup;
    // sustained for 5 records, reported once the log tells which schedule
    // it follows (20 records after the warmup's end).
    assert!((31..=55).contains(&dev[0].step.unwrap()), "{}", dev[0]);
    // The suggestion says what the log follows so far.
    assert!(
        dev[0].suggestion.contains("the log follows cosine("),
        "{}",
        dev[0].suggestion
    );
}

#[test]
fn declaring_a_constant_is_a_deviation() {
    let mut m = declared("constant(lr=3e-3)");
    let alerts = run(&mut m, &read_jsonl(HF));
    let dev = of_kind(&alerts, AlertKind::ScheduleDeviation);
    // One episode: the warmup the declaration lacks, reported a few
    // records after it ended, by when the log already shows its cosine;
    // the decay that follows continues the same deviation.
    assert_eq!(dev.len(), 1, "{}", describe(&alerts));
    assert!(dev[0].step.unwrap() <= 40, "{}", dev[0]);
    assert!(
        dev[0].message.contains("the log follows cosine("),
        "{}",
        dev[0]
    );
}

#[test]
fn a_log_one_update_late_is_diagnosed_as_off_by_one() {
    // The same run logged with steps counted one higher: the LR at step s
    // is the policy at t = s-2.
    let shifted: Vec<Record> = read_jsonl(HF)
        .into_iter()
        .map(|mut r| {
            r.step = r.step.map(|s| s + 1);
            r
        })
        .collect();
    let mut m = declared(HF_DECLARED);
    let alerts = run(&mut m, &shifted);
    let dev = of_kind(&alerts, AlertKind::ScheduleDeviation);
    assert_eq!(dev.len(), 1, "{}", describe(&alerts));
    assert!(dev[0].message.contains("t = s-2"), "{}", dev[0]);
    assert!(dev[0].message.contains("one update behind"), "{}", dev[0]);
}

#[test]
fn a_log_one_update_early_is_diagnosed_as_off_by_one() {
    let shifted: Vec<Record> = read_jsonl(HF)
        .into_iter()
        .map(|mut r| {
            r.step = r.step.map(|s| s - 1);
            r
        })
        .collect();
    let mut m = declared(HF_DECLARED);
    let alerts = run(&mut m, &shifted);
    let dev = of_kind(&alerts, AlertKind::ScheduleDeviation);
    assert_eq!(dev.len(), 1, "{}", describe(&alerts));
    assert!(dev[0].message.contains("t = s,"), "{}", dev[0]);
}

fn fit_of(records: &[Record]) -> lrtop::monitor::ScheduleFit {
    let (m, _) = run_default(records);
    let fit = m.schedule_fit().expect("a fit");
    eprintln!("{fit:?}");
    Policy::parse(&fit.spec).unwrap_or_else(|e| panic!("{}: {e}", fit.spec));
    fit
}

#[test]
fn hf_fit_is_cosine_with_30_warmup_steps() {
    let fit = fit_of(&read_jsonl(HF));
    assert!(fit.spec.starts_with("cosine("), "{fit:?}");
    assert!(fit.spec.contains("num_warmup_steps=30"), "{fit:?}");
    assert!(fit.spec.contains("num_training_steps=300"), "{fit:?}");
    assert!(
        fit.description.contains("cosine with 30 warmup steps"),
        "{fit:?}"
    );
    assert!(fit.rel_err < 0.01, "{fit:?}");
}

#[test]
fn cyclic_fit_is_triangular2() {
    let fit = fit_of(&read_jsonl(CYCLIC));
    assert!(
        fit.spec.starts_with("CyclicLR(") && fit.spec.contains("mode=triangular2")
            || fit.spec.starts_with("TRI2("),
        "{fit:?}"
    );
    assert!(
        fit.spec.contains("step_size_up=100") || fit.spec.contains("l=100"),
        "{fit:?}"
    );
    assert!(fit.rel_err < 0.01, "{fit:?}");
}

#[test]
fn lightning_fit_is_one_cycle() {
    let fit = fit_of(&read_lightning_csv(LIGHTNING));
    assert!(
        fit.spec
            .starts_with("OneCycleLR(max_lr=0.01,total_steps=675"),
        "{fit:?}"
    );
    assert!(fit.rel_err < 0.01, "{fit:?}");
    // Lightning's LearningRateMonitor logs the LR of the next update.
    assert!(fit.description.contains("t = s"), "{fit:?}");
}

#[test]
fn nan_run_fit_is_its_constant_lr() {
    let fit = fit_of(&read_jsonl(NAN));
    assert_eq!(fit.spec, "constant(lr=20)");
    assert_eq!(fit.rel_err, 0.0);
}
