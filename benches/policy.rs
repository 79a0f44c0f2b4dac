//! Policy evaluation: every family over 100k updates (`Policy::lr` for
//! t = 0..100k), plus a metric-driven policy through the `Scheduler`.
//!
//!     cargo bench --bench policy

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lrtop::policy::{Policy, Scheduler};

const STEPS: u64 = 100_000;

const SPECS: &[(&str, &str)] = &[
    ("lrbench/FIX", "FIX(k0=0.1)"),
    (
        "lrbench/NSTEP",
        "NSTEP(k0=0.1,gamma=0.5,l=[10000,30000,60000,90000])",
    ),
    ("lrbench/POLY", "POLY(k0=0.001,k1=0.1,p=2,l=100000)"),
    ("lrbench/COS", "COS(k0=0.001,k1=0.1,l=5000)"),
    (
        "lrbench/TRIEXP",
        "TRIEXP(k0=0.001,k1=0.1,gamma=0.99995,l=2000)",
    ),
    (
        "lrbench/SINRSWEXP",
        "SINRSWEXP(k0=0.001,k1=0.1,l=2000,gamma=0.9999)",
    ),
    ("torch/StepLR", "StepLR(lr=0.1,step_size=3000,gamma=0.9)"),
    (
        "torch/MultiStepLR",
        "MultiStepLR(lr=0.1,milestones=[30000,60000,90000],gamma=0.1)",
    ),
    (
        "torch/CosineAnnealingWarmRestarts",
        "CosineAnnealingWarmRestarts(lr=0.1,T_0=1000,T_mult=2,eta_min=1e-5)",
    ),
    (
        "torch/CyclicLR",
        "CyclicLR(base_lr=0.001,max_lr=0.1,step_size_up=2000,mode=exp_range,gamma=0.99999)",
    ),
    (
        "torch/OneCycleLR",
        "OneCycleLR(max_lr=0.1,total_steps=100000)",
    ),
    (
        "hf/cosine",
        "cosine(lr=5e-4,num_warmup_steps=2000,num_training_steps=100000)",
    ),
    (
        "hf/cosine_with_restarts",
        "cosine_with_restarts(lr=5e-4,num_warmup_steps=2000,num_training_steps=100000,num_cycles=5)",
    ),
    (
        "hf/warmup_stable_decay",
        "warmup_stable_decay(lr=5e-4,num_warmup_steps=2000,num_training_steps=100000,num_decay_steps=20000,decay_type=1-sqrt)",
    ),
    (
        "composite/3 stages",
        "LinearLR(lr=0.1,start_factor=0.01,total_iters=5000) for 5000 then CosineAnnealingLR(lr=0.1,T_max=90000) for 90000 then FIX(k0=1e-4)",
    ),
];

fn bench_policies(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_eval_100k");
    group.throughput(Throughput::Elements(STEPS));
    for (name, spec) in SPECS {
        let policy = Policy::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        group.bench_with_input(BenchmarkId::from_parameter(name), &policy, |b, p| {
            b.iter(|| {
                let mut sum = 0.0;
                for t in 0..STEPS {
                    sum += p.lr(black_box(t));
                }
                sum
            })
        });
    }
    // Metric-driven: ReduceLROnPlateau fed an eval metric every 1000 updates.
    let policy = Policy::parse("ReduceLROnPlateau(lr=0.1,factor=0.5,patience=3)").unwrap();
    group.bench_function("torch/ReduceLROnPlateau (scheduler)", |b| {
        b.iter(|| {
            let mut s = Scheduler::new(policy.clone());
            let mut sum = 0.0;
            for t in 0..STEPS {
                sum += s.lr(black_box(t));
                if t % 1000 == 999 {
                    s.observe(t + 1, 1.0 + (t as f64 * 1e-4).sin());
                }
            }
            sum
        })
    });
    group.finish();

    c.bench_function("policy_parse/composite", |b| {
        b.iter(|| Policy::parse(black_box(SPECS[SPECS.len() - 1].1)).unwrap())
    });
}

criterion_group!(benches, bench_policies);
criterion_main!(benches);
