//! The schedule monitor, the serial part of `attach --summary`: every record
//! of a log through every rule, and the schedule fit at the end.
//!
//!     cargo bench --bench monitor

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lrtop::metrics::Record;
use lrtop::monitor::{Monitor, MonitorConfig};

/// Records of an HF-style run (scripts/gen_big_jsonl.py's shape): warmup
/// then cosine, an exponentially falling noisy loss, a noisy grad norm.
fn records(n: u64, every: u64) -> Vec<Record> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    (1..=n)
        .step_by(every as usize)
        .map(|step| {
            let warmup = (step as f64 / 2000.0).min(1.0);
            let t = step as f64 / n as f64;
            Record {
                step: Some(step),
                lr: Some(3e-4 * warmup * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())),
                loss: Some(4.5 * (-(step as f64) / 400_000.0).exp() + 0.8 + 0.1 * noise()),
                grad_norm: Some(0.6 + 0.4 * noise()),
                epoch: Some(step as f64 / 7813.0),
                ..Record::default()
            }
        })
        .collect()
}

fn bench_monitor(c: &mut Criterion) {
    let run = records(200_000, 1);
    let mut group = c.benchmark_group("monitor");
    group.sample_size(20);
    group.throughput(Throughput::Elements(run.len() as u64));
    group.bench_function("observe 200k records", |b| {
        b.iter(|| {
            let mut monitor = Monitor::new(MonitorConfig::default());
            for rec in &run {
                black_box(monitor.observe(rec));
            }
            monitor
        })
    });
    // What the fit sees of a 2M-step run: its LR series kept to ~4k points.
    let lrs = records(2_000_000, 512);
    group.throughput(Throughput::Elements(lrs.len() as u64));
    group.bench_function("schedule fit, 3,907 points of a cosine", |b| {
        b.iter(|| {
            let mut monitor = Monitor::new(MonitorConfig::default());
            for rec in &lrs {
                monitor.observe(rec);
            }
            black_box(monitor.schedule_fit())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_monitor);
criterion_main!(benches);
