//! Declared-schedule deviations on synthetic logs: each common mistake is
//! recognised and named; a log that follows the declaration is quiet.

use crate::monitor_support as support;

use lrtop::metrics::Record;
use lrtop::monitor::{Alert, AlertKind, Monitor, MonitorConfig};
use lrtop::policy::{Policy, Scheduler};
use support::*;

const COSINE: &str = "CosineAnnealingLR(lr=0.1,T_max=50)";

fn policy(spec: &str) -> Policy {
    Policy::parse(spec).unwrap()
}

/// Records for steps 1..=n with the LR `lr(step)` and an epoch of
/// step / steps_per_epoch (as Hugging Face logs it).
fn logged(n: u64, steps_per_epoch: Option<u64>, lr: impl Fn(u64) -> f64) -> Vec<Record> {
    (1..=n)
        .map(|s| Record {
            epoch: steps_per_epoch.map(|k| s as f64 / k as f64),
            ..train(s, 1.0, lr(s))
        })
        .collect()
}

fn deviations(spec: &str, records: &[Record]) -> Vec<Alert> {
    let mut m = Monitor::new(MonitorConfig::default()).with_declared(policy(spec));
    run(&mut m, records)
        .into_iter()
        .filter(|a| a.kind == AlertKind::ScheduleDeviation)
        .collect()
}

#[test]
fn a_log_that_follows_the_declaration_is_quiet() {
    let p = policy(COSINE);
    let alerts = deviations(COSINE, &logged(200, Some(5), |s| p.lr(s - 1)));
    assert!(alerts.is_empty(), "{}", describe(&alerts));
}

#[test]
fn a_scheduler_stepped_per_epoch_is_diagnosed() {
    let p = policy(COSINE);
    // Update s (1-based) runs after floor((s-1)/5) completed epochs.
    let records = logged(100, Some(5), |s| p.lr((s - 1) / 5));
    let alerts = deviations(COSINE, &records);
    assert_eq!(alerts.len(), 1, "{}", describe(&alerts));
    assert!(
        alerts[0].message.contains("t = completed epochs"),
        "{}",
        alerts[0]
    );
    assert!(
        alerts[0]
            .suggestion
            .contains("after every optimizer.step()"),
        "{}",
        alerts[0]
    );
}

#[test]
fn a_scheduler_that_is_never_stepped_is_diagnosed() {
    let alerts = deviations(COSINE, &logged(100, None, |_| 0.1));
    assert_eq!(alerts.len(), 1, "{}", describe(&alerts));
    assert!(
        alerts[0].message.contains("not being stepped"),
        "{}",
        alerts[0]
    );
    assert!(!alerts[0].message.contains("first epoch"), "{}", alerts[0]);
}

#[test]
fn within_the_first_epoch_not_stepped_and_per_epoch_look_alike() {
    let alerts = deviations(COSINE, &logged(100, Some(1000), |_| 0.1));
    assert_eq!(alerts.len(), 1, "{}", describe(&alerts));
    assert!(
        alerts[0].message.contains("not being stepped"),
        "{}",
        alerts[0]
    );
    assert!(
        alerts[0].message.contains("or stepped once per epoch"),
        "{}",
        alerts[0]
    );
}

#[test]
fn a_scheduler_stepped_before_the_optimizer_is_one_update_ahead() {
    let spec = "LinearLR(lr=0.1,start_factor=0.1,total_iters=100)";
    let p = policy(spec);
    let alerts = deviations(spec, &logged(100, None, |s| p.lr(s)));
    assert_eq!(alerts.len(), 1, "{}", describe(&alerts));
    assert!(
        alerts[0].message.contains("one update ahead"),
        "{}",
        alerts[0]
    );
    assert!(alerts[0].step.unwrap() <= 10, "{}", alerts[0]);
}

#[test]
fn a_different_base_lr_is_diagnosed_with_its_factor() {
    let p = policy(COSINE);
    let alerts = deviations(COSINE, &logged(100, None, |s| 2.0 * p.lr(s - 1)));
    assert_eq!(alerts.len(), 1, "{}", describe(&alerts));
    assert!(
        alerts[0].message.contains("2x the declared"),
        "{}",
        alerts[0]
    );
}

