//! One training step of the digits MLP (64-128-128-10, batch 64, SGD with
//! momentum, one thread): the fused engine (hand-written backward, the
//! default for MLPs on the CPU) and Candle's autograd engine.
//! `scripts/train_bench_mlp.sh` compares steps/s with PyTorch.
//!
//!     cargo bench --bench train_step

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lrtop::train::{DeviceSpec, Learner, LearnerConfig, ModelSpec, OptimizerKind};

fn learner(fused: bool) -> Learner {
    let config = LearnerConfig {
        model: ModelSpec::Mlp {
            hidden: vec![128, 128],
        },
        optimizer: OptimizerKind::Momentum,
        momentum: 0.9,
        batch_size: 64,
        device: DeviceSpec::Cpu,
        threads: Some(1),
        fused_cpu_mlp: fused,
        ..LearnerConfig::default()
    };
    // As `lrtop train` does before its trainer starts.
    lrtop::train::memory::keep_freed_memory_for_reuse();
    Learner::new(&config).expect("digits MLP")
}

fn bench_train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step_digits_mlp");
    group.throughput(Throughput::Elements(1));
    for (name, fused) in [("fused", true), ("autograd", false)] {
        let mut l = learner(fused);
        let mut t = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                // A schedule that changes every step, as in training.
                t += 1;
                let lr = 0.001 + 0.049 * (1.0 + (t as f64 * 1e-3).cos()) / 2.0;
                l.train_step(lr).unwrap().loss
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_train_step);
criterion_main!(benches);
