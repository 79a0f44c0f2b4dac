//! Per-record cost: a million records through every rule. In release mode
//! (`cargo test --release --test it monitor_perf -- --nocapture`) this must
//! take well under a second; debug builds only get a loose bound.

use crate::monitor_support as support;

use std::time::Instant;

use lrtop::metrics::Record;
use lrtop::monitor::{AlertKind, Monitor, MonitorConfig, Target};
use lrtop::policy::Policy;
use support::*;

const N: u64 = 1_000_000;

fn records() -> Vec<Record> {
    let mut noise = Noise::new(7);
    (1..=N)
        .map(|s| {
            let t = s as f64 / N as f64;
            // Hugging Face's convention: step s logs the LR of t = s - 1.
            let lr_t = (s - 1) as f64 / N as f64;
            let mut rec = Record {
                step: Some(s),
                epoch: Some(t * 10.0),
                time: Some(1.7e9 + s as f64 * 0.1),
                lr: Some(1e-3 * 0.5 * (1.0 + (std::f64::consts::PI * lr_t).cos())),
                loss: Some((0.5 + 3.5 * (-t * 20.0).exp()) * (1.0 + 0.05 * noise.sample())),
                grad_norm: Some(1.0 + 0.2 * noise.sample()),
                extra: Vec::new(),
            };
            if s % 1000 == 0 {
                rec.extra
                    .push(("eval_loss".into(), 0.6 + 0.01 * noise.sample()));
            }
            rec
        })
        .collect()
}

#[test]
fn a_million_records_are_cheap() {
    let records = records();
    let mut m = Monitor::new(MonitorConfig::default())
        .with_declared(Policy::parse("CosineAnnealingLR(lr=1e-3,T_max=1000000)").unwrap())
        .with_target(Target::parse("eval_loss<=0.1").unwrap());
    let start = Instant::now();
    let mut alerts = Vec::new();
    for rec in &records {
        alerts.extend(m.observe(rec));
    }
    let observe = start.elapsed();
    let start = Instant::now();
    let fit = m.schedule_fit();
    let fit_time = start.elapsed();
    let again = Instant::now();
    let _ = m.schedule_fit();
    let cached = again.elapsed();
    eprintln!(
        "observe: {N} records in {observe:?} ({:.0} ns/record), {} alerts; schedule_fit: {fit_time:?} (cached: {cached:?}): {fit:?}",
        observe.as_nanos() as f64 / N as f64,
        alerts.len()
    );
    // The slow synthetic decay (time constant 50 000 steps) looks flat to
    // the plateau rule early on; nothing else may fire.
    assert!(
        alerts.iter().all(|a| a.kind == AlertKind::Plateau),
        "{}",
        describe(&alerts)
    );
    let limit = if cfg!(debug_assertions) { 60.0 } else { 1.0 };
    assert!(observe.as_secs_f64() < limit, "{observe:?}");
    assert!(fit.is_some_and(|f| f.rel_err < 0.01));
}