#[test]
fn an_unrelated_schedule_is_a_deviation_without_a_named_cause() {
    let alerts = deviations(COSINE, &logged(100, None, |s| 0.1 * 0.97f64.powi(s as i32)));
    assert_eq!(alerts.len(), 1, "{}", describe(&alerts));
    assert!(
        alerts[0].message.contains("differs from the declared"),
        "{}",
        alerts[0]
    );
    assert!(
        alerts[0]
            .suggestion
            .contains("--declared CosineAnnealingLR"),
        "{}",
        alerts[0]
    );
}

#[test]
fn isolated_mismatches_are_not_sustained() {
    // A StepLR whose decay lands one update late only mismatches at the
    // boundary records: not a sustained deviation.
    let spec = "StepLR(lr=0.1,step_size=20,gamma=0.5)";
    let p = policy(spec);
    let alerts = deviations(spec, &logged(100, None, |s| p.lr(s.saturating_sub(2))));
    assert!(alerts.is_empty(), "{}", describe(&alerts));
}

#[test]
fn a_metric_driven_declaration_is_fed_the_eval_loss() {
    let spec = "ReduceLROnPlateau(lr=0.1,factor=0.5,patience=2)";
    let mut scheduler = Scheduler::new(policy(spec));
    let mut records = Vec::new();
    for s in 1..=200u64 {
        records.push(train(s, 1.0, scheduler.lr(s - 1)));
        if s % 10 == 0 {
            // Flat eval loss: the scheduler halves the LR every 3 evals.
            records.push(eval(s, "eval_loss", 1.0));
            scheduler.observe(s, 1.0);
        }
    }
    assert!(
        records.iter().any(|r| r.lr == Some(0.025)),
        "the LR was reduced"
    );
    let alerts = deviations(spec, &records);
    assert!(alerts.is_empty(), "{}", describe(&alerts));
}

#[test]
fn records_without_steps_are_ignored() {
    let records: Vec<Record> = (0..50)
        .map(|_| Record {
            lr: Some(5.0),
            ..Default::default()
        })
        .collect();
    assert!(deviations(COSINE, &records).is_empty());
}

#[test]
fn a_log_one_update_ahead_is_information_then_compared_at_its_offset() {
    // Older transformers and `get_last_lr()` after `scheduler.step()`:
    // the LR logged at step s is the policy at t = s.
    let spec = "cosine(lr=1e-3,num_warmup_steps=30,num_training_steps=300)";
    let p = policy(spec);
    let alerts = deviations(spec, &logged(300, None, |s| p.lr(s)));
    assert_eq!(alerts.len(), 1, "{}", describe(&alerts));
    assert_eq!(
        alerts[0].level,
        lrtop::monitor::Level::Info,
        "{}",
        alerts[0]
    );
    assert!(alerts[0].message.contains("offset 0"), "{}", alerts[0]);
}

#[test]
fn a_different_horizon_is_named_as_such() {
    let declared = "cosine(lr=1e-3,num_warmup_steps=30,num_training_steps=600)";
    let used = policy("cosine(lr=1e-3,num_warmup_steps=30,num_training_steps=300)");
    let alerts = deviations(declared, &logged(300, None, |s| used.lr(s - 1)));
    assert!(!alerts.is_empty());
    let all = describe(&alerts);
    assert!(
        all.contains("the declared schedule ends at 600 steps; the log decays as if over 300"),
        "{all}"
    );
    assert!(!all.contains("1x the declared"), "{all}");
}

#[test]
fn a_different_warmup_and_floor_are_named() {
    let declared =
        "cosine_with_min_lr(lr=1e-3,num_warmup_steps=100,num_training_steps=1000,min_lr_rate=0.1)";
    let used = policy(
        "cosine_with_min_lr(lr=1e-3,num_warmup_steps=50,num_training_steps=1000,min_lr_rate=0.05)",
    );
    let alerts = deviations(declared, &logged(1000, None, |s| used.lr(s - 1)));
    let all = describe(&alerts);
    assert!(
        all.contains("the declared warmup is 100 steps; the log warms up over 50"),
        "{all}"
    );
    // The floor shows only where the cosine nears it.
    let declared =
        "cosine_with_min_lr(lr=1e-3,num_warmup_steps=50,num_training_steps=1000,min_lr_rate=0.1)";
    let alerts = deviations(declared, &logged(1000, None, |s| used.lr(s - 1)));
    let all = describe(&alerts);
    assert!(
        all.contains("floor min_lr_rate is 0.1; the log's is 0.05"),
        "{all}"
    );
}
